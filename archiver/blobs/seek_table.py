"""The zstd seekable format: independent frames, then a seek table in a skippable frame.

Layout (facebook/zstd contrib/seekable_format, without per-frame checksums; our blobs are
verified by digest anyway):

    frame 0 | frame 1 | ... | skippable frame:
        magic 0x184D2A5E (u32 LE), size of the rest (u32 LE),
        per frame: compressed size (u32 LE), decompressed size (u32 LE),
        footer: number of frames (u32 LE), descriptor (u8, bit 7 = checksums), 0x8F92EAB1 (u32 LE)

A plain ``zstd -d`` decompresses the whole file (it skips the skippable frame). This module
encodes and decodes the table and says how bytes are read by offset; ``zstd_writer`` makes
such files, ``zstd_reader`` reads them in place.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass
from typing import Protocol

import zstandard

from archiver.errors import IntegrityError

SKIPPABLE_MAGIC = 0x184D2A5E
SEEKABLE_MAGIC = 0x8F92EAB1
FOOTER_SIZE = 9
MAX_FRAME = 256 * 1024 * 1024
"""Frames larger than this (decompressed) are neither written nor trusted when read: a
hostile seek table must not make a reader allocate gigabytes."""
MAX_TABLE = 64 * 1024 * 1024
"""A seek table larger than this (8 million frames) is not read into memory."""
ZSTD_FRAME_MAGIC = b"\x28\xb5\x2f\xfd"
_FRAME_HEADER_MAX = 18
"""The longest zstd frame header: magic, descriptor, window, dictionary ID, content size."""


class ReadAt(Protocol):
    """Bytes read by offset: a file, or the parts of a split bundle seen as one."""

    size: int
    fd: int | None
    """The file's descriptor, where there is one file (frames may then be copied in the
    kernel); None otherwise."""

    def pread(self, length: int, offset: int, end: int | None = None) -> bytes: ...


class FileAccess:
    """A regular file, read with pread (no shared seek position)."""

    def __init__(self, fd: int) -> None:
        self.fd: int | None = fd
        self._fd = fd
        self.size = os.fstat(fd).st_size

    def pread(self, length: int, offset: int, end: int | None = None) -> bytes:
        return os.pread(self._fd, length, offset)


def read_at(source: int | ReadAt) -> ReadAt:
    return FileAccess(source) if isinstance(source, int) else source


@dataclass(frozen=True, slots=True)
class Frame:
    compressed_offset: int
    compressed_size: int
    offset: int
    size: int


def read_seek_table(source: int | ReadAt, file_size: int) -> list[Frame] | None:
    """The frames of a seekable zstd file, or None when its seek table is missing or wrong."""
    data = read_at(source)
    if file_size < FOOTER_SIZE + 8:
        return None
    footer = data.pread(FOOTER_SIZE, file_size - FOOTER_SIZE)
    count, descriptor, magic = struct.unpack("<IBI", footer)
    if magic != SEEKABLE_MAGIC or descriptor & 0x7C:
        return None
    entry_size = 12 if descriptor & 0x80 else 8
    table_size = 8 + count * entry_size + FOOTER_SIZE
    if table_size > min(file_size, MAX_TABLE):
        return None
    table = data.pread(table_size, file_size - table_size)
    magic, size = struct.unpack_from("<II", table)
    if magic != SKIPPABLE_MAGIC or size != table_size - 8:
        return None
    frames, compressed, offset = [], 0, 0
    for i in range(count):
        c, d = struct.unpack_from("<II", table, 8 + i * entry_size)
        if d > MAX_FRAME:
            return None
        frames.append(Frame(compressed, c, offset, d))
        compressed += c
        offset += d
    if compressed != file_size - table_size:
        return None
    return frames


def encode_seek_table(entries: list[tuple[int, int]]) -> bytes:
    """The skippable frame listing ``entries`` (compressed size, decompressed size)."""
    body = b"".join(struct.pack("<II", c, d) for c, d in entries)
    body += struct.pack("<IBI", len(entries), 0, SEEKABLE_MAGIC)
    return struct.pack("<II", SKIPPABLE_MAGIC, len(body)) + body


def check_frames(source: int | ReadAt, frames: list[Frame], origin: str) -> None:
    """Each frame the seek table lists starts a zstd frame where the table says, and
    decompresses to the size the table gives it (where its header says; ours always
    do): a table whose sizes lie is found when the file is opened, not part way through a
    read. IntegrityError naming the file and the frame."""
    data = read_at(source)
    for number, frame in enumerate(frames):
        where = f"frame {number} at offset {frame.compressed_offset}"
        head = data.pread(min(frame.compressed_size, _FRAME_HEADER_MAX), frame.compressed_offset)
        if not head.startswith(ZSTD_FRAME_MAGIC):
            raise IntegrityError(
                origin, where, "the seek table's frame sizes do not match the frames in the file"
            )
        try:
            content_size = zstandard.get_frame_parameters(head).content_size
        except zstandard.ZstdError as exc:
            raise IntegrityError(origin, where, f"corrupt zstd frame header ({exc})") from None
        if content_size != zstandard.CONTENTSIZE_UNKNOWN and content_size != frame.size:
            raise IntegrityError(
                origin,
                where,
                f"the seek table says it decompresses to {frame.size} bytes, "
                f"its header says {content_size}",
            )
