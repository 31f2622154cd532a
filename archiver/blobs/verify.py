"""A reader that hashes as it reads, stops at the declared size, and fails loudly."""

from __future__ import annotations

import io
import itertools
import os
import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, BinaryIO

from archiver.errors import IntegrityError
from archiver.model.digest import Digest

_BEHIND_FROM = 256 * 1024
"""Chunks at least this large are hashed on a hashing thread (hashlib lets go of the GIL),
while the caller sends or writes the chunk before; smaller ones at once."""
_BEHIND = 4
"""Chunks the hash may lag behind the reads (memory: that many chunks, still referenced)."""

_hashers: list[ThreadPoolExecutor] = []
_turn = itertools.count()
_hashers_lock = threading.Lock()


def _hashing_thread() -> ThreadPoolExecutor:
    """One of a few single-thread executors kept for the process: a reader's updates stay
    in order on its one thread, and no blob pays for starting and joining a thread (an
    unpack of 600 small layers did, 600 times)."""
    with _hashers_lock:
        if not _hashers:
            count = max(1, min(4, os.cpu_count() or 1))
            _hashers.extend(ThreadPoolExecutor(1, thread_name_prefix="sha") for _ in range(count))
        return _hashers[next(_turn) % len(_hashers)]


class VerifyingReader(io.RawIOBase):
    """Wrap ``stream`` so that reading it to EOF proves it is ``size`` bytes hashing to ``digest``.

    More bytes than ``size`` fail at once (the decompression-bomb guard), fewer fail at EOF
    as truncation, and a wrong hash fails at EOF with got/want. Callers must read until
    ``read()`` returns ``b""``: that is when the digest is checked.
    """

    def __init__(
        self,
        stream: BinaryIO,
        digest: Digest,
        size: int,
        origin: str,
        on_read: Callable[[int], None] | None = None,
    ) -> None:
        super().__init__()
        self._on_read = on_read
        self._stream = stream
        self._digest = digest
        self._size = size
        self._origin = origin
        self._hasher = digest.hasher()
        self._count = 0
        self._done = False
        self._hashing: ThreadPoolExecutor | None = None
        self._behind: deque[Future[None]] = deque()

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def read(self, size: int | None = -1) -> bytes:
        if self._done:
            return b""
        remaining = self._size - self._count
        want = remaining if size is None or size < 0 else min(size, remaining)
        if want <= 0:
            if self._stream.read(1):
                raise self._error(f"size exceeded: more than the {self._size} bytes declared")
            self._finish()
            return b""
        chunk = self._stream.read(want)
        if not chunk:
            raise self._error(f"truncated: got {self._count} of {self._size} bytes")
        self._count += len(chunk)
        self._hash(chunk)
        if self._on_read is not None:
            self._on_read(len(chunk))
        return chunk

    def _hash(self, chunk: bytes) -> None:
        if len(chunk) < _BEHIND_FROM:
            self._caught_up()
            self._hasher.update(chunk)
            return
        if self._hashing is None:  # one thread: the updates keep their order
            self._hashing = _hashing_thread()
        self._behind.append(self._hashing.submit(self._hasher.update, chunk))
        while len(self._behind) > _BEHIND:
            self._behind.popleft().result()

    def _caught_up(self) -> None:
        while self._behind:
            self._behind.popleft().result()

    def _stop_hashing(self) -> None:
        self._caught_up()
        self._hashing = None  # the thread is shared: it stays for the next reader

    def _finish(self) -> None:
        self._stop_hashing()
        got = Digest(self._digest.algorithm, self._hasher.hexdigest())
        self._done = True
        if got != self._digest:
            raise self._error(
                f"digest mismatch: got {got}, want {self._digest} after {self._count} bytes"
            )

    def _error(self, detail: str) -> IntegrityError:
        self._done = True
        self._stop_hashing()
        return IntegrityError(self._origin, str(self._digest), detail)

    def close(self) -> None:
        try:
            self._stop_hashing()
            self._stream.close()
        finally:
            super().close()


def drain(stream: BinaryIO | VerifyingReader, chunk: int = 1024 * 1024) -> int:
    """Read ``stream`` to its end (verifying it, if it verifies) and return the byte count."""
    total = 0
    while True:
        data = stream.read(chunk)
        if not data:
            return total
        total += len(data)
