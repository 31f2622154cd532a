"""Outputs (issue #16): what is replaced is a regular file or nothing (a device, a FIFO, a
socket or a directory at the output's name is refused in one line, untouched); a symlink is
written through, as cp does (its target replaced atomically, the link kept); a full disk
names the file; temporary files a killed run left are removed by the next write there."""

from __future__ import annotations

import contextlib
import errno
import os
import socket
import stat
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from archiver.blobs.atomic import SyncingFile, remove_stale_temps, replace_file
from archiver.blobs.tar_tree import TarTree
from archiver.blobs.zstd_writer import ZstdOptions
from archiver.errors import Conflict
from tests.conftest import SAMPLES, Run, skip_or_fail
from tests.factory import docker_save, random_layer

LEGACY = SAMPLES / "legacy.tar"
HYBRID = (SAMPLES / "hybrid.tar").read_bytes()  # what convert writes from LEGACY


def _special(path: Path, what: str) -> Iterator[None]:
    if what == "FIFO":
        os.mkfifo(path)
        yield
    elif what == "socket":
        with socket.socket(socket.AF_UNIX) as server:
            server.bind(str(path))
            yield
    elif what == "character device":
        try:
            os.mknod(path, stat.S_IFCHR | 0o600, os.makedev(1, 3))  # as /dev/null
        except PermissionError:
            skip_or_fail("mknod needs root")
        yield
    else:
        path.mkdir()
        (path / "keep").write_bytes(b"x")
        yield


KINDS = ["FIFO", "socket", "character device", "directory"]


def _no_temps(folder: Path) -> None:
    assert not [p for p in folder.iterdir() if p.name.endswith(".tmp")]


@pytest.mark.parametrize("what", KINDS)
@pytest.mark.parametrize("to", ["docker", "bundle"])
def test_a_special_file_at_the_output_is_refused(
    run: Run, tmp_path: Path, what: str, to: str
) -> None:
    out = tmp_path / "out"
    with contextlib.contextmanager(_special)(out, what):
        before = os.lstat(out)
        result = run("convert", LEGACY, out, "--to", to)
        assert result.code == Conflict.exit_code
        assert result.err == f"Error: {out}: a {what}, not a regular file: refused to replace it\n"
        after = os.lstat(out)
        assert (after.st_mode, after.st_ino) == (before.st_mode, before.st_ino)
    _no_temps(tmp_path)


@pytest.mark.parametrize("what", ["FIFO", "directory"])
def test_a_special_file_at_a_part_is_refused(run: Run, tmp_path: Path, what: str) -> None:
    part = tmp_path / "b.tar.zst.001"
    with contextlib.contextmanager(_special)(part, what):
        result = run("pack", LEGACY, "-o", tmp_path / "b.tar.zst", "--split-size", "1M")
        assert result.code == Conflict.exit_code
        assert result.err == f"Error: {part}: a {what}, not a regular file: refused to replace it\n"
    assert not (tmp_path / "b.tar.zst.parts.json").exists()
    _no_temps(tmp_path)


def test_replace_file_refuses_a_fifo(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    os.mkfifo(path)
    with pytest.raises(Conflict, match="a FIFO, not a regular file: refused to replace it"):
        replace_file(path, b"{}")
    assert stat.S_ISFIFO(os.lstat(path).st_mode)


def _link(tmp_path: Path, name: str, existing: bool) -> tuple[Path, Path]:
    real = tmp_path / "elsewhere" / name
    real.parent.mkdir()
    if existing:
        real.write_bytes(b"old")
        real.chmod(0o640)
    link = tmp_path / "out" / name
    link.parent.mkdir()
    link.symlink_to(Path("..") / "elsewhere" / name)  # relative, as people make them
    return link, real


@pytest.mark.parametrize("existing", [True, False])
def test_an_output_symlink_is_written_through(run: Run, tmp_path: Path, existing: bool) -> None:
    link, real = _link(tmp_path, "x.tar", existing)
    assert run("convert", LEGACY, link).code == 0
    assert link.is_symlink() and real.is_file() and not real.is_symlink()
    assert real.read_bytes() == HYBRID
    _no_temps(link.parent)
    _no_temps(real.parent)


def test_a_rewritten_archive_that_is_a_symlink_stays_one(run: Run, tmp_path: Path) -> None:
    link, real = _link(tmp_path, "b.tar.zst", True)
    real.write_bytes((SAMPLES / "bundle.tar.zst").read_bytes())
    assert run("tag", link, "demo/app:2.1", "demo/app:renamed").code == 0
    assert link.is_symlink()
    assert "renamed" in run("ls", real).out
    _no_temps(link.parent)
    _no_temps(real.parent)


def test_a_part_that_is_a_symlink_is_written_through(run: Run, tmp_path: Path) -> None:
    link, real = _link(tmp_path, "b.tar.zst.001", True)
    target = link.parent / "b.tar.zst"
    assert run("pack", LEGACY, "-o", target, "--split-size", "1M").code == 0
    assert link.is_symlink() and real.stat().st_size > 0
    assert run("verify", target).code == 0


def test_replace_file_writes_through_a_symlink(tmp_path: Path) -> None:
    link, real = _link(tmp_path, "state.json", True)
    replace_file(link, b"{}")
    assert link.is_symlink() and real.read_bytes() == b"{}"
    assert stat.S_IMODE(real.stat().st_mode) == 0o640


def test_a_full_disk_names_the_file_written_back() -> None:
    out = SyncingFile(os.open("/dev/full", os.O_WRONLY), name="/media/usb/images.tar.zst")
    with pytest.raises(OSError) as caught:
        out.write(b"x" * (1024 * 1024))
        out.flush()
    assert caught.value.errno == errno.ENOSPC
    assert caught.value.filename == "/media/usb/images.tar.zst"
    with contextlib.suppress(OSError):
        out.close()


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 256 kB file system of its own (tmpfs; mounting needs root, as CI runs)."""
    folder = tmp_path / "small"
    folder.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(folder)],
        capture_output=True,
        check=False,
    )
    if mounted.returncode != 0:
        skip_or_fail(f"cannot mount a tmpfs: {mounted.stderr.decode().strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", str(folder)], check=True)


def test_a_full_disk_names_the_output(run: Run, small_disk: Path, tmp_path: Path) -> None:
    big = tmp_path / "big.tar"
    docker_save(big, [(["big:1"], [random_layer(1024 * 1024, seed=3)])])
    out = small_disk / "out.tar"
    result = run("convert", big, out)
    assert result.code != 0
    assert result.err == f"Error: {out}: No space left on device\n"
    assert not out.exists()
    _no_temps(small_disk)


def test_a_full_disk_names_the_replaced_file(small_disk: Path) -> None:
    path = small_disk / "inventory.json"
    with pytest.raises(OSError) as caught:
        replace_file(path, os.urandom(1024 * 1024))
    assert caught.value.errno == errno.ENOSPC and caught.value.filename == str(path)
    _no_temps(small_disk)


def _left(folder: Path, name: str, age: float | None) -> Path:
    path = folder / name
    path.write_bytes(b"partial")
    if age is not None:
        then = time.time() - age
        os.utime(path, (then, then))
    return path


def test_temporary_files_of_killed_runs_are_removed(run: Run, tmp_path: Path) -> None:
    hour = 3600.0
    with subprocess.Popen(["sleep", "60"]) as alive:
        try:
            dead_old = _left(tmp_path, ".out.tar.99999999.abcdefgh.tmp", 10 * hour)
            unnamed_old = _left(tmp_path, ".out.tar.k2j4h5g6.tmp", 10 * hour)
            live_old = _left(tmp_path, f".out.tar.{alive.pid}.abcdefgh.tmp", 10 * hour)
            fresh = _left(tmp_path, ".out.tar.99999998.zzzzzzzz.tmp", None)
            other = _left(tmp_path, ".out.tar.gz.99999999.abcdefgh.tmp", 10 * hour)
            part = _left(tmp_path, ".out.tar.001.99999999.abcdefgh.tmp", 10 * hour)
            assert run("convert", LEGACY, tmp_path / "out.tar").code == 0
            assert not dead_old.exists() and not unnamed_old.exists()
            assert live_old.exists()  # a run still going, started before this one
            assert fresh.exists()  # newer than this process: not left by a killed run
            assert other.exists() and part.exists()  # another output's
        finally:
            alive.kill()


def test_temporary_parts_of_killed_runs_are_removed(run: Run, tmp_path: Path) -> None:
    stale = _left(tmp_path, ".b.tar.zst.001.99999999.abcdefgh.tmp", 7200.0)
    stale_manifest = _left(tmp_path, ".b.tar.zst.parts.json.99999999.abcdefgh.tmp", 7200.0)
    assert run("pack", LEGACY, "-o", tmp_path / "b.tar.zst", "--split-size", "1M").code == 0
    assert not stale.exists() and not stale_manifest.exists()


def test_remove_stale_temps_leaves_directories(tmp_path: Path) -> None:
    folder = tmp_path / ".out.99999999.abcdefgh.tmp"  # an OCI directory being written
    folder.mkdir()
    then = time.time() - 7200
    os.utime(folder, (then, then))
    assert remove_stale_temps(tmp_path / "out") == []
    assert folder.is_dir()


def test_a_full_disk_names_the_spool_of_a_stream(small_disk: Path, tmp_path: Path) -> None:
    big = docker_save(tmp_path / "big.tar", [(["big:1"], [random_layer(1024 * 1024, seed=4)])])
    spool_path = small_disk / "spool"
    with (
        big.open("rb") as stream,
        spool_path.open("w+b") as spool,
        pytest.raises(OSError) as caught,
    ):
        TarTree.from_stream(stream, "pipe", spool, ZstdOptions(level=1, threads=1))
    assert caught.value.errno == errno.ENOSPC and caught.value.filename == str(spool_path)
