"""Our schemas against the image-spec's own schema test cases and real documents."""

from __future__ import annotations

import hashlib
import json
import tarfile
from pathlib import Path
from typing import Any

import pytest

from archiver import schema
from archiver.errors import InputError
from archiver.model import media
from tests.conftest import fixture_path

CASES_DIR = fixture_path("image-spec/schema-test-cases")
CASES = json.loads((CASES_DIR / "cases.json").read_text())
KIND_OF = {
    "config": "image-config",
    "descriptor": "descriptor",
    "index": "oci-index",
    "layout": "oci-layout",
    "manifest": "oci-manifest",
    "compat": None,
}
DOCKER_TO_OCI = {
    media.DOCKER_MANIFEST_LIST: media.OCI_INDEX,
    media.DOCKER_MANIFEST: media.OCI_MANIFEST,
    media.DOCKER_CONFIG: media.OCI_CONFIG,
    media.DOCKER_LAYER_GZIP: media.OCI_LAYER_GZIP,
}


def _compat_kind(data: Any) -> str:
    if "manifests" in data:
        return "oci-index"
    if "layers" in data:
        return "oci-manifest"
    return "image-config"


def _check(kind: str, data: Any) -> bool:
    try:
        schema.validate(kind, data, "case")
    except InputError:
        return False
    return True


# A deliberate difference: docker builds images with no layers at all (FROM scratch plus
# only LABEL/ENV) and saves them with "layers": [], so we accept an empty list.
DIFFERENT = {"manifest/05-invalid.json": "we accept manifests with no layers (docker makes them)"}
PARAMS = [
    pytest.param(c, marks=pytest.mark.xfail(strict=True, reason=DIFFERENT[c["file"]]))
    if c["file"] in DIFFERENT
    else c
    for c in CASES
]


@pytest.mark.parametrize("case", PARAMS, ids=[c["file"] for c in CASES])
def test_image_spec_schema_cases(case: dict[str, Any]) -> None:
    raw = (CASES_DIR / case["file"]).read_bytes()
    if case.get("expected_sha256_of_exact_bytes"):
        want = case["expected_sha256_of_exact_bytes"].removeprefix("sha256:")
        assert hashlib.sha256(raw).hexdigest() == want
    if not case["parses_as_json"]:
        with pytest.raises(json.JSONDecodeError):
            json.loads(raw)
        return
    data = json.loads(raw)
    kind = KIND_OF[case["file"].split("/")[0]]
    if kind is None:  # the upstream test rewrites Docker media types to OCI ones first
        text = raw.decode()
        for docker, oci in DOCKER_TO_OCI.items():
            text = text.replace(docker, oci)
        data = json.loads(text)
        kind = _compat_kind(data)
    assert _check(kind, data) is not case["expect_fail"], case["comment"]


@pytest.mark.parametrize(
    "kind, document, path",
    [
        ("oci-manifest", {"schemaVersion": 2, "config": {}, "layers": []}, "$.config"),
        ("oci-index", {"schemaVersion": 2, "manifests": [{"digest": "x"}]}, "$.manifests[0]"),
        ("docker-save-manifest", [{"Config": 1, "Layers": []}], "$[0].Config"),
        ("docker-save-repositories", {"r": {"t": "not-hex"}}, "$.r.t"),
        ("oci-layout", {}, "$"),
    ],
)
def test_errors_name_origin_and_json_path(kind: str, document: Any, path: str) -> None:
    with pytest.raises(InputError) as err:
        schema.validate(kind, document, "some.tar: doc.json")
    assert str(err.value).startswith(f"some.tar: doc.json: {path}")


def test_huge_instances_do_not_flood_the_message() -> None:
    with pytest.raises(InputError) as err:
        schema.validate("oci-layout", {"imageLayoutVersion": ["x" * 100_000]}, "o")
    assert len(str(err.value)) < 300


def test_every_kind_has_a_schema_file() -> None:
    for kind in schema.KINDS:
        assert (schema.schema_dir() / f"{kind}.schema.json").is_file()
    with pytest.raises(ValueError):
        schema.validator("nope")


def _blobs(layout: Path) -> list[tuple[str, Any]]:
    out = []
    for path in sorted((layout / "blobs" / "sha256").iterdir()):
        try:
            data = json.loads(path.read_bytes())
        except (UnicodeDecodeError, json.JSONDecodeError):
            continue
        if isinstance(data, dict) and data.get("schemaVersion") == 2:
            out.append((path.name, data))
    return out


def test_real_layout_documents_are_valid() -> None:
    testrepo = fixture_path("regclient/testdata/testrepo")
    schema.validate("oci-index", json.loads((testrepo / "index.json").read_text()), "index.json")
    for name, data in _blobs(testrepo):
        declared = data.get("mediaType", "")
        kind = "oci-index" if "manifests" in data else "oci-manifest"
        if "docker" in declared:
            kind = "docker-manifest-list" if "manifests" in data else "docker-manifest"
        schema.validate(kind, data, name)
    for layout in fixture_path("go-containerregistry/pkg/v1/layout/testdata").iterdir():
        if (layout / "index.json").exists():
            schema.validate(
                "oci-index", json.loads((layout / "index.json").read_text()), str(layout)
            )


def test_real_docker_save_manifest_is_valid() -> None:
    path = fixture_path("go-containerregistry/pkg/v1/tarball/testdata/test_bundle.tar")
    with tarfile.open(path) as tar:
        member = tar.extractfile("manifest.json")
        assert member is not None
        schema.validate("docker-save-manifest", json.load(member), "manifest.json")
