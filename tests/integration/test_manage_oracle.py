"""tag, rmi and prune on an archive against the same steps on a real dockerd: the oracle.

The images go into the daemon with ``docker load`` (so they carry no parent links, as in
an archive), the archive is saved from the daemon, then every step runs on both; after
each, ``ls --json`` must list what ``docker images`` lists (dangling included), ``rmi``
and ``prune`` must print the same lines, ``df`` must count what ``docker system df`` counts.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import Run
from tests.factory import docker_save, layer
from tests.integration.conftest import _running, _short_tmp
from tests.integration.peers import Dockerd

BASE = layer({"base.txt": b"base\n" * 200})
IMAGES = [
    (["app:1", "app:one", "other/x:1"], [BASE, layer({"app.txt": b"one\n" * 50})]),
    (["app:2"], [BASE, layer({"app.txt": b"two\n" * 70})]),
    (["solo:1"], [layer({"solo.txt": b"solo\n" * 90})]),
    (["lib:1", "lib:stable"], [BASE, layer({"lib.txt": b"lib\n" * 30})]),
    (["tmp:1"], [BASE, layer({"tmp.txt": b"tmp\n" * 40})]),
]


@pytest.fixture(scope="module")
def oracle() -> Iterator[Dockerd]:
    """A daemon of its own: prune must see no other test's images."""
    yield from _running(Dockerd(_short_tmp("arch-o-")))


@pytest.fixture
def loaded(oracle: Dockerd, tmp_path: Path) -> Dockerd:
    """The daemon holding exactly IMAGES, loaded by docker load."""
    containers = oracle.docker("ps", "-aq").split()
    if containers:
        oracle.docker("rm", "-f", *containers)
    oracle.docker("image", "prune", "-a", "-f")
    oracle.docker("load", "-q", "-i", str(docker_save(tmp_path / "images.tar", IMAGES)))
    return oracle


def _archive(how: str, daemon: Dockerd, run: Run, tmp_path: Path, env: pytest.MonkeyPatch) -> Path:
    names = [name for tags, _ in IMAGES for name in tags]
    if how == "archiver save":
        env.setenv("DOCKER_HOST", daemon.host)
        target = tmp_path / "saved.tar.zst"
        result = run("save", "--all", "-a", "-o", target)
        assert result.code == 0, result.err
        return target
    target = tmp_path / "docker-save.tar"
    daemon.docker("save", "-o", str(target), *names)
    return target


def _docker_listing(daemon: Dockerd) -> list[tuple[str, str, str]]:
    return sorted((r["repository"], r["tag"], r["id"]) for r in daemon.images())


def _our_listing(run: Run, archive: Path) -> list[tuple[str, str, str]]:
    result = run("ls", "--json", archive)
    assert result.code == 0, result.err
    return sorted((r["repository"], r["tag"], r["id"]) for r in json.loads(result.out))


def _docker_df(daemon: Dockerd) -> tuple[str, str]:
    line = daemon.docker("system", "df", "--format", "{{.Type}} {{.TotalCount}} {{.Active}}")
    images = next(row for row in line.splitlines() if row.startswith("Images"))
    _, total, active = images.split()
    return total, active


def _our_df(run: Run, archive: Path) -> tuple[str, str]:
    out = run("df", "--format", "{{.TotalCount}} {{.Active}}", archive).out.split()
    return out[0], out[1]


def _docker(daemon: Dockerd, *args: str) -> tuple[bool, list[str]]:
    try:
        return True, daemon.docker(*args).splitlines()
    except AssertionError as exc:
        return False, [str(exc).splitlines()[-1]]


def _lines(out: list[str]) -> list[str]:
    """What both print, without docker's blank and reclaimed-space lines (sizes differ: the
    daemon counts unpacked files, an archive stored bytes)."""
    return sorted(
        line for line in out if line.strip() and not line.startswith("Total reclaimed space")
    )


@pytest.mark.parametrize("how", ["archiver save", "docker save"])
def test_same_steps_same_images(
    how: str, loaded: Dockerd, run: Run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    archive = _archive(how, loaded, run, tmp_path, monkeypatch)
    assert _our_listing(run, archive) == _docker_listing(loaded)

    def image_id(name: str) -> str:
        return loaded.docker("image", "inspect", "--format", "{{.Id}}", name).strip()

    steps: list[tuple[list[str], list[str]]] = [
        (["tag", "app:2", "app:latest"], ["tag", "app:2", "app:latest"]),
        # a name taken from solo's image: it is left dangling
        (["tag", "app:2", "solo:1"], ["tag", "app:2", "solo:1"]),
        (["rmi", "app:one"], ["rmi", "app:one"]),
    ]
    one = image_id("app:1")[7:19]
    lib = image_id("lib:1")
    steps += [
        # by ID, named in two repositories: refused without -f
        (["rmi", one], ["rmi", one]),
        (["rmi", "-f", one], ["rmi", "-f", one]),
        # two tags in one repository: refused too; one tag: removed without -f
        (["rmi", lib], ["rmi", lib]),
        (["rmi", "lib:stable"], ["rmi", "lib:stable"]),
        (["rmi", image_id("tmp:1")[7:]], ["rmi", image_id("tmp:1")[7:]]),
        (["image", "prune", "-f"], ["prune", "-f"]),
        # lib's image loses its last tag: dangling, for prune -a below
        (["tag", "app:2", "lib:1"], ["tag", "app:2", "lib:1"]),
    ]
    for docker_args, our_args in steps:
        ok, docker_out = _docker(loaded, *docker_args)
        ours = run(our_args[0], archive, *our_args[1:])
        assert (ours.code == 0) == ok, (docker_args, docker_out, ours.err)
        if ok:
            assert _lines(ours.out.splitlines()) == _lines(docker_out), docker_args
        else:
            assert ours.err.count("\n") == 1
        assert _our_listing(run, archive) == _docker_listing(loaded), docker_args
        assert _our_df(run, archive)[0] == _docker_df(loaded)[0], docker_args

    # prune -a: an archive holds no containers, so docker's own -a (every image no
    # container uses) would empty it; ours removes every image without a tag. For loaded
    # images (no parents, no digest-only names) that is what docker's plain prune removes.
    # (Containers cannot stand in for "kept" here: docker 20.10's prune -a untags the
    # images they use anyway, and only fails to delete them.)
    assert ("<none>", "<none>", lib) in _docker_listing(loaded)
    ok, docker_out = _docker(loaded, "image", "prune", "-f")
    ours = run("prune", "-a", "-f", archive)
    assert ok and ours.code == 0
    assert _lines(ours.out.splitlines()) == _lines(docker_out)
    assert _our_listing(run, archive) == _docker_listing(loaded)
    assert _our_df(run, archive)[0] == _docker_df(loaded)[0]
    assert run("verify", archive).code == 0
