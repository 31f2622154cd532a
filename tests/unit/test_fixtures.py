"""Every public fixture read by path, with the result its upstream tests expect.

They lie in ``../shared/public-fixtures`` beside the checkout; tests.conftest finds them
(fixture_path), and where they are absent a test skips in one line, or fails under CI=true.
"""

from __future__ import annotations

import hashlib
import json
import tarfile
from pathlib import Path

import pytest

import tests.conftest
from tests.conftest import Run, fixture_params, fixture_path, require_fixtures

GCR_TARBALL = "go-containerregistry/pkg/v1/tarball/testdata"
GCR_MUTATE = "go-containerregistry/pkg/v1/mutate/testdata"
GCR_LAYOUT = "go-containerregistry/pkg/v1/layout/testdata"
CI_LAYOUT = "containers-image/oci/layout/fixtures"


def rows(run: Run, path: Path | str, *extra: str) -> list[dict]:
    result = run("ls", "--json", *extra, path)
    assert result.code == 0, result.err
    return json.loads(result.out)


@pytest.mark.parametrize(
    "relative, expected",
    [
        (f"{GCR_TARBALL}/test_image_1.tar", [("bazel/v1/tarball", "test_image_1", "6e0b0504")]),
        (f"{GCR_TARBALL}/test_image_2.tar", [("bazel/v1/tarball", "test_image_2", "930705ce")]),
        (
            f"{GCR_TARBALL}/test_load_manifest.tar",
            [("bazel/v1/tarball", "test_image_1", "6e0b0504")],
        ),
        (
            f"{GCR_TARBALL}/test_bundle.tar",
            [("test_image_2", "latest", "930705ce"), ("test_image_1", "latest", "6e0b0504")],
        ),
        (
            f"{GCR_TARBALL}/test_link.tar",
            [
                ("bazel/v1/tarball", "test_image_1", "6e0b0504"),
                ("bazel/v1/tarball", "test_image_3", "d4c9adac"),
            ],
        ),
        (f"{GCR_TARBALL}/hello-world-v25.tar", [("<none>", "<none>", "ee301c92")]),
        (f"{GCR_MUTATE}/source_image.tar", [("bazel/pkg/v1/mutate", "source_image", "6e0b0504")]),
        # its config is named 6e0b0504....json but hashes to 05b5ec12...: IDs come from bytes
        (
            f"{GCR_MUTATE}/source_image_with_empty_layer_history.tar",
            [("bazel/pkg/v1/mutate", "source_image", "05b5ec12")],
        ),
        (f"{GCR_MUTATE}/whiteout_dir.tar", [("localhost:5000/whiteout", "latest", "92f1e3d5")]),
        (f"{GCR_MUTATE}/overwritten_file.tar", [("bazel/pkg/v1/mutate", "overwritten_file", "")]),
        (f"{GCR_MUTATE}/whiteout_image.tar", [("bazel/pkg/v1/mutate", "whiteout_image", "")]),
        (
            "containers-image/docker/archive/fixtures/almostempty.tar",
            [("emptyimage", "latest", "9d7f147c")],
        ),
    ],
)
def test_docker_save_fixtures_list_and_verify(relative: str, expected: list, run: Run) -> None:
    path = fixture_path(relative)
    listed = rows(run, path)
    assert [(r["repository"], r["tag"]) for r in listed] == [(e[0], e[1]) for e in expected]
    for row, (_, _, id_prefix) in zip(listed, expected, strict=True):
        assert row["id"].startswith(f"sha256:{id_prefix}")
        assert row["digest"] is None  # docker-save entries have no manifest digest
    result = run("verify", path)
    assert result.code == 0, result.err


def test_uncompressed_layer_digest_is_its_diff_id(run: Run) -> None:
    path = fixture_path(f"{GCR_TARBALL}/test_image_1.tar")
    with tarfile.open(path) as tar:
        manifest = json.load(tar.extractfile("manifest.json"))  # type: ignore[arg-type]
        layer = tar.extractfile(manifest[0]["Layers"][0]).read()  # type: ignore[union-attr]
    (row,) = rows(run, path)
    assert row["layers"] == ["sha256:" + hashlib.sha256(layer).hexdigest()]


def test_linked_layer_is_read_through_the_link(run: Run, tmp_path: Path) -> None:
    path = fixture_path(f"{GCR_TARBALL}/test_link.tar")
    out = tmp_path / "linked"
    assert (
        run(
            "convert", path, out, "--to", "oci-dir", "--image", "bazel/v1/tarball:test_image_3"
        ).code
        == 0
    )
    layer = out / "blobs/sha256/8897395fd26dc44ad0e2a834335b33198cb41ac4d98dfddf58eced3853fa7b17"
    assert layer.stat().st_size > 0


@pytest.mark.parametrize(
    "name",
    [
        "test_image_1",
        "test_image_1:latest",
        "index.docker.io/library/test_image_1:latest",
        "6e0b0504",
    ],
)
def test_bundle_image_selection_normalises_names(name: str, run: Run, tmp_path: Path) -> None:
    path = fixture_path(f"{GCR_TARBALL}/test_bundle.tar")
    out = tmp_path / "one.tar"
    result = run("convert", path, out, "--image", name)
    assert result.code == 0, result.err
    assert [(r["repository"], r["id"][:15]) for r in rows(run, out)] == [
        ("test_image_1", "sha256:6e0b0504")
    ]


def test_gzip_layers_verify_their_diff_ids(run: Run, tmp_path: Path) -> None:
    path = fixture_path(f"{GCR_MUTATE}/whiteout_dir.tar")
    out = tmp_path / "w"
    assert run("convert", path, out, "--to", "oci-dir").code == 0
    manifest = json.loads((out / "index.json").read_text())["manifests"][0]
    doc = json.loads((out / "blobs/sha256" / manifest["digest"][7:]).read_text())
    assert {layer["mediaType"] for layer in doc["layers"]} == {
        "application/vnd.oci.image.layer.v1.tar+gzip"
    }
    assert run("verify", out).code == 0


def test_oci_layout_with_four_kinds_of_refs(run: Run) -> None:
    listed = rows(run, fixture_path(f"{GCR_LAYOUT}/test_index"))
    assert [r["tag"] for r in listed] == ["1", "2", "3", "4"]
    assert listed[0]["digest"].startswith("sha256:eebff607")
    assert listed[0]["id"].startswith("sha256:6e0b0504")
    assert run("verify", fixture_path(f"{GCR_LAYOUT}/test_index")).code == 0


def test_helm_artifact_is_not_an_image_but_is_copied(run: Run, tmp_path: Path) -> None:
    path = fixture_path(f"{GCR_LAYOUT}/test_index_media_type")
    assert rows(run, path) == []
    out = tmp_path / "copy"
    assert run("convert", path, out, "--to", "oci-dir").code == 0
    assert sorted(p.name for p in (out / "blobs/sha256").iterdir()) == sorted(
        p.name for p in (path / "blobs/sha256").iterdir()
    )


def test_layout_without_blobs_is_an_error(run: Run) -> None:
    path = fixture_path(f"{GCR_LAYOUT}/test_gc_image_unknown_mediatype")
    result = run("ls", path)
    assert result.code != 0 and "sha256:32589985" in result.err


def test_shared_layers_are_written_once(run: Run, tmp_path: Path) -> None:
    path = fixture_path("oras-py/oras/tests/ocilayout_data/ocilayout2")
    out = tmp_path / "two.tar"
    result = run("convert", path, out, "--to", "oci", "--json")
    assert result.code == 0, result.err
    with tarfile.open(out) as tar:
        names = [m.name for m in tar.getmembers()]
    assert len(names) == len(set(names))
    assert sum("1a88c784" in n for n in names) == 1
    assert json.loads(result.out)["images"] == 1


def test_regclient_repo_round_trips_every_blob(run: Run, tmp_path: Path) -> None:
    path = fixture_path("regclient/testdata/testrepo")
    assert run("verify", path).code == 0
    out = tmp_path / "mirror"
    assert run("convert", path, out, "--to", "oci-dir").code == 0
    index = json.loads((out / "index.json").read_text())
    original = json.loads((path / "index.json").read_text())
    assert {m["digest"] for m in index["manifests"]} == {m["digest"] for m in original["manifests"]}
    assert run("verify", out).code == 0
    ours = {(r["tag"], r["id"]) for r in rows(run, out)}
    assert ours == {(r["tag"], r["id"]) for r in rows(run, path)}


def test_platform_choice(run: Run) -> None:
    path = fixture_path("regclient/testdata/testrepo")
    amd = {r["tag"]: r for r in rows(run, path, "--platform", "linux/amd64")}
    arm = {r["tag"]: r for r in rows(run, path, "--platform", "linux/arm64")}
    assert amd["v1"]["platform"] == "linux/amd64" and arm["v1"]["platform"] == "linux/arm64"
    assert amd["v1"]["id"] != arm["v1"]["id"]


@pytest.mark.parametrize(
    "relative, message",
    [
        # upstream's delete fixtures declare config sizes their files do not have
        (f"{CI_LAYOUT}/delete_image_only_one_image", "size exceeded"),
        (f"{CI_LAYOUT}/delete_image_multiple_images", "truncated"),
        # no oci-layout file at all
        (f"{CI_LAYOUT}/two_images_manifest", "not an image archive"),
    ],
)
def test_inconsistent_layouts_are_reported(relative: str, message: str, run: Run) -> None:
    result = run("verify", fixture_path(relative))
    assert result.code != 0 and message in result.err and "Traceback" not in result.err


def test_absent_fixtures_skip_in_one_line_and_fail_under_ci(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tests.conftest, "FIXTURES", tmp_path / "shared" / "public-fixtures")
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception) as skipped:
        fixture_path(f"{GCR_TARBALL}/test_bundle.tar")
    assert str(skipped.value) == (
        f"public fixtures absent: {tmp_path}/shared/public-fixtures "
        "(shared/ is not beside the checkout)"
    )
    (param,) = fixture_params(["a", "b"])  # one placeholder, not an empty (silent) set
    assert param.id == "public-fixtures-absent" and param.marks[0].name == "public_fixtures"
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI=true needs them"):
        require_fixtures()


def test_a_file_missing_from_present_fixtures_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tests.conftest, "FIXTURES", tmp_path)
    monkeypatch.delenv("CI", raising=False)
    assert fixture_params(["a", "b"]) == ["a", "b"]
    with pytest.raises(pytest.fail.Exception, match="public fixture missing"):
        fixture_path("nope.tar")
