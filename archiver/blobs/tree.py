"""What every file tree answers (a tar or a directory), and the name checks they share.

Both trees answer the same questions: which regular files exist, how big they are, and a
stream of one of them. Names are normalised (``./a//b`` -> ``a/b``); absolute names, ``..``
components, duplicate members and links that leave the tree are refused as InputError.
"""

from __future__ import annotations

from typing import BinaryIO, Protocol

from archiver.errors import InputError

MAX_HEADER_RECORD = 1024 * 1024
"""A pax record or GNU long name larger than this is refused before it is read: its header
declares its size, and a hostile one must not make us allocate a terabyte."""


def check_header_read(size: int | None, origin: str, offset: int) -> int:
    """``size``, when tarfile may read that much of a header at ``offset`` (pax records and
    GNU long names are read whole), else InputError."""
    if size is None or size < 0 or size > MAX_HEADER_RECORD:
        raise InputError(
            f"{origin}: member at offset {offset}: a tar header of {size} bytes: refused "
            f"(pax records and long names are read up to {MAX_HEADER_RECORD} bytes)"
        )
    return size


def normalise_name(name: str, origin: str) -> str:
    """A member name as a clean relative POSIX path; refuse absolute names and ``..``."""
    if name.startswith("/") or (len(name) > 1 and name[1] == ":"):
        raise InputError(f"{origin}: unsafe member name {name!r}: absolute path")
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise InputError(f"{origin}: unsafe member name {name!r}: '..' component")
    return "/".join(parts)


class Tree(Protocol):
    """A read-only file tree: a tar archive or a directory."""

    origin: str

    def exists(self, name: str) -> bool: ...

    def size(self, name: str) -> int: ...

    def open(self, name: str) -> BinaryIO: ...

    def files(self) -> list[str]: ...


class RandomAccess(Protocol):
    """Bytes that can be read at any offset: a file, or a seekable zstd bundle."""

    size: int

    def pread(self, length: int, offset: int, end: int | None = None) -> bytes:
        """``length`` bytes at ``offset``; ``end``: sequential reading continues up to it."""
        ...
