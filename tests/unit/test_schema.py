"""Our JSON Schemas: every kind, the image-spec's own schema test cases, real documents.

Fixtures are read where they lie (``shared/public-fixtures`` beside the repository), never
copied into the project.
"""

from __future__ import annotations

import copy
import hashlib
import json
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from archiver import schema
from archiver.errors import InputError
from archiver.model import media
from tests.conftest import FIXTURES, fixture_json, fixture_params, fixture_path, needs_fixtures

CASES_DIR = FIXTURES / "image-spec" / "schema-test-cases"

D1 = "sha256:" + "1" * 64
D2 = "sha256:" + "2" * 64
D3 = "sha256:" + "3" * 64
D4 = "sha256:" + "4" * 64
HEX = "a" * 64
EMPTY_JSON = "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"  # {}
DELETE = object()

OCI_MANIFEST = media.OCI_MANIFEST
OCI_INDEX = media.OCI_INDEX
OCI_CONFIG = media.OCI_CONFIG
OCI_LAYER_GZIP = media.OCI_LAYER_GZIP
DOCKER_MANIFEST = media.DOCKER_MANIFEST
DOCKER_LIST = media.DOCKER_MANIFEST_LIST
DOCKER_CONFIG = media.DOCKER_CONFIG
DOCKER_LAYER_GZIP = media.DOCKER_LAYER_GZIP


def _rejects(kind: str, document: Any, origin: str = "origin") -> str:
    """The one-line message ``validate`` raises; fails the test when it accepts."""
    with pytest.raises(InputError) as err:
        schema.validate(kind, document, origin)
    message = str(err.value)
    assert "\n" not in message and "\r" not in message
    return message


# --- one realistic valid document per kind, and one way to break it -----------------------

VALID: dict[str, Any] = {
    "oci-manifest": {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": D1, "size": 1470},
        "layers": [
            {"mediaType": OCI_LAYER_GZIP, "digest": D2, "size": 3_400_000},
            {"mediaType": OCI_LAYER_GZIP, "digest": D3, "size": 148},
        ],
        "annotations": {"org.opencontainers.image.created": "2024-01-01T00:00:00Z"},
    },
    "oci-index": {
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [
            {
                "mediaType": OCI_MANIFEST,
                "digest": D1,
                "size": 1024,
                "platform": {"architecture": "amd64", "os": "linux"},
                "annotations": {"org.opencontainers.image.ref.name": "latest"},
            },
            {
                "mediaType": OCI_MANIFEST,
                "digest": D2,
                "size": 1025,
                "platform": {"architecture": "arm64", "os": "linux", "variant": "v8"},
            },
        ],
        "annotations": {"io.containerd.image.name": "docker.io/library/busybox:latest"},
    },
    "image-config": {
        "architecture": "amd64",
        "os": "linux",
        "created": "2024-01-01T00:00:00.123456789Z",
        "author": "someone",
        "docker_version": "24.0.7",
        "container": "3f2a",
        "config": {
            "Hostname": "",
            "User": "1000:1000",
            "Env": ["PATH=/usr/local/bin:/usr/bin", "EMPTY=", "A=b=c"],
            "Cmd": ["sh"],
            "Entrypoint": None,
            "Labels": None,
            "Volumes": {"/data": {}},
            "ExposedPorts": {"80/tcp": {}},
            "WorkingDir": "/srv",
            "StopSignal": "SIGTERM",
            "OnBuild": None,
            "ArgsEscaped": True,
            "Healthcheck": {"Test": ["CMD", "true"], "Interval": 30_000_000_000, "Retries": 3},
        },
        "container_config": {
            "Cmd": ["/bin/sh", "-c", "#(nop) ", 'CMD ["sh"]'],
            "Env": None,
            "Image": "sha256:" + "9" * 64,
            "Tty": False,
        },
        "rootfs": {"type": "layers", "diff_ids": [D3, D4]},
        "history": [
            {"created": "2024-01-01T00:00:00Z", "created_by": "/bin/sh -c #(nop) ADD file:x in /"},
            {"created": "2024-01-01T00:00:01Z", "created_by": 'CMD ["sh"]', "empty_layer": True},
            {"created_by": "RUN make", "comment": "buildkit.dockerfile.v0", "author": "me"},
        ],
        "moby.buildkit.buildinfo.v1": "eyJ9",
    },
    "descriptor": {
        "mediaType": OCI_LAYER_GZIP,
        "digest": D1,
        "size": 12,
        "urls": ["https://mcr.microsoft.com/v2/windows/blobs/" + D1, "http://[::1]:5000/a%20b"],
        "annotations": {"org.opencontainers.image.title": "layer.tar.gz"},
        "data": "aGVsbG8gd29ybGQ=",
        "artifactType": "application/vnd.example+type",
        "platform": {"architecture": "amd64", "os": "windows", "os.version": "10.0.17763.1"},
    },
    "oci-layout": {"imageLayoutVersion": "1.0.0"},
    "docker-manifest": {
        "schemaVersion": 2,
        "mediaType": DOCKER_MANIFEST,
        "config": {"mediaType": DOCKER_CONFIG, "digest": D1, "size": 7023},
        "layers": [{"mediaType": DOCKER_LAYER_GZIP, "digest": D2, "size": 32654}],
    },
    "docker-manifest-list": {
        "schemaVersion": 2,
        "mediaType": DOCKER_LIST,
        "manifests": [
            {
                "mediaType": DOCKER_MANIFEST,
                "digest": D1,
                "size": 7143,
                "platform": {"architecture": "ppc64le", "os": "linux"},
            },
            {
                "mediaType": DOCKER_MANIFEST,
                "digest": D2,
                "size": 7682,
                "platform": {"architecture": "arm", "os": "linux", "variant": "v7"},
            },
        ],
    },
    "docker-save-manifest": [
        {
            "Config": f"blobs/sha256/{HEX}",
            "RepoTags": ["busybox:latest", "localhost:5000/busybox:1"],
            "Layers": [f"blobs/sha256/{'b' * 64}"],
            "LayerSources": {
                "sha256:" + "b" * 64: {
                    "mediaType": "application/vnd.oci.image.layer.v1.tar",
                    "digest": "sha256:" + "b" * 64,
                    "size": 10752,
                }
            },
        },
        {
            "Config": f"{'c' * 64}.json",
            "RepoTags": None,
            "Layers": [],
            "Parent": "sha256:" + "d" * 64,
        },
    ],
    "docker-save-repositories": {"busybox": {"latest": HEX, "1.36": HEX}, "localhost:5000/a": {}},
    "inventory": {
        "format": "archiver-inventory",
        "version": 1,
        "kind": "daemon",
        "origin": "unix:///var/run/docker.sock",
        "created": "2026-11-23T08:00:00Z",
        "images": [{"reference": "app:1", "id": D1, "digest": None}],
        "blobs": [D1],
        "diffIds": [D1],
        "chains": [D1],
        "checksum": D1,
    },
    "sync-list": {
        "archiver-sync": 1,
        "platforms": ["linux/amd64"],
        "registries": {
            "reg.example.com": {"credentials": {"env": {"username": "U", "password": "P"}}}
        },
        "images": [{"image": "reg.example.com/app", "semver": ">=1.2 <2"}],
    },
}

BROKEN: dict[str, tuple[Any, str, str]] = {
    # kind: (a change to VALID[kind] as (path of keys/indexes, new value), JSON path, words)
    "oci-manifest": ((("layers", 1, "digest"), "sha256:1234"), "$.layers[1].digest", "digest"),
    "oci-index": (
        (("manifests", 1, "platform"), {"os": "linux"}),
        "$.manifests[1].platform",
        "'architecture' is a required property",
    ),
    "image-config": (
        (("history", 1, "empty_layer"), "yes"),
        "$.history[1].empty_layer",
        "is not of type 'boolean'",
    ),
    "descriptor": ((("size",), -1), "$.size", "less than the minimum of 0"),
    "oci-layout": ((("imageLayoutVersion",), 1), "$.imageLayoutVersion", "not of type 'string'"),
    "docker-manifest": ((("mediaType",), OCI_MANIFEST), "$.mediaType", "was expected"),
    "docker-manifest-list": (
        (("manifests", 0, "platform"), DELETE),
        "$.manifests[0]",
        "'platform' is a required property",
    ),
    "docker-save-manifest": (((1, "Layers"), None), "$[1].Layers", "not of type 'array'"),
    "docker-save-repositories": (
        (("busybox", "1.36"), D1),
        "$.busybox['1.36']",
        "not a valid layer id",
    ),
    "inventory": ((("chains", 0), "sha256:12"), "$.chains[0]", "digest"),
    "sync-list": ((("platforms", 0), "linux"), "$.platforms[0]", "platform"),
}


def _broken(kind: str) -> Any:
    (keys, value), _, _ = BROKEN[kind]
    document = copy.deepcopy(VALID[kind])
    parent = document
    for key in keys[:-1]:
        parent = parent[key]
    if value is DELETE:
        del parent[keys[-1]]
    else:
        parent[keys[-1]] = value
    return document


def test_every_kind_has_examples_and_a_schema_file() -> None:
    assert set(VALID) == set(BROKEN) == set(schema.KINDS)
    for kind in schema.KINDS:
        assert (schema.schema_dir() / f"{kind}.schema.json").is_file()


@pytest.mark.parametrize("kind", schema.KINDS)
def test_each_kind_accepts_a_valid_document(kind: str) -> None:
    schema.validate(kind, VALID[kind], "valid.json")


@pytest.mark.parametrize("kind", schema.KINDS)
def test_each_kind_rejects_a_broken_one_naming_origin_and_path(kind: str) -> None:
    _, path, words = BROKEN[kind]
    message = _rejects(kind, _broken(kind), "some.tar: doc.json")
    assert message.startswith(f"some.tar: doc.json: {path}: "), message
    assert words in message


@pytest.mark.parametrize(
    "kind, document",
    [
        ("oci-index", {"schemaVersion": 2, "manifests": None}),  # docker >= 25
        ("oci-index", {"schemaVersion": 2, "manifests": []}),
        ("oci-manifest", {**VALID["oci-manifest"], "layers": []}),  # FROM scratch + LABEL
        ("oci-manifest", {k: v for k, v in VALID["oci-manifest"].items() if k != "mediaType"}),
        (
            "image-config",
            {
                "architecture": "arm64",
                "os": "linux",
                "config": {
                    "Cmd": None,
                    "Entrypoint": None,
                    "Env": None,
                    "Labels": None,
                    "Volumes": None,
                    "ExposedPorts": None,
                    "Shell": None,
                    "Healthcheck": None,
                },
                "container_config": None,
                "rootfs": {"type": "layers"},  # docker omits diff_ids when there are none
                "history": None,
            },
        ),
        (
            "image-config",
            {
                "architecture": "amd64",
                "os": "linux",
                "config": {"Env": ["MULTI=line one\nline two", "X=\n"]},
                "rootfs": {"type": "layers", "diff_ids": None},
            },
        ),
        (
            "image-config",
            {
                "architecture": "amd64",
                "os": "linux",
                "config": None,
                "rootfs": {"type": "layers", "diff_ids": []},
            },
        ),
        ("docker-save-manifest", []),
        ("docker-save-repositories", {}),
        ("descriptor", {"mediaType": "text/plain", "digest": D1, "size": 0, "data": ""}),
        ("descriptor", {"mediaType": "a/b", "digest": "sha512:" + "f" * 128, "size": 1}),
        ("descriptor", {"mediaType": "a/b", "digest": "blake3:" + "f" * 64, "size": 1}),
    ],
)
def test_what_real_tools_write_is_accepted(kind: str, document: Any) -> None:
    schema.validate(kind, document, "real.json")


@pytest.mark.parametrize(
    "kind, document, path, words",
    [
        ("docker-save-manifest", None, "$", "None is not of type 'array'"),
        ("docker-save-manifest", [{"Layers": []}], "$[0]", "'Config' is a required property"),
        (
            "docker-save-manifest",
            [{"Config": "c", "RepoTags": "a:b", "Layers": []}],
            "$[0].RepoTags",
            "not of type 'array', 'null'",
        ),
        (
            "docker-save-manifest",
            [{"Config": "c", "Layers": [], "LayerSources": {"x": {}}}],
            "$[0].LayerSources",
            "not a valid digest",
        ),
        ("oci-index", {"schemaVersion": 2, "manifests": 5}, "$.manifests", "'array', 'null'"),
        ("oci-index", {"schemaVersion": 2}, "$", "'manifests' is a required property"),
        ("oci-index", {"schemaVersion": 1, "manifests": []}, "$.schemaVersion", "2 was expected"),
        (
            "oci-manifest",
            {**VALID["oci-manifest"], "mediaType": DOCKER_MANIFEST},
            "$.mediaType",
            "was expected",
        ),
        ("oci-manifest", {**VALID["oci-manifest"], "layers": None}, "$.layers", "'array'"),
        (
            "image-config",
            {"os": "linux", "rootfs": {"type": "layers"}},
            "$",
            "'architecture' is a required property",
        ),
        (
            "image-config",
            {"architecture": "a", "os": "linux"},
            "$",
            "'rootfs' is a required property",
        ),
        (
            "image-config",
            {
                "architecture": "a",
                "os": "l",
                "rootfs": {"type": "layers"},
                "config": {"Env": ["=x"]},
            },
            "$.config.Env[0]",
            "Env entry",
        ),
        (
            "image-config",
            {
                "architecture": "a",
                "os": "l",
                "rootfs": {"type": "layers"},
                "config": {"Labels": {"a": 1}},
            },
            "$.config.Labels.a",
            "'string'",
        ),
        (
            "image-config",
            {"architecture": "a", "os": "l", "rootfs": {"type": "zfs"}},
            "$.rootfs.type",
            "'layers' was expected",
        ),
        (
            "descriptor",
            {"mediaType": "a/b", "digest": D1 + "\n", "size": 1},
            "$.digest",
            "not a valid digest",
        ),
        (
            "descriptor",
            {"mediaType": "a/b", "digest": "sha256:" + "a" * 63, "size": 1},
            "$.digest",
            "not a valid digest",
        ),
        (
            "descriptor",
            {"mediaType": "a/b", "digest": D1, "size": 2**63},
            "$.size",
            "greater than the maximum",
        ),
        ("descriptor", {"mediaType": "a/b", "digest": D1, "size": 1.5}, "$.size", "'integer'"),
        (
            "descriptor",
            {"mediaType": "a/b", "digest": D1, "size": 1, "urls": ["/relative"]},
            "$.urls[0]",
            "not a valid URI",
        ),
        (
            "descriptor",
            {"mediaType": "a/b", "digest": D1, "size": 1, "data": "aGk"},
            "$.data",
            "not a valid base64 string",
        ),
        ("docker-save-repositories", {"r": {"t": HEX + "\n"}}, "$.r.t", "not a valid layer id"),
    ],
)
def test_what_is_wrong_is_named(kind: str, document: Any, path: str, words: str) -> None:
    message = _rejects(kind, document, "o")
    assert message.startswith(f"o: {path}: "), message
    assert words in message, message


def test_huge_instances_do_not_flood_the_message() -> None:
    message = _rejects("oci-layout", {"imageLayoutVersion": ["x" * 100_000]}, "o")
    assert len(message) < 300
    message = _rejects("descriptor", {"mediaType": "a/b", "digest": "x" * 100_000, "size": 1})
    assert len(message) < 300
    message = _rejects("docker-save-repositories", {"k" * 100_000: {"t": "x" * 100_000}})
    assert len(message) < 400


def test_control_characters_stay_on_one_line() -> None:
    message = _rejects("docker-save-repositories", {"evil\nrepo": {"t\r": "x\n"}}, "a\nb.tar")
    assert message.startswith("a\\nb.tar: $['evil\\nrepo']['t\\r']: "), message


def test_unknown_kind_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="unknown schema kind"):
        schema.validate("no-such-kind", {}, "o")


def test_validators_are_built_once() -> None:
    assert schema.validator("oci-index") is schema.validator("oci-index")


def _schema_files() -> list[Path]:
    return sorted(Path(str(schema.schema_dir())).glob("*.json"))


def _refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                yield value
            else:
                yield from _refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _refs(value)


@pytest.mark.parametrize("path", _schema_files(), ids=lambda p: p.name)
def test_schema_files_are_ours_and_well_formed(path: Path) -> None:
    from jsonschema import Draft202012Validator

    document = json.loads(path.read_text())
    Draft202012Validator.check_schema(document)
    assert document["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert document["$id"] == f"https://archiver.dev/schemas/{path.name}"
    names = {p.name for p in _schema_files()}
    for ref in _refs(document):  # only local references: nothing is ever fetched
        target = ref.split("#")[0]
        assert target == "" or target in names, ref
    # jsonschema checks uniqueItems by comparing every pair when items do not sort: code
    # checks uniqueness with a set instead (see test_parsing_archives)
    assert '"uniqueItems"' not in path.read_text()


# --- the image-spec's own schema test cases ---------------------------------------------

CASES: list[dict[str, Any]] = fixture_json("image-spec/schema-test-cases/cases.json", [])
KIND_OF_DIR = {
    "config": "image-config",
    "descriptor": "descriptor",
    "index": "oci-index",
    "layout": "oci-layout",
    "manifest": "oci-manifest",
}
KIND_OF_COMPAT_FIELD = {
    "imageIndex": "oci-index",
    "manifest": "oci-manifest",
    "config": "image-config",
}
# What backwards_compatibility_test.go replaces before it validates a Docker document.
DOCKER_TO_OCI = {
    DOCKER_LIST: OCI_INDEX,
    DOCKER_MANIFEST: OCI_MANIFEST,
    DOCKER_LAYER_GZIP: OCI_LAYER_GZIP,
    DOCKER_CONFIG: OCI_CONFIG,
}
# Where we differ from upstream on purpose. Everything else must agree.
DIFFERENT = {
    "manifest/05-invalid.json": (
        'by design we accept a manifest with "layers": []: the spec only says layers SHOULD '
        "have an entry, and docker builds such images (FROM scratch plus metadata only)"
    ),
}
# The four cases a plain upstream schema cannot catch, and where ours catches them.
BEYOND_UPSTREAM_SCHEMA = {
    "config/09-invalid.json": "$.config.Env[0]",  # Env entry without '='
    "descriptor/15-invalid.json": "$.digest",  # upper-case hex in a sha256 digest
    "descriptor/17-invalid.json": "$.urls[0]",  # not a URI
    "descriptor/28-invalid.json": "$.data",  # base64 without its padding
}


def _case_document(case: dict[str, Any]) -> tuple[str, Any]:
    raw = (CASES_DIR / case["file"]).read_bytes()
    group = case["file"].split("/")[0]
    if group != "compat":
        return KIND_OF_DIR[group], json.loads(raw)
    text = raw.decode()
    for docker, oci in DOCKER_TO_OCI.items():
        text = text.replace(docker, oci)
    return KIND_OF_COMPAT_FIELD[case["field"]], json.loads(text)


def _accepted(kind: str, document: Any) -> bool:
    try:
        schema.validate(kind, document, "case")
    except InputError:
        return False
    return True


@pytest.mark.parametrize(
    "case",
    fixture_params(
        [
            pytest.param(
                c,
                id=c["file"],
                marks=[pytest.mark.xfail(strict=True, reason=DIFFERENT[c["file"]])]
                if c["file"] in DIFFERENT
                else [],
            )
            for c in CASES
        ]
    ),
)
def test_image_spec_schema_case(case: dict[str, Any]) -> None:
    raw = (CASES_DIR / case["file"]).read_bytes()
    if case["expected_sha256_of_exact_bytes"]:
        want = case["expected_sha256_of_exact_bytes"].removeprefix("sha256:")
        assert hashlib.sha256(raw).hexdigest() == want
    if not case["parses_as_json"]:
        assert case["expect_fail"]
        with pytest.raises(json.JSONDecodeError):
            json.loads(raw)
        return
    kind, document = _case_document(case)
    assert _accepted(kind, document) is not case["expect_fail"], case["comment"]


@needs_fixtures
def test_there_are_69_cases_in_every_group() -> None:
    groups = [c["file"].split("/")[0] for c in CASES]
    assert len(CASES) == 69
    assert {g: groups.count(g) for g in set(groups)} == {
        "config": 10,
        "descriptor": 30,
        "index": 12,
        "layout": 2,
        "manifest": 11,
        "compat": 4,
    }


@needs_fixtures
@pytest.mark.parametrize("file, path", sorted(BEYOND_UPSTREAM_SCHEMA.items()))
def test_cases_upstream_needs_code_for_are_caught_by_our_schema(file: str, path: str) -> None:
    (case,) = [c for c in CASES if c["file"] == file]
    kind, document = _case_document(case)
    assert _rejects(kind, document, file).startswith(f"{file}: {path}: ")


# --- real documents ----------------------------------------------------------------------


def _sniff(document: Any) -> str | None:
    """Which of our kinds a JSON blob is, from its own content; None: not one of ours."""
    if not isinstance(document, dict):
        return None
    own = document.get("mediaType", "")
    if document.get("schemaVersion") == 2:
        if own == DOCKER_LIST:
            return "docker-manifest-list"
        if own == DOCKER_MANIFEST:
            return "docker-manifest"
        if "manifests" in document:
            return "oci-index"
        if "config" in document:
            return "oci-manifest"
    if "rootfs" in document:
        return "image-config"
    return None


def _json_blobs(layout: Path) -> Iterator[tuple[Path, Any]]:
    for folder in ("blobs", "shared_blobs"):
        for path in sorted((layout / folder).rglob("*")):
            if not path.is_file() or path.stat().st_size > 1_000_000:
                continue
            try:
                yield path, json.loads(path.read_bytes())
            except (UnicodeDecodeError, json.JSONDecodeError):
                continue  # a layer


LAYOUTS = sorted(p.parent.relative_to(FIXTURES).as_posix() for p in FIXTURES.rglob("index.json"))
# Layouts whose index.json is broken on purpose upstream.
BAD_LAYOUTS = {
    "containers-image/oci/layout/fixtures/name_lookups": (
        "$.manifests[4].mediaType",
        "'x-completely-unknown' is not a valid media type",
    ),
}


@pytest.mark.parametrize("relative", fixture_params(LAYOUTS))
def test_real_layouts_are_valid(relative: str) -> None:
    layout = fixture_path(relative)
    index = json.loads((layout / "index.json").read_text())
    if relative in BAD_LAYOUTS:
        path, words = BAD_LAYOUTS[relative]
        assert _rejects("oci-index", index, "index.json") == f"index.json: {path}: {words}"
    else:
        schema.validate("oci-index", index, f"{relative}/index.json")
    if (layout / "oci-layout").exists():
        schema.validate("oci-layout", json.loads((layout / "oci-layout").read_text()), relative)
    for path, document in _json_blobs(layout):
        kind = _sniff(document)
        if kind is not None:
            schema.validate(kind, document, str(path.relative_to(FIXTURES)))


@needs_fixtures
def test_enough_real_layouts_and_blobs_are_checked() -> None:
    assert len(LAYOUTS) >= 15
    kinds = [_sniff(d) for r in LAYOUTS for _, d in _json_blobs(FIXTURES / r)]
    for kind in ("oci-index", "oci-manifest", "image-config", "docker-manifest"):
        assert kinds.count(kind) >= 1, kind
    assert kinds.count("oci-manifest") > 30 and kinds.count("image-config") > 10


def test_regclient_testrepo_index_and_a_few_blobs() -> None:
    testrepo = fixture_path("regclient/testdata/testrepo")
    blobs = testrepo / "blobs" / "sha256"
    index = json.loads((testrepo / "index.json").read_text())
    schema.validate("oci-index", index, "testrepo/index.json")
    assert len(index["manifests"]) == 26
    seen: dict[str, int] = {}
    for entry in index["manifests"]:
        blob = blobs / entry["digest"].removeprefix("sha256:")
        document = json.loads(blob.read_bytes())
        kind = "oci-index" if entry["mediaType"] == OCI_INDEX else "oci-manifest"
        schema.validate(kind, document, blob.name)
        seen[kind] = seen.get(kind, 0) + 1
        config = document.get("config", {})
        if config.get("mediaType") != OCI_CONFIG:
            continue  # an artifact: its config is not an image config
        data = json.loads((blobs / config["digest"].removeprefix("sha256:")).read_bytes())
        if config["digest"] == EMPTY_JSON:
            # tags a-docker, a-docker-oci: an artifact that calls "{}" an image config
            message = _rejects("image-config", data, "{}")
            assert message == "{}: $: 'architecture' is a required property"
        else:
            schema.validate("image-config", data, config["digest"])
        seen["image-config"] = seen.get("image-config", 0) + 1
    assert seen["oci-index"] >= 10 and seen["oci-manifest"] >= 10 and seen["image-config"] >= 2


def test_a_docker_manifest_behind_an_oci_descriptor() -> None:
    """test_index: the descriptor says OCI manifest; the content is Docker v2s2."""
    layout = fixture_path("go-containerregistry/pkg/v1/layout/testdata/test_index")
    index = json.loads((layout / "index.json").read_text())
    schema.validate("oci-index", index, "index.json")
    (entry,) = [m for m in index["manifests"] if m["digest"].startswith("sha256:eebff607")]
    assert entry["mediaType"] == OCI_MANIFEST
    blob = layout / "blobs" / "sha256" / entry["digest"].removeprefix("sha256:")
    document = json.loads(blob.read_bytes())
    assert document["mediaType"] == DOCKER_MANIFEST
    schema.validate("docker-manifest", document, blob.name)  # what it is
    message = _rejects("oci-manifest", document, "eebff607")  # not what it is said to be
    assert message.startswith("eebff607: $.mediaType: ")


SINGLE_MANIFESTS = sorted(
    p.relative_to(FIXTURES).as_posix()
    for folder in (
        "containers-image/internal/manifest/testdata",
        "containers-image/manifest/fixtures",
    )
    for p in (FIXTURES / folder).glob("*.json")
)
# containers/image fixtures for MIME-type guessing, not well-formed: "layers": null, digest "".
BAD_SINGLE_MANIFESTS = {"ociv1.artifact.json", "ociv1nomime.artifact.json"}
# Not JSON: a compressed blob on purpose, and a symlink kept as the text of its target.
NOT_JSON = {"non-json.manifest.json", "schema2-to-schema1-by-docker.json"}


@pytest.mark.parametrize("relative", fixture_params(SINGLE_MANIFESTS))
def test_containers_image_manifests(relative: str) -> None:
    raw = fixture_path(relative).read_bytes()
    try:
        document = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError):
        assert Path(relative).name in NOT_JSON, relative
        return
    kind = _sniff(document)
    if kind is None:  # schema 1 and unknown schemaVersion: not something we read
        assert document.get("schemaVersion") != 2, relative
        return
    if Path(relative).name in BAD_SINGLE_MANIFESTS:
        assert _rejects(kind, document, relative).startswith(f"{relative}: $.layers: ")
    else:
        schema.validate(kind, document, relative)


def _member_names(path: Path) -> set[str]:
    with tarfile.open(path) as tar:
        return set(tar.getnames())


DOCKER_SAVES = sorted(
    p.relative_to(FIXTURES).as_posix()
    for p in FIXTURES.rglob("*.tar")
    if {"manifest.json", "repositories"} & _member_names(p)
)


def _member_json(tar: tarfile.TarFile, name: str) -> Any:
    member = tar.extractfile(name)
    assert member is not None, name
    return json.load(member)


@pytest.mark.parametrize("relative", fixture_params(DOCKER_SAVES))
def test_real_docker_save_tarballs(relative: str) -> None:
    with tarfile.open(fixture_path(relative)) as tar:
        names = set(tar.getnames())
        if "repositories" in names:
            schema.validate("docker-save-repositories", _member_json(tar, "repositories"), relative)
        if "oci-layout" in names:
            schema.validate("oci-layout", _member_json(tar, "oci-layout"), relative)
        if "index.json" in names:
            schema.validate("oci-index", _member_json(tar, "index.json"), relative)
        if "manifest.json" not in names:
            return  # pre-1.10 save: repositories only
        entries = _member_json(tar, "manifest.json")
        if relative.endswith("null_manifest.tar"):
            assert _rejects("docker-save-manifest", entries, "m") == (
                "m: $: None is not of type 'array'"
            )
            return
        schema.validate("docker-save-manifest", entries, f"{relative}: manifest.json")
        for entry in entries:
            config = entry["Config"]
            schema.validate("image-config", _member_json(tar, config), f"{relative}: {config}")


@needs_fixtures
def test_enough_docker_saves_are_checked() -> None:
    assert len(DOCKER_SAVES) >= 14
    assert "go-containerregistry/pkg/v1/tarball/testdata/test_bundle.tar" in DOCKER_SAVES


def test_docker_25_save_with_null_manifests_and_untagged_image() -> None:
    path = fixture_path("go-containerregistry/pkg/v1/tarball/testdata/hello-world-v25.tar")
    with tarfile.open(path) as tar:
        index = _member_json(tar, "index.json")
        entries = _member_json(tar, "manifest.json")
    assert index["manifests"] is None and entries[0]["RepoTags"] is None
    schema.validate("oci-index", index, "index.json")
    schema.validate("docker-save-manifest", entries, "manifest.json")
    assert entries[0]["LayerSources"]


def test_test_bundle_manifest_json() -> None:
    path = fixture_path("go-containerregistry/pkg/v1/tarball/testdata/test_bundle.tar")
    with tarfile.open(path) as tar:
        entries = _member_json(tar, "manifest.json")
    schema.validate("docker-save-manifest", entries, "test_bundle.tar: manifest.json")
    assert len(entries) == 2 and "LayerSources" in entries[0]
