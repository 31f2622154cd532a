"""An image as the engine sees it once its documents are read: a resolved image.

``ImageEntry`` is what a place lists (a manifest or index descriptor and its names);
``ResolvedImage`` is that entry with every document below it read and verified (indexes,
image manifests, configs); layers are only described. Pure values: reading documents is
the engine's work (``engine/graph.py``), moving bytes is ``engine/copy.py``'s.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from archiver.model import media
from archiver.model.descriptor import Descriptor
from archiver.model.digest import Digest
from archiver.model.documents import ImageConfig, Index, Manifest
from archiver.model.platform import Platform
from archiver.model.reference import Reference


@dataclass(frozen=True, slots=True)
class ImageEntry:
    """One top-level image a place holds: a manifest or an index, and its names.

    ``refs`` are full references (``docker.io/library/nginx:1.25``); ``tags`` are bare
    OCI layout names (``org.opencontainers.image.ref.name`` = ``v1``) that are not
    references. No refs and no tags: a dangling image. ``synthetic`` marks a manifest we
    made up for a docker-save entry that had none (its digest is not a real one).
    """

    descriptor: Descriptor
    refs: tuple[Reference, ...] = ()
    tags: tuple[str, ...] = ()
    synthetic: bool = False

    @property
    def dangling(self) -> bool:
        return not self.refs and not self.tags

    def merged(self, other: ImageEntry) -> ImageEntry:
        """The same image with both entries' names; a real manifest wins over a synthetic one."""
        refs = self.refs + tuple(r for r in other.refs if r not in self.refs)
        tags = self.tags + tuple(t for t in other.tags if t not in self.tags)
        kept = other if self.synthetic and not other.synthetic else self
        return ImageEntry(kept.descriptor, refs, tags, kept.synthetic)

    @property
    def label(self) -> str:
        """How to name this image in a message: its first name, else its digest."""
        if self.refs:
            return self.refs[0].familiar()
        if self.tags:
            return self.tags[0]
        return str(self.descriptor.digest)


@dataclass(frozen=True)
class ImageNode:
    """One platform image: a manifest, and its config when the config is an image config."""

    descriptor: Descriptor
    manifest: Manifest
    config: ImageConfig | None
    config_raw: bytes

    @property
    def platform(self) -> Platform | None:
        if self.config is not None:
            return self.config.platform
        return self.descriptor.platform


@dataclass
class ResolvedImage:
    """A top-level entry with its documents read: the indexes, the platform images below
    it that are present, and the children its indexes name that the place lacks."""

    entry: ImageEntry
    document: Manifest | Index
    images: list[ImageNode] = field(default_factory=list)
    indexes: list[Index] = field(default_factory=list)
    missing: list[Descriptor] = field(default_factory=list)

    @property
    def descriptor(self) -> Descriptor:
        """The image as its document says it is (own media type, exact bytes)."""
        return self.document.descriptor()

    def default_image(self, wanted: Platform | None = None) -> ImageNode | None:
        """The image ``docker images`` would show: the wanted (or host) platform, else the first."""
        images = [n for n in self.images if n.config is not None]
        if not images:
            return None
        for target in (wanted, Platform.host()):
            if target is None:
                continue
            for node in images:
                if node.platform is not None and node.platform.matches(target):
                    return node
        return images[0]

    def blobs(self) -> list[tuple[Descriptor, bytes | None]]:
        """Every blob once, children before parents: layers, configs, manifests, indexes.

        Documents come with their (already verified) bytes; layers with None.
        """
        seen: set[Digest] = set()
        out: list[tuple[Descriptor, bytes | None]] = []

        def once(descriptor: Descriptor, data: bytes | None) -> None:
            if descriptor.digest not in seen:
                seen.add(descriptor.digest)
                out.append((descriptor, data))

        for node in self.images:
            for layer in node.manifest.layers:
                once(layer, None)
        for node in self.images:
            once(node.manifest.config, node.config_raw)
        for node in self.images:
            once(node.manifest.descriptor(), node.manifest.raw)
        for index in reversed(self.indexes):
            once(index.descriptor(), index.raw)
        return out


def is_image(descriptor: Descriptor, manifest: Manifest) -> bool:
    """A runnable image, not an artifact: an image config, layers of layer types, no
    artifactType, and not one of the ``unknown/unknown`` attestation manifests build tools
    put in indexes."""
    if not media.is_image_config(manifest.config.media_type) or manifest.artifact_type:
        return False
    if not all(media.is_layer(layer.media_type) for layer in manifest.layers):
        return False
    platform = descriptor.platform
    return platform is None or (platform.os, platform.architecture) != ("unknown", "unknown")


def write_order(images: Sequence[ResolvedImage]) -> list[tuple[Descriptor, bytes | None]]:
    """Every blob of ``images`` once, in the order a writer puts them: layers first, the
    most shared ahead (base layers lead), then the documents children before parents
    (configs, manifests, indexes). Documents come with their bytes, layers with None."""
    users: Counter[Digest] = Counter()
    first: dict[Digest, tuple[Descriptor, bytes | None]] = {}
    for image in images:
        for descriptor, data in image.blobs():
            users[descriptor.digest] += 1
            first.setdefault(descriptor.digest, (descriptor, data))
    blobs = list(first.values())
    layers = [b for b in blobs if b[1] is None]
    layers.sort(key=lambda b: -users[b[0].digest])  # stable: ties keep first-seen order
    return layers + [b for b in blobs if b[1] is not None]
