"""The extras model: cosign tag names, the fallback tag, subjects, kinds, filters."""

from __future__ import annotations

import json

import pytest

from archiver.model import extras, media
from archiver.model.descriptor import Descriptor
from archiver.model.digest import Digest
from archiver.model.documents import Manifest, parse_document

SUBJECT = Digest.from_bytes(b"image")


def _manifest(doc: dict[str, object]) -> tuple[Descriptor, Manifest]:
    raw = json.dumps(doc).encode()
    parsed = parse_document(raw, "test", media.OCI_MANIFEST)
    assert isinstance(parsed, Manifest)
    return parsed.descriptor(), parsed


def _blob(media_type: str, data: bytes = b"{}") -> dict[str, object]:
    return {"mediaType": media_type, "digest": str(Digest.from_bytes(data)), "size": len(data)}


def test_cosign_tags_round_trip() -> None:
    for kind in ("sig", "att", "sbom"):
        tag = extras.cosign_tag(SUBJECT, kind)
        assert tag == f"sha256-{SUBJECT.hex}.{kind}"
        assert extras.parse_cosign_tag(tag) == (SUBJECT, kind)
    assert extras.parse_cosign_tag("latest") is None
    assert extras.parse_cosign_tag(f"sha256-{SUBJECT.hex}") is None
    assert extras.parse_cosign_tag(f"sha256-{SUBJECT.hex}.exe") is None
    with pytest.raises(ValueError):
        extras.cosign_tag(SUBJECT, "exe")


def test_fallback_tag() -> None:
    assert extras.fallback_tag(SUBJECT) == f"sha256-{SUBJECT.hex}"
    assert extras.parse_fallback_tag(extras.fallback_tag(SUBJECT)) == SUBJECT
    assert extras.parse_fallback_tag(f"sha256-{SUBJECT.hex}.sig") is None


def test_referrer_by_subject_field_with_artifact_type() -> None:
    subject = {"mediaType": media.OCI_MANIFEST, "digest": str(SUBJECT), "size": 5}
    descriptor, manifest = _manifest(
        {
            "schemaVersion": 2,
            "mediaType": media.OCI_MANIFEST,
            "artifactType": "application/spdx+json",
            "config": _blob(media.OCI_EMPTY),
            "layers": [_blob("application/spdx+json", b"sbom")],
            "subject": subject,
        }
    )
    found = extras.extra_of(descriptor, manifest)
    assert found is not None
    assert (found.subject, found.kind, found.artifact_type, found.tag) == (
        SUBJECT,
        "sbom",
        "application/spdx+json",
        None,
    )
    assert found.annotations() == {extras.SUBJECT: str(SUBJECT)}


def test_cosign_signature_by_tag() -> None:
    descriptor, manifest = _manifest(
        {
            "schemaVersion": 2,
            "mediaType": media.OCI_MANIFEST,
            "config": _blob(media.OCI_CONFIG),
            "layers": [_blob(extras.COSIGN_SIMPLESIGNING)],
        }
    )
    tag = extras.cosign_tag(SUBJECT, "sig")
    found = extras.extra_of(descriptor, manifest, ("other", tag))
    assert found is not None and (found.kind, found.subject, found.tag) == ("sig", SUBJECT, tag)
    assert extras.extra_of(descriptor, manifest, ("latest",)) is None  # an image, not an extra


def test_artifact_type_falls_back_to_config_media_type() -> None:
    _, helm = _manifest(
        {
            "schemaVersion": 2,
            "config": _blob("application/vnd.cncf.helm.config.v1+json"),
            "layers": [_blob("application/vnd.cncf.helm.chart.content.v1.tar+gzip")],
        }
    )
    assert extras.artifact_type(helm) == "application/vnd.cncf.helm.config.v1+json"
    _, image = _manifest({"schemaVersion": 2, "config": _blob(media.OCI_CONFIG), "layers": []})
    assert extras.artifact_type(image) is None


def test_annotation_names_subject_when_nothing_else_does() -> None:
    descriptor = Descriptor(media.OCI_MANIFEST, SUBJECT, 3, annotations={})
    assert extras.extra_of(descriptor, None) is None
    marked = descriptor.with_annotations({extras.SUBJECT: str(Digest.from_bytes(b"x"))})
    found = extras.extra_of(marked, None)
    assert found is not None and found.subject == Digest.from_bytes(b"x")
    bad = descriptor.with_annotations({extras.SUBJECT: "sha256:nothex"})
    assert extras.extra_of(bad, None) is None


def test_kinds_and_filter_and_summary() -> None:
    assert extras.kind_of("application/vnd.dev.sigstore.bundle.v0.3+json") == "referrer"
    assert extras.kind_of("application/vnd.cncf.notary.signature") == "sig"
    assert extras.kind_of("application/vnd.in-toto+json") == "att"
    assert extras.kind_of("application/vnd.cyclonedx+json") == "sbom"
    d = Descriptor(media.OCI_MANIFEST, SUBJECT, 1)
    sig = extras.Extra(d, SUBJECT, "sig")
    sbom = extras.Extra(d, SUBJECT, "sbom", "application/spdx+json")
    assert extras.summary([sbom, sig, sig]) == "2 sig, 1 sbom"
    assert extras.summary([]) == ""
    assert extras.ExtrasFilter().wants(sig)
    assert not extras.ExtrasFilter(enabled=False).wants(sig)
    only = extras.ExtrasFilter(types=("application/spdx+json",))
    assert only.wants(sbom) and not only.wants(sig)
    assert extras.ExtrasFilter(types=("sig",)).wants(sig)


def test_merge_referrers_never_drops() -> None:
    a = Descriptor(media.OCI_MANIFEST, Digest.from_bytes(b"a"), 1)
    b = Descriptor(media.OCI_MANIFEST, Digest.from_bytes(b"b"), 1)
    c = Descriptor(media.OCI_MANIFEST, Digest.from_bytes(b"c"), 1)
    assert extras.merge_referrers([a, b], [b, c]) == [a, b, c]
    index = extras.referrers_index([a])
    assert index["mediaType"] == media.OCI_INDEX
