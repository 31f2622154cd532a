"""The OCI image layout (``oci-layout``, ``index.json``, ``blobs/<alg>/<hex>``): names and paths."""

from __future__ import annotations

from archiver import schema
from archiver.blobs import limits
from archiver.blobs.tree import Tree
from archiver.errors import InputError
from archiver.model import extras
from archiver.model.descriptor import Descriptor
from archiver.model.digest import Digest
from archiver.model.image import ImageEntry
from archiver.model.reference import Reference

LAYOUT_FILE = "oci-layout"
INDEX_FILE = "index.json"
LAYOUT_VERSION = "1.0.0"
CONTAINERD_NAME = "io.containerd.image.name"
REF_NAME = "org.opencontainers.image.ref.name"


def blob_path(digest: Digest) -> str:
    return f"blobs/{digest.algorithm}/{digest.hex}"


def is_layout(tree: Tree) -> bool:
    return tree.exists(LAYOUT_FILE) and tree.exists(INDEX_FILE)


def read_json(tree: Tree, name: str, kind: str, limit: int = limits.MAX_ARCHIVE_INDEX) -> object:
    """Read, decode and schema-check one small JSON file of an archive."""
    origin = f"{tree.origin}: {name}"
    with tree.open(name) as stream:
        raw = limits.read_capped(stream, limit, origin)
    return schema.load(kind, raw, origin)


DELTA_BASE = "org.archiver.delta.base"
"""index.json annotation of a delta: the checksum of the inventory it was made against."""
DELTA_BASE_ORIGIN = "org.archiver.delta.base.origin"


def read_entries(tree: Tree) -> list[ImageEntry]:
    """The top-level images of ``index.json``, one entry per digest, names merged in order."""
    return read_index(tree)[0]


def read_index(tree: Tree) -> tuple[list[ImageEntry], dict[str, str]]:
    """``read_entries``, and the annotations of index.json itself (a delta names its base
    there): one reading of it."""
    layout = read_json(tree, LAYOUT_FILE, "oci-layout", limits.MAX_SMALL_FILE)
    assert isinstance(layout, dict)
    if layout.get("imageLayoutVersion") != LAYOUT_VERSION:
        raise InputError(
            f"{tree.origin}: {LAYOUT_FILE}: unsupported imageLayoutVersion "
            f"{layout.get('imageLayoutVersion')!r}"
        )
    index = read_json(tree, INDEX_FILE, "oci-index")
    assert isinstance(index, dict)
    order: list[Digest] = []
    found: dict[Digest, tuple[Descriptor, list[Reference], list[str]]] = {}
    for i, item in enumerate(index.get("manifests") or []):
        where = f"{tree.origin}: {INDEX_FILE}: manifests[{i}]"
        desc = Descriptor.from_json(item, where)
        if desc.digest not in found:
            order.append(desc.digest)
            found[desc.digest] = (desc, [], [])
        _, refs, tags = found[desc.digest]
        ref, tag = names_of(desc, where)
        if ref is not None and ref not in refs:
            refs.append(ref)
        if tag is not None and tag not in tags:
            tags.append(tag)
    entries = [
        ImageEntry(_kept(found[d][0]), tuple(found[d][1]), tuple(found[d][2])) for d in order
    ]
    return entries, dict(index.get("annotations") or {})


def _kept(descriptor: Descriptor) -> Descriptor:
    """An entry's descriptor with only the annotation that ties an extra to its subject
    (names are read apart; the rest is the writer's to choose again)."""
    subject = descriptor.annotations.get(extras.SUBJECT)
    return descriptor.with_annotations({extras.SUBJECT: subject} if subject else {})


def names_of(desc: Descriptor, where: str) -> tuple[Reference | None, str | None]:
    """A descriptor's name: a full reference, or a bare layout tag, or neither."""
    full = desc.annotations.get(CONTAINERD_NAME)
    ref_name = desc.annotations.get(REF_NAME)
    if full:
        try:
            return Reference.parse(full), None
        except InputError as exc:
            raise InputError(f"{where}: {CONTAINERD_NAME}: {exc}") from None
    if not ref_name:
        return None, None
    if "/" in ref_name or ":" in ref_name or "@" in ref_name:
        try:
            return Reference.parse(ref_name), None
        except InputError:
            return None, ref_name
    return None, ref_name


def index_annotations(ref: Reference | None, tag: str | None) -> dict[str, str]:
    """The annotations we write for one name, as Docker ≥ 25 and containerd do."""
    if ref is not None:
        out = {CONTAINERD_NAME: str(ref)}
        if ref.tag:
            out[REF_NAME] = ref.tag
        return out
    return {REF_NAME: tag} if tag else {}
