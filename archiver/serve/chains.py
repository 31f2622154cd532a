"""Every answer's bytes verified against the blob's digest, hashing each decoded frame once
for all the answers that send that very frame.

Answers reading one bundle layer at about the same time get the same decoded frames from
the shared cache (frames.py): the same bytes objects, told apart by their serial number.
The hash state after "these frames, in this order" is kept as a chain of nodes; an answer
whose next frame is one another answer has already hashed from the same state takes that
answer's state instead of hashing the frame again. Bytes that are not a whole cached frame
(a read off a frame's edge) are hashed by the answer itself, which then keeps its own
state to the end. Either way the digest of exactly the bytes sent is checked before the
last piece goes out (streaming.py), as VerifyingReader does for any other stream.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any

from archiver.errors import IntegrityError
from archiver.model.digest import Digest
from archiver.serve.frames import FramesReader

KEPT = 64
"""Blobs whose chains are kept (a node is a hash state: a few hundred bytes a frame)."""

MOST_NODES = 65_536
"""Nodes made before every chain is let go (a frame decoded again gets a new serial, so a
long-running server would grow its chains with its traffic): about 20 MB at most. Answers
under way keep the nodes they hold; only sharing with later answers starts afresh."""


class _Node:
    __slots__ = ("hasher", "next")

    def __init__(self, hasher: Any) -> None:
        self.hasher = hasher
        self.next: dict[int, _Node] = {}


class Chains:
    """The hash chains of the blobs served lately (sha256 blobs of bundles)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._roots: OrderedDict[tuple[str, int], _Node] = OrderedDict()
        self.hashed = 0
        """Bytes hashed into the chains (the rest were sent on a state shared)."""
        self._made = 0

    def root(self, digest: Digest, size: int) -> _Node:
        key = (str(digest), size)
        with self._lock:
            node = self._roots.get(key)
            if node is None:
                node = self._roots[key] = _Node(digest.hasher())
                while len(self._roots) > KEPT:
                    self._roots.popitem(last=False)
            self._roots.move_to_end(key)
            return node

    def step(self, node: _Node, serial: int, data: bytes) -> _Node:
        """The node after ``node`` and the frame ``serial``: shared when another answer
        made it already, else hashed here (outside the lock) and shared."""
        with self._lock:
            found = node.next.get(serial)
        if found is not None:
            return found
        hasher = node.hasher.copy()
        hasher.update(data)
        made = _Node(hasher)
        with self._lock:
            self.hashed += len(data)
            self._made += 1
            if self._made > MOST_NODES:
                self._roots.clear()
                self._made = 0
            return node.next.setdefault(serial, made)


class ChainVerifier:
    """``raw`` read to its end proves it is ``size`` bytes hashing to ``digest`` (the
    interface of VerifyingReader: read, close)."""

    def __init__(
        self, raw: FramesReader, chains: Chains, digest: Digest, size: int, origin: str
    ) -> None:
        self._raw, self._chains = raw, chains
        self._digest, self._size, self._origin = digest, size, origin
        self._node: _Node | None = chains.root(digest, size)
        self._own: Any = None  # the answer's own hash state, once off the chain
        self._count = 0
        self._done = False

    def read(self, size: int = -1) -> bytes:
        if self._done:
            return b""
        remaining = self._size - self._count
        want = remaining if size < 0 else min(size, remaining)
        if want <= 0:
            if self._raw.read(1):
                raise self._error(f"size exceeded: more than the {self._size} bytes declared")
            self._finish()
            return b""
        data = self._raw.read(want)
        if not data:
            raise self._error(f"truncated: got {self._count} of {self._size} bytes")
        self._count += len(data)
        serial = self._raw.serial
        if self._node is not None and serial is not None:
            self._node = self._chains.step(self._node, serial, data)
        else:
            if self._own is None:
                assert self._node is not None
                self._own, self._node = self._node.hasher.copy(), None
            self._own.update(data)
        return data

    def _finish(self) -> None:
        self._done = True
        hasher = self._own if self._node is None else self._node.hasher
        got = Digest(self._digest.algorithm, hasher.copy().hexdigest())
        if got != self._digest:
            raise self._error(
                f"digest mismatch: got {got}, want {self._digest} after {self._count} bytes"
            )

    def _error(self, detail: str) -> IntegrityError:
        self._done = True
        return IntegrityError(self._origin, str(self._digest), detail)

    def close(self) -> None:
        self._raw.close()
