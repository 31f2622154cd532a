"""Open what the user named: a directory, a file or ``-``; compressed or not.

A tar must be seekable to be read in place: stdin and compressed files are spooled, once,
to a temporary file on disk (never into memory), decompressed on the way.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

from archiver.blobs import compression, limits, parts, regular_file
from archiver.blobs.atomic import named
from archiver.blobs.dir_tree import DirTree
from archiver.blobs.seek_table import FileAccess
from archiver.blobs.tar_tree import TarTree
from archiver.blobs.tree import Tree
from archiver.blobs.zstd_reader import SeekableReader
from archiver.errors import InputError, NotFound

_SPOOL_RESERVE = 256 * 1024 * 1024
"""Free space we leave on the spool's file system; a decompression bomb stops there."""


def _spool(stream: BinaryIO, origin: str, stack: contextlib.ExitStack) -> BinaryIO:
    spool = stack.enter_context(tempfile.TemporaryFile(prefix="archiver-spool-"))  # noqa: SIM115
    budget = shutil.disk_usage(tempfile.gettempdir()).free - _SPOOL_RESERVE
    written = 0
    while True:
        try:
            chunk = stream.read(limits.COPY_CHUNK)
        except compression.DECOMPRESSION_ERRORS as exc:
            raise InputError(f"{origin}: corrupt or truncated compressed data ({exc})") from None
        if not chunk:
            break
        written += len(chunk)
        if written > budget:
            raise InputError(
                f"{origin}: decompressed input outgrows the free space in "
                f"{tempfile.gettempdir()} (decompression bomb?)"
            )
        _spooled(spool.write, chunk)
    _spooled(spool.flush)
    spool.seek(0)
    return spool


def _spooled(write: Callable[..., object], *data: bytes) -> None:
    """A write to the spool; a full disk names where the spool is."""
    try:
        write(*data)
    except OSError as exc:
        raise named(exc, f"{tempfile.gettempdir()} (spool)") from None


def _peek(stream: BinaryIO, count: int) -> tuple[bytes, BinaryIO]:
    """Read the first bytes of a stream and give back a stream that still starts with them."""
    head = stream.read(count)
    if stream.seekable():
        stream.seek(0)
        return head, stream
    return head, _Prefixed(head, stream)  # type: ignore[return-value]


class _Prefixed:
    def __init__(self, head: bytes, rest: BinaryIO) -> None:
        self._head, self._rest = head, rest

    def read(self, size: int = -1) -> bytes:
        if self._head:
            if size < 0:
                data, self._head = self._head + self._rest.read(), b""
                return data
            data, self._head = self._head[:size], self._head[size:]
            return data
        return self._rest.read(size)

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False


@contextlib.contextmanager
def open_tree(name: str) -> Iterator[Tree]:
    """Open ``name`` (directory, file, or ``-`` for stdin) as a Tree, decompressing if needed."""
    with contextlib.ExitStack() as stack:
        if name == "-":
            origin = "<stdin>"
            raw: BinaryIO = sys.stdin.buffer
        else:
            origin = name
            path = Path(name)
            try:
                mode: int | None = os.stat(name).st_mode
            except OSError:
                mode = None  # missing (or a split bundle's name), or opening it says why
            if mode is not None:
                regular_file.refuse_special(name, mode, directory_ok=True)
            if mode is not None and stat.S_ISDIR(mode):
                yield DirTree(path, origin)
                return
            split = parts.bundle_name(name)
            if split is not None:  # a bundle in parts: read as one file
                joined = parts.PartsFile(split)
                stack.callback(joined.close)
                reader = SeekableReader.open(joined, str(split))
                if reader is None:
                    raise InputError(f"{split}: its parts do not make a bundle (no seek table)")
                yield TarTree(reader, str(split))
                return
            try:
                raw = stack.enter_context(os.fdopen(regular_file.open_regular(name), "rb"))
            except FileNotFoundError:
                raise NotFound(f"{name}: no such file or directory") from None
            except OSError as exc:
                raise InputError(f"{name}: cannot open ({exc.strerror})") from None
        head, stream = _peek(raw, compression.MAGIC_LENGTH)
        kind = compression.sniff(head)
        seekable = (
            SeekableReader.open(raw.fileno(), origin)
            if kind == "zstd" and _is_regular(raw)
            else None
        )
        if seekable is not None:
            yield TarTree(seekable, origin)  # a bundle: read in place, frame by frame
            return
        if kind is not None:
            decompressed = stack.enter_context(
                contextlib.closing(compression.open_decompressed(stream, kind, origin))
            )
            file = _spool(decompressed, origin, stack)
        elif name == "-" or not _is_regular(raw):
            file = _spool(stream, origin, stack)
        else:
            file = raw
        yield TarTree(FileAccess(file.fileno()), origin)


def _is_regular(stream: BinaryIO) -> bool:
    try:
        return stat.S_ISREG(os.fstat(stream.fileno()).st_mode)
    except (OSError, ValueError):
        return False
