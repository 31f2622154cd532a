"""What each plain layer became when pushed compressed to one registry (as docker's
distribution metadata): diff_id and compression -> compressed descriptor. A re-push asks the
registry for the known compressed digest (HEAD) and, when it is there, compresses nothing.

Kept in a small JSON file per registry under the user's cache directory, read with a size
cap, written atomically; a cache: an unreadable file is started afresh.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import threading
from pathlib import Path

from archiver.blobs.atomic import replace_file
from archiver.errors import ArchiverError
from archiver.model.descriptor import Descriptor
from archiver.model.digest import Digest
from archiver.model.json_decode import load_json
from archiver.places.registry.uploads import state_dir

MAX_FILE = 8 * 1024 * 1024
KEPT = 20_000


def map_file(registry: str) -> Path:
    name = hashlib.sha256(registry.encode()).hexdigest()[:32]
    return state_dir().parent / "registry-layers" / f"{name}.json"


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
        path = map_file(registry)
        with contextlib.suppress(OSError, ArchiverError, ValueError, AttributeError, TypeError):
            with path.open("rb") as file:
                raw = file.read(MAX_FILE + 1)
            if len(raw) > MAX_FILE:
                return found  # not ours, or grown wild: start afresh
            data = load_json(raw, str(path))
            for key, value in (data.get("layers") or {}).items():
                kind, _, diff_id = key.partition(":")
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
        path = map_file(self.registry)
        with contextlib.suppress(OSError):  # a cache: losing it costs compressing again
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            data = json.dumps({"registry": self.registry, "layers": layers}).encode()
            replace_file(path, data, mode=0o600)
