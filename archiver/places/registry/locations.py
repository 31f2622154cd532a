"""Where blobs are known to be on one registry, to mount rather than upload (as docker's
blob-info cache): learnt in a push, kept between runs in a small cache file. Repositories
pushed at once send each blob once (``sending``): the first in the push's order that needs
it sends it, the others wait, then mount it."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

from archiver.model.digest import Digest
from archiver.places.registry.cache_file import cache_path, read_cache, write_cache

KEPT = 20_000
"""The most recent blobs remembered per registry."""


@dataclass
class BlobLocations:
    """Digest -> a repository of ``registry`` that holds it."""

    registry: str
    repositories: dict[Digest, str] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    changed: bool = False
    _sending: dict[str, tuple[threading.Lock, list[int]]] = field(default_factory=dict)
    _first: dict[str, tuple[int, threading.Event]] = field(default_factory=dict)

    @classmethod
    def load(cls, registry: str) -> BlobLocations:
        found = cls(registry)
        blobs = read_cache(cache_path("registry-blobs", registry)).get("blobs")
        for digest, repository in (blobs if isinstance(blobs, dict) else {}).items():
            if Digest.is_valid(digest) and isinstance(repository, str):
                found.repositories[Digest.parse(digest)] = repository
        return found

    def save(self) -> None:
        if not self.changed:
            return
        with self.lock:
            recent = list(self.repositories.items())[-KEPT:]
        blobs = {str(digest): repository for digest, repository in recent}
        path = cache_path("registry-blobs", self.registry)
        write_cache(path, {"registry": self.registry, "blobs": blobs})

    def add(self, digest: Digest, repository: str) -> None:
        with self.lock:
            if self.repositories.get(digest) != repository:
                self.repositories.pop(digest, None)  # most recent last
                self.repositories[digest] = repository
                self.changed = True

    def find(self, digest: Digest, besides: str) -> str | None:
        with self.lock:
            found = self.repositories.get(digest)
        return found if found != besides else None

    def sent_first_by(self, digest: Digest, turn: int) -> None:
        """Repository ``turn`` of a push (its place in the push's order) is the first to
        need blob ``digest``: it sends it, and those after it that need it wait for it
        (``sending``), so that which repository sends a shared blob never depends on which
        reaches it first."""
        with self.lock:
            if str(digest) not in self._first:
                self._first[str(digest)] = (turn, threading.Event())

    def ended(self, turn: int) -> None:
        """Repository ``turn`` is done: those waiting for blobs it was to send go on (it
        sent them, or found them there, or failed: then they send them themselves)."""
        with self.lock:
            for first, done in self._first.values():
                if first == turn:
                    done.set()

    @contextlib.contextmanager
    def sending(self, key: str, turn: int | None = None) -> Iterator[None]:
        """Held while one repository sends the blob ``key`` names (a digest): another
        repository of the push that needs it waits here, and then finds where it went
        (``find``) and mounts it. Repository ``turn`` waits first for the repository that
        is to send it (``sent_first_by``), when that is another."""
        with self.lock:
            first, done = self._first.get(key, (turn, None))
        if done is not None and first != turn:
            done.wait()
        with self.lock:
            gate, users = self._sending.setdefault(key, (threading.Lock(), [0]))
            users[0] += 1
        try:
            with gate:
                yield
        finally:
            with self.lock:
                users[0] -= 1
                if not users[0]:
                    del self._sending[key]
            if done is not None and first == turn:
                done.set()
