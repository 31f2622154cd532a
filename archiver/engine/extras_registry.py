"""Extras of images in a registry: found beside them on pull, put back beside them on push.

Found by cosign's tags (``sha256-<hex>.sig|.att|.sbom``, fetched by tag; absent is none)
and by OCI 1.1 referrers (the referrers API, or, where the registry says it has none,
the fallback tag ``sha256-<hex>`` holding an index), then the extras of those extras in
turn (a signature on an SBOM). Each is added to the ``RegistrySource`` as an entry of its
own: a cosign extra under its tag, a referrer by digest, with ``dev.archiver.subject``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Protocol

from archiver.engine import extras as extras_in
from archiver.engine.graph import resolve
from archiver.errors import InputError, NotFound, PeerError
from archiver.model import extras, media
from archiver.model.descriptor import Descriptor
from archiver.model.digest import Digest
from archiver.model.documents import Manifest, dump_json, parse_document
from archiver.model.image import ImageEntry
from archiver.model.json_decode import load_json
from archiver.model.per_image import PerImage
from archiver.model.platform import Platform
from archiver.model.reference import Reference
from archiver.places.base import Source
from archiver.places.registry.client import RegistryClient
from archiver.places.registry.place import RegistrySource

MAX_EXTRAS = 1000
"""Extras followed from the images of one repository before giving up (a loop, or abuse)."""


def with_extras(
    source: Source,
    platforms: list[Platform] | None,
    wanted: extras.ExtrasFilter,
    per_image: PerImage | None = None,
) -> None:
    """A registry source opened by a transfer takes its images' extras in (others: none)."""
    if isinstance(source, RegistrySource):
        add_registry_extras(source, platforms, wanted, per_image or PerImage())


def add_registry_extras(
    source: RegistrySource,
    platforms: list[Platform] | None,
    wanted: extras.ExtrasFilter,
    per_image: PerImage | None = None,
) -> list[ImageEntry]:
    """Find the extras of every image ``source`` lists (the kept platforms' only; none of
    an image ``per_image`` leaves them out for) and add them to it; return the entries
    added. The one call a pull, a copy or a sync makes."""
    if not wanted.enabled:
        return []
    each = per_image or PerImage()
    added: list[ImageEntry] = []
    for entry in source.images():
        repository = source.repository_of(entry.descriptor.digest)
        if repository is None or extras.SUBJECT in entry.descriptor.annotations:
            continue
        if not each.takes_extras(entry):
            continue
        subjects = extras_in.subjects(resolve(source, entry, each.platforms_of(entry, platforms)))
        added += find_extras(source, repository, subjects, wanted)
    return list({e.descriptor.digest: e for e in added}.values())


def find_extras(
    source: RegistrySource,
    repository: str,
    subjects: Iterable[Digest],
    wanted: extras.ExtrasFilter,
) -> list[ImageEntry]:
    """The extras of ``subjects`` in ``repository`` and theirs in turn, added to ``source``."""
    client = source.client
    queue = list(dict.fromkeys(subjects))
    seen = set(queue)
    added: list[ImageEntry] = []
    while queue:
        subject = queue.pop(0)
        found = _cosign(source, repository, subject, wanted)
        found += _referrers(source, repository, subject, wanted, client)
        for entry in found:
            added.append(entry)
            if entry.descriptor.digest not in seen:
                seen.add(entry.descriptor.digest)
                queue.append(entry.descriptor.digest)
        if len(added) > MAX_EXTRAS:
            raise InputError(
                f"{client.registry}/{repository}: more than {MAX_EXTRAS} signatures, "
                f"attestations and referrers; gave up (--no-extras leaves them out)"
            )
    return added


def _cosign(
    source: RegistrySource, repository: str, subject: Digest, wanted: extras.ExtrasFilter
) -> list[ImageEntry]:
    out = []
    for kind in extras.COSIGN_SUFFIXES:
        tag = extras.cosign_tag(subject, kind)
        ref = Reference(source.client.registry, repository, tag)
        try:
            fetched = source.client.get_manifest(repository, tag)
        except NotFound:
            continue
        manifest = _manifest(fetched.data, f"{source.origin}/{repository}:{tag}")
        artifact = extras.artifact_type(manifest) if manifest else None
        descriptor = Descriptor(fetched.media_type, Digest.from_bytes(fetched.data), 0)
        if not wanted.wants(extras.Extra(descriptor, subject, kind, artifact, tag)):
            continue
        out.append(source.add(ref, {extras.SUBJECT: str(subject)}, fetched))
    return out


def _referrers(
    source: RegistrySource,
    repository: str,
    subject: Digest,
    wanted: extras.ExtrasFilter,
    client: RegistryClient,
) -> list[ImageEntry]:
    where = f"{client.registry}/{repository}"
    listed = client.referrers(repository, str(subject))
    via = "the referrers API"
    if listed is None:
        tag = extras.fallback_tag(subject)
        via = f"the referrers tag {tag}"
        try:
            fetched = client.get_manifest(repository, tag)
        except NotFound:
            return []
        index = load_json(fetched.data, f"{where}:{tag}")
        items = index.get("manifests") if isinstance(index, dict) else None
        if not isinstance(items, list):
            raise PeerError(f"{where}:{tag}: the referrers tag does not hold an index")
        listed = items
    out = []
    for i, item in enumerate(listed):
        descriptor = Descriptor.from_json(item, f"{where}: {via}: manifests[{i}]")
        kind = extras.kind_of(descriptor.artifact_type)
        if not wanted.wants(extras.Extra(descriptor, subject, kind, descriptor.artifact_type)):
            continue
        ref = Reference(client.registry, repository, None, descriptor.digest)
        try:
            entry = source.add(ref, {extras.SUBJECT: str(subject)})
        except NotFound:
            raise NotFound(
                f"{where}: {via} names manifest {descriptor.digest}, which is not there"
            ) from None
        manifest = _manifest(
            source.open_blob(descriptor.digest).read(), f"{where}@{descriptor.digest}"
        )
        if manifest is None or manifest.subject is None or manifest.subject.digest != subject:
            named = manifest.subject.digest if manifest and manifest.subject else "no subject"
            raise InputError(
                f"{where}: {via} lists {descriptor.digest} as a referrer of {subject}, "
                f"but its subject is {named}"
            )
        out.append(entry)
    return out


def _manifest(data: bytes, origin: str) -> Manifest | None:
    document = parse_document(data, origin)
    return document if isinstance(document, Manifest) else None


class _Target(Protocol):
    entries: list[ImageEntry]

    def add(self, entry: ImageEntry, tag: str | None) -> None: ...


def place_extras(
    source: Source,
    parted: extras_in.Parted,
    targets: Sequence[_Target],
    platforms: list[Platform] | None,
) -> list[str]:
    """Each destination repository takes the extras of the images it gets, after them
    (cosign's under their tags, referrers by digest); say which extras stay behind."""
    placed: set[Digest] = set()
    for target in targets:
        subjects = [
            digest
            for entry in list(target.entries)
            for digest in extras_in.subjects(resolve(source, entry, platforms))
        ]
        for entry, extra in parted.of(subjects):
            target.add(entry, extra.tag)
            placed.add(entry.descriptor.digest)
    left = [e for e, _ in parted.extras if e.descriptor.digest not in placed]
    if not left:
        return []
    return [f"{len(left)} signatures, attestations or referrers: their image is not pushed"]


def update_fallback_tags(
    source: Source, client: RegistryClient, repository: str, entries: Sequence[ImageEntry]
) -> None:
    """After ``entries`` are pushed to ``repository``: where the registry has no referrers
    API, add the referrers among them to the fallback tag of their subject, merged with
    what it lists (nothing there is dropped)."""
    by_subject: dict[Digest, list[Descriptor]] = {}
    for entry in entries:
        extra = extras_in.extra_of(source, entry)
        if extra is None or extra.tag is not None:
            continue
        document = resolve(source, entry).document
        if not isinstance(document, Manifest) or document.subject is None:
            continue
        listed = document.descriptor(
            annotations=dict(document.annotations), artifact_type=extras.artifact_type(document)
        )
        by_subject.setdefault(extra.subject, []).append(listed)
    for subject, added in by_subject.items():
        if client.referrers(repository, str(subject)) is not None:
            continue  # the registry lists referrers itself
        tag = extras.fallback_tag(subject)
        where = f"{client.registry}/{repository}:{tag}"
        try:
            fetched = client.get_manifest(repository, tag)
        except NotFound:
            existing: list[Descriptor] = []
        else:
            index = load_json(fetched.data, where)
            items = index.get("manifests") if isinstance(index, dict) else None
            if not isinstance(items, list):
                raise PeerError(f"{where}: the referrers tag does not hold an index")
            existing = [
                Descriptor.from_json(item, f"{where}: manifests[{i}]")
                for i, item in enumerate(items)
            ]
        merged = extras.merge_referrers(existing, added)
        if len(merged) == len(existing):
            continue
        body = dump_json(extras.referrers_index(merged))
        client.put_manifest(repository, tag, body, media.OCI_INDEX)
