"""Several sources seen as one: images merged by identity, blobs taken from whichever has them.

Two inputs may carry the same image (merged, names joined) or the same name for different
images (a conflict: an error listing them all, unless ``prefer`` says which input wins).
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Sequence
from typing import BinaryIO

from archiver.engine.graph import resolve
from archiver.errors import Conflict, NotFound
from archiver.model.digest import Digest
from archiver.model.image import ImageEntry
from archiver.places.base import InFrames, Precompressed, Source

PREFER = ("error", "first", "last")


def _identity(source: Source, entry: ImageEntry) -> frozenset[Digest]:
    """What makes two entries the same image: the configs they carry (a docker-save entry
    and the manifest Docker ≥ 25 wrote for it have different manifest digests)."""
    root = resolve(source, entry)
    configs = frozenset(n.manifest.config.digest for n in root.images)
    return configs or frozenset({entry.descriptor.digest})


class MultiSource(Source):
    def __init__(self, sources: Sequence[Source], prefer: str = "error") -> None:
        self.origin = ", ".join(s.origin for s in sources)
        self._sources = list(sources)
        self._held: dict[Digest, Source] = {}
        self._maybe, self._unlisted = _blob_index(self._sources)
        found: list[tuple[frozenset[Digest], ImageEntry, str]] = []
        # where an entry may already be: by manifest digest, and by identity (configs);
        # a position stays listed under a digest it no longer has: _same decides
        by_digest: dict[Digest, list[int]] = {}
        by_identity: dict[frozenset[Digest], list[int]] = {}
        for source in sources:
            for entry in source.images():
                identity = _identity(source, entry)
                places = by_digest.get(entry.descriptor.digest, []) + by_identity.get(identity, [])
                for i in sorted(set(places)):  # the first it is the same as, as ever
                    known, current, origin = found[i]
                    if _same(current, entry, known, identity):
                        found[i] = (known, current.merged(entry), origin)
                        by_digest.setdefault(found[i][1].descriptor.digest, []).append(i)
                        break
                else:
                    by_digest.setdefault(entry.descriptor.digest, []).append(len(found))
                    by_identity.setdefault(identity, []).append(len(found))
                    found.append((identity, entry, source.origin))
        self._entries = _settle_names(found, prefer)

    def images(self) -> list[ImageEntry]:
        return list(self._entries)

    def reorder(self, key: Callable[[ImageEntry], int]) -> None:
        """List the images sorted by ``key`` (stable: ties keep the inputs' order)."""
        self._entries.sort(key=key)

    def precompressed(self, digest: Digest) -> Precompressed | None:
        """The blob's frames as the input holding it has them (see ArchiveSource)."""
        return self._holder(digest).precompressed(digest)

    def in_frames(self, digest: Digest) -> InFrames | None:
        return self._holder(digest).in_frames(digest)

    def _holder(self, digest: Digest) -> Source:
        held = self._held.get(digest)  # asked four times a blob: inputs are searched once
        if held is not None:
            return held
        # the first input holding it, asking only those that may (not every input a blob)
        for position in heapq.merge(self._maybe.get(digest, ()), self._unlisted):
            source = self._sources[position]
            if source.has_blob(digest):
                self._held[digest] = source
                return source
        raise NotFound(f"{self.origin}: blob {digest} is in none of the inputs")

    def has_blob(self, digest: Digest) -> bool:
        try:
            self._holder(digest)
        except NotFound:
            return False
        return True

    def blob_origin(self, digest: Digest) -> str:
        try:
            return self._holder(digest).blob_origin(digest)
        except NotFound:
            return self.origin

    def open_blob(self, digest: Digest) -> BinaryIO:
        return self._holder(digest).open_blob(digest)


class WithBase(Source):
    """The images of ``source`` (a delta), with the blobs it left out taken from ``base``."""

    def __init__(self, source: Source, base: Source) -> None:
        self.origin = source.origin
        self._source, self._base = source, base

    def images(self) -> list[ImageEntry]:
        return self._source.images()

    def _holder(self, digest: Digest) -> Source:
        return self._source if self._source.has_blob(digest) else self._base

    def has_blob(self, digest: Digest) -> bool:
        return self._source.has_blob(digest) or self._base.has_blob(digest)

    def blob_origin(self, digest: Digest) -> str:
        return self._holder(digest).blob_origin(digest)

    def open_blob(self, digest: Digest) -> BinaryIO:
        return self._holder(digest).open_blob(digest)


def _blob_index(sources: list[Source]) -> tuple[dict[Digest, list[int]], list[int]]:
    """Which inputs may hold each blob (positions, in order), from the inputs that list
    their blobs cheaply; and the positions of those that do not (asked every time)."""
    maybe: dict[Digest, list[int]] = {}
    unlisted: list[int] = []
    for position, source in enumerate(sources):
        candidates = source.blob_candidates()
        if candidates is None:
            unlisted.append(position)
            continue
        for digest in candidates:
            maybe.setdefault(digest, []).append(position)
    return maybe, unlisted


def _same(a: ImageEntry, b: ImageEntry, a_id: frozenset[Digest], b_id: frozenset[Digest]) -> bool:
    """One image twice: the same manifest, or a docker-save entry (no manifest of its own)
    and a manifest with the same config."""
    if a.descriptor.digest == b.descriptor.digest:
        return True
    return (a.synthetic or b.synthetic) and a_id == b_id


def _settle_names(
    found: list[tuple[frozenset[Digest], ImageEntry, str]], prefer: str
) -> list[ImageEntry]:
    owners: dict[str, list[int]] = {}
    for position, (_, entry, _) in enumerate(found):
        for name in [str(r) for r in entry.refs] + list(entry.tags):
            owners.setdefault(name, []).append(position)
    clashes = {name: places for name, places in owners.items() if len(places) > 1}
    if clashes and prefer == "error":
        lines = "; ".join(
            f"{name} is "
            + " and ".join(f"image {min(found[p][0]).short()} in {found[p][2]}" for p in places)
            for name, places in clashes.items()
        )
        raise Conflict(
            f"the same name is given to different images: {lines} "
            f"(--prefer first|last says which input wins)"
        )
    keep = {
        name: places[0] if prefer == "first" else places[-1] for name, places in clashes.items()
    }
    out = []
    for position, (_, entry, _) in enumerate(found):
        refs = tuple(r for r in entry.refs if keep.get(str(r), position) == position)
        tags = tuple(t for t in entry.tags if keep.get(t, position) == position)
        out.append(ImageEntry(entry.descriptor, refs, tags, entry.synthetic))
    return out
