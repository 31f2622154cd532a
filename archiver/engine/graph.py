"""From a top-level entry to the graph below it: indexes, manifests, configs, layers.

Documents are small and read whole (capped, verified); layers are only described here and
streamed later by the copy engine.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from archiver.blobs import limits
from archiver.blobs.verify import VerifyingReader
from archiver.errors import InputError, IntegrityError, NotFound
from archiver.model import media
from archiver.model.descriptor import Descriptor
from archiver.model.digest import Digest
from archiver.model.documents import ImageConfig, Index, Manifest, parse_document
from archiver.model.platform import Platform
from archiver.places.base import ImageEntry, Source


def read_blob(source: Source, descriptor: Descriptor, limit: int = limits.MAX_DOCUMENT) -> bytes:
    """Read a small blob whole, verified against its descriptor and capped at ``limit``."""
    if descriptor.size > limit:
        raise InputError(
            f"{source.origin}: blob {descriptor.digest}: {descriptor.size} bytes is over the "
            f"{limit}-byte limit for a document"
        )
    with VerifyingReader(
        source.open_blob(descriptor.digest), descriptor.digest, descriptor.size, source.origin
    ) as reader:
        chunks = []
        while chunk := reader.read(limits.COPY_CHUNK):
            chunks.append(chunk)
    return b"".join(chunks)


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
class Root:
    """A top-level entry resolved: its document and everything below it that is present."""

    entry: ImageEntry
    document: Manifest | Index
    images: list[ImageNode] = field(default_factory=list)
    indexes: list[Index] = field(default_factory=list)
    missing: list[Descriptor] = field(default_factory=list)

    @property
    def descriptor(self) -> Descriptor:
        """The root as its document says it is (own media type, exact bytes)."""
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

    def blobs(self) -> Iterator[tuple[Descriptor, bytes | None]]:
        """Every blob once, children before parents: layers, configs, manifests, indexes.

        Documents come with their (already verified) bytes; layers with None.
        """
        seen: set[Digest] = set()

        def once(
            items: Iterable[tuple[Descriptor, bytes | None]],
        ) -> Iterator[tuple[Descriptor, bytes | None]]:
            for desc, data in items:
                if desc.digest not in seen:
                    seen.add(desc.digest)
                    yield desc, data

        for node in self.images:
            yield from once((layer, None) for layer in node.manifest.layers)
        for node in self.images:
            yield from once([(node.manifest.config, node.config_raw)])
        for node in self.images:
            yield from once([(node.manifest.descriptor(), node.manifest.raw)])
        for index in reversed(self.indexes):
            yield from once([(index.descriptor(), index.raw)])


def resolve(source: Source, entry: ImageEntry, platforms: list[Platform] | None = None) -> Root:
    """Read the documents below ``entry``; keep only ``platforms`` (all when None)."""
    document = _read_document(source, entry.descriptor)
    root = Root(entry, document)
    _walk(
        source, entry.descriptor, document, platforms, root, depth=0, seen=set(), visits=_Visits()
    )
    if platforms and not root.images:
        wanted = ", ".join(str(p) for p in platforms)
        offered = sorted(
            {
                str(child.platform)
                for index in root.indexes
                for child in index.manifests
                if child.platform
            }
        )
        has = f" (it has {', '.join(offered)})" if offered else ""
        raise NotFound(f"{source.origin}: {entry.label} has no image for platform {wanted}{has}")
    return root


def _read_document(source: Source, descriptor: Descriptor) -> Manifest | Index:
    raw = read_blob(source, descriptor)
    return parse_document(raw, f"{source.origin}: {descriptor.digest}", descriptor.media_type)


@dataclass
class _Visits:
    """The documents walked below one root, and their bytes: both capped."""

    digests: set[Digest] = field(default_factory=set)
    size: int = 0

    def add(self, descriptor: Descriptor, origin: str, label: str) -> None:
        if descriptor.digest in self.digests:
            return
        self.digests.add(descriptor.digest)
        self.size += descriptor.size
        if len(self.digests) > limits.MAX_DOCUMENTS:
            raise InputError(
                f"{origin}: {label} refers to more than {limits.MAX_DOCUMENTS} documents"
            )
        if self.size > limits.MAX_DOCUMENTS_SIZE:
            raise InputError(
                f"{origin}: {label} refers to documents of more than "
                f"{limits.MAX_DOCUMENTS_SIZE} bytes in all"
            )


def _walk(
    source: Source,
    descriptor: Descriptor,
    document: Manifest | Index,
    platforms: list[Platform] | None,
    root: Root,
    depth: int,
    seen: set[Digest],
    visits: _Visits,
) -> None:
    """``seen``: the indexes above this one (a cycle); ``visits``: every document walked
    for this root, each walked once however many indexes list it (a fan-out)."""
    if descriptor.digest in seen:
        raise InputError(f"{source.origin}: index {descriptor.digest} refers to itself (a cycle)")
    if depth > limits.MAX_INDEX_DEPTH:
        raise InputError(f"{source.origin}: indexes nested deeper than {limits.MAX_INDEX_DEPTH}")
    visits.add(descriptor, source.origin, root.entry.label)
    if isinstance(document, Manifest):
        visits.add(document.config, source.origin, root.entry.label)
    seen = seen | {descriptor.digest}
    if isinstance(document, Manifest):
        root.images.append(_image_node(source, descriptor, document))
        return
    root.indexes.append(document)
    for child in document.manifests:
        if not _wanted(child, platforms):
            continue
        if child.digest in visits.digests and child.digest not in seen:
            continue  # walked already through another index
        if not source.has_blob(child.digest):
            root.missing.append(child)
            continue
        child_doc = _read_document(source, child)
        _walk(source, child, child_doc, platforms, root, depth + 1, seen, visits)


def _wanted(child: Descriptor, platforms: list[Platform] | None) -> bool:
    """Keep a child of an index unless a platform filter says otherwise (indexes always)."""
    if platforms is None or child.platform is None or media.is_index(child.media_type):
        return True
    return any(child.platform.matches(p) for p in platforms)


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


def _image_node(source: Source, descriptor: Descriptor, manifest: Manifest) -> ImageNode:
    origin = f"{source.origin}: {descriptor.digest}"
    config_raw = read_blob(source, manifest.config)
    if not is_image(descriptor, manifest):
        return ImageNode(descriptor, manifest, None, config_raw)
    config = ImageConfig.parse(
        config_raw, f"{source.origin}: {manifest.config.digest}", manifest.config.media_type
    )
    diff_ids = config.diff_ids
    if len(diff_ids) != len(manifest.layers):
        raise InputError(
            f"{origin}: manifest has {len(manifest.layers)} layers, its config "
            f"{manifest.config.digest} lists {len(diff_ids)} diff_ids"
        )
    for layer, diff_id in zip(manifest.layers, diff_ids, strict=True):
        plain = (
            media.is_layer(layer.media_type) and media.layer_compression(layer.media_type) is None
        )
        if plain and layer.digest != diff_id:
            raise IntegrityError(
                source.origin,
                str(layer.digest),
                f"uncompressed layer does not match the config's diff_id {diff_id}",
            )
    return ImageNode(descriptor, manifest, config, config_raw)
