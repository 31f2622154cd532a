"""Rewriting an archive where it lies (tag, rmi, prune) writes and removes nothing outside
it, whatever links are planted in it, and two rewrites of one archive take turns."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT, SAMPLES, Run

APP_LAYER = "7fe9c9da38173756863a26ccc0583e6c64064a187e929574ec7693bea59a3439"
STRANGER = "e" * 64


def _layout(tmp_path: Path) -> Path:
    layout = tmp_path / "oci"
    shutil.copytree(SAMPLES / "oci", layout)
    return layout


def _outside(tmp_path: Path) -> Path:
    """A folder beside the layout holding an unrelated file named like a blob."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / STRANGER).write_bytes(b"not yours")
    return outside


def _untouched(outside: Path) -> None:
    assert sorted(p.name for p in outside.iterdir()) == [STRANGER]
    assert (outside / STRANGER).read_bytes() == b"not yours"


@pytest.mark.parametrize("link", ["blobs", "blobs/sha256"])
def test_a_blobs_folder_that_is_a_link_is_refused(tmp_path: Path, run: Run, link: str) -> None:
    layout, outside = _layout(tmp_path), _outside(tmp_path)
    real = layout / link
    for blob in real.rglob("*"):
        if blob.is_file():
            shutil.copy(blob, outside / blob.name)
    shutil.rmtree(real)
    real.symlink_to(outside, target_is_directory=True)
    before = sorted(p.name for p in outside.iterdir())
    index = (layout / "index.json").read_bytes()
    result = run("rmi", layout, "demo/app:2.1")
    assert result.code != 0
    assert len(result.err.strip().splitlines()) == 1 and "Traceback" not in result.err
    assert sorted(p.name for p in outside.iterdir()) == before  # nothing removed there
    assert (outside / STRANGER).read_bytes() == b"not yours"
    assert (layout / "index.json").read_bytes() == index


def test_links_planted_in_the_blobs_folder_are_not_followed(tmp_path: Path, run: Run) -> None:
    layout, outside = _layout(tmp_path), _outside(tmp_path)
    folder = layout / "blobs" / "sha256"
    # links at the names a writer might use for a temporary file
    for name in (f".{APP_LAYER}.tmp", f".{APP_LAYER}.tmp.1"):
        (folder / name).symlink_to(outside / STRANGER)
    result = run("rmi", layout, "demo/app:2.1")
    assert result.code == 0, result.err
    _untouched(outside)
    assert run("verify", layout).code == 0


def test_an_index_json_that_is_a_link_out_is_not_written_through(tmp_path: Path, run: Run) -> None:
    layout, outside = _layout(tmp_path), _outside(tmp_path)
    shutil.copy(layout / "index.json", outside / "index.json")
    (layout / "index.json").unlink()
    (layout / "index.json").symlink_to(outside / "index.json")
    before = (outside / "index.json").read_bytes()
    result = run("tag", layout, "demo/app:2.1", "demo/app:9")
    assert result.code != 0
    assert len(result.err.strip().splitlines()) == 1 and "Traceback" not in result.err
    assert (outside / "index.json").read_bytes() == before


def test_an_archive_given_as_a_link_is_rewritten_through_it(tmp_path: Path, run: Run) -> None:
    real = tmp_path / "real.tar.zst"
    shutil.copy(SAMPLES / "bundle.tar.zst", real)
    link = tmp_path / "link.tar.zst"
    link.symlink_to(real)
    assert run("tag", link, "demo/app:2.1", "demo/app:9").code == 0
    assert link.is_symlink() and os.readlink(link) == str(real)
    rows = [line.split()[:2] for line in run("ls", real).out.splitlines()]
    assert ["demo/app", "9"] in rows


def _tag(archive: Path, source: str, target: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "archiver", "tag", str(archive), source, target],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


@pytest.mark.parametrize("kind", ["bundle", "oci-dir"])
def test_two_rewrites_at_once_both_land(tmp_path: Path, run: Run, kind: str) -> None:
    for round_ in range(4):
        archive = tmp_path / f"{kind}-{round_}"
        if kind == "bundle":
            shutil.copy(SAMPLES / "bundle.tar.zst", archive)
        else:
            shutil.copytree(SAMPLES / "oci", archive)
        first = _tag(archive, "demo/app:2.1", "first/app:1")
        second = _tag(archive, "demo/base:1.0", "second/base:1")
        for process in (first, second):
            _, err = process.communicate(timeout=60)
            assert process.returncode == 0, err
        listing = run("ls", archive).out
        assert "first/app" in listing and "second/base" in listing, listing
