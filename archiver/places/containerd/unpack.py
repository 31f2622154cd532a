"""Unpacking an image into a containerd snapshotter, so that it can run at once.

Layer by layer, bottom up, as containerd's own clients do: a layer whose chain ID the
snapshotter holds is there already; otherwise an active snapshot is prepared on its
parent's chain, the Diff service applies the layer blob (from the content store) onto its
mounts and says the diff_id it found (checked against the config's), and the snapshot is
committed under the chain ID. A snapshot left active by a failure is removed.

Images may be unpacked on several threads at once: a chain is applied under a lock of its
own, so images on one base apply the base once (the others wait, then find it there).
"""

from __future__ import annotations

import contextlib
import secrets
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor

from archiver.errors import Conflict, InputError, IntegrityError, NotFound
from archiver.model.descriptor import Descriptor
from archiver.model.digest import Digest, chain_ids
from archiver.model.image import ImageNode
from archiver.places.containerd.client import ContainerdClient
from archiver.places.containerd.messages import message

_SNAPSHOTS = "snapshots.v1.Snapshots"
_PREFERRED = ("overlayfs", "native")
SNAPSHOTTER_PLUGIN = "io.containerd.snapshotter.v1"
UNCOMPRESSED = "containerd.io/uncompressed"
DEFAULT_LABEL = "containerd.io/defaults/snapshotter"


def snapshot_label(snapshotter: str) -> str:
    """The label of a config that keeps its image's unpacked snapshots from the collector."""
    return f"containerd.io/gc.ref.snapshot.{snapshotter}"


def choose_snapshotter(client: ContainerdClient, wanted: str | None = None) -> str:
    """``wanted`` if containerd has it loaded; else the namespace's default (its label
    ``containerd.io/defaults/snapshotter``, as containerd's clients read it); else
    overlayfs, else native, else any."""
    loaded = [name for name, ok in client.plugins(SNAPSHOTTER_PLUGIN) if ok]
    wanted = wanted or _namespace_default(client)
    if wanted is not None:
        if wanted not in loaded:
            raise InputError(
                f"{client.origin}: snapshotter {wanted!r} is not loaded "
                f"(loaded: {', '.join(loaded) or 'none'})"
            )
        return wanted
    for name in (*_PREFERRED, *loaded):
        if name in loaded:
            return name
    raise InputError(f"{client.origin}: no snapshotter is loaded to unpack images into")


def _namespace_default(client: ContainerdClient) -> str | None:
    request = message("GetNamespaceRequest")(name=client.namespace)
    method = client.method("namespaces.v1.Namespaces", "Get", "GetNamespaceResponse")
    try:
        reply = method(request, f"namespace {client.namespace}")
    except NotFound:  # created by the first write
        return None
    return reply.namespace.labels.get(DEFAULT_LABEL) or None


class Unpacker:
    def __init__(self, client: ContainerdClient, snapshotter: str) -> None:
        self._client = client
        self.snapshotter = snapshotter
        self._stat = client.method(_SNAPSHOTS, "Stat", "StatSnapshotResponse")
        self._prepare = client.method(_SNAPSHOTS, "Prepare", "PrepareSnapshotResponse")
        self._commit = client.method(_SNAPSHOTS, "Commit", "Empty")
        self._remove = client.method(_SNAPSHOTS, "Remove", "Empty")
        self._apply = client.method("diff.v1.Diff", "Apply", "ApplyResponse")
        self.applied = 0
        """Layers applied (not found unpacked already)."""
        self._guard = threading.Lock()
        self._chains: dict[str, threading.Lock] = {}

    def unpack(self, node: ImageNode) -> str | None:
        """Unpack one platform image; the chain ID of its top layer (None: no layers, or
        not an image with diff_ids)."""
        if node.config is None or len(node.config.diff_ids) != len(node.manifest.layers):
            return None
        diff_ids = [str(d) for d in node.config.diff_ids]
        parent = ""
        for layer, diff_id, chain in zip(
            node.manifest.layers, diff_ids, chain_ids(diff_ids), strict=True
        ):
            with self._chain_lock(chain):
                if not self.holds(chain):
                    self._apply_layer(layer, diff_id, chain, parent)
            parent = chain
        return parent or None

    def _chain_lock(self, chain: str) -> threading.Lock:
        with self._guard:
            return self._chains.setdefault(chain, threading.Lock())

    def holds(self, chain: str) -> bool:
        request = message("SnapshotKeyRequest")(snapshotter=self.snapshotter, key=chain)
        try:
            self._stat(request, f"snapshot {chain}")
        except NotFound:
            return False
        return True

    def _apply_layer(self, layer: Descriptor, diff_id: str, chain: str, parent: str) -> None:
        key = f"extract-{time.time_ns()}-{secrets.token_hex(4)} {chain}"
        mounts = self._prepare(
            message("PrepareSnapshotRequest")(snapshotter=self.snapshotter, key=key, parent=parent),
            f"prepare a {self.snapshotter} snapshot for layer {layer.digest}",
        ).mounts
        try:
            blob = message("Descriptor")(
                media_type=layer.media_type, digest=str(layer.digest), size=layer.size
            )
            applied = self._apply(
                message("ApplyRequest")(diff=blob, mounts=mounts),
                f"apply layer {layer.digest} in {self.snapshotter}",
            ).applied
            if applied.digest != diff_id:
                raise IntegrityError(
                    self._client.origin,
                    str(layer.digest),
                    f"unpacked to diff_id {applied.digest}, the config says {diff_id}",
                )
            request = message("CommitSnapshotRequest")
            try:
                self._commit(
                    request(snapshotter=self.snapshotter, name=chain, key=key),
                    f"commit snapshot {chain}",
                )
            except Conflict:  # another load committed the same chain meanwhile
                self._discard(key)
        except BaseException:
            self._discard(key)
            raise
        with self._guard:
            self.applied += 1

    def _discard(self, key: str) -> None:
        request = message("SnapshotKeyRequest")(snapshotter=self.snapshotter, key=key)
        with contextlib.suppress(Exception):  # best effort: the lease holds it, and goes
            self._remove(request, f"remove snapshot {key}")


class UnpackQueue:
    """Images unpacked as soon as every layer of theirs is in the content store (while the
    other blobs are still being written), up to ``most`` at once."""

    def __init__(
        self, unpacker: Unpacker, nodes: list[ImageNode], present: set[Digest], most: int = 4
    ) -> None:
        self._unpacker = unpacker
        self._pool = ThreadPoolExecutor(max(1, min(most, len(nodes))), "containerd-unpack")
        self._lock = threading.Lock()
        self._waiting: list[tuple[ImageNode, set[Digest]]] = []
        self._started: list[tuple[ImageNode, Future[str | None]]] = []
        for node in nodes:
            self._waiting.append((node, {layer.digest for layer in node.manifest.layers}))
        self.arrived(*present)

    def arrived(self, *digests: Digest) -> None:
        """These blobs are in the store now: start the images that waited only for them."""
        with self._lock:
            for _, missing in self._waiting:
                missing.difference_update(digests)
            ready = [node for node, missing in self._waiting if not missing]
            self._waiting = [item for item in self._waiting if item[1]]
            for node in ready:
                self._started.append((node, self._pool.submit(self._unpacker.unpack, node)))

    def finish(self) -> list[tuple[ImageNode, str]]:
        """Every image unpacked (those still waiting started now): each with the chain ID
        of its top layer; the first failure is raised."""
        with self._lock:
            waiting = [node for node, _ in self._waiting]
        for node in waiting:
            self.arrived(*(layer.digest for layer in node.manifest.layers))
        done = [(node, future.result()) for node, future in self._started]
        self._pool.shutdown()
        return [(node, top) for node, top in done if top is not None]

    def cancel(self) -> None:
        """Stop: images not started are not; those being unpacked are waited for."""
        self._pool.shutdown(wait=True, cancel_futures=True)
