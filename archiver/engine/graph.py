"""From a top-level entry to the graph below it: indexes, manifests, configs, layers.

Documents are small and read whole (capped, verified); layers are only described here and
streamed later by the copy engine. An image is resolved once per source and platform
filter, and within one command each document once by digest (``places.read_once``):
catalog, merge, copy and rewrite share what was read.
"""

from __future__ import annotations

import threading
import weakref
from dataclasses import dataclass

from archiver.blobs import limits
from archiver.errors import InputError, IntegrityError, NotFound
from archiver.model import media
from archiver.model.descriptor import Descriptor
from archiver.model.digest import Digest
from archiver.model.documents import ImageConfig, Index, Manifest, parse_document
from archiver.model.image import ImageEntry, ImageNode, ResolvedImage, is_image
from archiver.model.platform import Platform
from archiver.places.base import Source, read_document


@dataclass(frozen=True)
class _Graph:
    """What resolving found below one descriptor (the entry's names apart)."""

    document: Manifest | Index
    images: tuple[ImageNode, ...]
    indexes: tuple[Index, ...]
    missing: tuple[Descriptor, ...]


_Key = tuple[Digest, tuple[str, ...] | None]
_resolved: weakref.WeakKeyDictionary[Source, dict[_Key, _Graph]] = weakref.WeakKeyDictionary()
_lock = threading.Lock()


def resolve(
    source: Source, entry: ImageEntry, platforms: list[Platform] | None = None
) -> ResolvedImage:
    """Read the documents below ``entry``; keep only ``platforms`` (all when None). The
    documents of an entry are read once per source: a second resolve of the same image
    (under other names, say) reuses them."""
    key: _Key = (
        entry.descriptor.digest,
        None if platforms is None else tuple(str(p) for p in platforms),
    )
    with _lock:
        known = _resolved.setdefault(source, {})
        graph = known.get(key)
    if graph is None:
        graph = _resolve(source, entry, platforms)
        with _lock:
            known[key] = graph
    return ResolvedImage(
        entry, graph.document, list(graph.images), list(graph.indexes), list(graph.missing)
    )


def _resolve(source: Source, entry: ImageEntry, platforms: list[Platform] | None) -> _Graph:
    document = _read_document(source, entry.descriptor)
    walk = _Walk(source, platforms, entry.label)
    walk.visit(entry.descriptor, document, depth=0, ancestors=frozenset())
    if platforms and not walk.images:
        wanted = ", ".join(str(p) for p in platforms)
        offered = sorted(
            {
                str(child.platform)
                for index in walk.indexes
                for child in index.manifests
                if child.platform
            }
        )
        has = f" (it has {', '.join(offered)})" if offered else ""
        raise NotFound(f"{source.origin}: {entry.label} has no image for platform {wanted}{has}")
    return _Graph(document, tuple(walk.images), tuple(walk.indexes), tuple(walk.missing))


def _read_document(source: Source, descriptor: Descriptor) -> Manifest | Index:
    raw = read_document(source, descriptor)
    return parse_document(raw, f"{source.origin}: {descriptor.digest}", descriptor.media_type)


class _Walk:
    """One walk down from an entry: every document visited once, however many indexes
    name it (a hostile index fanning out to one child many times over costs one read),
    and the documents below one entry capped in number and in bytes."""

    def __init__(self, source: Source, platforms: list[Platform] | None, label: str) -> None:
        self.source = source
        self.platforms = platforms
        self.label = label
        self.images: list[ImageNode] = []
        self.indexes: list[Index] = []
        self.missing: list[Descriptor] = []
        self.visited: set[Digest] = set()
        self.size = 0

    def count(self, descriptor: Descriptor) -> None:
        if descriptor.digest in self.visited:
            return
        self.visited.add(descriptor.digest)
        self.size += descriptor.size
        origin = self.source.origin
        if len(self.visited) > limits.MAX_DOCUMENTS:
            raise InputError(
                f"{origin}: {self.label} refers to more than {limits.MAX_DOCUMENTS} documents"
            )
        if self.size > limits.MAX_DOCUMENTS_SIZE:
            raise InputError(
                f"{origin}: {self.label} refers to documents of more than "
                f"{limits.MAX_DOCUMENTS_SIZE} bytes in all"
            )

    def visit(
        self,
        descriptor: Descriptor,
        document: Manifest | Index,
        depth: int,
        ancestors: frozenset[Digest],
    ) -> None:
        origin = self.source.origin
        if descriptor.digest in ancestors:
            raise InputError(f"{origin}: index {descriptor.digest} refers to itself (a cycle)")
        if depth > limits.MAX_INDEX_DEPTH:
            raise InputError(f"{origin}: indexes nested deeper than {limits.MAX_INDEX_DEPTH}")
        self.count(descriptor)
        if isinstance(document, Manifest):
            self.count(document.config)
            self.images.append(_image_node(self.source, descriptor, document))
            return
        self.indexes.append(document)
        below = ancestors | {descriptor.digest}
        for child in document.manifests:
            if child.digest in below:
                raise InputError(f"{origin}: index {child.digest} refers to itself (a cycle)")
            if child.digest in self.visited or not _wanted(child, self.platforms):
                continue
            if not self.source.has_blob(child.digest):
                self.missing.append(child)
                self.visited.add(child.digest)
                continue
            child_doc = _read_document(self.source, child)
            self.visit(child, child_doc, depth + 1, below)


def _wanted(child: Descriptor, platforms: list[Platform] | None) -> bool:
    """Keep a child of an index unless a platform filter says otherwise (indexes always)."""
    if platforms is None or child.platform is None or media.is_index(child.media_type):
        return True
    return any(child.platform.matches(p) for p in platforms)


def _image_node(source: Source, descriptor: Descriptor, manifest: Manifest) -> ImageNode:
    origin = f"{source.origin}: {descriptor.digest}"
    config_raw = read_document(source, manifest.config)
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
