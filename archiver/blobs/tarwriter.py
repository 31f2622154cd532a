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
        info = tarfile.TarInfo(name)
        info.size = size
        info.type = kind
        info.mode = mode
        info.mtime = 0
        info.uid = info.gid = 0
        info.uname = info.gname = ""
        self._emit(info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape"))
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
