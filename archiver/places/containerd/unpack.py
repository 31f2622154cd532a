"""Unpacking an image into a containerd snapshotter, so that it can run at once.

Layer by layer, bottom up, as containerd's own clients do: a layer whose chain ID the
snapshotter holds is there already; otherwise an active snapshot is prepared on its
parent's chain, the Diff service applies the layer blob (from the content store) onto its
mounts and says the diff_id it found (checked against the config's), and the snapshot is
committed under the chain ID. A snapshot left active by a failure is removed.
"""

from __future__ import annotations

import contextlib
import secrets
import time

from archiver.errors import Conflict, InputError, IntegrityError, NotFound
from archiver.model.descriptor import Descriptor
from archiver.model.digest import chain_ids
from archiver.model.image import ImageNode
from archiver.places.containerd.client import ContainerdClient
from archiver.places.containerd.messages import message

_SNAPSHOTS = "snapshots.v1.Snapshots"
_PREFERRED = ("overlayfs", "native")
SNAPSHOTTER_PLUGIN = "io.containerd.snapshotter.v1"
UNCOMPRESSED = "containerd.io/uncompressed"


def snapshot_label(snapshotter: str) -> str:
    """The label of a config that keeps its image's unpacked snapshots from the collector."""
    return f"containerd.io/gc.ref.snapshot.{snapshotter}"


def choose_snapshotter(client: ContainerdClient, wanted: str | None = None) -> str:
    """``wanted`` if containerd has it loaded; else overlayfs, else native, else any."""
    loaded = [name for name, ok in client.plugins(SNAPSHOTTER_PLUGIN) if ok]
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
            if not self.holds(chain):
                self._apply_layer(layer, diff_id, chain, parent)
            parent = chain
        return parent or None

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
        self.applied += 1

    def _discard(self, key: str) -> None:
        request = message("SnapshotKeyRequest")(snapshotter=self.snapshotter, key=key)
        with contextlib.suppress(Exception):  # best effort: the lease holds it, and goes
            self._remove(request, f"remove snapshot {key}")
