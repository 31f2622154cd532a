"""What every file tree answers (a tar or a directory), and the name checks they share.

Both trees answer the same questions: which regular files exist, how big they are, and a
stream of one of them. Names are normalised (``./a//b`` -> ``a/b``); absolute names, ``..``
components, duplicate members and links that leave the tree are refused as InputError.
"""

from __future__ import annotations

from typing import BinaryIO, Protocol

from archiver.errors import InputError


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
