"""archiver load --containerd / copy containerd: against a real containerd (its own root,
state and socket; CRI off): images complete and unpacked as ctr sees them, one runs, a
second load sends only new blobs, two loads at once, save into a bundle docker loads, and
bad input refused in one line with nothing left behind."""

from __future__ import annotations

import io
import json
import os
import random
import socket
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any

import pytest

from archiver.model import media
from archiver.model.descriptor import Descriptor
from archiver.model.digest import Digest
from archiver.places.containerd.client import ContainerdClient
from archiver.places.containerd.content import ContentStore
from tests.conftest import Run, fixture_path
from tests.factory import docker_save, layer
from tests.integration.peers import Containerd, Dockerd, require

BUSYBOX = "/bin/busybox"  # Debian's busybox-static: a static binary, so the images run
ROOT = Path(__file__).resolve().parents[2]


def ctr(containerd: Containerd, namespace: str, *args: str) -> str:
    result = subprocess.run(
        [require("ctr"), "--address", containerd.address, "--namespace", namespace, *args],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, f"ctr {' '.join(args)}: {result.stderr}"
    return result.stdout


def check(containerd: Containerd, namespace: str) -> dict[str, tuple[str, str]]:
    """``ctr images check``: name -> (status, unpacked)."""
    rows = ctr(containerd, namespace, "images", "check").splitlines()[1:]
    found = {}
    for row in rows:
        cells = row.split()
        found[cells[0]] = (cells[3], cells[-1])
    return found


def leftovers(containerd: Containerd, namespace: str) -> tuple[str, str, str]:
    """What a failed load must not leave: image records, active snapshots, leases."""
    images = ctr(containerd, namespace, "images", "ls", "-q")
    active = [
        r for r in ctr(containerd, namespace, "snapshots", "ls").splitlines() if "Active" in r
    ]
    leases = ctr(containerd, namespace, "leases", "ls", "-q")
    return images.strip(), "\n".join(active), leases.strip()


@pytest.fixture(scope="module")
def archives(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """ct/base (busybox + a file), ct/app on it (one archive); ct/tool on it (another)."""
    if not os.access(BUSYBOX, os.X_OK):
        pytest.fail(f"{BUSYBOX} is missing: install Debian's busybox-static")
    folder = tmp_path_factory.mktemp("ctr")
    base = layer({"busybox": Path(BUSYBOX).read_bytes(), "base.txt": b"from base\n"}, 0o755)
    app = layer({"app.txt": b"from app\n"})
    tool = layer({"tool.txt": b"from tool\n"})
    both = layer(
        {"busybox": Path(BUSYBOX).read_bytes(), "both.txt": random.Random(18).randbytes(8 << 20)},
        0o755,
    )
    return {
        "one": docker_save(
            folder / "one.tar", [(["ct/base:1"], [base]), (["ct/app:1"], [base, app])]
        ),
        "two": docker_save(folder / "two.tar", [(["ct/tool:1"], [base, tool])]),
        "bad": docker_save(folder / "bad.tar", [(["ct/bad:1"], [b"not a tar" * 100])]),
        # a base no other test loads (content is shared between namespaces): both loads
        # at once write it, one waits for the other's ingest
        "both1": docker_save(folder / "both1.tar", [(["ct/both1:1"], [both, app])]),
        "both2": docker_save(folder / "both2.tar", [(["ct/both2:1"], [both, tool])]),
    }


def load(run: Run, containerd: Containerd, namespace: str, *args: str | Path) -> dict:
    result = run(
        "load", "--json", *args, "--containerd", containerd.address, "--namespace", namespace
    )
    assert result.code == 0, result.err
    return json.loads(result.out)


def test_load_gives_complete_unpacked_images_that_run(
    containerd: Containerd, run: Run, archives: dict[str, Path]
) -> None:
    summary = load(run, containerd, "t-run", archives["one"])
    assert summary["loaded"] == [
        "Loaded image: docker.io/ct/base:1",
        "Loaded image: docker.io/ct/app:1",
    ]
    assert summary["blobs"] == 6 and summary["layers_already_there"] == 0
    assert check(containerd, "t-run") == {
        "docker.io/ct/base:1": ("complete", "true"),
        "docker.io/ct/app:1": ("complete", "true"),
    }
    assert leftovers(containerd, "t-run")[1:] == ("", "")  # no active snapshot, no lease
    out = ctr(
        containerd, "t-run", "run", "--rm", "docker.io/ct/app:1", "ct-app-run",
        "/busybox", "cat", "/base.txt", "/app.txt",
    )  # fmt: skip
    assert out == "from base\nfrom app\n"


def test_a_second_load_sends_only_the_new_blobs(
    containerd: Containerd, run: Run, archives: dict[str, Path]
) -> None:
    load(run, containerd, "t-second", archives["one"])
    summary = load(run, containerd, "t-second", archives["two"])
    # the tool layer, its config and manifest; the base layer is there already
    assert (summary["blobs"], summary["layers_already_there"]) == (3, 1)
    assert summary["bytes_read"] < 64 * 1024  # not the busybox layer
    assert check(containerd, "t-second")["docker.io/ct/tool:1"] == ("complete", "true")
    again = load(run, containerd, "t-second", archives["two"])
    # every layer there: only the documents are counted (as the engine counts them)
    assert again["layers_already_there"] == 2 and again["bytes_read"] < 2048


def test_two_loads_at_once_sharing_a_base(
    containerd: Containerd, archives: dict[str, Path]
) -> None:
    def one(archive: Path, results: list[subprocess.CompletedProcess[str]]) -> None:
        results.append(
            subprocess.run(
                [sys.executable, "-m", "archiver", "load", str(archive), "--containerd",
                 containerd.address, "--namespace", "t-both"],
                capture_output=True, text=True, timeout=300,
                env={**os.environ, "PYTHONPATH": str(ROOT)},
            )
        )  # fmt: skip

    results: list[subprocess.CompletedProcess[str]] = []
    threads = [
        threading.Thread(target=one, args=(archives[n], results)) for n in ("both1", "both2")
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [r.returncode for r in results] == [0, 0], [r.stderr for r in results]
    found = check(containerd, "t-both")
    assert set(found) == {"docker.io/ct/both1:1", "docker.io/ct/both2:1"}
    assert set(found.values()) == {("complete", "true")}
    assert leftovers(containerd, "t-both")[1:] == ("", "")


def test_save_from_containerd_into_a_bundle_docker_loads(
    containerd: Containerd, dockerd: Dockerd, run: Run, archives: dict[str, Path], tmp_path: Path
) -> None:
    load(run, containerd, "t-save", archives["one"])
    bundle = tmp_path / "from-ctr.tar.zst"
    os.environ["CONTAINERD_ADDRESS"] = containerd.address
    try:
        result = run("copy", "containerd:t-save/docker.io/ct/app:1", f"bundle:{bundle}")
    finally:
        del os.environ["CONTAINERD_ADDRESS"]
    assert result.code == 0, result.err
    assert run("verify", bundle).code == 0
    subprocess.run(
        f"{require('zstd')} -dc {bundle} | {require('docker')} -H {dockerd.host} load",
        shell=True, check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    out = dockerd.docker(
        "run", "--rm", "--network", "none", "ct/app:1", "/busybox", "cat", "/app.txt"
    )
    assert out == "from app\n"


def test_an_inventory_of_containerd_makes_a_delta_without_what_it_holds(
    containerd: Containerd,
    run: Run,
    archives: dict[str, Path],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    load(run, containerd, "t-inv", archives["one"])
    monkeypatch.setenv("CONTAINERD_ADDRESS", containerd.address)
    inventory = tmp_path / "node.json"
    assert run("inventory", "containerd:t-inv/", "-o", inventory).code == 0
    delta = tmp_path / "delta.tar.zst"
    result = run("pack", archives["two"], "--base", inventory, "-o", delta, "--json")
    assert result.code == 0, result.err
    assert json.loads(result.out)["left_to_base"]["layers"] == 1  # the base layer


def test_copy_into_containerd_under_a_name(
    containerd: Containerd, run: Run, archives: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CONTAINERD_ADDRESS", containerd.address)
    result = run(
        "copy", "--image", "ct/app:1", archives["one"], "containerd:t-copy/docker.io/x/y:2"
    )
    assert result.code == 0, result.err
    assert check(containerd, "t-copy") == {"docker.io/x/y:2": ("complete", "true")}


def test_a_layer_the_snapshotter_refuses_leaves_nothing(
    containerd: Containerd, run: Run, archives: dict[str, Path]
) -> None:
    result = run(
        "load", archives["bad"], "--containerd", containerd.address, "--namespace", "t-bad"
    )
    assert result.code != 0
    assert "apply layer" in result.err and len(result.err.strip().splitlines()) == 1
    assert leftovers(containerd, "t-bad") == ("", "", "")


def test_bad_places_are_one_line(run: Run, archives: dict[str, Path], dockerd: Dockerd) -> None:
    missing = run("load", archives["one"], "--containerd", "/nonexistent/c.sock")
    assert missing.code == 4 and "/nonexistent/c.sock" in missing.err
    docker_socket = dockerd.host.removeprefix("unix://")
    wrong = run("load", archives["one"], "--containerd", docker_socket)
    assert wrong.code == 5 and "not a containerd API" in wrong.err
    with tempfile.TemporaryDirectory(dir="/tmp") as folder:
        path = os.path.join(folder, "s.sock")
        with socket.socket(socket.AF_UNIX) as listener:
            listener.bind(path)
            listener.listen()
            silent = run("load", archives["one"], "--containerd", path)
        assert silent.code == 5 and "not a containerd API" in silent.err
    invalid = run("load", archives["one"], "--containerd", docker_socket, "--namespace", "a/b")
    assert invalid.code == 2 and "namespace 'a/b' is invalid" in invalid.err
    for result in (missing, wrong, silent, invalid):
        assert len(result.err.strip().splitlines()) == 1, result.err


def test_a_snapshotter_containerd_lacks_is_refused_before_anything(
    containerd: Containerd, run: Run, archives: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CONTAINERD_SNAPSHOTTER", "zfs")
    result = run(
        "load", archives["one"], "--containerd", containerd.address, "--namespace", "t-zfs"
    )
    assert result.code == 2 and "snapshotter 'zfs' is not loaded" in result.err
    monkeypatch.delenv("CONTAINERD_SNAPSHOTTER")  # ctr reads it too
    assert leftovers(containerd, "t-zfs") == ("", "", "")


class Unread(io.RawIOBase):
    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        raise AssertionError("a blob containerd holds was read to be sent")


def test_a_blob_another_namespace_holds_is_not_sent(
    containerd: Containerd, run: Run, archives: dict[str, Path]
) -> None:
    load(run, containerd, "t-shared-a", archives["one"])
    digests = ctr(containerd, "t-shared-a", "content", "ls", "-q").split()
    client = ContainerdClient(containerd.address, "t-shared-b")
    try:
        store = ContentStore(client)
        for text in digests:
            digest = Digest.parse(text)
            assert not store.has(digest)
            size = (
                ContentStore(ContainerdClient(containerd.address, "t-shared-a")).info(digest).size
            )
            assert store.write(Descriptor(media.OCI_LAYER_TAR, digest, size), Unread()) is False
            assert store.has(digest)
    finally:
        client.close()


def test_the_namespace_default_snapshotter_is_used(
    containerd: Containerd, run: Run, archives: dict[str, Path]
) -> None:
    label = "containerd.io/defaults/snapshotter=native"
    ctr(containerd, "t-native", "namespaces", "create", "t-native", label)
    load(run, containerd, "t-native", archives["one"])
    native = ctr(containerd, "t-native", "snapshots", "--snapshotter", "native", "ls")
    assert len(native.splitlines()) == 3  # a header, the base chain, the app chain
    assert (
        ctr(containerd, "t-native", "snapshots", "--snapshotter", "overlayfs", "ls").count("\n")
        <= 1
    )
    assert set(check(containerd, "t-native").values()) == {("complete", "true")}


def test_a_multi_platform_index_is_stored_whole_and_unpacked_for_the_host(
    containerd: Containerd, run: Run
) -> None:
    """regclient's testrepo v3: an OCI index of 4 platforms, gzip layers."""
    repo = fixture_path("regclient/testdata/testrepo")
    load(run, containerd, "t-index", f"oci:{repo}:v3", "--tag", "test/multi:3")
    assert check(containerd, "t-index") == {"docker.io/test/multi:3": ("complete", "true")}
    held = set(ctr(containerd, "t-index", "content", "ls", "-q").split())
    index = json.loads((repo / "index.json").read_text())
    v3 = next(
        m for m in index["manifests"]
        if m.get("annotations", {}).get("org.opencontainers.image.ref.name") == "v3"
    )  # fmt: skip
    children = json.loads((repo / "blobs" / "sha256" / v3["digest"][7:]).read_text())
    assert {m["digest"] for m in children["manifests"]} <= held  # every platform's manifest


def test_extras_are_left_out_with_a_note(containerd: Containerd, run: Run, tmp_path: Path) -> None:
    from tests import cosign_format as cf
    from tests.extras_layout import signed_layout

    archive, _, _ = signed_layout(tmp_path / "oci", cf.new_key("ecdsa"))
    result = run("load", archive, "--containerd", containerd.address, "--namespace", "t-extras")
    assert result.code == 0, result.err
    assert "2 signatures, attestations, SBOMs or referrers are not loaded" in result.err
    assert check(containerd, "t-extras") == {"example.com/app:1": ("complete", "true")}
