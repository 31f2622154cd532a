"""Push compresses like docker: a Sink adapter in front of a registry repository.

Layers the source holds as plain tars are compressed on their way to the registry (gzip
by default, or zstd) with ``blobs.block_compress``: in parallel and deterministically, so
the same layer compressed here or on another machine has the same digest and a registry
that has it answers the HEAD. The compressed bytes are spooled to a temporary file (never
held in memory), hashed as they are written, then handed to the registry sink as an
ordinary blob (looked up, mounted or uploaded, resumable). ``LayerMap`` remembers what each
diff_id became, so a re-push asks for it at once and compresses nothing.

When every blob is there, the documents are rewritten: each manifest's plain layer
descriptors become the compressed ones (media type, digest, size; every other field kept),
indexes name the rewritten manifests; configs, hence image IDs, are unchanged. zstd in a
Docker schema 2 manifest has no media type, so such a manifest becomes an OCI one (its
config and layer types mapped), as BuildKit does. Layers already compressed go as they are,
and so does every image that signatures or referrers name (``keep``): their subject's
digest must stay what it is, or they would name a manifest the registry never gets.
"""

from __future__ import annotations

import threading
from typing import BinaryIO, cast

from archiver.blobs.block_compress import BlockOptions, compress
from archiver.engine.extras import subjects
from archiver.engine.layer_map import LayerMap
from archiver.engine.push_ahead import Ahead, Spool
from archiver.errors import PeerError
from archiver.model import media
from archiver.model.descriptor import Descriptor
from archiver.model.digest import Digest
from archiver.model.documents import Index, Manifest, dump_json, parse_document
from archiver.model.image import ImageNode, ResolvedImage
from archiver.model.json_decode import load_json
from archiver.places.base import Opener, Sink
from archiver.places.registry.locations import BlobLocations
from archiver.places.registry.place import RegistrySink

_GZIP_TYPE = {media.DOCKER_LAYER_TAR: media.DOCKER_LAYER_GZIP}
_TO_OCI = {
    media.DOCKER_MANIFEST: media.OCI_MANIFEST,
    media.DOCKER_CONFIG: media.OCI_CONFIG,
    media.DOCKER_LAYER_TAR: media.OCI_LAYER_TAR,
    media.DOCKER_LAYER_GZIP: media.OCI_LAYER_GZIP,
    media.DOCKER_LAYER_ZSTD: media.OCI_LAYER_ZSTD,
    media.DOCKER_LAYER_FOREIGN_TAR: media.OCI_LAYER_FOREIGN_TAR,
    media.DOCKER_LAYER_FOREIGN_GZIP: media.OCI_LAYER_FOREIGN_GZIP,
}


def compressed_type(kind: str, plain_type: str) -> str:
    """The media type of a plain layer of ``plain_type`` once compressed with ``kind``."""
    if kind == "gzip":
        return _GZIP_TYPE.get(plain_type, media.OCI_LAYER_GZIP)
    return media.OCI_LAYER_ZSTD


class CompressingSink(Sink):
    """``inner`` (a registry repository) fed plain layers compressed with ``options``."""

    parallel = True

    def __init__(
        self,
        inner: RegistrySink,
        options: BlockOptions,
        layers: LayerMap,
        locations: BlobLocations,
        keep: frozenset[Digest] = frozenset(),
        ahead: Ahead | None = None,
    ) -> None:
        self._inner = inner
        self._ahead = ahead
        self._keep = keep
        self._as_is: set[Digest] = set()
        """Plain layers a kept image needs as they are (perhaps compressed for another)."""
        self._options = options
        self._kind = options.kind
        self._layers = layers
        self._locations = locations
        self.origin = inner.origin
        self._roots: list[ResolvedImage] = []
        self._plain: set[Digest] = set()
        self._became: dict[Digest, Descriptor] = {}
        self._lock = threading.Lock()
        self.compressed = 0
        """Layers compressed by this push (not found by the map)."""

    def begin(self, roots: list[ResolvedImage]) -> None:
        self._roots = roots
        for root in roots:
            chosen = self._as_is if _kept(root, self._keep) else self._plain
            chosen.update(layer.digest for layer in _plain_layers(root))
        self._inner.begin(roots)

    def has(self, descriptor: Descriptor) -> bool:
        if descriptor.digest in self._as_is and not self._inner.has(descriptor):
            return False
        if descriptor.digest not in self._plain:
            return self._inner.has(descriptor)
        if descriptor.digest in self._became:
            return True
        known = self._layers.get(self._kind, descriptor.digest)
        if known is not None and self._inner.has(known):
            self._became[descriptor.digest] = known
            if self._inner.turn is not None:  # found compressed: the next one goes on
                self._locations.passed(str(descriptor.digest), self._inner.turn)
            return True
        return False

    def put_blob(self, descriptor: Descriptor, stream: BinaryIO) -> None:
        self.put_blob_from(descriptor, lambda: stream)

    def put_blob_from(self, descriptor: Descriptor, opener: Opener) -> None:
        if descriptor.digest in self._as_is or descriptor.digest not in self._plain:
            self._inner.put_blob_from(descriptor, opener)
        if descriptor.digest not in self._plain:
            return
        # one repository at a time compresses and sends a layer; the others then mount it
        with self._locations.sending(str(descriptor.digest), self._inner.turn):
            self._compressed_into_inner(descriptor, opener)

    def _compressed_into_inner(self, descriptor: Descriptor, opener: Opener) -> None:
        known = self._layers.get(self._kind, descriptor.digest)
        taken = self._ahead.take(descriptor.digest) if self._ahead is not None else None
        with taken or Spool() as spool:
            if known is not None and self._locations.find(known.digest, self._inner.repository):
                # another repository has it: mounted, compressed only if the mount fails
                def lazily() -> BinaryIO:
                    if spool.result is None:
                        self._compress(descriptor, opener, spool)
                    return spool.reader(known)

                self._inner.put_blob_from(known, lazily)
                compressed = known
            else:
                compressed = spool.result or self._compress(descriptor, opener, spool)
                if not self._inner.has(compressed):  # pushed from elsewhere: HEAD finds it
                    self._inner.put_blob_from(compressed, lambda: spool.reader(compressed))
        self._layers.add(self._kind, descriptor.digest, compressed)
        self._became[descriptor.digest] = compressed

    def _compress(self, plain: Descriptor, opener: Opener, spool: Spool) -> Descriptor:
        result = compress_layer(plain, opener, spool, self._options)
        with self._lock:
            self.compressed += 1
        return result

    def commit(self) -> None:
        roots = [self._rewrite(root) for root in self._roots]
        self._inner.begin(roots)
        try:
            self._inner.commit()
        except PeerError as exc:
            if self._kind != "zstd":
                raise
            raise PeerError(
                f"{exc} (the registry may not take zstd layers: push with --compress gzip)"
            ) from None

    def abort(self) -> None:
        self._inner.abort()

    # -- documents ---------------------------------------------------------------------------

    def _rewrite(self, root: ResolvedImage) -> ResolvedImage:
        if _kept(root, self._keep):
            return root
        renamed: dict[Digest, Descriptor] = {}
        images = []
        for node in root.images:
            new = self._rewrite_manifest(node)
            if new is not node:
                renamed[node.descriptor.digest] = new.descriptor
            images.append(new)
        indexes: list[Index] = list(root.indexes)
        for i in reversed(range(len(indexes))):  # children before parents
            index = indexes[i]
            new_index = _rewrite_index(index, renamed)
            if new_index is not index:
                renamed[index.digest] = new_index.descriptor()
                indexes[i] = new_index
        document: Manifest | Index
        if isinstance(root.document, Manifest):
            document = images[0].manifest if images else root.document
        else:
            document = indexes[0] if indexes else root.document
        return ResolvedImage(root.entry, document, images, indexes, root.missing)

    def _rewrite_manifest(self, node: ImageNode) -> ImageNode:
        manifest = node.manifest
        if not any(layer.digest in self._became for layer in manifest.layers):
            return node
        data = load_json(manifest.raw, str(manifest.digest))
        to_oci = self._kind == "zstd" and media.is_docker(manifest.media_type)
        for item in data["layers"]:
            became = self._became.get(Digest.parse(item["digest"]))
            if became is not None and _is_plain(Descriptor.from_json(item)):
                item["mediaType"] = compressed_type(self._kind, item.get("mediaType", ""))
                item["digest"] = str(became.digest)
                item["size"] = became.size
            elif to_oci:
                item["mediaType"] = _TO_OCI.get(item["mediaType"], item["mediaType"])
        if to_oci:
            data["mediaType"] = media.OCI_MANIFEST
            data["config"]["mediaType"] = _TO_OCI.get(
                data["config"]["mediaType"], data["config"]["mediaType"]
            )
        raw = dump_json(data)
        new = cast(Manifest, parse_document(raw, f"{self.origin}: rewritten {manifest.digest}"))
        descriptor = _renamed(node.descriptor, new.descriptor())
        return ImageNode(descriptor, new, node.config, node.config_raw)


def compress_layer(
    plain: Descriptor, opener: Opener, spool: Spool, options: BlockOptions
) -> Descriptor:
    """Compress the plain layer ``opener`` gives (verified as it is read) into ``spool``."""
    with opener() as stream:
        result = compress(stream, spool.file, options)
    spool.file.flush()
    media_type = compressed_type(options.kind, plain.media_type)
    spool.result = Descriptor(media_type, Digest.parse(f"sha256:{result.sha256}"), result.size)
    return spool.result


def _rewrite_index(index: Index, renamed: dict[Digest, Descriptor]) -> Index:
    if not any(child.digest in renamed for child in index.manifests):
        return index
    data = load_json(index.raw, str(index.digest))
    for item in data["manifests"]:
        became = renamed.get(Digest.parse(item["digest"]))
        if became is not None:
            item.update(mediaType=became.media_type, digest=str(became.digest), size=became.size)
    return cast(Index, parse_document(dump_json(data), f"rewritten {index.digest}"))


def _renamed(old: Descriptor, new: Descriptor) -> Descriptor:
    return Descriptor(
        new.media_type,
        new.digest,
        new.size,
        old.platform,
        dict(old.annotations),
        old.urls,
        old.artifact_type,
    )


def to_compress(roots: list[ResolvedImage], keep: frozenset[Digest]) -> list[Descriptor]:
    """The plain layers of ``roots`` a push compresses (those of images ``keep`` names go
    as they are), in the order of the manifests."""
    return [layer for root in roots if not _kept(root, keep) for layer in _plain_layers(root)]


def _kept(root: ResolvedImage, keep: frozenset[Digest]) -> bool:
    return any(digest in keep for digest in subjects(root))


def _plain_layers(root: ResolvedImage) -> list[Descriptor]:
    return [layer for node in root.images for layer in node.manifest.layers if _is_plain(layer)]


def _is_plain(layer: Descriptor) -> bool:
    return (
        media.is_layer(layer.media_type)
        and not media.is_foreign(layer.media_type)
        and media.layer_compression(layer.media_type) is None
    )
