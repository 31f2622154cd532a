"""A bundle's blob read straight from its zstd frames, each frame decoded once for all the
answers reading it at about the same time (twenty clients pulling one base layer), the
next frames decoded ahead on other cores, outside any lock.

The cache is bounded in bytes (``BUDGET``): frames nobody has asked for lately go first,
so memory stays flat in the number of clients. A frame that does not decode, or decodes to
another size than the seek table says, is an IntegrityError; the bytes themselves are
proved by the digest check of every answer (streaming.py), never by this cache.
"""

from __future__ import annotations

import itertools
import os
import threading
from collections import OrderedDict
from concurrent.futures import Future, ThreadPoolExecutor

from archiver.blobs.seek_table import Frame
from archiver.blobs.zstd_reader import checked_compressed, decode_frame
from archiver.places.base import Precompressed

BUDGET = 32 * 1024 * 1024
"""Decoded bytes kept for readers to come (8 frames of 4 MiB)."""
AHEAD = 2
"""Frames decoded ahead of a reader, on the pool, while it hashes and sends."""


Decoded = tuple[int, bytes]
"""A frame's bytes and the serial number of this decoding of it (never reused): readers
that got the same serial hold the very same bytes."""
_serials = itertools.count(1)


class FrameCache:
    """Decoded frames by (file, compressed offset), shared by every reader."""

    def __init__(self, budget: int = BUDGET) -> None:
        self._budget = budget
        self._lock = threading.Lock()
        self._frames: OrderedDict[tuple[int, int], Future[Decoded]] = OrderedDict()
        self._sizes: dict[tuple[int, int], int] = {}
        self._held = 0
        self._pool: ThreadPoolExecutor | None = None

    def get(self, fd: int, frame: Frame, origin: str) -> Decoded:
        """The frame's bytes: decoded here unless another reader has it or is decoding it."""
        future, mine = self._claim(fd, frame)
        if mine:
            self._decode_into(future, fd, frame, origin)
        return future.result()

    def ahead(self, fd: int, frame: Frame, origin: str) -> None:
        """Decode ``frame`` on the pool, for a reader that will want it soon."""
        future, mine = self._claim(fd, frame)
        if mine:
            with self._lock:
                if self._pool is None:
                    self._pool = ThreadPoolExecutor(
                        max(1, os.cpu_count() or 1), thread_name_prefix="frames"
                    )
                self._pool.submit(self._decode_into, future, fd, frame, origin)

    def _claim(self, fd: int, frame: Frame) -> tuple[Future[Decoded], bool]:
        key = (fd, frame.compressed_offset)
        with self._lock:
            future = self._frames.get(key)
            if future is not None:
                self._frames.move_to_end(key)
                return future, False
            future = Future()
            self._frames[key] = future
            self._sizes[key] = frame.size
            self._held += frame.size
            self._evict()
            return future, True

    def _evict(self) -> None:
        """Oldest first, while over budget (a frame being decoded stays; its readers
        hold it anyway)."""
        for key in list(self._frames):
            if self._held <= self._budget:
                return
            if self._frames[key].done():
                del self._frames[key]
                self._held -= self._sizes.pop(key)

    def _decode_into(self, future: Future[Decoded], fd: int, frame: Frame, origin: str) -> None:
        try:
            future.set_result((next(_serials), decode(fd, frame, origin)))
        except BaseException as exc:
            key = (fd, frame.compressed_offset)
            with self._lock:
                if self._frames.get(key) is future:  # the next reader tries again
                    del self._frames[key]
                    self._held -= self._sizes.pop(key)
            future.set_exception(exc)


def decode(fd: int, frame: Frame, origin: str) -> bytes:
    """One frame, read from ``fd`` and decoded (checked as every frame is)."""
    compressed = os.pread(fd, frame.compressed_size, frame.compressed_offset)
    return decode_frame(checked_compressed(compressed, frame, origin), frame, origin)


class FramesReader:
    """A blob's bytes from its frames, read in order (seek before the first read for a
    range): whole frames as they are, without a copy, when the reads fall on frame edges."""

    def __init__(self, blob: Precompressed, cache: FrameCache, origin: str) -> None:
        self._fd = blob.fd
        self._frames = blob.frames
        self._cache = cache
        self._origin = origin
        self._size = blob.size
        self._pos = 0
        self._index = 0
        self.serial: int | None = None
        """The serial of the frame the last read returned whole (None: a part of one)."""

    def seek(self, pos: int) -> int:
        self._pos = max(0, min(self._size, pos))
        base = self._frames[0].offset if self._frames else 0
        self._index = 0
        while (
            self._index < len(self._frames) - 1
            and self._frames[self._index + 1].offset - base <= self._pos
        ):
            self._index += 1
        return self._pos

    def read(self, size: int = -1) -> bytes:
        if self._index >= len(self._frames) or self._pos >= self._size:
            return b""
        frame = self._frames[self._index]
        within = self._pos - (frame.offset - self._frames[0].offset)
        for ahead in self._frames[self._index + 1 : self._index + 1 + AHEAD]:
            self._cache.ahead(self._fd, ahead, self._origin)
        serial, data = self._cache.get(self._fd, frame, self._origin)
        left = len(data) - within
        take = left if size is None or size < 0 else min(size, left)
        self._pos += take
        if within + take >= len(data):
            self._index += 1
        if within == 0 and take == len(data):
            self.serial = serial
            return data
        self.serial = None
        return data[within : within + take]

    def close(self) -> None:
        pass

    def __enter__(self) -> FramesReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
