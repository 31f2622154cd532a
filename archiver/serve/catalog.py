"""What the server answers, worked out once at start: repositories and their tags,
manifests and blobs by digest (and which input holds each), referrers by subject.

Names are served without their registry host (``registry.example:5000/team/app:1`` is
``team/app:1``, ``docker.io/library/nginx:1.25`` is ``library/nginx:1.25``), under
``prefix/`` when one is given. Two images that would take one name are refused, both
named, unless ``prefer`` says which input wins; an image a delta names wins over the one
its base gives the same name. A repository serves the documents and blobs reachable from
its own images, and the referrers of those (a referrer of D: a manifest whose ``subject``
names D).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from archiver.engine.graph import resolve
from archiver.errors import Conflict, InputError
from archiver.model import media
from archiver.model.descriptor import Descriptor
from archiver.model.digest import Digest
from archiver.model.documents import Manifest
from archiver.model.image import ResolvedImage
from archiver.places.base import Source
from archiver.serve.inputs import Served

PREFER = ("error", "first", "last")


@dataclass(frozen=True)
class Held:
    """A blob or document served: its descriptor (a document's own media type) and the
    input that holds it."""

    descriptor: Descriptor
    source: Source


@dataclass
class Image:
    """One top-level image as served: for the pages and for scoping repositories."""

    repository: str
    tags: list[str]
    root: ResolvedImage
    origin: str

    @property
    def digest(self) -> Digest:
        return self.root.descriptor.digest


@dataclass(frozen=True)
class _Claim:
    repository: str
    tag: str | None
    position: int
    """Which served input (its place on the command line)."""
    delta: bool
    full: str
    root: ResolvedImage


@dataclass
class Catalog:
    tags: dict[str, dict[str, Digest]] = field(default_factory=dict)
    """Repository -> tag -> manifest (or index) digest."""
    manifests: dict[Digest, Held] = field(default_factory=dict)
    blobs: dict[Digest, Held] = field(default_factory=dict)
    scope: dict[str, set[Digest]] = field(default_factory=dict)
    """Repository -> the digests (documents and blobs) it serves."""
    referrers: dict[Digest, list[Descriptor]] = field(default_factory=dict)
    images: list[Image] = field(default_factory=list)

    def repositories(self) -> list[str]:
        return sorted(self.scope)

    def serves(self, repository: str, digest: Digest) -> bool:
        return digest in self.scope.get(repository, ())


def build(served: Sequence[Served], prefix: str = "", prefer: str = "error") -> Catalog:
    """The catalog of ``served``; Conflict when two images take one name (see module doc)."""
    if prefer not in PREFER:
        raise InputError(f"--prefer {prefer!r}: one of {', '.join(PREFER)}")
    prefix = _checked_prefix(prefix)
    catalog = Catalog()
    claims: list[_Claim] = []
    unnamed: list[ResolvedImage] = []
    for position, item in enumerate(served):
        source = item.source
        for entry in source.images():
            root = resolve(source, entry)
            _register(catalog, source, root)
            named = list(entry.refs)
            if not named:
                unnamed.append(root)
            for ref in named:
                repository = prefix + ref.repository
                claims.append(
                    _Claim(repository, ref.tag, position, item.delta, ref.familiar(), root)
                )
    winners = _settle(claims, served, prefer)
    by_image: dict[tuple[str, Digest], Image] = {}
    for claim in winners:
        key = (claim.repository, claim.root.descriptor.digest)
        image = by_image.get(key)
        if image is None:
            origin = served[claim.position].source.origin
            image = by_image[key] = Image(claim.repository, [], claim.root, origin)
            catalog.images.append(image)
            _scope(catalog, claim.repository, claim.root)
        if claim.tag is not None:
            image.tags.append(claim.tag)
            catalog.tags.setdefault(claim.repository, {})[claim.tag] = claim.root.descriptor.digest
    _scope_referrers(catalog, unnamed)
    return catalog


def _checked_prefix(prefix: str) -> str:
    prefix = prefix.strip("/")
    if not prefix:
        return ""
    from archiver.model.reference import Reference

    try:
        Reference.parse(f"example.invalid/{prefix}")
    except InputError as exc:
        raise InputError(f"--prefix {prefix!r}: not a repository path ({exc})") from None
    return prefix + "/"


def _register(catalog: Catalog, source: Source, root: ResolvedImage) -> None:
    """Every document and held blob below ``root``, and the referrers among them."""
    for index in root.indexes:
        catalog.manifests.setdefault(index.digest, Held(index.descriptor(), source))
    for node in root.images:
        manifest = node.manifest
        catalog.manifests.setdefault(manifest.digest, Held(manifest.descriptor(), source))
        for blob in (manifest.config, *manifest.layers):
            if blob.digest not in catalog.blobs and source.has_blob(blob.digest):
                catalog.blobs[blob.digest] = Held(blob, source)
        if manifest.subject is not None:
            _add_referrer(catalog, manifest.subject.digest, manifest)


def _add_referrer(catalog: Catalog, subject: Digest, manifest: Manifest) -> None:
    known = catalog.referrers.setdefault(subject, [])
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


def _digests(root: ResolvedImage) -> set[Digest]:
    found = {index.digest for index in root.indexes}
    for node in root.images:
        found.add(node.manifest.digest)
        found.update(b.digest for b in (node.manifest.config, *node.manifest.layers))
    return found


def _scope(catalog: Catalog, repository: str, root: ResolvedImage) -> None:
    catalog.scope.setdefault(repository, set()).update(_digests(root))


def _scope_referrers(catalog: Catalog, unnamed: list[ResolvedImage]) -> None:
    """Images without a name (OCI 1.1 referrers) are served in the repositories that serve
    their subject (and referrers of referrers after them)."""
    pending = list(unnamed)
    while pending:
        left = []
        for root in pending:
            subjects = {
                n.manifest.subject.digest for n in root.images if n.manifest.subject is not None
            }
            homes = [r for r, digests in catalog.scope.items() if subjects & digests]
            for repository in homes:
                _scope(catalog, repository, root)
            if not homes:
                left.append(root)
        if len(left) == len(pending):
            return  # the rest refer to nothing served
        pending = left


def _settle(claims: list[_Claim], served: Sequence[Served], prefer: str) -> list[_Claim]:
    """The claims that keep their name: one image per repository:tag."""
    by_name: dict[tuple[str, str | None], list[_Claim]] = {}
    for claim in claims:
        by_name.setdefault((claim.repository, claim.tag), []).append(claim)
    kept: list[_Claim] = []
    clashes: list[str] = []
    for (repository, tag), group in by_name.items():
        if tag is None:  # digest-only names: every image keeps its own
            kept.extend(group)
            continue
        if any(c.delta for c in group):  # a delta's image wins over its base's
            group = [c for c in group if c.delta]
        images = {c.root.descriptor.digest for c in group}
        if len(images) > 1 and prefer == "error":
            first, other = (
                group[0],
                next(
                    c for c in group if c.root.descriptor.digest != group[0].root.descriptor.digest
                ),
            )
            clashes.append(
                f"{repository}:{tag} would be {_said(first, served)} and {_said(other, served)}"
            )
            continue
        chosen = group[-1] if prefer == "last" else group[0]
        kept.extend(c for c in group if c.root.descriptor.digest == chosen.root.descriptor.digest)
    if clashes:
        raise Conflict("two images take one name: " + "; ".join(clashes) + " (--prefer first|last)")
    return kept


def _said(claim: _Claim, served: Sequence[Served]) -> str:
    origin = served[claim.position].source.origin
    return f"{claim.full} ({claim.root.descriptor.digest.short()}) in {origin}"
