"""What a daemon behind the Docker Engine API can take, from its ``/version`` and ``/info``.

- zstd layers: Docker reads them from 23.0 (Engine API 1.42, moby#41759); older ones
  (20.10) are sent zstd layers decompressed.
- Layers left out of a load: a graphdriver dockerd (``docker load`` looks each layer chain
  up before it opens the layer's file) takes them. Podman does not: its docker-archive
  reader (containers/image) wants every layer file. Nor does a dockerd with the containerd
  image store (the default from Docker 29; ``/info`` ``DriverStatus`` holds
  ``["driver-type", "io.containerd.snapshotter.v1"]``): it keys content by blob digest, and
  an image whose snapshots exist but whose layer blobs are missing runs but cannot be saved
  or pushed (moby#53615). See docs/RUNTIMES.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

ZSTD_SINCE = (1, 42)
SNAPSHOTTER = "io.containerd.snapshotter.v1"


@dataclass(frozen=True)
class DaemonTraits:
    podman: bool = False
    containerd_store: bool = False
    api: tuple[int, ...] = ()

    @classmethod
    def of(cls, version: dict[str, Any], info: dict[str, Any]) -> DaemonTraits:
        components = version.get("Components")
        podman = isinstance(components, list) and any(
            isinstance(c, dict) and c.get("Name") == "Podman Engine" for c in components
        )
        status = info.get("DriverStatus")
        store = isinstance(status, list) and any(
            isinstance(pair, list) and len(pair) == 2 and pair[1] == SNAPSHOTTER for pair in status
        )
        try:
            api = tuple(int(part) for part in str(version.get("ApiVersion", "")).split(".")[:2])
        except ValueError:
            api = ()
        return cls(podman, store, api)

    @property
    def takes_partial_archives(self) -> bool:
        """Layers it holds may be left out of a load."""
        return not self.podman and not self.containerd_store

    @property
    def unreadable(self) -> frozenset[str]:
        """The layer compressions to decompress on the way to it."""
        return frozenset() if self.api >= ZSTD_SINCE else frozenset({"zstd"})
