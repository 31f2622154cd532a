"""Small files replaced atomically: written under a temporary name beside the target,
synced, given their mode, then renamed over it; nothing is left behind on failure."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path


def umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def replace_file(path: Path, data: bytes, mode: int | None = None) -> None:
    """``path`` now holds ``data``, or (on any error) what it held before. ``mode``: the
    file's permissions; by default those of the file it replaces, else the umask's."""
    if mode is None:
        mode = path.stat().st_mode & 0o777 if path.exists() else 0o666 & ~umask()
    fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(temp, mode)
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp)
        raise
