"""containerd's content store: ask for a blob by digest, write one, read one, label one.

A write is one Write stream: a STAT names the ingest (``archiver-<hex>``, so two loads of
the same blob share one ingest and the second waits for the first) with the digest and size
containerd checks again at COMMIT; then the bytes, up to ``_WINDOW`` messages ahead of
their replies. A blob the store already holds (in any namespace) is refused at the STAT
with ALREADY_EXISTS; one that only another namespace holds is answered with the whole size
as the ingest's offset, and a COMMIT alone adds it to ours: nothing is sent either.
"""

from __future__ import annotations

import contextlib
import io
import queue
import time
from collections import deque
from collections.abc import Iterator
from typing import Any, BinaryIO

import grpc

from archiver.blobs import limits
from archiver.errors import IntegrityError, NotFound, PeerError
from archiver.model.descriptor import Descriptor
from archiver.model.digest import Digest
from archiver.places.containerd.client import ContainerdClient, code_of
from archiver.places.containerd.messages import message

_SERVICE = "content.v1.Content"
_STAT, _WRITE, _COMMIT = 0, 1, 2
_CHUNK = 4 * 1024 * 1024
"""Bytes a WRITE message carries: containerd takes messages up to 16 MiB by default
(``[grpc] max_recv_message_size``); fewer, larger messages cost it and gRPC less per byte."""
_WINDOW = 4
_LOCKED_WAIT = 0.1
_LOCKED_TRIES = 6000
"""How long a load waits for another one writing the same blob (10 minutes in all)."""


class ContentStore:
    def __init__(self, client: ContainerdClient) -> None:
        self._client = client
        self._info = client.method(_SERVICE, "Info", "InfoResponse")
        self._update = client.method(_SERVICE, "Update", "UpdateContentResponse")
        self._write = client.method(_SERVICE, "Write", "WriteContentResponse", "bidi")
        self._read = client.method(_SERVICE, "Read", "ReadContentResponse", "stream")
        self._abort = client.method(_SERVICE, "Abort", "Empty")

    def info(self, digest: Digest) -> Any | None:
        """The store's Info of a blob (size, labels), None when the namespace lacks it."""
        try:
            reply = self._info(message("InfoRequest")(digest=str(digest)), f"blob {digest}")
        except NotFound:
            return None
        return reply.info

    def has(self, digest: Digest) -> bool:
        return self.info(digest) is not None

    def label(self, digest: Digest, labels: dict[str, str]) -> None:
        """Set ``labels`` on a blob, leaving its other labels as they are."""
        if not labels:
            return
        info = message("ContentInfo")(digest=str(digest), labels=labels)
        mask = message("FieldMask")(paths=[f"labels.{key}" for key in labels])
        self._update(
            message("UpdateContentRequest")(info=info, update_mask=mask), f"label blob {digest}"
        )

    def write(
        self, descriptor: Descriptor, stream: BinaryIO, labels: dict[str, str] | None = None
    ) -> bool:
        """Store a blob read from ``stream`` (which verifies itself), with ``labels``; False
        when the store had it already and nothing was sent."""
        ref = f"archiver-{descriptor.digest.algorithm}-{descriptor.digest.hex}"
        for _ in range(_LOCKED_TRIES):
            try:
                return self._write_once(ref, descriptor, stream, labels or {})
            except grpc.RpcError as exc:
                detail = exc.details() if isinstance(exc, grpc.Call) else ""
                if code_of(exc) == grpc.StatusCode.ALREADY_EXISTS:
                    return False
                if code_of(exc) == grpc.StatusCode.UNAVAILABLE and "locked" in (detail or ""):
                    time.sleep(_LOCKED_WAIT)  # another load is writing it: wait for it
                    if self.has(descriptor.digest):
                        return False
                    continue
                raise self._client.error(exc, f"write blob {descriptor.digest}") from None
        raise PeerError(
            f"{self._client.origin}: blob {descriptor.digest}: another writer held it too long"
        )

    def _write_once(
        self, ref: str, descriptor: Descriptor, stream: BinaryIO, labels: dict[str, str]
    ) -> bool:
        requests: queue.SimpleQueue[Any] = queue.SimpleQueue()
        call = self._write.stream(_requests(requests))
        request = message("WriteContentRequest")
        expected = str(descriptor.digest)
        try:
            requests.put(request(action=_STAT, ref=ref, total=descriptor.size, expected=expected))
            stat = next(call)  # ALREADY_EXISTS (held) or UNAVAILABLE (locked) raise here
            shared = descriptor.size > 0 and stat.offset == descriptor.size
            offsets: deque[int] = deque()
            offset = descriptor.size if shared else 0
            while not shared and (chunk := stream.read(_CHUNK)):
                requests.put(request(action=_WRITE, offset=offset, data=chunk))
                offset += len(chunk)
                offsets.append(offset)
                if len(offsets) >= _WINDOW:
                    _check(next(call), offsets.popleft(), ref, self._client)
            while offsets:
                _check(next(call), offsets.popleft(), ref, self._client)
            requests.put(
                request(
                    action=_COMMIT,
                    offset=offset,
                    total=descriptor.size,
                    expected=expected,
                    labels=labels,
                )
            )
            reply = next(call)
            if reply.digest and reply.digest != expected:
                raise IntegrityError(
                    self._client.origin, expected, f"containerd stored {reply.digest}"
                )
            requests.put(None)
            return not shared
        except BaseException as exc:
            requests.put(None)
            call.cancel()
            if not isinstance(exc, grpc.RpcError) or code_of(exc) not in (
                grpc.StatusCode.ALREADY_EXISTS,
                grpc.StatusCode.UNAVAILABLE,
            ):
                self._discard(ref)
            raise

    def _discard(self, ref: str) -> None:
        """A write cut off: its ingest is removed (the lease would take it too)."""
        with contextlib.suppress(Exception):  # best effort: the lease holds it, and goes
            self._abort(message("AbortRequest")(ref=ref), f"abort {ref}")

    def open(self, digest: Digest) -> BinaryIO:
        """The bytes of a blob as a stream (NotFound when the namespace lacks it)."""
        replies = self._read.stream(message("ReadContentRequest")(digest=str(digest)))
        return io.BufferedReader(_ReadStream(replies, self._client, digest), limits.COPY_CHUNK)


def _requests(items: queue.SimpleQueue[Any]) -> Iterator[Any]:
    while (item := items.get()) is not None:
        yield item


def _check(reply: Any, offset: int, ref: str, client: ContainerdClient) -> None:
    if reply.offset != offset:
        raise PeerError(f"{client.origin}: ingest {ref}: at {reply.offset} bytes, not {offset}")


class _ReadStream(io.RawIOBase):
    """The replies of a Read call as a raw stream."""

    def __init__(self, replies: Any, client: ContainerdClient, digest: Digest) -> None:
        self._replies = replies
        self._client = client
        self._digest = digest
        self._pending = memoryview(b"")

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self._pending:
            try:
                self._pending = memoryview(next(self._replies).data)
            except StopIteration:
                return 0
            except grpc.RpcError as exc:
                raise self._client.error(exc, f"read blob {self._digest}") from None
        size = min(len(buffer), len(self._pending))
        buffer[:size] = self._pending[:size]
        self._pending = self._pending[size:]
        return size

    def close(self) -> None:
        if not self.closed:
            self._replies.cancel()
        super().close()
