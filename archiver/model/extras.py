"""Extras: what travels with an image without being one (signatures, attestations, SBOMs,
OCI 1.1 referrers). Pure values, no I/O.

Two schemes tie an extra to its subject (the image manifest or index it is about):

- cosign's tags: ``sha256-<hex>.sig`` / ``.att`` / ``.sbom`` in the image's repository;
- OCI 1.1 referrers: any manifest whose own ``subject`` names the image's digest, listed by
  the referrers API (``/v2/NAME/referrers/DIGEST``) or, where a registry lacks it, by the
  fallback tag ``sha256-<hex>`` holding an index of them.

In a bundle an extra is an ordinary entry of ``index.json`` (never in docker's
``manifest.json``); cosign extras keep their tag name, referrers have none, and each entry
carries ``dev.archiver.subject`` (and its artifactType when it has one).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from archiver.model import media
from archiver.model.descriptor import Descriptor
from archiver.model.digest import Digest
from archiver.model.documents import Manifest

SUBJECT = "dev.archiver.subject"
"""index.json annotation of an extra: the digest of the manifest it is about."""

SIGNATURE, ATTESTATION, SBOM, REFERRER = "sig", "att", "sbom", "referrer"
KINDS = (SIGNATURE, ATTESTATION, SBOM, REFERRER)
COSIGN_SUFFIXES = (SIGNATURE, ATTESTATION, SBOM)
"""cosign's tag suffixes, in the order they are fetched and pushed."""

COSIGN_SIMPLESIGNING = "application/vnd.dev.cosign.simplesigning.v1+json"
COSIGN_SIGNATURE_ANNOTATION = "dev.cosignproject.cosign/signature"
IN_TOTO = "application/vnd.in-toto+json"
DSSE = "application/vnd.dsse.envelope.v1+json"

_COSIGN_TAG = re.compile(r"^(sha256)-([0-9a-f]{64})\.(sig|att|sbom)$")
_FALLBACK_TAG = re.compile(r"^(sha256)-([0-9a-f]{64})$")


def cosign_tag(subject: Digest, kind: str) -> str:
    """``sha256-<hex>.sig`` (``kind`` one of sig, att, sbom)."""
    if kind not in COSIGN_SUFFIXES:
        raise ValueError(f"not a cosign tag kind: {kind!r}")
    return f"{subject.algorithm}-{subject.hex}.{kind}"


def fallback_tag(subject: Digest) -> str:
    """The OCI 1.1 referrers fallback tag: ``sha256-<hex>``."""
    return f"{subject.algorithm}-{subject.hex}"


def parse_cosign_tag(tag: str) -> tuple[Digest, str] | None:
    """The subject and kind a cosign tag names, or None for any other tag."""
    found = _COSIGN_TAG.match(tag)
    if found is None:
        return None
    return Digest.parse(f"{found.group(1)}:{found.group(2)}"), found.group(3)


def parse_fallback_tag(tag: str) -> Digest | None:
    found = _FALLBACK_TAG.match(tag)
    return Digest.parse(f"{found.group(1)}:{found.group(2)}") if found else None


def artifact_type(manifest: Manifest) -> str | None:
    """A manifest's artifact type as the referrers API reports it: its ``artifactType``,
    else its config's media type when that is not an image config."""
    if manifest.artifact_type:
        return manifest.artifact_type
    config = manifest.config.media_type
    if config and not media.is_image_config(config) and config != media.OCI_EMPTY:
        return config
    return None


def kind_of(artifact: str | None, tag: str | None = None) -> str:
    """sig, att, sbom or referrer: the cosign tag decides, else the artifact type."""
    if tag is not None:
        parsed = parse_cosign_tag(tag)
        if parsed is not None:
            return parsed[1]
    text = (artifact or "").lower()
    if "signature" in text or text == COSIGN_SIMPLESIGNING:
        return SIGNATURE
    if "in-toto" in text or "dsse" in text or "attestation" in text:
        return ATTESTATION
    if "spdx" in text or "cyclonedx" in text or "sbom" in text:
        return SBOM
    return REFERRER


@dataclass(frozen=True)
class Extra:
    """One extra: its manifest's descriptor, its subject, its kind and artifact type, and
    the cosign tag it is stored under (None for a referrer)."""

    descriptor: Descriptor
    subject: Digest
    kind: str
    artifact_type: str | None = None
    tag: str | None = None

    def annotations(self) -> dict[str, str]:
        """What its index.json entry carries besides its name."""
        return {SUBJECT: str(self.subject)}

    def to_json(self) -> dict[str, object]:
        return {
            "digest": str(self.descriptor.digest),
            "kind": self.kind,
            "artifact_type": self.artifact_type,
            "tag": self.tag,
            "subject": str(self.subject),
            "size": self.descriptor.size,
        }


def extra_of(
    descriptor: Descriptor, manifest: Manifest | None, tags: tuple[str, ...] = ()
) -> Extra | None:
    """What ``descriptor`` (a top-level entry with ``tags``) is an extra of, or None when it
    is not one: a cosign tag names its subject; a ``subject`` field names it; failing both,
    a ``dev.archiver.subject`` annotation does."""
    artifact = artifact_type(manifest) if manifest is not None else descriptor.artifact_type
    for tag in tags:
        parsed = parse_cosign_tag(tag)
        if parsed is not None:
            subject, kind = parsed
            return Extra(descriptor, subject, kind, artifact, tag)
    subject_text: str | None = None
    if manifest is not None and manifest.subject is not None:
        subject_text = str(manifest.subject.digest)
    subject_text = subject_text or descriptor.annotations.get(SUBJECT)
    if not subject_text or not Digest.is_valid(subject_text):
        return None
    return Extra(descriptor, Digest.parse(subject_text), kind_of(artifact), artifact)


@dataclass(frozen=True)
class ExtrasFilter:
    """Which extras a pull takes: none (``enabled`` False), all, or those whose artifact
    type (or kind: sig, att, sbom, referrer) is one of ``types``."""

    enabled: bool = True
    types: tuple[str, ...] = ()

    def wants(self, extra: Extra) -> bool:
        if not self.enabled:
            return False
        if not self.types:
            return True
        return extra.kind in self.types or (extra.artifact_type or "") in self.types


def summary(extras: list[Extra]) -> str:
    """``2 sig, 1 sbom`` (kinds in a fixed order), empty when there are none."""
    counts = {kind: sum(1 for e in extras if e.kind == kind) for kind in KINDS}
    return ", ".join(f"{n} {kind}" for kind, n in counts.items() if n)


def referrers_index(descriptors: list[Descriptor]) -> dict[str, object]:
    """The index the referrers API answers (and the fallback tag holds)."""
    return {
        "schemaVersion": 2,
        "mediaType": media.OCI_INDEX,
        "manifests": [d.to_json() for d in descriptors],
    }


def merge_referrers(existing: list[Descriptor], added: list[Descriptor]) -> list[Descriptor]:
    """A fallback index's entries with ``added`` joined: none dropped, none twice."""
    seen = {d.digest for d in existing}
    out = list(existing)
    for descriptor in added:
        if descriptor.digest not in seen:
            seen.add(descriptor.digest)
            out.append(descriptor)
    return out


def of_entry(descriptor: Descriptor, document: object, tags: Iterable[str]) -> Extra | None:
    """``extra_of`` for a top-level entry whose document may be an index (an index with a
    ``subject`` is not followed: only its annotation names one)."""
    manifest = document if isinstance(document, Manifest) else None
    return extra_of(descriptor, manifest, tuple(tags))
