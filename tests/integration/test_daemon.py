"""archiver load / save / copy against a real dockerd: same IDs and tags as docker load,
only missing layers sent, loaded images run."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import SAMPLES, Run
from tests.integration.peers import Dockerd, require
from tests.integration.test_peers import payload

SAMPLE_NAMES = (
    "demo/base:1.0",
    "demo/base:latest",
    "demo/app:2.1",
    "localhost:5000/tools/probe:0.1",
)
BUSYBOX = "/bin/busybox"  # Debian's busybox-static: a static binary, so the images run


@pytest.fixture(autouse=True)
def docker_host(dockerd: Dockerd, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_HOST", dockerd.host)


@pytest.fixture(scope="module")
def images(dockerd: Dockerd) -> dict[str, str]:
    """ld/base (busybox + a file), ld/app and ld/tool built on it, each with its own file."""
    if not os.access(BUSYBOX, os.X_OK):
        pytest.fail(
            f"{BUSYBOX} is missing: install Debian's busybox-static (the test command does)"
        )
    base_files = {"busybox": Path(BUSYBOX).read_bytes(), "base.txt": b"from the base layer\n"}
    ids = {"base": dockerd.build("ld/base:1", base_files)}
    ids["app"] = dockerd.build("ld/app:1", {"app.txt": payload("ld-app")}, base="ld/base:1")
    ids["tool"] = dockerd.build("ld/tool:1", {"tool.txt": payload("ld-tool")}, base="ld/base:1")
    return ids


def listing(dockerd: Dockerd, prefix: str = "") -> set[tuple[str, str, str]]:
    return {
        (r["repository"], r["tag"], r["id"])
        for r in dockerd.images()
        if r["repository"].startswith(prefix)
    }


def remove(dockerd: Dockerd, *names: str) -> None:
    for name in names:
        if any(f"{r[0]}:{r[1]}" == name for r in listing(dockerd)):
            dockerd.docker("rmi", name)


def load_json(run: Run, *args: str | Path) -> dict:
    result = run("load", "--json", *args)
    assert result.code == 0, result.err
    return json.loads(result.out)


@pytest.fixture(scope="module")
def saved(
    dockerd: Dockerd, images: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Path]:
    path = tmp_path_factory.mktemp("saved") / "ld.tar"
    dockerd.docker("save", "-o", str(path), "ld/base:1", "ld/app:1", "ld/tool:1")
    yield path


def test_load_into_an_empty_daemon_matches_docker_load(
    dockerd: Dockerd, saved: Path, run: Run, tmp_path: Path
) -> None:
    names = ("ld/tool:1", "ld/app:1", "ld/base:1")
    bundle = tmp_path / "ld.tar.zst"
    assert run("pack", saved, "-o", bundle).code == 0
    remove(dockerd, *names)
    dockerd.docker("load", "-i", str(saved))
    by_docker = listing(dockerd, "ld/")
    remove(dockerd, *names)
    assert listing(dockerd, "ld/") == set()
    summary = load_json(run, bundle)
    assert listing(dockerd, "ld/") == by_docker
    assert "Loaded image: ld/app:1" in summary["loaded"]
    out = dockerd.docker(
        "run", "--rm", "--network", "none", "ld/app:1", "/data/busybox", "cat", "/data/base.txt"
    )
    assert out == "from the base layer\n"


def test_load_sends_only_missing_layers_and_the_image_runs(
    dockerd: Dockerd, saved: Path, run: Run
) -> None:
    remove(dockerd, "ld/tool:1", "ld/app:1")
    assert ("ld/base", "1") in {(r[0], r[1]) for r in listing(dockerd, "ld/")}
    summary = load_json(run, saved, "--image", "ld/app:1")
    assert summary["layers_already_there"] == 1  # the base layer was not sent
    base_size = len(Path(BUSYBOX).read_bytes())
    assert summary["bytes_read"] < base_size  # far less than the busybox layer alone
    assert summary["loaded"] == ["Loaded image: ld/app:1"]
    out = dockerd.docker(
        "run", "--rm", "--network", "none", "ld/app:1", "/data/busybox", "wc", "-c", "/data/app.txt"
    )
    assert out.split()[0] == "4096"
    assert ("ld/tool", "1") not in {(r[0], r[1]) for r in listing(dockerd, "ld/")}  # one of many


def test_images_needing_different_layers_load_side_by_side(
    dockerd: Dockerd, saved: Path, run: Run, images: dict[str, str]
) -> None:
    from archiver.engine import inventory
    from archiver.engine.graph import resolve
    from archiver.engine.load import concurrent_loads
    from archiver.places.archive import open_source
    from archiver.places.daemon.client import DaemonClient

    remove(dockerd, "ld/tool:1", "ld/app:1")
    held = inventory.of_daemon(DaemonClient(dockerd.host)).holdings
    with open_source(str(saved)) as source:
        roots = [resolve(source, e) for e in source.images()]
        loads = concurrent_loads(roots, held.held_layers(roots))
    assert len(loads) == 3  # app, tool, and base (the daemon lacks none of its layers)
    summary = load_json(run, saved)
    assert summary["layers_already_there"] == 1
    assert sorted(summary["loaded"]) == [f"Loaded image: ld/{n}:1" for n in ("app", "base", "tool")]
    assert {r[2] for r in listing(dockerd, "ld/")} >= set(images.values())
    for name in ("app", "tool"):
        out = dockerd.docker(
            "run", "--rm", "--network", "none", f"ld/{name}:1", "/data/busybox", "ls", "/data"
        )
        assert out.split() == sorted(["base.txt", "busybox", f"{name}.txt"])


def test_a_corrupt_layer_in_one_load_stops_the_loads_beside_it(
    dockerd: Dockerd, run: Run, tmp_path: Path
) -> None:
    """Loads side by side end together: the small one, complete long before the corrupt
    layer of the other is found out, is not loaded either."""
    from tests.factory import docker_save, random_layer

    big = random_layer(32 * 1024 * 1024, seed=7)
    path = docker_save(
        tmp_path / "two.tar",
        [(["ld/small:1"], [random_layer(4096, seed=8)]), (["ld/big:1"], [big])],
    )
    data = bytearray(path.read_bytes())
    data[data.index(big[-4096:]) + 100] ^= 0xFF  # near the big layer's end
    path.write_bytes(bytes(data))
    before = listing(dockerd)
    result = run("load", path)
    assert result.code == 3 and "digest mismatch" in result.err, result.err
    assert result.err.count("\n") == 1
    assert listing(dockerd) == before


def test_load_legacy_and_hybrid_archives(dockerd: Dockerd, run: Run, tmp_path: Path) -> None:
    for sample in ("legacy.tar", "hybrid.tar"):
        remove(dockerd, *SAMPLE_NAMES)
        load_json(run, SAMPLES / sample)
        ours = {
            (r["repository"], r["tag"], r["id"])
            for r in json.loads(run("ls", "--json", SAMPLES / sample).out)
        }
        daemon = {r for r in listing(dockerd) if r[0] in {o[0] for o in ours}}
        assert daemon == ours, sample


def test_retag_on_load(dockerd: Dockerd, saved: Path, run: Run, images: dict[str, str]) -> None:
    summary = load_json(run, saved, "--image", "ld/tool:1", "--tag", "localhost:5000/team/tool:7")
    assert summary["loaded"] == ["Loaded image: localhost:5000/team/tool:7"]
    got = dockerd.docker(
        "image", "inspect", "--format", "{{.Id}}", "localhost:5000/team/tool:7"
    ).strip()
    assert got == images["tool"]
    assert run("load", saved, "--tag", "x/y:1").code == 2  # three images, one name: refused


def test_save_images_sharing_layers_into_one_bundle(
    dockerd: Dockerd, saved: Path, run: Run, tmp_path: Path
) -> None:
    load_json(run, saved)
    bundle = tmp_path / "saved.tar.zst"
    result = run("save", "ld/base:1", "ld/app:1", "ld/tool:1", "-o", bundle, "--json")
    assert result.code == 0, result.err
    rows = json.loads(run("ls", "--json", bundle).out)
    assert {(r["repository"], r["tag"], r["id"]) for r in rows} == listing(dockerd, "ld/")
    # in the order asked for, whatever order the daemon's tar lists them in: the same save
    # gives the same bundle
    assert [r["repository"] for r in rows] == ["ld/base", "ld/app", "ld/tool"]
    again = tmp_path / "again.tar.zst"
    assert run("save", "ld/base:1", "ld/app:1", "ld/tool:1", "-o", again).code == 0
    assert again.read_bytes() == bundle.read_bytes()
    reversed_order = tmp_path / "reversed.tar.zst"
    assert run("save", "ld/tool:1", "ld/app:1", "ld/base:1", "-o", reversed_order).code == 0
    rows = json.loads(run("ls", "--json", reversed_order).out)
    assert [r["repository"] for r in rows] == ["ld/tool", "ld/app", "ld/base"]
    plain = tmp_path / "plain.tar"
    with plain.open("wb") as out:
        subprocess.run(["zstd", "-dc", str(bundle)], stdout=out, check=True)
    with tarfile.open(plain) as tar:
        names = [m.name for m in tar.getmembers()]
    assert len(names) == len(set(names))  # the shared base layer once
    assert run("copy", "docker-daemon:ld/app:1", f"bundle:{tmp_path / 'copy.tar.zst'}").code == 0
    assert [r["tag"] for r in json.loads(run("ls", "--json", tmp_path / "copy.tar.zst").out)] == [
        "1"
    ]


def test_images_sharing_no_layer_are_saved_side_by_side(
    dockerd: Dockerd, saved: Path, run: Run, tmp_path: Path
) -> None:
    from archiver.engine.save import concurrent_saves
    from archiver.places.daemon.client import DaemonClient

    load_json(run, saved)
    dockerd.build("ld/lone:1", {"lone.txt": payload("ld-lone")})
    names = ["ld/app:1", "ld/lone:1", "ld/base:1"]
    assert concurrent_saves(DaemonClient(dockerd.host), names) == [
        ["ld/app:1", "ld/base:1"],
        ["ld/lone:1"],
    ]
    bundle, again = tmp_path / "two.tar.zst", tmp_path / "again.tar.zst"
    for path in (bundle, again):
        result = run("save", *names, "-o", path)
        assert result.code == 0, result.err
    assert bundle.read_bytes() == again.read_bytes()
    rows = json.loads(run("ls", "--json", bundle).out)
    assert [f"{r['repository']}:{r['tag']}" for r in rows] == names  # as asked
    ids = {(r["repository"], r["tag"], r["id"]) for r in rows}
    assert ids == {row for row in listing(dockerd, "ld/") if f"{row[0]}:{row[1]}" in names}
    assert run("verify", bundle).code == 0
    # a name the daemon lacks: said (by name) before anything is saved
    missing = run("save", "ld/lone:1", "ld/nothing:1", "-o", tmp_path / "no.tar.zst")
    assert missing.code == 4 and missing.err.count("\n") == 1, missing.err
    assert "no such image: ld/nothing:1" in missing.err
    assert not (tmp_path / "no.tar.zst").exists()


def test_corrupt_archive_is_stopped_before_the_daemon_tags_anything(
    dockerd: Dockerd, run: Run, tmp_path: Path
) -> None:
    remove(dockerd, *SAMPLE_NAMES)
    with tarfile.open(SAMPLES / "hybrid.tar") as tar:
        member = max(tar.getmembers(), key=lambda m: m.size)
        offset = member.offset_data
    data = bytearray((SAMPLES / "hybrid.tar").read_bytes())
    data[offset + 700] ^= 0xFF
    bad = tmp_path / "bad.tar"
    bad.write_bytes(bytes(data))
    before = listing(dockerd)
    result = run("load", bad)
    assert result.code == 3 and "digest mismatch" in result.err and str(bad) in result.err
    assert listing(dockerd) == before


def test_daemon_not_running(run: Run, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/nothing.sock")
    result = run("load", SAMPLES / "hybrid.tar")
    assert result.code == 5 and result.err.count("\n") == 1 and "nothing.sock" in result.err

    # a socket we may not open; root would ignore its mode, so the CLI runs without
    # the capabilities that bypass file permissions (setpriv, from util-linux)
    locked = tmp_path / "locked.sock"
    with socket.socket(socket.AF_UNIX) as server:
        server.bind(str(locked))
        server.listen()
        os.chmod(locked, 0)
        drop = "-dac_override,-dac_read_search"
        denied = subprocess.run(
            [
                require("setpriv"),
                f"--bounding-set={drop}",
                f"--inh-caps={drop}",
                sys.executable,
                "-m",
                "archiver",
                "save",
                "x:1",
                "-o",
                str(tmp_path / "x.tar.zst"),
            ],
            env={**os.environ, "DOCKER_HOST": f"unix://{locked}"},
            capture_output=True,
            text=True,
        )
    assert denied.returncode == 5, denied.stderr
    assert (
        denied.stderr == f"Error: permission denied on the Docker daemon socket unix://{locked}\n"
    )


def test_backup_and_restore_a_whole_daemon(
    dockerd: Dockerd, run: Run, tmp_path: Path, images: dict[str, str]
) -> None:
    """save --all -a, wipe the daemon, load: the same `docker images` listing."""
    dockerd.build("ld/moving:1", {"m": b"1"})
    dockerd.build("ld/moving:1", {"m": b"2"})  # the first loses its name: a dangling image
    before = listing(dockerd)
    assert any(r[0] == "<none>" for r in before)
    backup = tmp_path / "all.tar.zst"
    result = run("save", "--all", "-a", "-o", backup)
    assert result.code == 0, result.err
    ids = dockerd.docker("images", "-aq").split()
    dockerd.docker("rmi", "-f", *dict.fromkeys(ids))  # newest first: children before parents
    assert listing(dockerd) == set()
    load_json(run, backup)
    assert listing(dockerd) == before


def test_daemon_rejecting_the_archive_mid_stream_is_one_line(
    dockerd: Dockerd, run: Run, tmp_path: Path
) -> None:
    """Digests hold, but the 'layer' is not a tar: the daemon refuses it; we say so in one
    line and no image of that archive is tagged."""
    from tests.factory import docker_save

    bad = docker_save(tmp_path / "notatar.tar", [(["ld/broken:1"], [b"\x00not a tar" * 10_000])])
    before = listing(dockerd)
    result = run("load", bad)
    assert result.code == 5, result.err
    assert result.err.startswith("Error: Docker daemon") and result.err.count("\n") == 1
    assert listing(dockerd) == before


def test_daemon_rejecting_one_of_the_loads_side_by_side(
    dockerd: Dockerd, run: Run, tmp_path: Path
) -> None:
    """Its digests hold, so every load reaches the daemon; it refuses one: one line, a
    failing exit, that load's image not tagged; the image of the other load is loaded
    whole (as docker load keeps the images before a bad one)."""
    from tests.factory import docker_save, random_layer

    bad = docker_save(
        tmp_path / "half.tar",
        [
            (["ld/fine:1"], [random_layer(64 * 1024, seed=11)]),
            (["ld/broken:2"], [b"\x00not a tar" * 10_000]),
        ],
    )
    remove(dockerd, "ld/fine:1")
    result = run("load", bad)
    assert result.code == 5, result.err
    assert result.err.startswith("Error: Docker daemon") and result.err.count("\n") == 1
    names = {f"{r[0]}:{r[1]}" for r in listing(dockerd, "ld/")}
    assert "ld/broken:2" not in names and "ld/fine:1" in names


def test_load_and_save_over_tcp_with_tls(
    dockerd: Dockerd, run: Run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOCKER_HOST", dockerd.tcp_host)
    # without certificates the daemon refuses us: one line, no traceback
    refused = run("save", "demo/app:2.1", "-o", tmp_path / "no.tar.zst")
    assert refused.code == 5 and refused.err.count("\n") == 1, refused.err
    assert "Traceback" not in refused.err
    monkeypatch.setenv("DOCKER_TLS_VERIFY", "1")
    monkeypatch.setenv("DOCKER_CERT_PATH", str(dockerd.cert_path))
    remove(dockerd, "localhost:5000/tools/probe:0.1")
    summary = load_json(
        run, SAMPLES / "bundle.tar.zst", "--image", "localhost:5000/tools/probe:0.1"
    )
    assert summary["loaded"] == ["Loaded image: localhost:5000/tools/probe:0.1"]
    out = tmp_path / "probe.tar.zst"
    assert run("save", "localhost:5000/tools/probe:0.1", "-o", out).code == 0
    assert [r["tag"] for r in json.loads(run("ls", "--json", out).out)] == ["0.1"]


@pytest.fixture
def cramped_dockerd() -> Iterator[Dockerd]:
    """A second dockerd whose data root is a 48 MiB tmpfs: its disk fills up."""
    root = Path(tempfile.mkdtemp(prefix="arch-f-", dir="/tmp"))
    (root / "data").mkdir()
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=48m", "tmpfs", str(root / "data")], check=True
    )
    daemon = Dockerd(root)
    try:
        daemon.start()
        yield daemon
    finally:
        daemon.stop()
        subprocess.run(["umount", "-l", str(root / "data")], check=False)
        shutil.rmtree(root, ignore_errors=True)


def test_disk_full_on_the_daemon_side(
    cramped_dockerd: Dockerd, run: Run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.factory import docker_save, random_layer

    monkeypatch.setenv("DOCKER_HOST", cramped_dockerd.host)
    big = docker_save(tmp_path / "big.tar", [(["ld/big:1"], [random_layer(64 * 1024 * 1024)])])
    result = run("load", big)
    assert result.code == 5, result.err
    assert result.err.startswith("Error: Docker daemon") and result.err.count("\n") == 1
    assert "no space left on device" in result.err
    assert cramped_dockerd.images() == []  # nothing half-loaded, nothing tagged
