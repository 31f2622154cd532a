"""Producer x consumer checks with the real dockerd, containerd and skopeo."""

from __future__ import annotations

import contextlib
import hashlib
import json
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from tests.conftest import SAMPLES, Run
from tests.integration.peers import Containerd, Dockerd, require, skopeo


def payload(seed: str, size: int = 4096) -> bytes:
    out = b""
    counter = 0
    while len(out) < size:
        out += hashlib.sha256(f"{seed}{counter}".encode()).digest()
        counter += 1
    return out[:size]


@pytest.fixture(scope="module")
def built(dockerd: Dockerd) -> dict[str, str]:
    """FROM-scratch images: a base, two children sharing its layer, a second tag, a dangling one."""
    ids = {
        "base": dockerd.build(
            "it/base:1", {"base.bin": payload("base")}, extra='LABEL role="base"'
        ),
    }
    ids["app"] = dockerd.build(
        "it/app:1", {"app.bin": payload("app")}, base="it/base:1", extra="ENV A=1"
    )
    ids["tool"] = dockerd.build(
        "localhost:5000/it/tool:0.1", {"tool.bin": payload("tool")}, base="it/base:1"
    )
    dockerd.docker("tag", "it/app:1", "it/app:latest")
    # a dangling image: build a tag twice, the first image loses its name
    dockerd.build("it/moving:1", {"m.bin": payload("m1")})
    dockerd.build("it/moving:1", {"m.bin": payload("m2")})
    return ids


def our_rows(run: Run, archive: Path) -> list[dict[str, str]]:
    result = run("ls", "--json", archive)
    assert result.code == 0, result.err
    return json.loads(result.out)


def key(rows: list[dict[str, str]]) -> set[tuple[str, str, str]]:
    return {(r["repository"], r["tag"], r["id"]) for r in rows}


def test_ls_matches_docker_images_of_docker_save(
    dockerd: Dockerd, built: dict[str, str], run: Run, tmp_path: Path
) -> None:
    saved = tmp_path / "saved.tar"
    names = ["it/base:1", "it/app:1", "it/app:latest", "localhost:5000/it/tool:0.1"]
    dockerd.docker("save", "-o", str(saved), *names)
    daemon = {
        (r["repository"], r["tag"], r["id"])
        for r in dockerd.images()
        if f"{r['repository']}:{r['tag']}" in names
    }
    assert key(our_rows(run, saved)) == daemon
    assert run("verify", saved).code == 0


def test_docker_loads_our_hybrid_with_same_ids_and_tags(
    dockerd: Dockerd, built: dict[str, str], run: Run, tmp_path: Path
) -> None:
    saved = tmp_path / "saved.tar"
    names = ["it/base:1", "it/app:1", "it/app:latest", "localhost:5000/it/tool:0.1"]
    dockerd.docker("save", "-o", str(saved), *names)
    ours = tmp_path / "ours.tar"
    assert run("convert", saved, ours).code == 0
    before = {r for r in key(dockerd.images()) if f"{r[0]}:{r[1]}" in names}
    dockerd.docker("rmi", *names)
    dockerd.docker("load", "-i", str(ours))
    after = {r for r in key(dockerd.images()) if f"{r[0]}:{r[1]}" in names}
    assert after == before
    assert key(our_rows(run, ours)) == before


def test_docker_loads_our_converted_samples(dockerd: Dockerd, run: Run, tmp_path: Path) -> None:
    out = dockerd.docker("load", "-i", str(SAMPLES / "hybrid.tar"))
    assert "Loaded image: demo/base:1.0" in out
    ours = {(r["repository"], r["tag"], r["id"]) for r in our_rows(run, SAMPLES / "hybrid.tar")}
    loaded = {
        r
        for r in key(dockerd.images())
        if r[0] in ("demo/base", "demo/app", "localhost:5000/tools/probe")
    }
    assert loaded == ours


def test_docker_saved_dangling_image_by_id(
    dockerd: Dockerd, built: dict[str, str], run: Run, tmp_path: Path
) -> None:
    dangling = [r["id"] for r in dockerd.images() if r["repository"] == "<none>"]
    assert dangling
    saved = tmp_path / "dangling.tar"
    dockerd.docker("save", "-o", str(saved), dangling[0])
    rows = our_rows(run, saved)
    assert [(r["repository"], r["tag"], r["id"], r["reference"]) for r in rows] == [
        ("<none>", "<none>", dangling[0], None)
    ]


def test_skopeo_reads_what_we_write(run: Run, tmp_path: Path) -> None:
    oci_dir, oci_tar, hybrid = tmp_path / "oci", tmp_path / "oci.tar", tmp_path / "hybrid.tar"
    assert run("convert", SAMPLES / "legacy.tar", oci_dir, "--to", "oci-dir").code == 0
    assert run("convert", SAMPLES / "legacy.tar", oci_tar, "--to", "oci").code == 0
    assert run("convert", SAMPLES / "legacy.tar", hybrid).code == 0
    app_id = next(r["id"] for r in our_rows(run, hybrid) if r["repository"] == "demo/app")
    for ref in (
        f"oci:{oci_dir}:2.1",
        f"oci-archive:{oci_tar}:2.1",
        f"docker-archive:{hybrid}:demo/app:2.1",
    ):
        config = json.loads(skopeo("inspect", "--config", ref))
        assert (
            "sha256:"
            + hashlib.sha256(skopeo("inspect", "--config", "--raw", ref).encode()).hexdigest()
            == app_id
        )
        assert config["config"]["WorkingDir"] == "/app"
        copied = tmp_path / ("copy-" + ref.split(":")[0])
        skopeo("copy", ref, f"dir:{copied}")
        assert (copied / "manifest.json").exists()
    # skopeo reads our hybrid as an OCI archive too (the Docker >= 25 promise)
    skopeo("inspect", "--raw", f"oci-archive:{hybrid}:2.1")


def config_id(ref: str) -> str:
    """The image ID skopeo sees: the digest of the config bytes it reads."""
    raw = subprocess.run(
        [require("skopeo"), "--insecure-policy", "inspect", "--config", "--raw", ref],
        capture_output=True,
        check=True,
    ).stdout
    return "sha256:" + hashlib.sha256(raw).hexdigest()


def test_we_read_what_skopeo_writes(run: Run, tmp_path: Path) -> None:
    # skopeo 1.9 reads our hybrid as a docker-archive. (From a docker <= 24 archive whose
    # shared layer is a symlink, as samples/legacy.tar, skopeo takes the link's size and
    # fails writing a docker-archive: "archive/tar: write too long".)
    source = f"docker-archive:{SAMPLES / 'hybrid.tar'}:demo/app:2.1"
    targets = {
        "oci-dir": (f"oci:{tmp_path / 'sk-oci'}:app", tmp_path / "sk-oci"),
        "oci-archive": (f"oci-archive:{tmp_path / 'sk.oci.tar'}:app", tmp_path / "sk.oci.tar"),
        "docker-archive": (
            f"docker-archive:{tmp_path / 'sk.docker.tar'}:demo/app:2.1",
            tmp_path / "sk.docker.tar",
        ),
    }
    for fmt in ("gzip", "zstd"):  # skopeo compresses layers on the way: diff_ids must hold
        targets[f"oci-{fmt}"] = (f"oci:{tmp_path / fmt}:app", tmp_path / fmt)
    for name, (dest, path) in targets.items():
        extra = (
            ["--dest-compress", "--dest-compress-format", name[4:]]
            if name[4:] in ("gzip", "zstd")
            else []
        )
        skopeo("copy", *extra, source, dest)
        rows = our_rows(run, path)
        assert [r["id"] for r in rows] == [config_id(dest)], name
        tags = {"docker-archive": ("demo/app", "2.1")}.get(name, ("<none>", "app"))
        assert [(r["repository"], r["tag"]) for r in rows] == [tags], name
        result = run("verify", path)
        assert result.code == 0, (name, result.err)


def test_skopeo_multi_image_docker_archive(run: Run, tmp_path: Path) -> None:
    """skopeo writes one image per docker-archive; copies into one OCI dir make many."""
    layout = tmp_path / "multi"
    for ref, name in (("demo/app:2.1", "app"), ("demo/base:1.0", "base")):
        skopeo("copy", f"docker-archive:{SAMPLES / 'legacy.tar'}:{ref}", f"oci:{layout}:{name}")
    rows = our_rows(run, layout)
    assert sorted(r["tag"] for r in rows) == ["app", "base"]


def test_containerd_imports_our_hybrid_and_we_read_its_export(
    containerd: Containerd, run: Run, tmp_path: Path
) -> None:
    containerd.ctr(
        "images", "import", "--no-unpack", "--all-platforms", str(SAMPLES / "hybrid.tar")
    )
    listed = containerd.ctr("images", "ls", "-q")
    assert "docker.io/demo/app:2.1" in listed
    exported = tmp_path / "ctr-export.tar"
    containerd.ctr(
        "images", "export", str(exported), "docker.io/demo/app:2.1", "docker.io/demo/base:1.0"
    )
    rows = our_rows(run, exported)
    ours = {(r["repository"], r["tag"], r["id"]) for r in our_rows(run, SAMPLES / "hybrid.tar")}
    assert key(rows) <= ours
    assert {(r["repository"], r["tag"]) for r in rows} == {
        ("demo/app", "2.1"),
        ("demo/base", "1.0"),
    }
    assert run("verify", exported).code == 0
    with tarfile.open(exported) as tar:
        assert "index.json" in tar.getnames()


def test_docker_loads_a_decompressed_bundle(dockerd: Dockerd, run: Run, tmp_path: Path) -> None:
    """`zstd -dc bundle | docker load` gives the images and tags the bundle lists."""
    bundle = tmp_path / "b.tar.zst"
    assert run("pack", SAMPLES / "legacy.tar", "-o", bundle).code == 0
    names = ["demo/base:1.0", "demo/base:latest", "demo/app:2.1", "localhost:5000/tools/probe:0.1"]
    with contextlib.suppress(AssertionError):
        dockerd.docker("rmi", *names)
    zstd = subprocess.Popen(["zstd", "-dc", str(bundle)], stdout=subprocess.PIPE)
    loaded = subprocess.run(
        [dockerd.client, "--host", dockerd.host, "load"],
        stdin=zstd.stdout,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert zstd.wait() == 0
    assert "Loaded image: demo/app:2.1" in loaded
    daemon = {r for r in key(dockerd.images()) if f"{r[0]}:{r[1]}" in names}
    assert daemon == key(our_rows(run, bundle))


def test_docker_loads_unpack_to_stdout(dockerd: Dockerd, run: Run, tmp_path: Path) -> None:
    name = "localhost:5000/tools/probe:0.1"
    with contextlib.suppress(AssertionError):
        dockerd.docker("rmi", name)
    unpack = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "archiver",
            "unpack",
            str(SAMPLES / "bundle.tar.zst"),
            "-o",
            "-",
            "--image",
            name,
        ],
        stdout=subprocess.PIPE,
    )
    subprocess.run(
        [dockerd.client, "--host", dockerd.host, "load"],
        stdin=unpack.stdout,
        check=True,
        capture_output=True,
    )
    assert unpack.wait() == 0
    want = next(r["id"] for r in our_rows(run, SAMPLES / "bundle.tar.zst") if r["tag"] == "0.1")
    assert dockerd.docker("image", "inspect", "--format", "{{.Id}}", name).strip() == want


def test_skopeo_reads_a_decompressed_bundle_as_oci_archive(run: Run, tmp_path: Path) -> None:
    plain = tmp_path / "bundle.tar"
    with plain.open("wb") as out:
        subprocess.run(["zstd", "-dc", str(SAMPLES / "bundle.tar.zst")], stdout=out, check=True)
    want = next(r["id"] for r in our_rows(run, SAMPLES / "bundle.tar.zst") if r["tag"] == "2.1")
    assert config_id(f"oci-archive:{plain}:2.1") == want
    skopeo("copy", f"oci-archive:{plain}:2.1", f"oci:{tmp_path / 'copy'}:x")
    assert run("verify", tmp_path / "copy").code == 0
