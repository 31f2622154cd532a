"""What the server answers: repositories and their tags (settled at start, see names.py),
and, per repository, the manifests and blobs reachable from its images (and the input that
holds each), and the referrers of those (a referrer of D: a manifest whose ``subject``
names D).

The documents below a repository's images are read the first time that repository is
asked for (``ensure``), and all of them on a thread once the server listens (``complete``):
the start does not wait for every manifest of a 50 GB bundle to be read.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, field

from archiver.engine.graph import resolve
from archiver.errors import ArchiverError
from archiver.model import media
from archiver.model.descriptor import Descriptor
from archiver.model.digest import Digest
from archiver.model.documents import Manifest
from archiver.model.image import ImageEntry, ResolvedImage
from archiver.places.base import Source
from archiver.serve import names
from archiver.serve.inputs import Served


@dataclass(frozen=True)
class Held:
    """A blob or document served: its descriptor (a document's own media type) and the
    input that holds it."""

    descriptor: Descriptor
    source: Source


@dataclass
class Image:
    """One top-level image under one repository."""

    repository: str
    tags: list[str]
    entry: ImageEntry
    source: Source
    root: ResolvedImage | None = None
    """Its documents, once read."""
    problem: str | None = None
    """Why its documents could not be read (it is then not served)."""

    @property
    def digest(self) -> Digest:
        return self.entry.descriptor.digest

    @property
    def origin(self) -> str:
        return self.source.origin


@dataclass
class Catalog:
    tags: dict[str, dict[str, Digest]] = field(default_factory=dict)
    """Repository -> tag -> manifest (or index) digest."""
    images: list[Image] = field(default_factory=list)
    manifests: dict[Digest, Held] = field(default_factory=dict)
    blobs: dict[Digest, Held] = field(default_factory=dict)
    referrers: dict[Digest, list[Descriptor]] = field(default_factory=dict)
    unnamed: list[tuple[Source, ImageEntry]] = field(default_factory=list)
    """Images without a name (OCI 1.1 referrers): served where their subject is."""
    _scope: dict[str, set[Digest]] = field(default_factory=dict)
    _pending: dict[str, list[Image]] = field(default_factory=dict)
    _referrer_roots: list[ResolvedImage] | None = None
    _lock: threading.RLock = field(default_factory=threading.RLock)

    def repositories(self) -> list[str]:
        return sorted(self._scope)

    def knows(self, repository: str) -> bool:
        return repository in self._scope

    def ensure(self, repository: str) -> None:
        """Read the documents of ``repository``'s images (once), and of every referrer."""
        with self._lock:
            pending = self._pending.pop(repository, None)
            if pending is None:
                return
            self._read_referrers()
            for image in pending:
                try:
                    image.root = resolve(image.source, image.entry)
                except ArchiverError as exc:
                    image.problem = str(exc)
                    continue
                self._register(image.source, image.root)
                self._scope[repository].update(_digests(image.root))
            self._scope_referrers(repository)

    def complete(self) -> list[str]:
        """Every repository ensured; the problems found on the way (one line each)."""
        for repository in self.repositories():
            self.ensure(repository)
        return [f"{i.repository}@{i.digest}: {i.problem}" for i in self.images if i.problem]

    def serves(self, repository: str, digest: Digest) -> bool:
        """After ``ensure(repository)``."""
        return digest in self._scope.get(repository, ())

    def _read_referrers(self) -> None:
        if self._referrer_roots is not None:
            return
        self._referrer_roots = []
        for source, entry in self.unnamed:
            try:
                root = resolve(source, entry)
            except ArchiverError:
                continue  # an unreadable artifact refers to nothing served
            self._register(source, root)
            self._referrer_roots.append(root)

    def _register(self, source: Source, root: ResolvedImage) -> None:
        for index in root.indexes:
            self.manifests.setdefault(index.digest, Held(index.descriptor(), source))
        for node in root.images:
            manifest = node.manifest
            self.manifests.setdefault(manifest.digest, Held(manifest.descriptor(), source))
            for blob in (manifest.config, *manifest.layers):
                if blob.digest not in self.blobs and source.has_blob(blob.digest):
                    self.blobs[blob.digest] = Held(blob, source)
            if manifest.subject is not None:
                self._add_referrer(manifest.subject.digest, manifest)

    def _add_referrer(self, subject: Digest, manifest: Manifest) -> None:
        known = self.referrers.setdefault(subject, [])
        if any(d.digest == manifest.digest for d in known):
            return
        artifact_type: str | None = manifest.artifact_type or manifest.config.media_type
        if artifact_type == media.OCI_EMPTY:
            artifact_type = None
        known.append(
            Descriptor(
                manifest.media_type,
                manifest.digest,
                len(manifest.raw),
                annotations=dict(manifest.annotations),
                artifact_type=artifact_type,
            )
        )

    def _scope_referrers(self, repository: str) -> None:
        """Referrers of what the repository serves (and referrers of those) join it."""
        scope = self._scope[repository]
        while True:
            joining = [
                root
                for root in self._referrer_roots or []
                if root.descriptor.digest not in scope
                and any(
                    n.manifest.subject is not None and n.manifest.subject.digest in scope
                    for n in root.images
                )
            ]
            if not joining:
                return
            for root in joining:
                scope.update(_digests(root))


def _digests(root: ResolvedImage) -> set[Digest]:
    found = {index.digest for index in root.indexes}
    for node in root.images:
        found.add(node.manifest.digest)
        found.update(b.digest for b in (node.manifest.config, *node.manifest.layers))
    return found


def build(served: Sequence[Served], prefix: str = "", prefer: str = "error") -> Catalog:
    """The names of ``served`` settled (Conflict when two images take one name); their
    documents are read later, repository by repository."""
    found, unnamed = names.claims(served, names.checked_prefix(prefix))
    catalog = Catalog(unnamed=[(served[p].source, entry) for p, entry in unnamed])
    by_image: dict[tuple[str, Digest], Image] = {}
    for claim in names.settle(found, served, prefer):
        key = (claim.repository, claim.digest)
        image = by_image.get(key)
        if image is None:
            source = served[claim.position].source
            image = by_image[key] = Image(claim.repository, [], claim.entry, source)
            catalog.images.append(image)
            catalog._pending.setdefault(claim.repository, []).append(image)
            catalog._scope.setdefault(claim.repository, set())
        if claim.tag is not None:
            image.tags.append(claim.tag)
            catalog.tags.setdefault(claim.repository, {})[claim.tag] = claim.digest
    return catalog
