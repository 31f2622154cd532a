"""What a sync must fetch: the lists' images resolved against their registries (tag lists
read and filtered, every tag's manifest asked for with a HEAD), then compared with what
the earlier output or the target registry already holds.

Registry requests run on up to ``jobs`` threads, one image (or repository) each. An image
that is not there stops the run with one line naming it, or with ``keep_going`` is left
out and named in the result.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import TypeVar

from archiver.errors import ArchiverError, InputError, NotFound
from archiver.model import media
from archiver.model.descriptor import Descriptor
from archiver.model.digest import Digest
from archiver.model.documents import Index, parse_document
from archiver.model.extras import SUBJECT
from archiver.model.image import ImageEntry
from archiver.model.platform import Platform
from archiver.model.reference import Reference
from archiver.model.sync_lists import ImageSpec, SyncList
from archiver.model.sync_lists.tags import choose, describe
from archiver.places.base import Source
from archiver.places.registry.heads import ManifestHeads
from archiver.places.registry.registries import Registries

T = TypeVar("T")
R = TypeVar("R")


@dataclass(frozen=True)
class Wanted:
    """One image a list names: by tag or by digest, with what the registry says of it."""

    ref: Reference
    """Where it is fetched from."""
    spec: ImageSpec
    descriptor: Descriptor | None = None
    """The manifest the tag names now (from a HEAD)."""
    out: Reference | None = None
    """The name it is written under, when not ``ref`` (Hauler's ``rewrite``)."""

    @property
    def name(self) -> str:
        """The name it has in the output."""
        return str(self.out or self.ref)

    @property
    def source(self) -> str:
        return str(self.ref)

    def entry(self) -> ImageEntry:
        assert self.descriptor is not None
        return ImageEntry(self.descriptor, (self.out or self.ref,))


@dataclass
class Plan:
    """Each wanted image sorted by what the output does with it."""

    added: list[Wanted] = field(default_factory=list)
    updated: list[Wanted] = field(default_factory=list)
    kept: list[Wanted] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    """Names the output held that no list names now (dropped only with --prune)."""
    held_back: list[str] = field(default_factory=list)
    """Such names kept (without --prune)."""
    left_out: list[dict[str, str]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def fetch(self) -> list[Wanted]:
        return self.added + self.updated

    @property
    def changed(self) -> bool:
        return bool(self.added or self.updated or self.removed)


def on_threads(work: Callable[[T], R], items: list[T], jobs: int) -> list[R]:
    """``work`` on each item, up to ``jobs`` at once, results in order."""
    if jobs <= 1 or len(items) <= 1:
        return [work(item) for item in items]
    with ThreadPoolExecutor(min(jobs, len(items))) as pool:
        return list(pool.map(work, items))


def wanted_images(
    lists: list[SyncList], registries: Registries, jobs: int, plan: Plan, keep_going: bool
) -> list[Wanted]:
    """Every image the lists name, tag lists read where a filter needs them; each name once."""
    specs = [spec for found in lists for spec in found.images]

    def expand(spec: ImageSpec) -> list[Wanted] | str:
        try:
            return _expand(spec, registries, plan)
        except ArchiverError as exc:
            if not keep_going:
                raise
            return str(exc)

    # a spec whose filter needs no tag list asks the registry nothing: no thread for it
    asking = [i for i, spec in enumerate(specs) if spec.filter.needs_tag_list]
    listed = on_threads(lambda i: expand(specs[i]), asking, jobs)
    results = dict(zip(asking, listed, strict=True))
    out: dict[str, Wanted] = {}
    for i, spec in enumerate(specs):
        found = results[i] if i in results else expand(spec)
        if isinstance(found, str):
            plan.left_out.append({"image": spec.repository, "reason": found})
            continue
        for wanted in found:
            out.setdefault(wanted.name, wanted)
    return list(out.values())


def _expand(spec: ImageSpec, registries: Registries, plan: Plan) -> list[Wanted]:
    base = Reference.parse(spec.repository, default_tag=False)
    chosen = spec.filter
    tags = list(chosen.tags)
    if chosen.needs_tag_list:
        listed = registries.client(base.registry).tags(base.repository)
        tags = choose(chosen, listed, spec.where)
        if not tags and not chosen.digests:
            plan.warnings.append(
                f"{spec.where}: {describe(chosen)} matches no tag of {spec.repository} "
                f"({len(listed)} tags listed)"
            )
    refs = [base.with_tag(tag) for tag in tags]
    refs += [base.with_digest(Digest.parse(d)) for d in chosen.digests]
    out = Reference.parse(spec.rewrite) if spec.rewrite is not None else None
    return [Wanted(ref, spec, out=out) for ref in refs]


def head(wanted: Wanted, asking: ManifestHeads) -> Wanted:
    """``wanted`` with the manifest its tag (or digest) names now."""
    ref = wanted.ref
    reference = str(ref.digest) if ref.digest is not None else (ref.tag or "latest")
    found = asking.head(ref.registry, ref.repository, reference)
    digest = Digest.parse(found.digest)
    if ref.digest is not None and digest != ref.digest:
        raise InputError(f"{ref}: the registry names {digest} for it")
    return replace(wanted, descriptor=Descriptor(found.media_type, digest, found.size))


def heads(
    wanted: list[Wanted], registries: Registries, jobs: int, plan: Plan, keep_going: bool
) -> list[Wanted]:
    """Every wanted image HEADed; those not there raise (or are left out, ``keep_going``)."""

    def one(item: Wanted) -> Wanted | str:
        try:
            return head(item, asking)
        except ArchiverError as exc:
            if not keep_going:
                raise
            return str(exc)

    out = []
    with ManifestHeads(registries) as asking:
        found_all = on_threads(one, wanted, jobs)
    for item, found in zip(wanted, found_all, strict=True):
        if isinstance(found, str):
            plan.left_out.append({"image": item.source, "reason": found})
        else:
            out.append(found)
    return out


def against_archive(
    wanted: list[Wanted], held: list[ImageEntry] | None, prune: bool, plan: Plan
) -> None:
    """Sort ``wanted`` by what the earlier output (``held``; None: there is none) has."""
    names: dict[str, Digest] = {}
    digests: set[Digest] = set()
    for entry in held or []:
        digests.add(entry.descriptor.digest)
        for ref in entry.refs:
            names[str(ref)] = entry.descriptor.digest
    for item in wanted:
        assert item.descriptor is not None
        now = item.descriptor.digest
        if item.ref.digest is not None:
            (plan.kept if now in digests else plan.added).append(item)
        elif item.name not in names:
            plan.added.append(item)
        else:
            (plan.kept if names[item.name] == now else plan.updated).append(item)
    listed = {item.name for item in wanted}
    wanted_digests = {item.ref.digest for item in wanted if item.ref.digest is not None}
    for entry in held or []:
        if SUBJECT in entry.descriptor.annotations:
            continue  # an extra goes with its image: kept with it, fetched again with it
        others = [str(ref) for ref in entry.refs if str(ref) not in listed]
        if not entry.refs and entry.descriptor.digest not in wanted_digests:
            others = [str(entry.descriptor.digest)]
        (plan.removed if prune else plan.held_back).extend(others)


def item_platforms(item: Wanted, given: bool) -> tuple[str, ...]:
    """The platforms an image keeps by what its list says (empty: the command's): those
    its item names, else, unless ``--platform`` is ``given``, its list's default."""
    if item.spec.platforms or given:
        return item.spec.platforms
    return item.spec.default_platforms


def held_in_part(
    earlier: Callable[[], Source], kept: list[Wanted], given: bool, default: list[Platform] | None
) -> list[Wanted]:
    """Those of ``kept`` (the same digest in the earlier output) that it holds only in part:
    an index lacking images for some platform now wanted (its list now asks for more than
    the run that wrote it kept; ``given``, ``default``: the command's platforms).
    ``earlier`` gives the output as a source, asked only when one of them is an index."""
    indexes = [i for i in kept if i.descriptor and media.is_index(i.descriptor.media_type)]
    if not indexes:
        return []
    from archiver.engine.graph import resolve

    lacking = []
    source = earlier()
    for item in indexes:
        named = item_platforms(item, given)
        platforms = [Platform.parse(p) for p in named] if named else default
        try:
            whole = not resolve(source, item.entry(), platforms).missing
        except NotFound:  # not even one of them: fetched, to fail as a first run does
            whole = False
        if not whole:
            lacking.append(item)
    return lacking


def against_registry(
    wanted: list[Wanted],
    targets: dict[str, Reference],
    registries: Registries,
    jobs: int,
    plan: Plan,
) -> None:
    """Sort ``wanted`` by what the target registry holds under ``targets[name]``: the
    same digest, or, for an index pushed for one platform (its tag then names that
    platform's manifest, as docker pushes it), one of the index's manifests."""

    def there(item: Wanted) -> bool | None:
        assert item.descriptor is not None
        target = targets[item.name]
        reference = target.tag or str(target.digest)
        try:
            found = Digest.parse(asking.head(target.registry, target.repository, reference).digest)
        except NotFound:
            return None
        if found == item.descriptor.digest:
            return True
        return media.is_index(item.descriptor.media_type) and found in _children(item, registries)

    with ManifestHeads(registries) as asking:
        found_all = on_threads(there, wanted, jobs)
    for item, found in zip(wanted, found_all, strict=True):
        if found is None:
            plan.added.append(item)
        else:
            (plan.kept if found else plan.updated).append(item)


def _children(item: Wanted, registries: Registries) -> set[Digest]:
    """The manifests the index ``item`` names now (a GET of the index)."""
    assert item.descriptor is not None
    client = registries.client(item.ref.registry)
    fetched = client.get_manifest(item.ref.repository, str(item.descriptor.digest))
    document = parse_document(fetched.data, f"{item.source}@{item.descriptor.digest}")
    return {child.digest for child in document.manifests} if isinstance(document, Index) else set()
