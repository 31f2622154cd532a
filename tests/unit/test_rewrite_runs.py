"""A bundle rewritten (``tag``, ``rmi``) copies its layers' frames, and the frames of the
tar headers between them that do not change, as whole runs of the old file: the new
bundle reads exactly as the old one did, its member index included."""

from __future__ import annotations

import io
import json
import os
import tarfile
from pathlib import Path

import pytest
import zstandard

from archiver.blobs import tar_members
from archiver.blobs.path_tree import open_tree
from archiver.blobs.tar_tree import TarTree
from tests.conftest import Run
from tests.factory import docker_save, random_layer

FRAME = 64 * 1024
IMAGES = [
    (
        [f"t/app{i}:1"],
        [random_layer(3 * FRAME + 7 * i, seed=i), random_layer(1000 + i * 513, seed=50 + i)],
    )
    for i in range(5)
]


@pytest.fixture
def bundle(run: Run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(tar_members, "INDEX_FROM", 1)  # small bundles get one too
    docker_save(tmp_path / "in.tar", IMAGES)
    out = tmp_path / "b.tar.zst"
    assert run("pack", tmp_path / "in.tar", "-o", out, "--frame-size", FRAME).code == 0
    return out


@pytest.fixture
def copies(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The lengths of the copy_file_range calls made from now on."""
    made: list[int] = []
    real = os.copy_file_range

    def copy_range(src: int, dst: int, count: int, offset_src: int | None = None) -> int:
        made.append(count)
        return real(src, dst, count, offset_src)

    monkeypatch.setattr(os, "copy_file_range", copy_range)
    return made


def _reading(run: Run, bundle: Path, tmp_path: Path, image: str) -> dict[str, object]:
    """What reading the bundle shows: its listing, an image inspected and unpacked alone."""
    listing = run("ls", "--json", bundle)
    inspected = run("inspect", bundle, image)
    assert listing.code == inspected.code == 0
    out = tmp_path / "one.tar"
    assert run("unpack", bundle, "--image", image, "-o", out).code == 0
    assert run("verify", bundle).code == 0
    return {
        "ls": sorted(json.loads(listing.out), key=lambda r: r["reference"]),
        "inspect": inspected.out,
        "unpacked": out.read_bytes(),
    }


def _members_scanned(bundle: Path) -> list[tuple[str, int, int]]:
    """Every member (name, offset, size), found by reading the whole tar in order."""
    with bundle.open("rb") as file:
        data = zstandard.ZstdDecompressor().stream_reader(file, read_across_frames=True).read()
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        return [
            (m.name.rstrip("/"), m.offset_data, m.size)
            for m in tar.getmembers()
            if m.name != tar_members.MEMBERS_FILE
        ]


def _members_indexed(bundle: Path) -> list[tuple[str, int, int]]:
    with open_tree(str(bundle)) as tree:
        assert isinstance(tree, TarTree) and tree.exists(tar_members.MEMBERS_FILE)
        with tree.open(tar_members.MEMBERS_FILE) as index:
            entries = tar_members.decode(index.read())
    assert entries is not None
    return [(e.name, e.offset, e.size) for e in entries]


def test_a_retag_copies_the_layers_as_one_run_and_reads_as_before(
    bundle: Path, run: Run, tmp_path: Path, copies: list[int]
) -> None:
    before = _reading(run, bundle, tmp_path, "t/app2:1")
    assert run("tag", bundle, "t/app1:1", "t/renamed:2").code == 0
    assert len(copies) == 1 and copies[0] > 0.9 * bundle.stat().st_size  # one run
    after = _reading(run, bundle, tmp_path, "t/app2:1")
    renamed = [r for r in after["ls"] if "renamed" in r["reference"]]  # type: ignore[union-attr]
    assert len(renamed) == 1
    assert [r for r in after["ls"] if r not in renamed] == before["ls"]  # type: ignore[union-attr]
    assert after["inspect"] == before["inspect"]
    assert after["unpacked"] == before["unpacked"]
    assert _members_indexed(bundle) == _members_scanned(bundle)


def test_an_rmi_copies_runs_around_what_goes_and_reads_as_before(
    bundle: Path, run: Run, tmp_path: Path, copies: list[int]
) -> None:
    before = _reading(run, bundle, tmp_path, "t/app4:1")
    assert run("rmi", bundle, "t/app2:1").code == 0
    assert 1 <= len(copies) <= 2
    after = _reading(run, bundle, tmp_path, "t/app4:1")
    assert [r for r in before["ls"] if "app2" not in r["reference"]] == after["ls"]  # type: ignore[union-attr]
    assert after["inspect"] == before["inspect"]
    assert after["unpacked"] == before["unpacked"]
    assert _members_indexed(bundle) == _members_scanned(bundle)
    # and once more: a bundle rewritten reads as one packed
    assert run("tag", bundle, "t/app4:1", "t/again:1").code == 0
    assert _members_indexed(bundle) == _members_scanned(bundle)
    assert run("verify", bundle).code == 0
