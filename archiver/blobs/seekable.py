"""The zstd seekable format: independent frames, then a seek table in a skippable frame.

Layout (facebook/zstd contrib/seekable_format, without per-frame checksums; our blobs are
verified by digest anyway):

    frame 0 | frame 1 | ... | skippable frame:
        magic 0x184D2A5E (u32 LE), size of the rest (u32 LE),
        per frame: compressed size (u32 LE), decompressed size (u32 LE),
        footer: number of frames (u32 LE), descriptor (u8, bit 7 = checksums), 0x8F92EAB1 (u32 LE)

A plain ``zstd -d`` decompresses the whole file (it skips the skippable frame).
"""

from __future__ import annotations

import bisect
import errno
import os
import stat
import struct
import threading
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import BinaryIO, Protocol

import zstandard

from archiver.errors import IntegrityError

SKIPPABLE_MAGIC = 0x184D2A5E
SEEKABLE_MAGIC = 0x8F92EAB1
FOOTER_SIZE = 9
MAX_FRAME = 256 * 1024 * 1024
"""Frames larger than this (decompressed) are neither written nor trusted when read: a
hostile seek table must not make a reader allocate gigabytes."""
DEFAULT_FRAME_SIZE = 4 * 1024 * 1024
"""Decompressed bytes per frame: small enough to seek finely, large enough to compress well."""
_PARTIAL_LIMIT = 64 * 1024
"""Reads this close to a frame's start decompress only a prefix (tar headers near frame starts)."""
_STREAMS = 4
"""Streams a reader keeps a frame (and frames ahead) for at once: parallel loads read one
bundle several members at a time; more than this are streams given up part way."""


def default_threads() -> int:
    return os.cpu_count() or 1


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


def _read_at(source: int | ReadAt) -> ReadAt:
    return FileAccess(source) if isinstance(source, int) else source


@dataclass(frozen=True)
class ZstdOptions:
    level: int = 3
    threads: int = field(default_factory=default_threads)
    """Frames compressed at once; 0 or 1 compresses inline."""
    frame_size: int = DEFAULT_FRAME_SIZE
    long_window: bool = False


class SeekableWriter:
    """A write-only stream that emits independent zstd frames and, on close, a seek table.

    Frames are independent, so they are compressed in parallel (zstandard releases the GIL)
    while the caller goes on hashing and writing tar; at most two frames per thread are in
    flight, so memory stays bounded whatever the input size.
    """

    def __init__(self, out: BinaryIO, options: ZstdOptions) -> None:
        self._out = out
        self._options = options
        self._params = zstandard.ZstdCompressionParameters.from_level(
            options.level,
            enable_ldm=options.long_window,
            window_log=27 if options.long_window else 0,
            write_content_size=True,
        )
        self._local = threading.local()
        self._pool = ThreadPoolExecutor(options.threads) if options.threads > 1 else None
        self._pending: deque[tuple[Future[bytes], int]] = deque()
        self._chunks: list[bytes] = []
        self._buffered = 0
        self._entries: list[tuple[int, int]] = []
        self.bytes_in = 0
        self.bytes_out = 0

    def _compress(self, chunk: bytes | bytearray) -> bytes:
        compressor = getattr(self._local, "compressor", None)
        if compressor is None:
            compressor = zstandard.ZstdCompressor(compression_params=self._params)
            self._local.compressor = compressor
        return compressor.compress(chunk)

    def write(self, data: bytes, /) -> int:
        """Buffer ``data``; every full ``frame_size`` becomes a frame (one copy per byte)."""
        self.bytes_in += len(data)
        size = self._options.frame_size
        view = memoryview(data)
        while view:
            take = min(len(view), size - self._buffered)
            self._chunks.append(
                bytes(view[:take]) if take < len(view) or take < len(data) else data
            )
            self._buffered += take
            view = view[take:]
            if self._buffered == size:
                self.end_frame()
        return len(data)

    @property
    def frame_size(self) -> int:
        return self._options.frame_size

    def write_frame(self, data: bytearray) -> None:
        """``data`` (at most ``frame_size``) as a frame of its own, taken over without a
        copy: the caller must not change it afterwards."""
        self.end_frame()
        if len(data) > self._options.frame_size:
            raise ValueError("a frame larger than frame_size")
        if data:
            self.bytes_in += len(data)
            self._emit(data)

    def end_frame(self) -> None:
        """Close the current frame so the next byte starts a new one (a seek point)."""
        if self._buffered:
            chunk = self._chunks[0] if len(self._chunks) == 1 else b"".join(self._chunks)
            self._chunks, self._buffered = [], 0
            self._emit(bytes(chunk))

    def _emit(self, chunk: bytes | bytearray) -> None:
        if self._pool is None:
            self._write_frame(self._compress(chunk), len(chunk))
            return
        self._pending.append((self._pool.submit(self._compress, chunk), len(chunk)))
        while len(self._pending) > 2 * self._options.threads:
            self._drain_one()

    def _drain_one(self) -> None:
        future, size = self._pending.popleft()
        self._write_frame(future.result(), size)

    def _write_frame(self, frame: bytes, size: int) -> None:
        self._out.write(frame)
        self._entries.append((len(frame), size))
        self.bytes_out += len(frame)

    def flush_frames(self) -> list[Frame]:
        """Finish every frame (no seek table) and describe them all."""
        self.end_frame()
        while self._pending:
            self._drain_one()
        frames, compressed, offset = [], 0, 0
        for c, d in self._entries:
            frames.append(Frame(compressed, c, offset, d))
            compressed += c
            offset += d
        return frames

    def copy_frames(self, fd: int, frames: list[Frame]) -> None:
        """Append already compressed frames from ``fd`` verbatim (they are independent);
        into a file, in the kernel (``copy_file_range``: no copy through user space, and a
        shared extent where the file system can)."""
        self.end_frame()
        while self._pending:
            self._drain_one()
        out = _file_descriptor(self._out)
        if out is not None:
            self._out.flush()
        for frame in frames:
            if out is None or not _copy_range(fd, out, frame):
                data = os.pread(fd, frame.compressed_size, frame.compressed_offset)
                if len(data) != frame.compressed_size:
                    raise IntegrityError(
                        "spool", f"frame at {frame.compressed_offset}", "truncated"
                    )
                self._out.write(data)
            self._entries.append((frame.compressed_size, frame.size))
            self.bytes_out += frame.compressed_size
            self.bytes_in += frame.size

    def same_frames(self, options: ZstdOptions) -> bool:
        """Frames made with ``options`` can be copied into this stream as they are."""
        return options == self._options

    def discard(self) -> None:
        """Stop the workers without writing anything more (the output is being thrown away)."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
        self._pending.clear()

    def close(self) -> None:
        self.end_frame()
        while self._pending:
            self._drain_one()
        if self._pool is not None:
            self._pool.shutdown()
        body = b"".join(struct.pack("<II", c, d) for c, d in self._entries)
        body += struct.pack("<IBI", len(self._entries), 0, SEEKABLE_MAGIC)
        table = struct.pack("<II", SKIPPABLE_MAGIC, len(body)) + body
        self._out.write(table)
        self.bytes_out += len(table)


def _file_descriptor(out: BinaryIO) -> int | None:
    """The descriptor of a regular file written through ``out``, else None."""
    try:
        fd = out.fileno()
        return fd if stat.S_ISREG(os.fstat(fd).st_mode) else None
    except (OSError, ValueError, AttributeError):
        return None


def _copy_range(source: int, target: int, frame: Frame) -> bool:
    """Copy one frame's bytes at ``target``'s position in the kernel; False if it can't."""
    offset, left = frame.compressed_offset, frame.compressed_size
    try:
        while left:
            copied = os.copy_file_range(source, target, left, offset)
            if copied == 0:
                raise IntegrityError("spool", f"frame at {frame.compressed_offset}", "truncated")
            offset += copied
            left -= copied
    except OSError as exc:
        if left == frame.compressed_size and exc.errno in _NO_COPY_RANGE:
            return False  # nothing copied: the caller falls back to read and write
        raise
    return True


_NO_COPY_RANGE = {errno.EXDEV, errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.EBADF}


@dataclass(frozen=True)
class Frame:
    compressed_offset: int
    compressed_size: int
    offset: int
    size: int


def read_seek_table(source: int | ReadAt, file_size: int) -> list[Frame] | None:
    """The frames of a seekable zstd file, or None when its seek table is missing or wrong."""
    data = _read_at(source)
    if file_size < FOOTER_SIZE + 8:
        return None
    footer = data.pread(FOOTER_SIZE, file_size - FOOTER_SIZE)
    count, descriptor, magic = struct.unpack("<IBI", footer)
    if magic != SEEKABLE_MAGIC or descriptor & 0x7C:
        return None
    entry_size = 12 if descriptor & 0x80 else 8
    table_size = 8 + count * entry_size + FOOTER_SIZE
    if table_size > file_size:
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


class SeekableReader:
    """Random access to the decompressed bytes of a seekable zstd file, frame by frame."""

    def __init__(self, source: int | ReadAt, frames: list[Frame], origin: str) -> None:
        self._data = _read_at(source)
        self._frames = frames
        self._starts = [f.offset for f in frames]
        self._origin = origin
        # per stream (a member read sequentially, known by where it ends; None for the
        # rest): the frame last read, and the frames decoding ahead of it
        self._cached: dict[int | None, tuple[int, bytes]] = {}
        self._ahead: dict[int, tuple[int | None, Future[bytes]]] = {}
        self._pool: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()
        self.size = frames[-1].offset + frames[-1].size if frames else 0
        self.compressed_bytes_read = 0

    @classmethod
    def open(cls, source: int | ReadAt, origin: str) -> SeekableReader | None:
        data = _read_at(source)
        frames = read_seek_table(data, data.size)
        return None if frames is None else cls(data, frames, origin)

    def _locate(self, offset: int) -> int:
        return bisect.bisect_right(self._starts, offset) - 1

    def _compressed(self, frame: Frame) -> bytes:
        data = self._data.pread(frame.compressed_size, frame.compressed_offset)
        if len(data) != frame.compressed_size:
            raise IntegrityError(self._origin, f"frame at {frame.compressed_offset}", "truncated")
        return data

    def _is_cached(self, index: int, end: int | None) -> bool:
        cached = self._cached.get(end)
        return cached is not None and cached[0] == index

    def _frame(self, index: int, end: int | None = None) -> bytes:
        cached = self._cached.get(end)
        if cached is not None and cached[0] == index:
            return cached[1]
        _, future = self._ahead.pop(index, (None, None))
        if future is None:
            self.compressed_bytes_read += self._frames[index].compressed_size
        if end is not None:  # sequential from here: the next frames decode meanwhile
            self._read_ahead(index, end)
        data = future.result() if future is not None else self._decode(index)
        self._cached.pop(end, None)
        self._cached[end] = (index, data)
        if len(self._cached) > _STREAMS:  # streams that stopped early: the oldest goes
            del self._cached[next(iter(self._cached))]
        return data

    def _read_ahead(self, index: int, end: int) -> None:
        """Reading goes on frame after frame up to ``end``: decompress the next frames on
        other cores meanwhile (never past ``end``, so other images' frames stay unread).
        Several streams may read at once (parallel loads): each has frames ahead of its own."""
        for stale in [i for i, (e, _) in self._ahead.items() if e == end and i <= index]:
            self._ahead.pop(stale)[1].cancel()
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max(1, (os.cpu_count() or 1)))
        depth = self._pool._max_workers + 1
        for ahead in range(index + 1, min(index + 1 + depth, len(self._frames))):
            if self._frames[ahead].offset >= end:
                break
            if ahead not in self._ahead:
                self.compressed_bytes_read += self._frames[ahead].compressed_size
                self._ahead[ahead] = (end, self._pool.submit(self._decode, ahead))
        while len(self._ahead) > depth * _STREAMS:  # of streams given up: the oldest go
            self._ahead.pop(next(iter(self._ahead)))[1].cancel()

    def _decode(self, index: int) -> bytes:
        frame = self._frames[index]
        try:
            # stream, never trusting the frame header's content size: at most one byte
            # more than the (capped) seek table says is ever produced
            with zstandard.ZstdDecompressor().stream_reader(self._compressed(frame)) as reader:
                data = reader.read(frame.size + 1)
        except zstandard.ZstdError as exc:
            raise IntegrityError(
                self._origin, f"frame at {frame.compressed_offset}", f"corrupt zstd frame ({exc})"
            ) from None
        if len(data) != frame.size:
            raise IntegrityError(
                self._origin,
                f"frame at {frame.compressed_offset}",
                f"decompressed to {len(data)} bytes, the seek table says {frame.size}",
            )
        return data

    def _prefix(self, index: int, length: int) -> bytes:
        """The first ``length`` bytes of a frame, decompressing no more than needed."""
        frame = self._frames[index]
        with zstandard.ZstdDecompressor().stream_reader(
            _FrameSection(self, frame),  # type: ignore[arg-type]
            read_size=16384,
        ) as reader:
            try:
                return reader.read(length)
            except zstandard.ZstdError as exc:
                raise IntegrityError(
                    self._origin,
                    f"frame at {frame.compressed_offset}",
                    f"corrupt zstd frame ({exc})",
                ) from None

    @property
    def fd(self) -> int | None:
        """The bundle's file descriptor (None for a split bundle)."""
        return self._data.fd

    def frames_between(self, start: int, end: int) -> list[Frame] | None:
        """The frames that hold exactly the bytes [start, end), or None if frame edges differ."""
        if start == end:
            return []
        first = self._locate(start)
        if first < 0 or self._frames[first].offset != start:
            return None
        frames = []
        for frame in self._frames[first:]:
            if frame.offset >= end:
                break
            frames.append(frame)
        last = frames[-1]
        return frames if last.offset + last.size == end else None

    def pread(self, length: int, offset: int, end: int | None = None) -> bytes:
        """``length`` bytes at ``offset``; ``end`` says reading will go on sequentially up
        to there (so the frames before it may be decompressed ahead). Threads may share a
        reader: their reads take turns."""
        with self._lock:
            return self._pread(length, offset, end)

    def _pread(self, length: int, offset: int, end: int | None) -> bytes:
        out = []
        while length > 0 and offset < self.size:
            index = self._locate(offset)
            frame = self._frames[index]
            within = offset - frame.offset
            take = min(length, frame.size - within)
            cached = self._is_cached(index, end)
            if not cached and within + take <= _PARTIAL_LIMIT and take < frame.size:
                data = self._prefix(index, within + take)[within:]
            else:
                data = self._frame(index, end)[within : within + take]
            out.append(data)
            offset += take
            length -= take
        if end is not None and offset >= end:  # the stream is read: its frame is let go
            self._cached.pop(end, None)
        return b"".join(out)


class _FrameSection:
    """The compressed bytes of one frame, read lazily (for partial decompression)."""

    def __init__(self, reader: SeekableReader, frame: Frame) -> None:
        self._reader, self._frame, self._pos = reader, frame, 0

    def read(self, size: int = -1) -> bytes:
        left = self._frame.compressed_size - self._pos
        size = left if size < 0 else min(size, left)
        if size <= 0:
            return b""
        data = self._reader._data.pread(size, self._frame.compressed_offset + self._pos)
        self._reader.compressed_bytes_read += len(data)
        self._pos += len(data)
        return data
