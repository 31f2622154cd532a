"""Files named by the user are regular files: a FIFO, a device or a socket given where a
file is read (an input, a part, a ``--base``) is refused at once, never opened in a way
that blocks (a FIFO's open waits for a writer) or reads forever (``/dev/zero``)."""

from __future__ import annotations

import errno
import fcntl
import os
import stat
from pathlib import Path

from archiver.errors import InputError, NotFound

_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a FIFO"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def kind(mode: int) -> str:
    """What a file of ``mode`` is, in words (``a FIFO``)."""
    for test, words in _KINDS:
        if test(mode):
            return words
    return "a regular file" if stat.S_ISREG(mode) else "not a file"


def refuse_special(path: str | Path, mode: int, directory_ok: bool = False) -> None:
    """InputError unless ``mode`` is a regular file's (or a directory's, when accepted)."""
    if stat.S_ISREG(mode) or (directory_ok and stat.S_ISDIR(mode)):
        return
    wanted = "a regular file or a directory" if directory_ok else "a regular file"
    raise InputError(f"{path}: {kind(mode)}, not {wanted}: refused")


def open_regular(path: str | Path) -> int:
    """A read-only descriptor of the regular file ``path``. A directory is
    IsADirectoryError and a missing file FileNotFoundError (OSErrors, as ``open`` raises
    them); anything else that is not a regular file is an InputError, raised at once."""
    refuse_special(path, _mode(os.stat(path), path))
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)  # a FIFO: no wait
    try:
        refuse_special(path, _mode(os.fstat(fd), path))  # what was opened, not what was seen
        fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) & ~os.O_NONBLOCK)
    except BaseException:
        os.close(fd)
        raise
    return fd


def _mode(st: os.stat_result, path: str | Path) -> int:
    if stat.S_ISDIR(st.st_mode):
        raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), str(path))
    return st.st_mode


def read_text_file(path: str, limit: int, what: str) -> str:
    """The UTF-8 text of the small regular file ``path`` (a list, an htpasswd file), or
    one line naming it and ``what`` it should be: missing (NotFound), unreadable, over
    ``limit`` bytes, not UTF-8 or not a regular file (InputError)."""
    try:
        with os.fdopen(open_regular(path), "rb") as file:
            data = file.read(limit + 1)
    except FileNotFoundError:
        raise NotFound(f"{path}: no such file ({what})") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot read the {what} ({exc.strerror})") from None
    if len(data) > limit:
        raise InputError(f"{path}: over {limit} bytes: not a {what}")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise InputError(f"{path}: not UTF-8 text: not a {what}") from None
