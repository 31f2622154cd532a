"""A deterministic tar writer that streams member bodies (never buffers a layer)."""

from __future__ import annotations

import tarfile
from collections.abc import Callable
from typing import BinaryIO, Protocol

from archiver.blobs import limits
from archiver.blobs.tar_members import Entry
from archiver.errors import IntegrityError

_BLOCK = tarfile.BLOCKSIZE
_RECORD = tarfile.RECORDSIZE


_USTAR_TAIL = tarfile.POSIX_MAGIC + bytes(64 + 16 + 155)  # owner names, device, prefix
_FIELDS = b"%07o\0%07o\0%07o\0%011o\0%011o\0"  # mode, uid, gid, size, mtime
_AFTER_KIND = bytes(100) + _USTAR_TAIL + bytes(12)  # link name, the tail, to 512 bytes
_FIXED_SUM = 8 * ord(" ") + sum(_AFTER_KIND)
_MAX_SIZE = 8**11
"""Sizes an 11-digit octal field holds (8 GiB); a larger one takes a pax record."""


def ustar_header(name: str, size: int, kind: bytes, mode: int) -> bytes | None:
    """The header ``tarfile`` writes in the pax format for a regular file that needs no
    pax record (an ASCII name of at most 100 bytes, a size under 8 GiB; owner root, no
    owner names, mtime 0), made directly: a bundle has a thousand members, and ``tarfile``
    takes four times as long a header. None for any other member."""
    if kind != tarfile.REGTYPE or not is_plain(name, size):
        return None
    encoded = name.encode()
    fields = _FIELDS % (mode & 0o7777, 0, 0, size, 0)
    # the checksum sums every byte, its own field as spaces: the rest of the block is fixed
    checksum = sum(encoded) + sum(fields) + kind[0] + _FIXED_SUM
    return encoded.ljust(100, b"\0") + fields + b"%06o\0 " % checksum + kind + _AFTER_KIND


def is_plain(name: str, size: int) -> bool:
    """Whether a regular file's header is a lone ustar block (no pax record before it)."""
    return len(name) <= 100 and name.isascii() and 0 <= size < _MAX_SIZE


def header(name: str, size: int, kind: bytes, mode: int) -> bytes:
    """The header blocks of a member, as the writer writes them."""
    block = ustar_header(name, size, kind, mode)
    if block is not None:
        return block
    info = tarfile.TarInfo(name)  # a long or non-ASCII name, a huge size: a pax header first
    info.size = size
    info.type = kind
    info.mode = mode
    info.mtime = 0
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")


class Writable(Protocol):
    def write(self, data: bytes, /) -> int: ...


class TarWriter:
    """Write members with fixed metadata (mtime 0, root, 0644/0755), so output is reproducible."""

    def __init__(self, out: Writable) -> None:
        self._out = out
        self._written = 0
        self.entries: list[Entry] = []
        """Every member written so far: where its bytes start (a bundle's member index)."""

    def _header(self, name: str, size: int, kind: bytes, mode: int) -> None:
        self._emit(header(name, size, kind, mode))
        kind_name = "dir" if kind == tarfile.DIRTYPE else "file"
        self.entries.append(Entry(name.rstrip("/"), kind_name, self._written, size))

    def _emit(self, data: bytes) -> None:
        self._out.write(data)
        self._written += len(data)

    def _pad(self, size: int) -> None:
        remainder = size % _BLOCK
        if remainder:
            self._emit(b"\0" * (_BLOCK - remainder))

    def add_dir(self, name: str) -> None:
        self._header(name.rstrip("/") + "/", 0, tarfile.DIRTYPE, 0o755)

    def add_bytes(self, name: str, data: bytes) -> None:
        self._header(name, len(data), tarfile.REGTYPE, 0o644)
        self._emit(data)
        self._pad(len(data))

    def add_stream(
        self,
        name: str,
        size: int,
        stream: BinaryIO,
        boundary: Callable[[], None] | None = None,
        chunk: int = limits.COPY_CHUNK,
    ) -> None:
        """Copy ``stream`` (read to its end, so a verifying stream checks itself) as ``name``,
        ``chunk`` bytes per read; ``boundary`` is called right before and right after the
        body (a bundle ends a zstd frame there, so the body has frames of its own)."""
        self._header(name, size, tarfile.REGTYPE, 0o644)
        if boundary is not None:
            boundary()
        copied = 0
        while data := stream.read(chunk):
            copied += len(data)
            if copied > size:
                raise IntegrityError(name, name, f"more than the {size} bytes declared")
            self._emit(data)
        if copied != size:
            raise IntegrityError(name, name, f"truncated: got {copied} of {size} bytes")
        if boundary is not None:
            boundary()
        self._pad(size)

    def add_written_elsewhere(self, name: str, size: int, write: Callable[[], None]) -> None:
        """A member whose ``size`` bytes ``write`` puts into the output itself (as
        already compressed frames): header, those bytes, padding."""
        self._header(name, size, tarfile.REGTYPE, 0o644)
        write()
        self._written += size
        self._pad(size)

    def close(self) -> None:
        """Two zero blocks, then pad to a whole record, as tar does."""
        self._emit(b"\0" * (2 * _BLOCK))
        remainder = self._written % _RECORD
        if remainder:
            self._emit(b"\0" * (_RECORD - remainder))
