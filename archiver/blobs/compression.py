"""Detect and open gzip, zstd, xz and bzip2 by magic bytes, never by file name."""

from __future__ import annotations

import bz2
import gzip
import lzma
from typing import BinaryIO, cast

import zstandard

from archiver.errors import InputError

_MAGIC = (
    (b"\x1f\x8b", "gzip"),
    (b"\x28\xb5\x2f\xfd", "zstd"),
    (b"\xfd7zXZ\x00", "xz"),
    (b"BZh", "bzip2"),
)
# A zstd stream may open with a skippable frame (magic 0x184D2A50..5F, little-endian).
_ZSTD_SKIPPABLE_LOW = (0x50, 0x2A, 0x4D, 0x18)
MAGIC_LENGTH = 6


def sniff(head: bytes) -> str | None:
    """The compression of a stream starting with ``head``, or None for plain data."""
    for magic, name in _MAGIC:
        if head.startswith(magic):
            return name
    if len(head) >= 4 and head[1:4] == bytes(_ZSTD_SKIPPABLE_LOW[1:]) and head[0] & 0xF0 == 0x50:
        return "zstd"
    return None


def open_decompressed(stream: BinaryIO, kind: str, origin: str = "input") -> BinaryIO:
    """A stream of the decompressed bytes of ``stream``."""
    if kind == "gzip":
        return cast(BinaryIO, gzip.GzipFile(fileobj=stream, mode="rb"))
    if kind == "zstd":
        reader = zstandard.ZstdDecompressor().stream_reader(stream, read_across_frames=True)
        return cast(BinaryIO, reader)
    if kind == "xz":
        return cast(BinaryIO, lzma.LZMAFile(stream, mode="rb"))
    if kind == "bzip2":
        return cast(BinaryIO, bz2.BZ2File(stream, mode="rb"))
    raise InputError(f"{origin}: unsupported compression {kind!r}")


DECOMPRESSION_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    EOFError,
    lzma.LZMAError,
    zstandard.ZstdError,
    ValueError,
)
"""What the decompressors raise on corrupt or truncated input."""
