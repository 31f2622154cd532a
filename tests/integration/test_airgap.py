"""The air-gap round trip with real peers: a far daemon and registry hold release 1; their
inventories cross; the near side packs release 2 as a delta, split; a part is damaged on
the way, found and written again; the delta is loaded into the far daemon, which runs
release 2, and pushed into the far registry, where skopeo sees release 2's digests."""

from __future__ import annotations

import io
import json
import os
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import Run
from tests.factory import random_layer
from tests.integration.conftest import _running, _short_tmp
from tests.integration.peers import Dockerd
from tests.integration.registry_peers import Registry
from tests.integration.test_registry import executable_layer, runnable_archive, skopeo_digest

BUSYBOX = "/bin/busybox"
MIB = 1024 * 1024


@pytest.fixture(scope="module")
def far_daemon() -> Iterator[Dockerd]:
    yield from _running(Dockerd(_short_tmp("arch-f-")))


@pytest.fixture
def far_registry() -> Iterator[Registry]:
    registry = Registry(_short_tmp("arch-r-"))
    registry.start()
    yield registry
    registry.stop()


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "docker-config"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


def _releases(tmp_path: Path) -> tuple[Path, Path, int]:
    """Release 1 and 2 of two images on one base (busybox and 2 MiB of data); release 2
    changes the applications' layers. Returns the archives and release 2's new bytes."""
    if not os.access(BUSYBOX, os.X_OK):
        pytest.fail(f"{BUSYBOX} is missing: install Debian's busybox-static")
    base = executable_layer({"bin/busybox": Path(BUSYBOX).read_bytes()})
    data = random_layer(2 * MIB, seed=40)
    new = {
        "app": executable_layer({"app.txt": b"app release 2\n", "pad": os.urandom(2 * MIB)}),
        "tool": executable_layer({"app.txt": b"tool release 2\n", "pad": os.urandom(MIB)}),
    }
    one = runnable_archive(
        tmp_path / "release1.tar",
        {
            "gap/app:1": [base, data, executable_layer({"app.txt": b"app release 1\n"})],
            "gap/tool:1": [base, data, executable_layer({"app.txt": b"tool release 1\n"})],
        },
    )
    two = runnable_archive(
        tmp_path / "release2.tar",
        {"gap/app:2": [base, data, new["app"]], "gap/tool:2": [base, data, new["tool"]]},
    )
    return one, two, sum(len(layer) for layer in new.values())


def test_the_whole_round_trip(
    run: Run,
    far_daemon: Dockerd,
    far_registry: Registry,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    release1, release2, new_bytes = _releases(tmp_path)
    # the far side holds release 1
    far_daemon.docker("load", "-q", "-i", str(release1))
    assert run("push", release1, "--to", far_registry.host).code == 0

    # its inventories: no layer read
    monkeypatch.setenv("DOCKER_HOST", far_daemon.host)
    daemon_inv, registry_inv = tmp_path / "daemon.json", tmp_path / "registry.json"
    assert run("inventory", "docker-daemon:", "-o", daemon_inv).code == 0
    assert run("inventory", f"docker://{far_registry.host}", "-o", registry_inv).code == 0
    named = tmp_path / "named.json"
    repositories = f"docker://{far_registry.host}/gap/app,{far_registry.host}/gap/tool"
    assert run("inventory", repositories, "-o", named).code == 0
    assert json.loads(named.read_text())["blobs"] == json.loads(registry_inv.read_text())["blobs"]
    inv = json.loads(daemon_inv.read_text())
    assert inv["kind"] == "daemon" and len(inv["chains"]) >= 4
    # docker-daemon:REF is the inventory of that image alone
    one = tmp_path / "one.json"
    assert run("inventory", "docker-daemon:gap/app:1,gap/app:1", "-o", one).code == 0
    scoped = json.loads(one.read_text())
    assert [i["reference"] for i in scoped["images"]] == ["gap/app:1"]
    assert len(scoped["chains"]) == 3 and set(scoped["chains"]) < set(inv["chains"])
    missing = run("inventory", "docker-daemon:gap/nope:1", "-o", tmp_path / "none.json")
    assert missing.code == 4 and "gap/nope:1" in missing.err
    assert len(missing.err.strip().splitlines()) == 1 and not (tmp_path / "none.json").exists()
    assert {i["reference"] for i in json.loads(registry_inv.read_text())["images"]} == {
        f"{far_registry.host}/gap/app:1",
        f"{far_registry.host}/gap/tool:1",
    }

    # the near side: release 2 as a delta against what the far daemon holds, in parts
    media = tmp_path / "usb"
    media.mkdir()
    delta = media / "release2.tar.zst"
    packed = run(
        "pack", release2, "--base", daemon_inv, "-o", delta, "--split-size", "1M", "--json"
    )
    assert packed.code == 0, packed.err
    summary = json.loads(packed.out)
    assert summary["left_to_base"]["layers"] == 2  # busybox and the data layer
    parts = [p for p in media.iterdir() if p.name.startswith("release2.tar.zst.0")]
    size = sum(p.stat().st_size for p in parts)
    assert new_bytes * 0.95 < size < new_bytes * 1.05 + 64 * 1024  # the new layers alone
    assert len(summary["parts"]) >= 3

    # a part is damaged on the way; found, then written again from the near side
    second = media / "release2.tar.zst.002"
    good = second.read_bytes()
    second.write_bytes(good[:-1] + bytes([good[-1] ^ 0x5A]))
    damaged = run("verify", delta)
    assert damaged.code == 3 and "part 2 is damaged" in damaged.err
    again = run("pack", release2, "--base", daemon_inv, "-o", delta, "--split-size", "1M")
    assert again.code == 0  # all parts again: the same bytes
    assert second.read_bytes() == good
    second.write_bytes(b"lost")
    fix = ["--split-size", "1M", "--only-part", "2"]
    assert run("pack", release2, "--base", daemon_inv, "-o", delta, *fix).code == 0
    verified = json.loads(run("verify", "--json", media / "release2.tar.zst.001").out)
    assert verified["ok"] and len(verified["left_to_base"]) == 2

    # the far side: load into the daemon, which runs release 2
    loaded = run("load", media / "release2.tar.zst.001")
    assert loaded.code == 0, loaded.err
    assert set(loaded.out.split("\n")) >= {"Loaded image: gap/app:2", "Loaded image: gap/tool:2"}
    out = far_daemon.docker("run", "--rm", "--network", "none", "gap/app:2")
    assert out == "app release 2\n"
    # save takes --base too: release 2 out of the far daemon, against its old inventory
    saved = tmp_path / "saved-delta.tar.zst"
    save = run("save", "gap/app:2", "gap/tool:2", "--base", daemon_inv, "-o", saved, "--json")
    assert save.code == 0, save.err
    assert json.loads(save.out)["left_to_base"]["layers"] == 2

    # and into the registry: it has the base blobs, so only the new layers travel
    pushed = run("push", delta, "--to", far_registry.host, "--json")
    assert pushed.code == 0, pushed.err
    result = json.loads(pushed.out)
    assert result["bytes_pushed"] < new_bytes + 64 * 1024
    by_name = {p["reference"]: p["digest"] for p in result["pushed"]}
    for name in ("gap/app:2", "gap/tool:2"):
        ref = f"{far_registry.host}/{name}"
        assert skopeo_digest(ref) == by_name[ref]


def test_a_delta_where_its_base_is_missing_sends_nothing(
    run: Run,
    dockerd: Dockerd,
    far_registry: Registry,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    release1, release2, _ = _releases(tmp_path)
    inv = tmp_path / "release1.json"
    assert run("inventory", release1, "-o", inv).code == 0
    delta = tmp_path / "delta.tar.zst"
    assert run("pack", release2, "--base", inv, "-o", delta).code == 0

    monkeypatch.setenv("DOCKER_HOST", dockerd.host)
    before = sorted(dockerd.images(), key=str)  # images made in one second: in any order
    refused = run("load", delta)
    assert refused.code == 4 and refused.err.count("\n") == 1, refused.err
    assert "2 layers are neither in it nor at docker-daemon" in refused.err
    assert sorted(dockerd.images(), key=str) == before

    empty = run("push", delta, "--to", far_registry.host)
    assert empty.code == 4 and "neither in it nor at" in empty.err
    blobs = far_registry.root / "data" / "docker" / "registry" / "v2" / "blobs"
    assert not blobs.exists() or not any(blobs.rglob("data"))  # not one blob sent


def test_keep_going_past_a_failed_image(
    run: Run,
    dockerd: Dockerd,
    far_registry: Registry,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """One image fails (a registry that is not there; a corrupt layer): the others go on,
    a summary names each, the exit code says not all went."""
    monkeypatch.setenv("ARCHIVER_RETRY_TOTAL", "1")
    release1, _, _ = _releases(tmp_path)
    bundle = tmp_path / "r1.tar.zst"
    assert run("pack", release1, "-o", bundle).code == 0
    run("tag", bundle, "gap/app:1", f"{far_registry.host}/kept/app:1")
    run("tag", bundle, "gap/tool:1", "127.0.0.1:9/lost/tool:1")
    run("rmi", bundle, "gap/app:1", "gap/tool:1")
    pushed = run("push", bundle, "--keep-going", "--json")
    assert pushed.code == 1, pushed.err
    summary = json.loads(pushed.out)
    assert (summary["ok"], summary["failed"]) == (1, 1)
    failed = next(i for i in summary["images"] if i["status"] == "failed")
    assert failed["image"] == "127.0.0.1:9/lost/tool:1" and "127.0.0.1:9" in failed["reason"]

    # a layer of one image damaged in the archive: that image is not loaded, the other is
    broken = tmp_path / "broken.tar"
    with tarfile.open(release1) as source, tarfile.open(broken, "w") as out:
        manifest = json.loads(source.extractfile("manifest.json").read())  # type: ignore[union-attr]
        victim = manifest[1]["Layers"][-1]
        for member in source.getmembers():
            data = source.extractfile(member).read()  # type: ignore[union-attr]
            if member.name == victim:
                data = data[:600] + bytes([data[600] ^ 1]) + data[601:]
            out.addfile(member, io.BytesIO(data))
    monkeypatch.setenv("DOCKER_HOST", dockerd.host)
    loaded = run("load", broken, "--keep-going")
    assert loaded.code == 1
    assert "Summary: 1 ok, 0 skipped, 1 failed" in loaded.out
    assert "Loaded image: gap/app:1" in loaded.out and "digest mismatch" in loaded.out
    dockerd.docker("rmi", "gap/app:1")
