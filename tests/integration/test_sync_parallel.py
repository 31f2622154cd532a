"""``sync`` into a bundle fetches images on ``--jobs`` threads (each share into a spool
bundle, then OUT written from them, frames copied): the same bundle as one image after the
other, moved tags fetched as deltas against OUT, and no spool left behind, whatever
happens. Against the real distribution registry, images pushed by skopeo."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import Run
from tests.integration.registry_peers import FaultProxy, Registry, Rule
from tests.integration.test_sync import digest_of, names_in, put
from tests.isolation import own_registry_client

REPOSITORIES = ["team/a", "team/b", "team/c", "team/d"]


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    own_registry_client(tmp_path, monkeypatch)


@pytest.fixture
def source(tmp_path: Path, start: Callable[..., Registry]) -> Registry:
    registry = start()
    images = tmp_path / "images"
    images.mkdir()
    for repository in REPOSITORIES:
        put(images, f"{registry.host}/{repository}:1", repository)
    return registry


def fetched(out: str) -> list[str]:
    return [
        line.removeprefix("Fetched ") for line in out.splitlines() if line.startswith("Fetched")
    ]


def spools_left(folder: Path) -> list[Path]:
    return list(folder.glob(".sync-*"))


def test_images_fetched_at_once_make_the_same_bundle(
    run: Run, source: Registry, tmp_path: Path
) -> None:
    listed = tmp_path / "list.txt"
    listed.write_text("".join(f"{source.host}/{r}:1\n" for r in REPOSITORIES))
    one_by_one, at_once = tmp_path / "one.tar.zst", tmp_path / "many.tar.zst"
    first = run("sync", listed, "-o", one_by_one, "--jobs", "1")
    assert first.code == 0, first.err
    assert fetched(first.out) == []  # one transfer, straight from the registry
    second = run("sync", listed, "-o", at_once, "--jobs", "4")
    assert second.code == 0, second.err
    assert sorted(fetched(second.out)) == sorted(f"{source.host}/{r}:1" for r in REPOSITORIES)
    assert names_in(run, at_once) == names_in(run, one_by_one)
    assert run("verify", at_once).code == 0
    assert spools_left(tmp_path) == []

    # two tags moved: fetched at once again (less what OUT holds), the rest kept
    images = tmp_path / "moved"
    images.mkdir()
    moved = {r: put(images, f"{source.host}/{r}:1", f"{r} rebuilt") for r in ("team/a", "team/c")}
    third = run("sync", listed, "-o", at_once, "--jobs", "4")
    assert third.code == 0, third.err
    assert third.out.splitlines()[-1].endswith("0 added, 2 updated, 2 kept, 0 removed")
    assert len(fetched(third.out)) == 2
    held = names_in(run, at_once)
    for repository in REPOSITORIES:
        assert held[f"{source.host}/{repository}:1"] == digest_of(f"{source.host}/{repository}:1")
    assert held[f"{source.host}/team/a:1"] == moved["team/a"]
    assert run("verify", at_once).code == 0  # whole, not a delta
    assert spools_left(tmp_path) == []


def test_a_failed_fetch_leaves_out_untouched_and_no_spool(
    run: Run,
    source: Registry,
    tmp_path: Path,
) -> None:
    proxy = FaultProxy(source.host)
    try:
        listed = tmp_path / "list.txt"
        listed.write_text("".join(f"{proxy.host}/{r}:1\n" for r in REPOSITORIES))
        out = tmp_path / "out.tar.zst"
        proxy.add(Rule("GET", "/blobs/", "status", times=1000, status=500))
        failed = run("sync", listed, "-o", out, "--jobs", "4")
        assert failed.code != 0 and len(failed.err.strip().splitlines()) == 1, failed.err
        assert not out.exists() and spools_left(tmp_path) == []
    finally:
        proxy.stop()
