"""An exclusive advisory lock on an archive being rewritten, so two writers of one archive
take turns instead of one silently undoing the other's change.

The lock is ``flock`` on the archive itself (a file, or an OCI layout directory), taken
before the archive is read. A rewrite replaces a file by renaming a new one over it, so a
writer that waited checks, once it holds the lock, that the name still leads to the file
it locked, and locks the new file if not: it then reads what the other writer wrote.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Callable, Iterator

from archiver.errors import InputError


@contextlib.contextmanager
def locked(path: str, on_wait: Callable[[str], None] | None = None) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` for the block; ``on_wait`` is told once when
    another process holds it (the lock is then waited for)."""
    told = False
    while True:
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
        except OSError as exc:
            raise InputError(f"{path}: cannot be opened to lock it ({exc.strerror})") from None
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                if on_wait is not None and not told:
                    on_wait(f"{path}: another archiver is changing it; waiting for it to finish")
                    told = True
                fcntl.flock(fd, fcntl.LOCK_EX)
            if _same_file(fd, path):
                break
        except BaseException:
            os.close(fd)
            raise
        os.close(fd)  # replaced while we waited: lock what the name leads to now
    try:
        yield
    finally:
        os.close(fd)


def _same_file(fd: int, path: str) -> bool:
    try:
        now = os.stat(path, follow_symlinks=False)
    except FileNotFoundError:
        return False
    held = os.fstat(fd)
    return (now.st_dev, now.st_ino) == (held.st_dev, held.st_ino)
