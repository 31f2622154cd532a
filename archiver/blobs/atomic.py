"""Files written to disk for good: small ones replaced atomically (written under a
temporary name beside the target, synced, given their mode, then renamed over it; nothing
is left behind on failure), large ones handed to the disk as they grow."""

from __future__ import annotations

import contextlib
import io
import os
import tempfile
import threading
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


class WrittenBack(io.BufferedWriter):
    """A large output file handed to the disk as it grows: every ``step`` bytes written,
    what is written so far is synced (fdatasync) on a thread of its own while writing goes
    on, so ``sync()`` at the end waits for the rest alone. Making an archive keeps the CPU
    busy (compressing, hashing) and leaves the disk idle: a final fsync of a whole 65 MB
    bundle took 0.23 s of a 1.0 s pack. An error of a sync on the thread is raised by
    ``sync()`` (the kernel reports it to one sync only)."""

    def __init__(self, file: str | int, step: int = 16 * 1024 * 1024) -> None:
        """``file``: a path or an open descriptor (then owned: closed with this)."""
        super().__init__(io.FileIO(file, "wb"))
        self._step = step
        self._unsynced = 0
        self._thread: threading.Thread | None = None
        self._error: OSError | None = None

    def write(self, data: bytes, /) -> int:  # type: ignore[override]
        written = super().write(data)
        self._unsynced += written
        if self._unsynced >= self._step and (self._thread is None or not self._thread.is_alive()):
            self._unsynced = 0
            self.flush()  # all of it in the file: what the sync is for
            self._thread = threading.Thread(target=self._sync_so_far, name="writeback")
            self._thread.start()
        return written

    def _sync_so_far(self) -> None:
        try:
            os.fdatasync(self.fileno())
        except OSError as exc:
            self._error = exc

    def _settled(self) -> None:
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def sync(self) -> None:
        """Everything written is on disk (or the error that kept it from it)."""
        self.flush()
        self._settled()
        if self._error is not None:
            raise self._error
        os.fsync(self.fileno())

    def close(self) -> None:
        self._settled()  # no sync of a closed (or reused) descriptor
        super().close()
