"""Where blobs are known to be on one registry, to mount rather than upload (as docker's
blob-info cache): learnt in a push, kept between runs in a small cache file. Repositories
pushed at once send each blob once (``sending``): those that need it go in the push's order,
the first sends it and the others mount it."""

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
    _lines: dict[str, dict[int, None]] = field(default_factory=dict)
    """Blob -> the repositories of a push that need it and have not sent or mounted it,
    in order (a dict: a base blob 2,000 repositories need is looked up, not searched)."""
    _needs: dict[int, list[str]] = field(default_factory=dict)
    """Repository -> the blobs it needs (the lines it is in)."""
    _turns: threading.Condition = field(default_factory=threading.Condition)

    @classmethod
    def load(cls, registry: str) -> BlobLocations:
        found = cls(registry)
        blobs = read_cache(cache_path("registry-blobs", registry)).get("blobs")
        for digest, repository in (blobs if isinstance(blobs, dict) else {}).items():
            if Digest.is_valid(digest) and isinstance(repository, str):
                found.repositories[Digest.parse(digest)] = repository
        return found

    def save(self) -> None:
        with self.lock:
            if not self.changed:
                return
            recent = list(self.repositories.items())[-KEPT:]
            self.changed = False
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

    def needed_by(self, digest: Digest, turn: int) -> None:
        """Repository ``turn`` of a push (its place in the push's order; called in that
        order) needs blob ``digest``: the repositories that need it go through ``sending``
        it in the push's order, whichever reaches it first, so the first sends it and each
        of the others mounts it from the one before, as a push of one after the other."""
        key = str(digest)
        with self._turns:
            line = self._lines.setdefault(key, {})
            if turn not in line:
                line[turn] = None
                self._needs.setdefault(turn, []).append(key)

    def ended(self, turn: int) -> None:
        """Repository ``turn`` is done: it leaves every line it was still in (it found
        the blob there, or failed), and those behind it go on."""
        with self._turns:
            for key in self._needs.pop(turn, []):
                self._lines.get(key, {}).pop(turn, None)
            self._turns.notify_all()

    @contextlib.contextmanager
    def sending(self, key: str, turn: int | None = None) -> Iterator[None]:
        """Held while one repository sends the blob ``key`` names (a digest): another
        repository of the push that needs it waits here, and then finds where it went
        (``find``) and mounts it. Repository ``turn`` first waits for those before it in
        the blob's line (``needed_by``)."""
        if turn is not None:
            with self._turns:
                while (line := self._lines.get(key)) and turn in line and next(iter(line)) != turn:
                    self._turns.wait()
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
            if turn is not None:
                self.passed(key, turn)

    def passed(self, key: str, turn: int) -> None:
        """Repository ``turn`` is done with the blob ``key`` names (sent, mounted, or found
        there already): the next in its line goes on."""
        with self._turns:
            line = self._lines.get(key)
            if line is not None:
                line.pop(turn, None)
            self._turns.notify_all()
