"""A blob's bytes as an ASGI answer: read from the input that holds it (a bundle
decompresses only that blob's frames), verified against the digest as they go, sent in
small pieces.

Every byte of a blob that has not yet been proved whole in this process is hashed: for a
range, the bytes before it are read and hashed first, and those after it before the last
piece is sent. The last piece is held back until the digest is checked, so a blob damaged
on disk never reaches a client whole: its answer is cut short (the client sees a broken
transfer) and the request's log line says why. A bundle's layer is read from its own
frames through a cache shared by all clients (frames.py); a block is read (decompressed,
hashed) while the one before is sent. Memory per client: a block or two (a frame each)
and one piece.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Awaitable, Callable, Generator
from typing import Any, BinaryIO, cast

import anyio

from archiver.blobs.verify import VerifyingReader
from archiver.errors import ArchiverError, IntegrityError
from archiver.serve.catalog import Held
from archiver.serve.chains import Chains, ChainVerifier
from archiver.serve.frames import FrameCache, FramesReader
from archiver.serve.ranges import ByteRange

READ = 4 * 1024 * 1024
"""Bytes per read: a bundle's frame (4 MiB unless packed otherwise). Clients reading one
blob at once share the reader's frame cache; reads of whole frames decode each frame once
per client, smaller reads would decode it again for each piece."""
SEND = 256 * 1024
"""Bytes per send: uvicorn buffers at most about this much per client beyond the read."""

ERROR_KEY = "archiver.error"
"""Where an answer cut short leaves its reason in the ASGI scope, for the request's log line."""


class Proved:
    """Blobs read whole and found right since the server started (their ranges are then
    sent without reading the rest again)."""

    def __init__(self) -> None:
        self._digests: set[str] = set()
        self._lock = threading.Lock()

    def __contains__(self, digest: object) -> bool:
        with self._lock:
            return str(digest) in self._digests

    def add(self, digest: object) -> None:
        with self._lock:
            self._digests.add(str(digest))


def chunks(
    held: Held,
    want: ByteRange | None,
    proved: Proved,
    cache: FrameCache | None = None,
    chains: Chains | None = None,
) -> Generator[memoryview, None, None]:
    """The bytes of ``want`` (the whole blob when None), a read at a time; IntegrityError
    before the last piece when the blob is not what its descriptor says. A whole blob is always
    verified; a range only until its blob has been proved whole once."""
    descriptor, source = held.descriptor, held.source
    digest, size = descriptor.digest, descriptor.size
    start, end = (0, size - 1) if want is None else (want.start, want.end)
    check = want is None or digest not in proved
    with contextlib.ExitStack() as stack:
        raw = _open(held, cache)
        stack.callback(raw.close)
        stream: BinaryIO | FramesReader | VerifyingReader | ChainVerifier = raw
        if check:
            origin = source.blob_origin(digest)
            if isinstance(raw, FramesReader) and chains is not None:
                stream = ChainVerifier(raw, chains, digest, size, origin)
            else:
                stream = stack.enter_context(
                    VerifyingReader(cast(BinaryIO, raw), digest, size, origin)
                )
            _skip(stream, start)
        elif start:
            raw.seek(start)
        left = end - start + 1
        last = memoryview(b"")
        while left > 0:
            data = stream.read(min(READ, left))
            if not data:  # a stream that is not verified and ends early
                raise IntegrityError(source.origin, str(digest), "truncated")
            left -= len(data)
            if left > 0:
                yield memoryview(data)
                continue
            view = memoryview(data)
            cut = max(0, len(data) - SEND)
            if cut:
                yield view[:cut]
            last = view[cut:]
        if check:
            _skip(stream, size - end - 1)
            if stream.read(1):  # VerifyingReader checks size and digest here
                raise IntegrityError(source.origin, str(digest), "longer than its descriptor")
            proved.add(digest)
        if last:
            yield last


def _open(held: Held, cache: FrameCache | None) -> BinaryIO | FramesReader:
    """A bundle's blob held in frames of its own: read from them through the shared
    cache; anything else: as its source opens it."""
    source, digest = held.source, held.descriptor.digest
    blob = source.precompressed(digest) if cache is not None else None
    if blob is not None and blob.frames and cache is not None:
        return FramesReader(blob, cache, source.blob_origin(digest))
    return source.open_blob(digest)


def _skip(stream: BinaryIO | FramesReader | VerifyingReader | ChainVerifier, count: int) -> None:
    while count > 0:
        data = stream.read(min(READ, count))
        if not data:
            raise IntegrityError("blob", "?", "truncated")  # VerifyingReader says it first
        count -= len(data)


READERS = 4
"""Reads (decompressing, hashing) at once, whatever the number of clients: two cores are
busy with fewer, and each read in progress holds a frame or two of memory."""


class BlobAnswer:
    """An ASGI answer streaming ``body``, a blocking iterator read on worker threads (as
    many at once, across all clients, as ``readers`` lets); an ArchiverError from it cuts
    the answer short. A client that goes away stops the reading."""

    def __init__(
        self,
        status: int,
        headers: dict[str, str],
        body: Generator[memoryview, None, None],
        readers: anyio.CapacityLimiter,
    ) -> None:
        self.status = status
        self.headers = headers
        self.body = body
        self.readers = readers

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": self.status,
                "headers": [(k.lower().encode(), v.encode()) for k, v in self.headers.items()],
            }
        )
        async with anyio.create_task_group() as group:

            async def watch() -> None:
                while (await receive())["type"] != "http.disconnect":
                    pass
                group.cancel_scope.cancel()

            group.start_soon(watch)
            try:
                await self._send_body(send)
            except ArchiverError as exc:
                scope[ERROR_KEY] = str(exc)
                group.cancel_scope.cancel()
                return
            group.cancel_scope.cancel()
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    async def _send_body(self, send: Any) -> None:
        """Each block is sent while the next is read (decompressed, hashed) on a worker
        thread, when the process has a spare block's room (``AHEAD``); else one after the
        other."""
        done = object()

        async def read() -> object:
            return await anyio.to_thread.run_sync(next, self.body, done, limiter=self.readers)

        try:
            block = await read()
            while block is not done:
                assert isinstance(block, memoryview)
                if not _ahead.acquire(blocking=False):
                    await _send_pieces(send, block)
                    block = await read()
                    continue
                got: list[object] = []
                try:
                    async with anyio.create_task_group() as group:
                        group.start_soon(_read_into, read, got)
                        await _send_pieces(send, block)
                finally:
                    _ahead.release()
                block = got[0]
                if isinstance(block, ArchiverError):
                    raise block
        finally:
            await anyio.to_thread.run_sync(self.body.close)


AHEAD = 8
"""Answers reading their next block while they send one, at once (each holds a block more
meanwhile): memory stays flat in the number of clients."""
_ahead = threading.Semaphore(AHEAD)


async def _read_into(read: Callable[[], Awaitable[object]], got: list[object]) -> None:
    try:
        got.append(await read())
    except ArchiverError as exc:  # raised by the sender, outside the task group
        got.append(exc)


async def _send_pieces(send: Any, block: memoryview) -> None:
    for at in range(0, len(block), SEND):  # uvicorn waits for each to drain
        piece = block[at : at + SEND]
        await send({"type": "http.response.body", "body": piece, "more_body": True})
