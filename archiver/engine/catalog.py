"""Images as a user names them: records for ls/inspect/history, and IMAGE argument lookup."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from archiver.engine.graph import resolve
from archiver.errors import Conflict, InputError, NotFound
from archiver.model.digest import Digest
from archiver.model.documents import ImageConfig
from archiver.model.image import ImageEntry, ImageNode, ResolvedImage
from archiver.model.platform import Platform
from archiver.model.reference import Reference
from archiver.places.base import Source


@dataclass(frozen=True)
class ImageRecord:
    """One top-level image, seen as docker shows it (the chosen platform's config)."""

    root: ResolvedImage
    image: ImageNode

    @property
    def entry(self) -> ImageEntry:
        return self.root.entry

    @property
    def config(self) -> ImageConfig:
        assert self.image.config is not None
        return self.image.config

    @property
    def id(self) -> Digest:
        return self.config.id

    @property
    def digest(self) -> Digest | None:
        """The manifest (or index) digest, None where the input had no manifest."""
        return None if self.entry.synthetic else self.entry.descriptor.digest

    @property
    def size(self) -> int:
        """Bytes of the layers as stored."""
        return sum(layer.size for layer in self.image.manifest.layers)

    @property
    def repo_digests(self) -> list[str]:
        if self.digest is None:
            return []
        names = dict.fromkeys(ref.familiar_name for ref in self.entry.refs)
        return [f"{name}@{self.digest}" for name in names]


def records(source: Source, platform: Platform | None = None) -> list[ImageRecord]:
    """Every image of ``source``, seen through ``platform`` (default: this host's, else the
    first); artifacts (no image config) are left out."""
    out = []
    for entry in source.images():
        root = resolve(source, entry)
        image = root.default_image(platform)
        if image is not None:
            out.append(ImageRecord(root, image))
    return out


def find(candidates: Sequence[ImageRecord], wanted: str, origin: str) -> ImageRecord:
    """Resolve an IMAGE argument as docker does: reference, ID, unique ID prefix, digest."""
    matches = find_all(candidates, wanted, origin)
    if len(matches) > 1:
        ids = ", ".join(sorted({m.id.short() for m in matches}))
        raise Conflict(f"{origin}: {wanted!r} is ambiguous: it matches images {ids}")
    return matches[0]


class _Names:
    """The records by the names they have, for many lookups at once (``select``): a sync of
    2,000 images looked each name up among all 2,000 records (4 M comparisons, 6 s)."""

    def __init__(self, candidates: Sequence[ImageRecord]) -> None:
        self.tags: dict[str, list[ImageRecord]] = {}
        self.refs: dict[tuple[str, str | None], list[ImageRecord]] = {}
        self.digests: dict[Digest, list[ImageRecord]] = {}
        for record in candidates:  # each list in the candidates' order, each record once
            for tag in dict.fromkeys(record.entry.tags):
                self.tags.setdefault(tag, []).append(record)
            for key in dict.fromkeys((r.name, r.tag) for r in record.entry.refs):
                self.refs.setdefault(key, []).append(record)
            if record.digest is not None:
                self.digests.setdefault(record.digest, []).append(record)

    def named(self, ref: Reference) -> list[ImageRecord]:
        """The records ``ref`` names (as ``_names`` decides, for these records only)."""
        if ref.digest is not None:
            return [r for r in self.digests.get(ref.digest, []) if _names(r, ref)]
        return list(self.refs.get((ref.name, ref.tag), []))


def find_all(
    candidates: Sequence[ImageRecord], wanted: str, origin: str, names: _Names | None = None
) -> list[ImageRecord]:
    """Every record ``wanted`` names (several only for an ambiguous ID prefix); ``names``:
    the candidates by name, when many are looked up."""
    text = wanted.removeprefix("sha256:")
    is_hex = bool(text) and all(c in "0123456789abcdef" for c in text)
    if is_hex:
        by_id = [c for c in candidates if c.id.hex.startswith(text)]
        if by_id:
            return _unique(by_id)
        by_digest = [
            c for c in candidates if c.digest is not None and c.digest.hex.startswith(text)
        ]
        if by_digest and len(text) == 64:
            return _unique(by_digest)
    if names is not None:
        by_tag = list(names.tags.get(wanted, []))
    else:
        by_tag = [c for c in candidates if wanted in c.entry.tags]
    if by_tag:
        return by_tag
    try:
        ref = Reference.parse(wanted)
    except InputError:
        if is_hex:
            raise NotFound(f"{origin}: no image with ID {wanted}") from None
        raise
    found = names.named(ref) if names is not None else [c for c in candidates if _names(c, ref)]
    if not found:
        raise NotFound(f"{origin}: no image {ref.familiar()}")
    return found


def _names(record: ImageRecord, ref: Reference) -> bool:
    if ref.digest is not None:
        return record.digest == ref.digest and (
            any(r.name == ref.name for r in record.entry.refs) or not record.entry.refs
        )
    return any(r.name == ref.name and r.tag == ref.tag for r in record.entry.refs)


def _unique(found: list[ImageRecord]) -> list[ImageRecord]:
    by_id: dict[Digest, ImageRecord] = {}
    for record in found:
        by_id.setdefault(record.id, record)
    return list(by_id.values())


def select(records: Sequence[ImageRecord], wanted: Sequence[str], origin: str) -> list[ImageRecord]:
    """The records named by ``wanted`` (all when empty), in archive order, each once."""
    if not wanted:
        return list(records)
    chosen: dict[int, ImageRecord] = {}
    names = _Names(records) if len(wanted) > 1 else None
    for name in wanted:
        for record in find_all(records, name, origin, names):
            chosen[id(record)] = record
    return [r for r in records if id(r) in chosen]
