"""What each plain layer became when pushed compressed to one registry (as docker's
distribution metadata): diff_id and compression -> compressed descriptor. A re-push asks the
registry for the known compressed digest (HEAD) and, when it is there, compresses nothing.

Kept in a small JSON file per registry under the user's cache directory, read with a size
cap, written atomically; a cache: an unreadable file is started afresh.
"""

from __future__ import annotations

import contextlib
import threading

from archiver.errors import ArchiverError
from archiver.model.descriptor import Descriptor
from archiver.model.digest import Digest
from archiver.places.registry.cache_file import cache_path, read_cache, write_cache

KEPT = 20_000


class LayerMap:
    """``(compression, diff_id) -> Descriptor`` of the compressed blob, for one registry."""

    def __init__(self, registry: str) -> None:
        self.registry = registry
        self._layers: dict[str, Descriptor] = {}
        self._lock = threading.Lock()
        self._changed = False

    @classmethod
    def load(cls, registry: str) -> LayerMap:
        found = cls(registry)
        path = cache_path("registry-layers", registry)
        layers = read_cache(path).get("layers")
        for key, value in (layers if isinstance(layers, dict) else {}).items():
            kind, _, diff_id = key.partition(":")
            with contextlib.suppress(ArchiverError, ValueError, AttributeError, TypeError):
                descriptor = Descriptor.from_json(value, str(path))
                if Digest.is_valid(diff_id) and kind in ("gzip", "zstd"):
                    found._layers[key] = descriptor
        return found

    def get(self, kind: str, diff_id: Digest) -> Descriptor | None:
        with self._lock:
            return self._layers.get(f"{kind}:{diff_id}")

    def add(self, kind: str, diff_id: Digest, compressed: Descriptor) -> None:
        key = f"{kind}:{diff_id}"
        with self._lock:
            if self._layers.get(key) != compressed:
                self._layers.pop(key, None)  # most recent last
                self._layers[key] = compressed
                self._changed = True

    def save(self) -> None:
        with self._lock:
            if not self._changed:
                return
            recent = list(self._layers.items())[-KEPT:]
            self._changed = False
        layers = {key: descriptor.to_json() for key, descriptor in recent}
        path = cache_path("registry-layers", self.registry)
        write_cache(path, {"registry": self.registry, "layers": layers})
