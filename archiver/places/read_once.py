"""Documents read once per command: the same digest is the same bytes wherever it is read
from (the merge of a hybrid archive's two lists, then the resolving of its images, then
the copy; two inputs carrying one image), so within ``shared_documents`` (one command)
each document is read and verified once and handed out again by digest; the least
recently used go first. Outside it, every read goes to its place.
"""

from __future__ import annotations

import contextlib
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator
from typing import BinaryIO

from archiver.blobs import limits
from archiver.blobs.verify import VerifyingReader
from archiver.errors import InputError
from archiver.model.descriptor import Descriptor
from archiver.model.digest import Digest

DOCUMENT_CACHE = 64 * 1024 * 1024
"""Bytes of verified documents kept for the next reader of the same digest."""


class _Documents:
    def __init__(self, most: int) -> None:
        self._most = most
        self._size = 0
        self._kept: OrderedDict[Digest, bytes] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, descriptor: Descriptor) -> bytes | None:
        with self._lock:
            raw = self._kept.get(descriptor.digest)
            if raw is None or len(raw) != descriptor.size:
                return None
            self._kept.move_to_end(descriptor.digest)
            return raw

    def put(self, digest: Digest, raw: bytes) -> None:
        with self._lock:
            if digest in self._kept:
                return
            self._kept[digest] = raw
            self._size += len(raw)
            while self._size > self._most:
                _, dropped = self._kept.popitem(last=False)
                self._size -= len(dropped)


_shared: _Documents | None = None


@contextlib.contextmanager
def shared_documents(most: int = DOCUMENT_CACHE) -> Iterator[None]:
    """Within this block, a document is read and verified once by digest, whichever
    place it is read from next."""
    global _shared
    previous, _shared = _shared, _Documents(most)
    try:
        yield
    finally:
        _shared = previous


def read_verified(
    descriptor: Descriptor,
    opener: Callable[[], BinaryIO],
    origin: str,
    limit: int = limits.MAX_DOCUMENT,
) -> bytes:
    """A small blob whole, verified against ``descriptor`` as it is read (from
    ``opener()``, unless this command read it already), capped at ``limit``."""
    if descriptor.size > limit:
        raise InputError(
            f"{origin}: blob {descriptor.digest}: {descriptor.size} bytes is over the "
            f"{limit}-byte limit for a document"
        )
    shared = _shared
    if shared is not None and (raw := shared.get(descriptor)) is not None:
        return raw
    with VerifyingReader(opener(), descriptor.digest, descriptor.size, origin) as reader:
        chunks = []
        while chunk := reader.read(limits.COPY_CHUNK):
            chunks.append(chunk)
    raw = b"".join(chunks)
    if shared is not None:
        shared.put(descriptor.digest, raw)
    return raw
