"""A bundle with a member index (docs/BUNDLE.md) is still what other tools read: docker
loads its tar, skopeo reads it as a docker and an OCI archive; archiver loads it."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from archiver.blobs import tar_members
from tests.conftest import SAMPLES, Run
from tests.integration.peers import Dockerd, require, skopeo


@pytest.fixture
def bundle(run: Run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(tar_members, "INDEX_FROM", 1)  # the samples are small
    out = tmp_path / "indexed.tar.zst"
    assert run("pack", SAMPLES / "legacy.tar", "-o", out).code == 0
    plain = subprocess.run(["zstd", "-dc", str(out)], capture_output=True, check=True).stdout
    assert tar_members.MEMBERS_FILE.encode() in plain
    return out


def test_docker_loads_the_tar_of_an_indexed_bundle(
    dockerd: Dockerd, bundle: Path, tmp_path: Path
) -> None:
    plain = tmp_path / "indexed.tar"
    subprocess.run(["zstd", "-q", "-d", str(bundle), "-o", str(plain)], check=True)
    loaded = dockerd.docker("load", "-i", str(plain))
    assert "demo/app:2.1" in loaded
    assert dockerd.docker("image", "inspect", "--format", "{{.Id}}", "demo/app:2.1").strip()
    dockerd.docker("rmi", "demo/app:2.1", "demo/base:1.0", "demo/base:latest")
    dockerd.docker("rmi", "localhost:5000/tools/probe:0.1")


def test_skopeo_reads_the_tar_of_an_indexed_bundle(bundle: Path, tmp_path: Path) -> None:
    require("skopeo")
    plain = tmp_path / "indexed.tar"
    subprocess.run(["zstd", "-q", "-d", str(bundle), "-o", str(plain)], check=True)
    assert "demo/app" in skopeo("inspect", f"docker-archive:{plain}:demo/app:2.1")
    assert "schemaVersion" in skopeo("inspect", "--raw", f"oci-archive:{plain}:2.1")


def test_archiver_loads_an_indexed_bundle(
    dockerd: Dockerd, bundle: Path, run: Run, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOCKER_HOST", dockerd.host)
    result = run("load", bundle)
    assert result.code == 0, result.err
    assert dockerd.docker("image", "inspect", "--format", "{{.Id}}", "demo/app:2.1").strip()
    dockerd.docker("rmi", "demo/app:2.1", "demo/base:1.0", "demo/base:latest")
    dockerd.docker("rmi", "localhost:5000/tools/probe:0.1")
