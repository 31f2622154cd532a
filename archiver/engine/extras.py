"""Extras in a place's list of images: which entries are extras, and which image carries
which (for ls, inspect, df, push, load, and tag/rmi/prune in an archive).

An extra is a top-level entry like any image (see ``model/extras.py``); what makes it one
is read from its documents and names, so an archive written by another tool (an OCI
layout from oras, say) is understood too.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from archiver.engine.graph import resolve
from archiver.errors import NotFound
from archiver.model import extras
from archiver.model.descriptor import Descriptor
from archiver.model.digest import Digest
from archiver.model.documents import Manifest
from archiver.model.extras import Extra
from archiver.model.image import ImageEntry, ResolvedImage
from archiver.model.platform import Platform
from archiver.places.base import Source


def extra_of(source: Source, entry: ImageEntry) -> Extra | None:
    """What ``entry`` is an extra of, or None when it is an image (or another artifact)."""
    return extra_of_root(resolve(source, entry))


def extra_of_root(root: ResolvedImage) -> Extra | None:
    entry = root.entry
    tags = [r.tag for r in entry.refs if r.tag] + list(entry.tags)
    return extras.of_entry(entry.descriptor, root.document, tags)


@dataclass
class Parted:
    """A place's entries parted into images (and other artifacts) and extras."""

    images: list[ImageEntry] = field(default_factory=list)
    extras: list[tuple[ImageEntry, Extra]] = field(default_factory=list)
    _index: tuple[int, dict[Digest, list[int]]] | None = field(
        default=None, repr=False, compare=False
    )

    def of(self, subjects: Iterable[Digest]) -> list[tuple[ImageEntry, Extra]]:
        """The extras of ``subjects`` and theirs in turn (a signature on an SBOM), each once,
        in the order a registry takes them: generation by generation, and within one,
        cosign's tags before referrers."""
        wanted = set(subjects)
        found: list[tuple[ImageEntry, Extra]] = []
        taken: set[Digest] = set()
        while True:
            places = sorted({i for subject in wanted for i in self._by_subject().get(subject, [])})
            generation = [
                self.extras[i]
                for i in places  # in the place's order
                if self.extras[i][0].descriptor.digest not in taken
            ]
            if not generation:
                return found
            generation.sort(key=lambda item: item[1].tag is None)
            found += generation
            taken |= {entry.descriptor.digest for entry, _ in generation}
            wanted = {entry.descriptor.digest for entry, _ in generation}

    def naming(self, subject: Digest) -> list[tuple[ImageEntry, Extra]]:
        """The extras whose subject is ``subject`` (not theirs in turn), in the place's order."""
        return [self.extras[i] for i in self._by_subject().get(subject, [])]

    def _by_subject(self) -> dict[Digest, list[int]]:
        """Subject -> the positions of its extras (found once: ls of 2,000 signed images
        looked through every extra for each image)."""
        if self._index is None or self._index[0] != len(self.extras):
            by_subject: dict[Digest, list[int]] = {}
            for position, (_, extra) in enumerate(self.extras):
                by_subject.setdefault(extra.subject, []).append(position)
            self._index = (len(self.extras), by_subject)
        return self._index[1]

    def orphans(self, subjects: Iterable[Digest]) -> list[tuple[ImageEntry, Extra]]:
        """Extras whose subject is none of ``subjects`` (nor another extra kept with them)."""
        kept = {e.descriptor.digest for e, _ in self.of(subjects)}
        return [item for item in self.extras if item[0].descriptor.digest not in kept]


def split(
    source: Source,
    entries: Sequence[ImageEntry] | None = None,
    platforms: list[Platform] | None = None,
) -> Parted:
    """``entries`` (default: all of ``source``'s) parted into images and extras; each is
    resolved for ``platforms`` as the copy that follows will (once, not twice)."""
    out = Parted()
    for entry in source.images() if entries is None else entries:
        try:
            extra = extra_of_root(resolve(source, entry, platforms))
        except NotFound:  # an image without the platforms asked for is not an extra
            extra = None
        if extra is None:
            out.images.append(entry)
        else:
            out.extras.append((entry, extra))
    return out


def subjects(root: ResolvedImage) -> list[Digest]:
    """The digests an image's extras may name: its own, its indexes', its platform images'."""
    found = [root.entry.descriptor.digest]
    found += [index.descriptor().digest for index in root.indexes]
    found += [node.descriptor.digest for node in root.images]
    return list(dict.fromkeys(found))


def carried(source: Source, root: ResolvedImage, parted: Parted) -> list[Extra]:
    """The extras an image carries (``parted``: its place's entries, split once)."""
    return [extra for _, extra in parted.of(subjects(root))]


def carried_by(source: Source, roots: Sequence[ResolvedImage]) -> dict[int, list[Extra]]:
    """The extras each of ``roots`` carries, by ``id`` of the root (ls, inspect)."""
    parted = split(source)
    if not parted.extras:
        return {}
    return {id(root): carried(source, root, parted) for root in roots}


def without_extras_of(
    gone: Sequence[ResolvedImage], remaining: list[ResolvedImage]
) -> tuple[list[ResolvedImage], list[Digest]]:
    """``remaining`` without the extras of the images ``gone`` (and theirs in turn), unless
    an image that stays has the same digest; and the digests of the extras dropped."""
    staying = {digest for root in remaining for digest in subjects(root)}
    lost = {digest for root in gone for digest in subjects(root)} - staying
    dropped: list[Digest] = []
    grew = True
    while grew:
        grew = False
        kept = []
        for root in remaining:
            extra = extra_of_root(root)
            if extra is not None and extra.subject in lost:
                lost.add(root.entry.descriptor.digest)
                dropped.append(root.entry.descriptor.digest)
                grew = True
            else:
                kept.append(root)
        remaining = kept
    return remaining, dropped


def referrers(
    source: Source, subject: Digest, artifact_type: str | None = None
) -> list[Descriptor]:
    """What the referrers API answers for ``subject`` from ``source`` (a bundle served):
    every top-level manifest whose own ``subject`` names it, as a descriptor with its
    artifactType and annotations; ``artifact_type`` filters as ``?artifactType=`` does."""
    out = []
    for entry in source.images():
        document = resolve(source, entry).document
        if not isinstance(document, Manifest) or document.subject is None:
            continue
        if document.subject.digest != subject:
            continue
        kind = extras.artifact_type(document)
        if artifact_type is not None and kind != artifact_type:
            continue
        out.append(document.descriptor(annotations=dict(document.annotations), artifact_type=kind))
    return out
