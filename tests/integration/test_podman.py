"""podman as a target, through its Docker-compatible API (``podman system service``):
load, list, save and run; one ``Loaded image`` line per image."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import Run
from tests.integration.conftest import _short_tmp
from tests.integration.podman_peer import Podman
from tests.integration.test_registry import _ids, executable_layer, runnable_archive

BUSYBOX = Path("/bin/busybox")


@pytest.fixture(scope="module")
def podman() -> Iterator[Podman]:
    peer = Podman(_short_tmp("arch-p-"))
    peer.start()
    try:
        yield peer
    finally:
        peer.stop()
        shutil.rmtree(peer.root, ignore_errors=True)


@pytest.fixture
def archive(tmp_path: Path) -> Path:
    base = executable_layer({"bin/busybox": BUSYBOX.read_bytes()})
    return runnable_archive(
        tmp_path / "apps.tar",
        {
            "reg/app:1": [base, executable_layer({"app.txt": b"app one\n"})],
            "reg/tool:1": [base, executable_layer({"app.txt": b"tool one\n"})],
        },
    )


def test_load_list_save_run(
    run: Run, podman: Podman, archive: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOCKER_HOST", podman.host)
    loaded = run("load", archive)
    assert loaded.code == 0, loaded.err
    lines = loaded.out.strip().splitlines()
    assert sorted(lines) == [
        "Loaded image: localhost/reg/app:1",
        "Loaded image: localhost/reg/tool:1",
    ], loaded.out
    ids = _ids(run, archive)
    held = {row["name"]: row["id"] for row in podman.images()}
    assert held["localhost/reg/app:1"] == ids["reg/app:1"]
    assert held["localhost/reg/tool:1"] == ids["reg/tool:1"]

    listed = run("inventory", "docker-daemon:")
    assert listed.code == 0, listed.err
    listed_ids = {i["reference"]: i["id"] for i in json.loads(listed.out)["images"]}
    assert listed_ids["localhost/reg/app:1"] == ids["reg/app:1"]
    assert listed_ids["localhost/reg/tool:1"] == ids["reg/tool:1"]

    saved = tmp_path / "from-podman.tar.zst"
    result = run("save", "localhost/reg/app:1", "localhost/reg/tool:1", "-o", saved)
    assert result.code == 0, result.err
    assert run("verify", saved).code == 0
    assert set(_ids(run, saved).values()) == set(ids.values())

    # podman's default ulimits (nofile, nproc) can be over what a sandbox lets runc set
    limits = ["--ulimit=nofile=1024:1024", "--ulimit=nproc=1024:1024"]
    out = podman.podman("run", "--rm", "--network=none", *limits, "localhost/reg/app:1")
    assert out == "app one\n"

    # podman takes whole archives only (no layer left out, or it refuses the load)
    again = run("load", archive)
    assert again.code == 0, again.err
    assert "refused" not in again.err
    assert sorted(again.out.strip().splitlines()) == sorted(lines)
