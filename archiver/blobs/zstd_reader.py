"""Reading a zstd seekable file (``seek_table``) in place: random access to its
decompressed bytes, frame by frame, with the frames of a sequential read decoded ahead.

A reader told what will be read next (:meth:`SeekableReader.prefetch`: the members an
unpack or a load reads, in order) decodes those frames on a small pool of decompressors,
a few ahead of the reader, across members: a bundle of many small layers unpacks at the
speed of its frames, not of one frame at a time."""

from __future__ import annotations

import bisect
import os
import threading
from collections import OrderedDict, deque
from concurrent.futures import Future, ThreadPoolExecutor
from typing import overload

import zstandard

from archiver.blobs.seek_table import Frame, ReadAt, check_frames, read_at, read_seek_table
from archiver.errors import IntegrityError

_PARTIAL_LIMIT = 64 * 1024
"""Reads this close to a frame's start decompress only a prefix (tar headers near frame starts)."""
_STREAMS = 4
"""Streams a reader keeps a frame (and frames ahead) for at once: parallel loads read one
bundle several members at a time; more than this are streams given up part way."""
_PLAN_BYTES = 16 * 1024 * 1024
"""Bytes a plan decodes ahead of the reader (at least cores + 1 frames, whatever their size;
small frames, many of them: small layers one after the other)."""
_PLAN_FRAMES = 64
_RECENT_BYTES = 16 * 1024 * 1024
"""Decoded frames kept by index whatever stream read them: the head's frames hold many
small documents (a bundle of 2,000 images reads thousands from a few frames), each frame
is decoded once, not once per document."""


class SeekableReader:
    """Random access to the decompressed bytes of a seekable zstd file, frame by frame."""

    def __init__(self, source: int | ReadAt, frames: list[Frame], origin: str) -> None:
        self._data = read_at(source)
        self._frames = frames
        self._starts = [f.offset for f in frames]
        self._origin = origin
        # per stream (a member read sequentially, known by where it ends; None for the
        # rest): the frame last read, and the frames decoding ahead of it
        self._cached: dict[int | None, tuple[int, bytes]] = {}
        self._ahead: dict[int, tuple[int | None, Future[bytes]]] = {}
        self._pool: ThreadPoolExecutor | None = None
        self._recent: OrderedDict[int, bytes] = OrderedDict()
        self._recent_size = 0
        self._plan: deque[int] = deque()
        """Frames that will be read, in order, not yet given to the pool."""
        self._planned: OrderedDict[int, Future[bytes]] = OrderedDict()
        """Frames of the plan being decoded, in the plan's order."""
        self._planned_bytes = 0
        self._lock = threading.Lock()
        self.size = frames[-1].offset + frames[-1].size if frames else 0
        self.compressed_bytes_read = 0

    @classmethod
    def open(cls, source: int | ReadAt, origin: str) -> SeekableReader | None:
        """A reader of a seekable zstd file; None when it has no seek table (it is then read
        in order); IntegrityError when the table does not match its frames."""
        data = read_at(source)
        frames = read_seek_table(data, data.size)
        if frames is None:
            return None
        check_frames(data, frames, origin)
        return cls(data, frames, origin)

    def _locate(self, offset: int) -> int:
        return bisect.bisect_right(self._starts, offset) - 1

    def _compressed(self, frame: Frame) -> bytes:
        return checked_compressed(
            self._data.pread(frame.compressed_size, frame.compressed_offset), frame, self._origin
        )

    def _is_cached(self, index: int, end: int | None) -> bool:
        cached = self._cached.get(end)
        return cached is not None and cached[0] == index

    def _remember(self, index: int, data: bytes) -> None:
        """Keep a decoded frame for the next reader of it (the least recent go first)."""
        if index in self._recent or len(data) > _RECENT_BYTES // 4:
            return
        self._recent[index] = data
        self._recent_size += len(data)
        while self._recent_size > _RECENT_BYTES:
            _, dropped = self._recent.popitem(last=False)
            self._recent_size -= len(dropped)

    def _frame(self, index: int, end: int | None = None) -> bytes:
        cached = self._cached.get(end)
        if cached is not None and cached[0] == index:
            return cached[1]
        recent = self._recent.get(index)
        if recent is not None:
            self._recent.move_to_end(index)
            return recent
        if index in self._planned:
            data = self._planned_frame(index)
        else:
            _, future = self._ahead.pop(index, (None, None))
            if future is None:
                self.compressed_bytes_read += self._frames[index].compressed_size
            if end is not None:  # sequential from here: the next frames decode meanwhile
                self._read_ahead(index, end)
            data = future.result() if future is not None else self._decode(index)
            if end is None or future is None:
                self._remember(index, data)  # not a layer's frames decoded ahead, read once
        self._cached.pop(end, None)
        self._cached[end] = (index, data)
        if len(self._cached) > _STREAMS:  # streams that stopped early: the oldest goes
            del self._cached[next(iter(self._cached))]
        return data

    def prefetch(self, ranges: list[tuple[int, int]]) -> None:
        """Reads will take these byte ranges [start, end), in this order: their frames are
        decoded ahead, a few at once (replaces any earlier plan)."""
        frames: dict[int, None] = {}
        for start, end in ranges:
            index = max(0, self._locate(start))
            while index < len(self._frames) and self._frames[index].offset < end:
                frames[index] = None
                index += 1
        with self._lock:
            for future in self._planned.values():
                future.cancel()
            self._planned.clear()
            self._planned_bytes = 0
            self._plan = deque(frames)
            self._schedule()

    def _depth(self) -> int:
        return max(1, os.cpu_count() or 1) + 1

    def _schedule(self) -> None:
        if not self._plan:
            return
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max(1, (os.cpu_count() or 1)))
        while self._plan and len(self._planned) < _PLAN_FRAMES:
            if self._planned_bytes >= _PLAN_BYTES and len(self._planned) >= self._depth():
                break  # enough decoded ahead: memory stays bounded
            index = self._plan.popleft()
            if index in self._planned:
                continue
            self.compressed_bytes_read += self._frames[index].compressed_size
            self._planned_bytes += self._frames[index].size
            self._planned[index] = self._pool.submit(self._decode, index)

    def _planned_frame(self, index: int) -> bytes:
        """A frame of the plan: the ones planned before it were not wanted after all."""
        while True:
            first, future = self._planned.popitem(last=False)
            self._planned_bytes -= self._frames[first].size
            if first == index:
                break
            future.cancel()
        self._schedule()
        return future.result()

    def _read_ahead(self, index: int, end: int) -> None:
        """Reading goes on frame after frame up to ``end``: decompress the next frames on
        other cores meanwhile (never past ``end``, so other images' frames stay unread).
        Several streams may read at once (parallel loads): each has frames ahead of its own."""
        if self._plan or self._planned:
            return  # a plan decodes ahead (what it does not cover is read as it comes)
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
        return decode_frame(self._compressed(frame), frame, self._origin)

    def decode_into(self, frame: Frame, into: bytearray) -> memoryview:
        """One of this file's frames decoded into ``into`` (at least a byte longer than the
        frame), on the caller's thread: several threads may decode at once, nothing is
        cached."""
        self.compressed_bytes_read += frame.compressed_size  # a statistic: races are harmless
        return decode_frame(self._compressed(frame), frame, self._origin, into)

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

    @property
    def frames(self) -> list[Frame]:
        return self._frames

    def frame_before(self, frame: Frame) -> Frame | None:
        """The frame that ends where ``frame`` starts (a layer's header is in it), if any."""
        index = self._locate(frame.offset)
        if index < 1 or self._frames[index] != frame:
            return None
        return self._frames[index - 1]

    def frames_between(self, start: int, end: int) -> list[Frame] | None:
        """The frames that hold exactly the bytes [start, end), or None if frame edges differ."""
        if start == end:
            return []
        first = self._locate(start)
        if first < 0 or self._frames[first].offset != start:
            return None
        frames = []
        for index in range(first, len(self._frames)):  # not a slice: it copies all the rest
            frame = self._frames[index]
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
            cached = self._is_cached(index, end) or index in self._recent or index in self._planned
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


def checked_compressed(data: bytes, frame: Frame, origin: str) -> bytes:
    """``data``, read at ``frame``'s place in the file, unless the file ended first."""
    if len(data) != frame.compressed_size:
        raise IntegrityError(origin, f"frame at {frame.compressed_offset}", "truncated")
    return data


_local = threading.local()


def _decompressor() -> zstandard.ZstdDecompressor:
    """This thread's decompressor (one is not to be shared between threads)."""
    found: zstandard.ZstdDecompressor | None = getattr(_local, "decompressor", None)
    if found is None:
        found = _local.decompressor = zstandard.ZstdDecompressor()
    return found


@overload
def decode_frame(compressed: bytes, frame: Frame, origin: str) -> bytes: ...


@overload
def decode_frame(compressed: bytes, frame: Frame, origin: str, into: bytearray) -> memoryview: ...


def decode_frame(
    compressed: bytes, frame: Frame, origin: str, into: bytearray | None = None
) -> bytes | memoryview:
    """One frame, decoded, never producing more than the (capped) seek table says. Into new
    bytes: in one call into exactly ``frame.size`` bytes when the frame's header gives that
    size (ours do; zstd then fails unless the frame is exactly that, nothing after it), else
    streamed, at most one byte more than that. Into ``into`` (a buffer used again and again:
    no fresh memory to fault in for every frame), at most one byte more than the frame."""
    where = f"frame at {frame.compressed_offset}"
    decompressor = _decompressor()
    try:
        if into is not None:
            view = memoryview(into)[: frame.size + 1]
            if len(view) <= frame.size:
                raise ValueError("the buffer must be longer than the frame")
            size = 0
            with decompressor.stream_reader(compressed) as reader:
                while size < len(view) and (got := reader.readinto(view[size:])):
                    size += got
            data: bytes | memoryview = view[:size]
        elif frame.size and zstandard.get_frame_parameters(compressed).content_size == frame.size:
            return decompressor.decompress(compressed, allow_extra_data=False)
        else:
            with decompressor.stream_reader(compressed) as reader:
                data = reader.read(frame.size + 1)
    except zstandard.ZstdError as exc:
        raise IntegrityError(origin, where, f"corrupt zstd frame ({exc})") from None
    if len(data) != frame.size:
        raise IntegrityError(
            origin, where, f"decompressed to {len(data)} bytes, the seek table says {frame.size}"
        )
    return data
