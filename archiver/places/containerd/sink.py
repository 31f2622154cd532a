"""containerd as a sink: blobs into its content store, images unpacked and named.

In ``begin`` a lease is taken and the content store is asked, blob by blob, what it holds
(its digests are the sink's ``Holdings``; those blobs are held by the lease too, and never
sent); the documents it lacks are written then, with the labels that make the collector
keep what they name. Blobs are written under the lease. At ``commit``, once every blob is
there: the documents it held are labelled too, each image is unpacked into the
snapshotter, its config labelled with its snapshot, and only then are the image records
created with their full names; the lease goes last. ``abort`` lets the lease go: what was
written and not recorded is collected, and no image record points at missing content.
Blobs are written several at once (the engine's threads); an image is unpacked as soon as
its layers are in, while other blobs are still written, several at once (see ``unpack``).
"""

from __future__ import annotations

import contextlib
import io
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import BinaryIO, ClassVar

from archiver.errors import InputError
from archiver.model import media
from archiver.model.descriptor import Descriptor
from archiver.model.digest import Digest
from archiver.model.holdings import Holdings
from archiver.model.image import ImageNode, ResolvedImage
from archiver.model.platform import Platform
from archiver.model.reference import Reference
from archiver.places.base import Sink
from archiver.places.containerd import leases
from archiver.places.containerd.client import ContainerdClient
from archiver.places.containerd.content import ContentStore
from archiver.places.containerd.images import ImageStore, document_labels
from archiver.places.containerd.unpack import (
    UNCOMPRESSED,
    Unpacker,
    UnpackQueue,
    snapshot_label,
)

_AT_ONCE = 8
"""Questions about blobs, and documents written, at once."""


class ContainerdSink(Sink):
    """Load images into containerd's ``client`` namespace, unpacked into ``snapshotter``;
    with ``name``, the one image is named that instead of its own names."""

    parallel: ClassVar[bool] = True

    def __init__(
        self, client: ContainerdClient, snapshotter: str, name: Reference | None = None
    ) -> None:
        self.origin = client.origin
        self._client = client
        self._content = ContentStore(client)
        self._images = ImageStore(client)
        self._unpacker = Unpacker(client, snapshotter)
        self._name = name
        self._roots: list[ResolvedImage] = []
        self.holdings = Holdings()
        """What the content store held of the images' blobs when the load began."""
        self.written = 0
        """Blobs sent (not held already by the namespace nor by another one)."""
        self.loaded: list[str] = []
        self._lock = threading.Lock()
        self._unpacks: UnpackQueue | None = None
        self._documents: set[Digest] = set()
        """Documents written in ``begin`` (labelled as they were)."""

    def begin(self, images: list[ResolvedImage]) -> None:
        if self._name is not None and len(images) != 1:
            raise InputError(
                f"{self.origin}: one name for {len(images)} images: name one image only"
            )
        nameless = [root.entry.label for root in images if not root.entry.refs]
        if self._name is None and nameless:
            raise InputError(
                f"{self.origin}: an image needs a full name in containerd: "
                f"{', '.join(nameless[:4])} has none (give one with --tag)"
            )
        self._roots = images
        leases.create(self._client)
        blobs = {d.digest: (d, data) for root in images for d, data in root.blobs()}
        with ThreadPoolExecutor(_AT_ONCE, "containerd-begin") as pool:
            found = list(pool.map(self._content.has, blobs))
            held = [digest for digest, there in zip(blobs, found, strict=True) if there]
            list(pool.map(lambda digest: leases.hold(self._client, digest), held))
            self.holdings = Holdings(blobs=frozenset(str(digest) for digest in held))
            # the documents, with the labels that keep what they name (the engine then
            # skips them, as it does a tar sink's head)
            labels = document_labels(images)
            documents = [(d, data) for d, data in blobs.values() if data is not None]
            missing = [(d, data) for d, data in documents if not self.has(d)]
            list(pool.map(lambda doc: self._put_document(doc[0], doc[1], labels), missing))
        nodes = {n.manifest.digest: n for root in images for n in _to_unpack(root)}
        self._unpacks = UnpackQueue(self._unpacker, list(nodes.values()), set(held))

    def _put_document(
        self, descriptor: Descriptor, data: bytes, labels: dict[Digest, dict[str, str]]
    ) -> None:
        mine = labels.get(descriptor.digest, {})
        if not self._content.write(descriptor, io.BytesIO(data), mine):
            self._content.label(descriptor.digest, mine)  # another load wrote it meanwhile
        with self._lock:
            self._documents.add(descriptor.digest)

    def has(self, descriptor: Descriptor) -> bool:
        return str(descriptor.digest) in self.holdings.blobs or descriptor.digest in self._documents

    def put_blob(self, descriptor: Descriptor, stream: BinaryIO) -> None:
        if self._content.write(descriptor, stream):
            with self._lock:
                self.written += 1
        assert self._unpacks is not None
        self._unpacks.arrived(descriptor.digest)

    def commit(self) -> None:
        for digest, labels in document_labels(self._roots).items():
            if digest not in self._documents:  # held already: labelled now
                self._content.label(digest, labels)
        assert self._unpacks is not None
        for node, top in self._unpacks.finish():
            self._label_unpacked(node, top)
        for root in self._roots:
            names = [self._name] if self._name is not None else list(root.entry.refs)
            for ref in names:
                self._images.put(str(ref), root.descriptor)
                self.loaded.append(f"Loaded image: {ref}")
        leases.release(self._client)

    def _label_unpacked(self, node: ImageNode, top: str) -> None:
        assert node.config is not None
        for layer, diff_id in zip(node.manifest.layers, node.config.diff_ids, strict=True):
            if layer.digest != diff_id:  # compressed: containerd keeps what it unpacks to
                self._content.label(layer.digest, {UNCOMPRESSED: str(diff_id)})
        label = snapshot_label(self._unpacker.snapshotter)
        self._content.label(node.manifest.config.digest, {label: top})

    def abort(self) -> None:
        if self._unpacks is not None:
            self._unpacks.cancel()
        # the lease expires by itself; the first error is the one to tell
        with contextlib.suppress(Exception):
            leases.release(self._client)


def _to_unpack(root: ResolvedImage) -> list[ImageNode]:
    """The platform images a node runs: the host's (all of an index's host images), or the
    one image a single manifest is."""
    images = [node for node in root.images if node.config is not None]
    if media.is_manifest(root.document.media_type):
        return images
    host = Platform.host()
    return [n for n in images if n.platform is not None and n.platform.matches(host)]
