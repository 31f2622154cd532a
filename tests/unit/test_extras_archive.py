"""Extras inside an archive: listed with their image, never as images; kept by a
conversion and by a selection of their image; gone with their image on rmi, kept on tag."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from tests import cosign_format as cf
from tests.conftest import Run
from tests.extras_layout import image, layout, signed_layout


def _index(path: Path) -> list[dict[str, object]]:
    return list(json.loads((path / "index.json").read_text())["manifests"])


def test_ls_and_inspect_show_extras_not_as_images(run: Run, tmp_path: Path) -> None:
    archive, app, signature = signed_layout(tmp_path / "oci", cf.new_key("ecdsa"), other=True)
    listed = json.loads(run("ls", archive, "--json").out)
    assert [row["reference"] for row in listed] == ["example.com/app:1", "example.com/tool:1"]
    assert [e["kind"] for e in listed[0]["extras"]] == ["sig", "sbom"]
    assert listed[0]["extras"][0]["digest"] == signature.digest
    assert "extras" not in listed[1]
    table = run("ls", archive).out.splitlines()
    assert table[0].split()[-1] == "EXTRAS"
    assert table[1].endswith("1 sig, 1 sbom")
    shown = json.loads(run("inspect", archive, "example.com/app:1").out)[0]
    assert {e["subject"] for e in shown["Extras"]} == {app.digest}


def test_no_extras_column_without_extras(run: Run, tmp_path: Path) -> None:
    archive = layout(tmp_path / "plain", [(image(b"x"), "example.com/x:1")])
    out = run("ls", archive).out
    assert "EXTRAS" not in out
    assert "extras" not in json.loads(run("ls", archive, "--json").out)[0]


def test_df_counts_extras(run: Run, tmp_path: Path) -> None:
    archive, _, signature = signed_layout(tmp_path / "oci", cf.new_key("ecdsa"))
    with_extras = json.loads(run("df", archive, "--json").out)["size"]
    plain = layout(tmp_path / "plain", [(image(b"app\n"), "example.com/app:1")])
    without = json.loads(run("df", plain, "--json").out)["size"]
    assert with_extras - without >= sum(len(b) for b in signature.blobs) + len(signature.manifest)
    shown = json.loads(run("df", archive, "--json").out)
    assert shown["extras"]["count"] == 2  # the signature, the SBOM
    assert shown["extras"]["size"] == with_extras - without
    assert [layer["size"] for layer in shown["layers"]] == [len(image(b"app\n").blobs[1])]
    verbose = run("df", archive, "-v").out
    assert "Signatures, attestations, SBOMs and referrers: 2, " in verbose


def test_conversion_keeps_extras_tied_to_their_subject(run: Run, tmp_path: Path) -> None:
    archive, app, signature = signed_layout(tmp_path / "oci", cf.new_key("ecdsa"), other=True)
    bundle = tmp_path / "b.tar.zst"
    got = run("convert", archive, bundle, "--to", "bundle", "--image", "example.com/app:1")
    assert got.code == 0, got.err
    assert got.out.startswith("Wrote 1 images (and 2 extras), ")  # a signature, an SBOM
    out = tmp_path / "back"
    assert run("convert", bundle, out, "--to", "oci-dir").code == 0
    entries = {e["digest"]: e for e in _index(out)}
    assert set(entries) == {
        app.digest,
        signature.digest,
        *(d for d in entries if d not in (app.digest, signature.digest)),
    }
    assert len(entries) == 3  # app, its signature, its SBOM; not tool:1
    marks = {d: e.get("annotations", {}).get("dev.archiver.subject") for d, e in entries.items()}
    assert marks[app.digest] is None
    assert all(marks[d] == app.digest for d in entries if d != app.digest)
    raw = subprocess.run(["zstd", "-dc", str(bundle)], capture_output=True, check=True).stdout
    assert b"sha256-" + app.digest[7:].encode() + b".sig" in raw


def test_rmi_takes_extras_with_the_image_tag_keeps_them(run: Run, tmp_path: Path) -> None:
    archive, app, signature = signed_layout(tmp_path / "oci", cf.new_key("ecdsa"), other=True)
    assert run("tag", archive, "example.com/app:1", "example.com/app:2").code == 0
    assert len(_index(archive)) == 5  # app twice, signature, SBOM, tool
    retagged = {e["digest"]: e.get("annotations") or {} for e in _index(archive)}
    assert retagged[signature.digest]["dev.archiver.subject"] == app.digest
    assert run("prune", archive, "-a", "-f").code == 0  # extras are not dangling images
    assert len(_index(archive)) == 5
    assert run("rmi", archive, "example.com/app:1").code == 0  # app:2 still names it
    assert signature.digest in {e["digest"] for e in _index(archive)}
    removed = run("rmi", archive, "example.com/app:2")
    assert removed.code == 0, removed.err
    assert f"Deleted: {signature.digest}" in removed.out
    left = _index(archive)
    assert [e["annotations"]["io.containerd.image.name"] for e in left] == ["example.com/tool:1"]
    assert run("prune", archive, "-a", "-f").code == 0


def test_referrers_of_a_subject_as_the_api_lists_them(tmp_path: Path) -> None:
    from archiver.engine import extras
    from archiver.model.digest import Digest
    from archiver.places.archive import open_source

    archive, app, signature = signed_layout(tmp_path / "oci", cf.new_key("ecdsa"))
    with open_source(str(archive)) as source:
        found = extras.referrers(source, Digest.parse(app.digest))
        assert [d.artifact_type for d in found] == ["application/spdx+json"]
        assert extras.referrers(source, Digest.parse(app.digest), "text/plain") == []
        assert extras.referrers(source, Digest.parse(signature.digest)) == []
