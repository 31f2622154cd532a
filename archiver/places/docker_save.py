"""The docker-save layout: ``manifest.json`` (Config, RepoTags, Layers[, LayerSources]).

Legacy archives (docker ≤ 24, skopeo, podman) have no manifests; each entry becomes a
synthetic OCI manifest, as Docker ≥ 25 itself writes them, so the rest of archiver sees one
model. Its digest is ours, not the image's: entries are marked ``synthetic``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from archiver.blobs import compression, limits
from archiver.blobs.tree import Tree, normalise_name
from archiver.errors import InputError, IntegrityError, NotFound
from archiver.model import media
from archiver.model.descriptor import Descriptor
from archiver.model.digest import Digest
from archiver.model.documents import ImageConfig, dump_json
from archiver.model.image import ImageEntry
from archiver.model.reference import Reference
from archiver.places.oci_layout import read_json
from archiver.places.read_once import read_verified

MANIFEST_FILE = "manifest.json"
_BLOB_PATH = re.compile(r"blobs/(sha256|sha512)/([0-9a-f]+)")
_LAYER_TYPE = {
    None: media.OCI_LAYER_TAR,
    "gzip": media.OCI_LAYER_GZIP,
    "zstd": media.OCI_LAYER_ZSTD,
}


@dataclass(frozen=True)
class SaveItem:
    """One entry of ``manifest.json`` with its config read (small); layers not touched yet."""

    where: str
    config_path: str
    config_raw: bytes
    config: ImageConfig
    refs: tuple[Reference, ...]
    layer_paths: tuple[str, ...]
    layer_sources: dict[str, Any]

    @property
    def config_digest(self) -> Digest:
        return self.config.digest


@dataclass
class Blobs:
    """Where the blobs of synthetic entries live: documents in memory, layers by path."""

    paths: dict[Digest, str] = field(default_factory=dict)
    documents: dict[Digest, bytes] = field(default_factory=dict)


def read_items(tree: Tree) -> list[SaveItem]:
    """The entries of ``manifest.json``, configs read and checked, layers not opened."""
    items = read_json(tree, MANIFEST_FILE, "docker-save-manifest")
    assert isinstance(items, list)  # the schema says so
    for i, item in enumerate(items):
        _check_paths(tree, item, f"{tree.origin}: {MANIFEST_FILE}[{i}]")
    return [
        _read_item(tree, item, f"{tree.origin}: {MANIFEST_FILE}[{i}]")
        for i, item in enumerate(items)
    ]


def _check_paths(tree: Tree, item: dict[str, Any], where: str) -> None:
    """Refuse an unsafe path anywhere in the entry, used or not (a hybrid archive's images
    come from index.json, but a docker load of it would follow these)."""
    named = [("Config", item["Config"])]
    named += [(f"Layers[{j}]", path) for j, path in enumerate(item["Layers"])]
    named += [(f"LayerSources[{key!r}]", key) for key in item.get("LayerSources") or {}]
    for field_name, path in named:
        normalise_name(path, f"{where}: {field_name}")
        tree.exists(path)  # a link in a directory that leaves it is refused here


def _read_item(tree: Tree, item: dict[str, Any], where: str) -> SaveItem:
    config_path = item["Config"]
    origin = f"{tree.origin}: {config_path}"
    named = _BLOB_PATH.fullmatch(config_path)
    path_digest = Digest(named.group(1), named.group(2)) if named else None
    if path_digest is not None and tree.exists(config_path):  # read once per command
        described = Descriptor(media.OCI_CONFIG, path_digest, tree.size(config_path))
        config_raw = read_verified(described, lambda: tree.open(config_path), tree.origin)
    else:
        with tree.open(config_path) as stream:
            config_raw = limits.read_capped(stream, limits.MAX_DOCUMENT, origin)
    config = ImageConfig.parse(config_raw, origin, media.OCI_CONFIG)
    if path_digest is not None and path_digest != config.digest:
        raise IntegrityError(
            tree.origin,
            str(path_digest),
            f"digest mismatch: got {config.digest} for {config_path}",
        )
    if len(item["Layers"]) != len(config.diff_ids):
        raise InputError(
            f"{where}: lists {len(item['Layers'])} layers, its config {config.digest} "
            f"lists {len(config.diff_ids)} diff_ids"
        )
    refs = []
    for tag in item.get("RepoTags") or []:
        try:
            refs.append(Reference.parse(tag))
        except InputError as exc:
            raise InputError(f"{where}: RepoTags: {exc}") from None
    return SaveItem(
        where,
        config_path,
        config_raw,
        config,
        tuple(refs),
        tuple(item["Layers"]),
        dict(item.get("LayerSources") or {}),
    )


def synthesize(tree: Tree, item: SaveItem, blobs: Blobs) -> ImageEntry:
    """An entry with a synthetic OCI manifest for ``item``; its blobs are noted in ``blobs``."""
    layers = []
    for path, diff_id in zip(item.layer_paths, item.config.diff_ids, strict=True):
        desc = _layer_descriptor(
            tree, path, diff_id, item.layer_sources.get(str(diff_id)), item.where
        )
        layers.append(desc)
        if tree.exists(path):
            blobs.paths.setdefault(desc.digest, path)
    config_desc = Descriptor(media.OCI_CONFIG, item.config_digest, len(item.config_raw))
    blobs.paths.setdefault(item.config_digest, item.config_path)
    blobs.documents[item.config_digest] = item.config_raw
    manifest_raw = dump_json(
        {
            "schemaVersion": 2,
            "mediaType": media.OCI_MANIFEST,
            "config": config_desc.to_json(),
            "layers": [layer.to_json() for layer in layers],
        }
    )
    manifest_digest = Digest.from_bytes(manifest_raw)
    blobs.documents[manifest_digest] = manifest_raw
    descriptor = Descriptor(
        media.OCI_MANIFEST, manifest_digest, len(manifest_raw), platform=item.config.platform
    )
    return ImageEntry(descriptor, item.refs, synthetic=True)


def _layer_descriptor(
    tree: Tree, path: str, diff_id: Digest, declared: dict[str, Any] | None, where: str
) -> Descriptor:
    """Describe one layer file: from its blobs/ name or its bytes; LayerSources only for
    foreign layers, as docker load does (other entries describe the registry's copy, which
    may be compressed while the archive holds the plain tar)."""
    if declared is not None:
        source = Descriptor.from_json(declared, f"{where}: LayerSources[{diff_id}]")
        if media.is_foreign(source.media_type):
            return source
    if not tree.exists(path):
        raise NotFound(f"{tree.origin}: {path}: layer named by {MANIFEST_FILE} is missing")
    size = tree.size(path)
    with tree.open(path) as stream:
        kind = compression.sniff(stream.read(compression.MAGIC_LENGTH))
    if kind not in _LAYER_TYPE:
        raise InputError(f"{tree.origin}: {path}: layers compressed with {kind} are not supported")
    named = _BLOB_PATH.fullmatch(path)
    if named:
        digest = Digest(named.group(1), named.group(2))
    elif kind is None:
        digest = diff_id  # an uncompressed layer is its own diff: verified as it is read
    else:
        digest = _hash_member(tree, path)
    return Descriptor(_LAYER_TYPE[kind], digest, size)


def _hash_member(tree: Tree, path: str) -> Digest:
    hasher = Digest.from_bytes(b"").hasher()
    with tree.open(path) as stream:
        while chunk := stream.read(limits.COPY_CHUNK):
            hasher.update(chunk)
    return Digest("sha256", hasher.hexdigest())
