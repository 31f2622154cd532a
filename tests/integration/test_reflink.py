"""On a file system that clones (XFS, btrfs: each made in a file and mounted through a loop
device, as root), a rewritten bundle shares its layers' blocks with the file it replaces:
a tag of a bundle kept under a second name takes the room of its new head, not of a copy.
(How the runs are laid out for it: tests/unit/test_clone_align.py.)"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import Run
from tests.factory import docker_save, random_layer
from tests.integration.peers import require, run

MIB = 1024 * 1024


@pytest.fixture(params=["xfs", "btrfs"])
def cloning(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Path]:
    """A mounted file system of that kind, empty."""
    mkfs = require(f"mkfs.{request.param}")
    image, mounted = tmp_path / "fs.img", tmp_path / "mnt"
    with image.open("wb") as file:
        file.truncate(512 * MIB)
    run([mkfs, "-q", "-f", str(image)])
    mounted.mkdir()
    run(["mount", "-o", "loop", str(image), str(mounted)])
    try:
        yield mounted
    finally:
        subprocess.run(["umount", str(mounted)], check=False)


def _used(path: Path) -> int:
    os.sync()
    found = os.statvfs(path)
    return (found.f_blocks - found.f_bfree) * found.f_frsize


def test_a_rewrite_shares_the_layers_blocks_with_the_old_file(
    cloning: Path, run: Run, tmp_path: Path
) -> None:
    images = [
        ([f"t/app{i}:1"], [random_layer(4 * MIB + i, seed=i), random_layer(3000, seed=9 + i)])
        for i in range(4)
    ]
    docker_save(tmp_path / "in.tar", images)
    bundle = cloning / "b.tar.zst"
    assert run("pack", tmp_path / "in.tar", "-o", bundle).code == 0
    size = bundle.stat().st_size
    os.link(bundle, cloning / "kept.tar.zst")  # the old file stays: its blocks too
    before = _used(cloning)
    assert run("tag", bundle, "t/app1:1", "t/renamed:2").code == 0
    assert bundle.stat().st_size > size  # a new head, with the new name
    assert _used(cloning) - before < size // 10  # not a copy of the layers
    assert run("verify", bundle).code == 0
    listed = run("ls", "--format", "{{.Repository}}:{{.Tag}}", bundle).out.split()
    assert sorted(listed) == ["t/app0:1", "t/app1:1", "t/app2:1", "t/app3:1", "t/renamed:2"]
    out = tmp_path / "unpacked.tar"
    assert run("unpack", bundle, "--image", "t/renamed:2", "-o", out).code == 0
    zstd = require("zstd")
    plain = subprocess.run([zstd, "-dc", str(bundle)], capture_output=True, check=True).stdout
    assert plain.endswith(bytes(1024))  # the whole tar, every frame read by zstd itself
