"""Writing the zstd seekable format (``seek_table``): independent frames compressed in
parallel, the seek table at the end; frames already made are copied in as they are."""

from __future__ import annotations

import errno
import os
import stat
import threading
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import BinaryIO

import zstandard

from archiver.blobs.clone_align import CLONED_FROM, block_size, clones, empty_frame, padding, pieces
from archiver.blobs.seek_table import Frame, encode_seek_table
from archiver.blobs.zstd_reader import decode_frame
from archiver.errors import IntegrityError

DEFAULT_FRAME_SIZE = 4 * 1024 * 1024
"""Decompressed bytes per frame: small enough to seek finely, large enough to compress well."""
_COPY_AT = 16 * 1024 * 1024
"""Frames waiting to be copied are copied once this many bytes wait (a file being written
syncs them to disk on its own thread, see ``atomic.SyncingFile``, as the writing goes on)."""
_READ_CHUNK = 4 * 1024 * 1024
"""Bytes per read where frames cannot be copied in the kernel."""
INLINE_BELOW = 64 * 1024
"""Frames smaller than this (tar headers and padding, documents) are compressed on the
caller's thread: handing one to a worker and waiting for it costs more than compressing it
(a bundle of 600 layers made about 1,800 such hand-offs)."""


def default_threads() -> int:
    return os.cpu_count() or 1


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
        self._limit = options.frame_size
        """Bytes of the frame being written at most (more for the last, see last_frame)."""
        self._copies: list[tuple[int, int, int, int]] = []
        """Frames of other files to copy here (descriptor, offset, length, the entry of
        the first), adjacent ones as one run: copied when something else is written next."""
        self._cloning: dict[int, int] = {}
        """Per device copied from: the block size its runs are aligned to (0: none)."""
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
        size = self._limit
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

    def last_frame(self, most: int) -> None:
        """What is written from here on, up to ``most`` bytes, is one frame, larger than
        frame_size if need be (a bundle's member index with the end of its tar: a reader
        decodes that one frame; a bundle of 10,000 images has an index of 5 MB)."""
        self.end_frame()
        self._limit = max(most, self._options.frame_size)

    def end_frame(self) -> None:
        """Close the current frame so the next byte starts a new one (a seek point)."""
        if self._buffered:
            chunk = self._chunks[0] if len(self._chunks) == 1 else b"".join(self._chunks)
            self._chunks, self._buffered = [], 0
            self._emit(bytes(chunk))

    def _emit(self, chunk: bytes | bytearray) -> None:
        if self._pool is None or (len(chunk) < INLINE_BELOW and not self._pending):
            self._write_frame(self._compress(chunk), len(chunk))
            return
        if len(chunk) < INLINE_BELOW:  # in order behind the frames in flight
            done: Future[bytes] = Future()
            done.set_result(self._compress(chunk))
            self._pending.append((done, len(chunk)))
            return
        self._pending.append((self._pool.submit(self._compress, chunk), len(chunk)))
        while len(self._pending) > 2 * self._options.threads:
            self._drain_one()

    def _drain_one(self) -> None:
        future, size = self._pending.popleft()
        self._write_frame(future.result(), size)

    def _write_frame(self, frame: bytes, size: int) -> None:
        self._copy_runs()
        self._out.write(frame)
        self._entries.append((len(frame), size))
        self.bytes_out += len(frame)

    def flush_frames(self) -> list[Frame]:
        """Finish every frame (no seek table) and describe them all."""
        self.end_frame()
        while self._pending:
            self._drain_one()
        self._copy_runs()
        frames, compressed, offset = [], 0, 0
        for c, d in self._entries:
            frames.append(Frame(compressed, c, offset, d))
            compressed += c
            offset += d
        return frames

    def copy_frames(self, fd: int, frames: list[Frame], lead: Frame | None = None) -> None:
        """Append already compressed frames from ``fd`` verbatim (they are independent);
        ``lead``: the frame before them there, copied too when it holds exactly the bytes
        written since the last frame (a bundle rewritten: a layer's tar header, and the
        padding before it). Adjacent frames are copied as one run, in the kernel where the
        output is a file (``copy_file_range``: no copy through user space, a shared extent
        where the file system can), when anything else is written next."""
        reuse = lead is not None and self._holds_buffered(fd, lead)
        if reuse:
            self._chunks, self._buffered = [], 0  # written as they were: the lead frame
        else:
            self.end_frame()
        while self._pending:
            self._drain_one()
        if reuse and lead is not None:
            self._copy(fd, lead)
            self.bytes_in -= lead.size  # counted as written
        for frame in frames:
            self._copy(fd, frame)
        if sum(run[2] for run in self._copies) >= _COPY_AT:
            self._copy_runs()  # the disk syncs what is copied while the rest is planned

    def _holds_buffered(self, fd: int, frame: Frame) -> bool:
        """``frame`` of ``fd`` decodes to the bytes buffered for the next frame."""
        if frame.size != self._buffered or not 0 < frame.size <= INLINE_BELOW:
            return False
        try:
            compressed = os.pread(fd, frame.compressed_size, frame.compressed_offset)
            data = decode_frame(compressed, frame, "")
        except IntegrityError:
            return False  # compressed anew
        return data == b"".join(self._chunks)

    def _copy(self, fd: int, frame: Frame) -> None:
        runs = self._copies
        if runs and runs[-1][0] == fd and runs[-1][1] + runs[-1][2] == frame.compressed_offset:
            fd, start, length, first = runs[-1]
            runs[-1] = (fd, start, length + frame.compressed_size, first)
        else:
            runs.append((fd, frame.compressed_offset, frame.compressed_size, len(self._entries)))
        self._entries.append((frame.compressed_size, frame.size))
        self.bytes_out += frame.compressed_size
        self.bytes_in += frame.size

    def _copy_runs(self) -> None:
        """Copy the runs of frames waiting to be copied, in order."""
        if not self._copies:
            return
        runs, self._copies = self._copies, []
        out = _file_descriptor(self._out)
        if out is not None:
            self._out.flush()
        padded = 0  # empty frames put before runs of this call, so far
        for fd, start, length, first in runs:
            block = self._block(fd, out) if out is not None and length >= CLONED_FROM else 0
            if length < 64 * block:  # an empty frame would cost too much of it
                block = 0
            if out is not None and block and self._pad(out, start, block, first + padded):
                padded += 1
            if out is None or not _copy_range(fd, out, start, length, block):
                for at in range(start, start + length, _READ_CHUNK):
                    want = min(_READ_CHUNK, start + length - at)
                    data = os.pread(fd, want, at)
                    if len(data) != want:
                        raise IntegrityError("spool", f"frame at {at}", "truncated")
                    self._out.write(data)
            elif (copied := getattr(self._out, "copied", None)) is not None:
                copied(length)  # a SyncingFile: the bytes count towards its next sync

    def _pad(self, out: int, start: int, block: int, entry: int) -> bool:
        """An empty frame (the ``entry``-th) that puts the run about to be copied at
        ``start``'s place within a block (see clone_align); False: it is there already."""
        pad = padding(os.lseek(out, 0, os.SEEK_CUR), start, block)
        if not pad:
            return False
        self._out.write(empty_frame(pad))
        self._out.flush()
        self._entries.insert(entry, (pad, 0))
        self.bytes_out += pad
        return True

    def _block(self, source: int, target: int) -> int:
        """The block size runs from ``source`` are aligned to in ``target``, 0: none."""
        device = os.fstat(source).st_dev
        found = self._cloning.get(device)
        if found is None:
            found = self._cloning[device] = block_size(target) if clones(source, target) else 0
        return found

    def same_frames(self, options: ZstdOptions) -> bool:
        """Frames made with ``options`` can be copied into this stream as they are."""
        return options == self._options

    def discard(self) -> None:
        """Stop the workers without writing anything more (the output is being thrown away)."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
        self._pending.clear()
        self._copies.clear()

    def close(self) -> None:
        self.end_frame()
        while self._pending:
            self._drain_one()
        self._copy_runs()
        if self._pool is not None:
            self._pool.shutdown()
        table = encode_seek_table(self._entries)
        self._out.write(table)
        self.bytes_out += len(table)


def _file_descriptor(out: BinaryIO) -> int | None:
    """The descriptor of a regular file written through ``out``, else None."""
    try:
        fd = out.fileno()
        return fd if stat.S_ISREG(os.fstat(fd).st_mode) else None
    except (OSError, ValueError, AttributeError):
        return None


def _copy_range(source: int, target: int, start: int, length: int, block: int = 0) -> bool:
    """Copy ``length`` bytes at ``start`` to ``target``'s position in the kernel, the whole
    ``block``s apart (shared by a file system that clones); False if it can't."""
    left = length
    try:
        for offset, size in pieces(start, length, block) if block else [(start, length)]:
            while size:
                copied = os.copy_file_range(source, target, size, offset)
                if copied == 0:
                    raise IntegrityError("spool", f"frame at {start}", "truncated")
                offset += copied
                size -= copied
                left -= copied
    except OSError as exc:
        if left == length and exc.errno in _NO_COPY_RANGE:
            return False  # nothing copied: the caller falls back to read and write
        raise
    return True


_NO_COPY_RANGE = {errno.EXDEV, errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.EBADF}
