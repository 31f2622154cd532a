"""Blobs held as zstd frames, decoded in parallel straight into their places in a file.

A tar written from a bundle has its layout known before any layer is decoded: each
layer's header, then its bytes. The writer leaves each layer's bytes as a hole and hands
the layer's frames to a ``FrameFiller``: a few workers each decode a frame and write it
(one large ``pwrite``) where it belongs, then hash it. A blob's sha256 runs over its frames
in order, so whichever worker holds a blob's next frame hashes it, and the frames after it
that are already written: no thread waits for a blob's hash before the next blob starts.

Every digest is checked before ``finish`` returns: the file may be renamed into place only
then. Memory stays bounded: at most 2 frames per worker (and 2 more) are decoded and
not yet hashed; the thread queueing them waits meanwhile.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from archiver.blobs.atomic import SyncingFile
from archiver.blobs.seek_table import Frame
from archiver.errors import IntegrityError
from archiver.model.digest import Digest

Decode = Callable[[Frame, bytearray], memoryview]
"""A frame decoded into the buffer given (longer than the frame): exactly ``frame.size``
bytes of it, or IntegrityError; called on the workers, several at once."""
_BUFFER = 4 * 1024 * 1024 + 1
"""The smallest buffer a frame is decoded into (a frame of the default size fits)."""


class _Blob:
    """One blob being filled: its hash, and its frames written but not hashed yet."""

    def __init__(self, digest: Digest, size: int, origin: str, frames: int) -> None:
        self.digest = digest
        self.size = size
        self.origin = origin
        self.frames = frames
        self.hasher: Any = digest.hasher()
        self.next = 0
        """The frame the hash takes next."""
        self.ready: dict[int, tuple[memoryview, bytearray]] = {}
        self.hashing = False
        self.hashed = 0


class FrameFiller:
    """Decode frames into a file at given offsets, on ``threads`` workers; blobs verified."""

    def __init__(self, fd: int, name: str, threads: int | None = None) -> None:
        """``fd``: the file written (with ``pwrite``, whatever its position); ``name``: the
        file an error of the disk names."""
        self._fd = fd
        self._name = name
        count = max(1, threads if threads is not None else os.cpu_count() or 1)
        self._pool = ThreadPoolExecutor(count, thread_name_prefix="fill")
        self._slots = threading.Semaphore(2 * count + 2)
        """Frames decoded (or decoding) and not hashed yet: memory stays bounded."""
        self._lock = threading.Lock()
        self._buffers: list[bytearray] = []
        """Buffers of frames hashed, to decode the next ones into (no fresh memory each)."""
        self._error: BaseException | None = None
        self._left = 0
        self._idle = threading.Condition(self._lock)

    def fill(
        self,
        digest: Digest,
        size: int,
        frames: list[Frame],
        decode: Decode,
        offset: int,
        origin: str,
        before: bytes = b"",
    ) -> None:
        """Queue a blob: ``frames`` (consecutive, ``size`` bytes in all) decoded by
        ``decode`` into the file from ``offset`` on, hashed, checked against ``digest``;
        ``before``: bytes that end at ``offset``, written with the first frame (one write).
        Raises at once the first error of a blob queued before (nothing more is queued)."""
        self._raise()
        held = sum(f.size for f in frames)
        if held != size:
            raise IntegrityError(origin, str(digest), f"its frames hold {held} bytes, not {size}")
        blob = _Blob(digest, size, origin, len(frames))
        if not frames:
            self._check(blob)
            if before:
                self.write_at(before, offset - len(before))
            return
        start = frames[0].offset
        for index, frame in enumerate(frames):
            at = offset + frame.offset - start
            self._queue(self._work, blob, index, frame, decode, at, before)
            before = b""

    def write_at(self, data: bytes, offset: int) -> None:
        """Queue a write of ``data`` at ``offset`` (what lies between the blobs)."""
        self._queue(self._put, data, offset)

    def _queue(self, work: Callable[..., None], *args: object) -> None:
        """``work`` on the pool once a slot is free (the first error raised instead)."""
        self._slots.acquire()
        if self._error is not None:
            self._slots.release()
            self._raise()
        with self._lock:
            self._left += 1
        self._pool.submit(work, *args)

    def _put(self, data: bytes, offset: int) -> None:
        try:
            if self._error is None:
                self._write(data, offset)
        except BaseException as exc:
            with self._lock:
                if self._error is None:
                    self._error = exc
        finally:
            self._slots.release()
            with self._lock:
                self._left -= 1
                if self._left == 0:
                    self._idle.notify_all()

    def _work(
        self, blob: _Blob, index: int, frame: Frame, decode: Decode, at: int, before: bytes
    ) -> None:
        buffer: bytearray | None = None
        placed = False  # once among the blob's ready frames, its hash lets go of the slot
        try:
            if self._error is not None:
                return
            buffer = self._buffer(frame.size + 1)
            data = _decoded(decode, frame, buffer, blob)
            if before:
                self._write_two(before, data, at - len(before))
            else:
                self._write(data, at)
            with self._lock:
                blob.ready[index] = (data, buffer)
                placed = True
                if blob.hashing:
                    return  # the worker hashing this blob takes this frame too
                blob.hashing = True
            self._hash(blob)
        except BaseException as exc:  # handed to the writer's thread by fill or finish
            with self._lock:
                if self._error is None:
                    self._error = exc
        finally:
            with self._lock:
                if not placed and buffer is not None:
                    self._buffers.append(buffer)
                self._left -= 1
                if self._left == 0:
                    self._idle.notify_all()
            if not placed:
                self._slots.release()

    def _buffer(self, size: int) -> bytearray:
        with self._lock:
            buffer = self._buffers.pop() if self._buffers else None
        if buffer is None or len(buffer) < size:
            buffer = bytearray(max(size, _BUFFER))
        return buffer

    def _hash(self, blob: _Blob) -> None:
        """Hash the blob's frames that are ready, in order, until the next is not."""
        while True:
            with self._lock:
                ready = blob.ready.pop(blob.next, None)
                if ready is None:
                    blob.hashing = False
                    return
                blob.next += 1
            data, buffer = ready
            blob.hasher.update(data)
            blob.hashed += len(data)
            data.release()
            with self._lock:
                self._buffers.append(buffer)
            self._slots.release()
            if blob.next == blob.frames:
                self._check(blob)

    def _check(self, blob: _Blob) -> None:
        got = Digest(blob.digest.algorithm, blob.hasher.hexdigest())
        if got != blob.digest:
            raise IntegrityError(
                blob.origin,
                str(blob.digest),
                f"digest mismatch: got {got}, want {blob.digest} after {blob.hashed} bytes",
            )

    def _write(self, data: bytes | memoryview, at: int) -> None:
        view = memoryview(data)
        try:
            while view:
                written = os.pwrite(self._fd, view, at)
                view = view[written:]
                at += written
        except OSError as exc:
            if exc.filename is None and exc.errno is not None:  # a full disk names the file
                raise OSError(exc.errno, exc.strerror, self._name) from None
            raise

    def _write_two(self, first: bytes, data: memoryview, at: int) -> None:
        """``first`` then ``data``, adjacent, in one write where the kernel takes it whole."""
        try:
            written = os.pwritev(self._fd, [first, data], at)
        except OSError as exc:
            if exc.filename is None and exc.errno is not None:
                raise OSError(exc.errno, exc.strerror, self._name) from None
            raise
        if written < len(first):
            self._write(first[written:], at + written)
            written = len(first)
        if written < len(first) + len(data):
            self._write(data[written - len(first) :], at + written)

    def _raise(self) -> None:
        if self._error is not None:
            raise self._error

    def finish(self) -> None:
        """Wait for every frame queued; raise the first error (a blob's digest, a corrupt
        frame, the disk). Only then is every blob in the file, verified."""
        with self._lock:
            while self._left:
                self._idle.wait()
        self._pool.shutdown()
        self._raise()

    def cancel(self) -> None:
        """Stop: frames not started are dropped, those under way end (the file is thrown away)."""
        with self._lock:
            if self._error is None:
                self._error = IntegrityError(self._name, "-", "cancelled")
        self._pool.shutdown(wait=True, cancel_futures=True)


def _decoded(decode: Decode, frame: Frame, buffer: bytearray, blob: _Blob) -> memoryview:
    """A frame's bytes; a corrupt frame is an error of the blob it belongs to."""
    try:
        return decode(frame, buffer)
    except IntegrityError as exc:
        raise IntegrityError(blob.origin, str(blob.digest), f"{exc.blob}: {exc.detail}") from None


_GATHER = 1024 * 1024
"""Bytes written around the holes gathered into one write."""


class FillingWriter:
    """A file written in order, but for the holes a ``FrameFiller`` fills (``fill``): once
    the first hole is made, what is written around the holes (tar headers, padding, the
    end) is gathered and written by the filler's workers too, so the writer's thread never
    waits on the file while the workers write to it."""

    def __init__(self, file: SyncingFile, name: str) -> None:
        self._file = file
        self._name = name
        self._filler: FrameFiller | None = None
        self._gathered = bytearray()
        self._at = 0
        """Where the gathered bytes go."""

    def write(self, data: bytes, /) -> int:
        if self._filler is None:
            return self._file.write(data)
        self._gathered += data
        if len(self._gathered) >= _GATHER:
            self._push()
        return len(data)

    def fill(
        self, digest: Digest, size: int, frames: list[Frame], decode: Decode, origin: str
    ) -> None:
        """The next ``size`` bytes are ``frames`` decoded (see ``FrameFiller.fill``)."""
        if self._filler is None:
            self._file.flush()
            self._at = self._file.tell()
            self._filler = FrameFiller(self._file.fileno(), self._name)
        before, self._gathered = bytes(self._gathered), bytearray()
        self._at += len(before)  # written with the blob's first frame
        self._filler.fill(digest, size, frames, decode, self._at, origin, before)
        self._at += size
        self._file.copied(len(before) + size)  # synced to disk as it goes, as written bytes are

    def _push(self) -> None:
        if self._gathered and self._filler is not None:
            data, self._gathered = bytes(self._gathered), bytearray()
            self._filler.write_at(data, self._at)
            self._at += len(data)
            self._file.copied(len(data))

    def finish(self) -> None:
        """Everything written, every blob filled and verified (or the first error)."""
        if self._filler is None:
            return
        self._push()
        self._filler.finish()
        self._file.seek(self._at)

    def cancel(self) -> None:
        if self._filler is not None:
            self._filler.cancel()
