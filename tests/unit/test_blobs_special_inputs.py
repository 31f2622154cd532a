"""Every input named by a path is a regular file, ``-`` or (where accepted) a directory: a
FIFO or a device given as an input, a part or a ``--base`` is refused at once, in one line,
and never blocks (issue #16). Run as a real process with a deadline: a FIFO's open would
otherwise wait for a writer forever."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import SAMPLES

DEADLINE = 60


def archiver(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "archiver", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=DEADLINE,  # blocking on a FIFO fails here instead of hanging the suite
        stdin=subprocess.DEVNULL,
        check=False,
    )


def _refused(
    result: subprocess.CompletedProcess[str],
    path: Path,
    what: str,
    wanted: str = "a regular file or a directory",
) -> None:
    assert result.returncode == 2, result.stderr
    assert result.stderr == f"Error: {path}: {what}, not {wanted}: refused\n"


@pytest.fixture
def fifo(tmp_path: Path) -> Path:
    path = tmp_path / "pipe.tar"
    os.mkfifo(path)
    return path


@pytest.mark.parametrize("verb", ["ls", "verify"])
def test_a_fifo_as_an_input_is_refused_at_once(fifo: Path, verb: str) -> None:
    _refused(archiver(verb, fifo), fifo, "a FIFO")


def test_a_device_as_an_input_is_refused(tmp_path: Path) -> None:
    _refused(archiver("ls", "/dev/zero"), Path("/dev/zero"), "a character device")


def test_a_fifo_as_a_base_is_refused_at_once(fifo: Path, tmp_path: Path) -> None:
    out = tmp_path / "delta.tar.zst"
    result = archiver("pack", SAMPLES / "legacy.tar", "--base", fifo, "-o", out)
    _refused(result, fifo, "a FIFO", "a regular file")
    assert not out.exists()


def test_a_fifo_as_a_part_is_refused_at_once(tmp_path: Path) -> None:
    target = tmp_path / "b.tar.zst"
    made = archiver("pack", SAMPLES / "legacy.tar", "-o", target, "--split-size", "1M")
    assert made.returncode == 0, made.stderr
    part = tmp_path / "b.tar.zst.001"
    part.unlink()
    os.mkfifo(part)
    _refused(archiver("ls", target), part, "a FIFO", "a regular file")
    _refused(archiver("verify", target), part, "a FIFO", "a regular file")


def test_a_fifo_as_a_parts_manifest_is_refused_at_once(tmp_path: Path) -> None:
    target = tmp_path / "b.tar.zst"
    made = archiver("pack", SAMPLES / "legacy.tar", "-o", target, "--split-size", "1M")
    assert made.returncode == 0, made.stderr
    manifest = tmp_path / "b.tar.zst.parts.json"
    manifest.unlink()
    os.mkfifo(manifest)
    result = archiver("ls", manifest)
    _refused(result, manifest, "a FIFO")


def test_a_directory_and_stdin_are_still_inputs(tmp_path: Path) -> None:
    layout = tmp_path / "layout"
    assert archiver("convert", SAMPLES / "legacy.tar", layout, "--to", "oci-dir").returncode == 0
    assert archiver("ls", layout).returncode == 0
    with (SAMPLES / "legacy.tar").open("rb") as stdin:
        result = subprocess.run(
            [sys.executable, "-m", "archiver", "ls", "-"],
            stdin=stdin,
            capture_output=True,
            timeout=DEADLINE,
            check=False,
        )
    assert result.returncode == 0, result.stderr


def test_small_text_files_are_read_capped_and_checked(fifo: Path, tmp_path: Path) -> None:
    """Lists for sync and htpasswd files for serve: a FIFO or a device is refused at once
    (a FIFO's open would wait for a writer), a missing, oversized or non-UTF-8 file is
    one line."""
    _refused(archiver("sync", fifo, "-o", tmp_path / "o.tar.zst"), fifo, "a FIFO", "a regular file")
    dev = Path("/dev/zero")
    _refused(archiver("serve", SAMPLES / "oci", "--htpasswd", dev), dev, "a character device",
             "a regular file")  # fmt: skip
    missing = archiver("sync", tmp_path / "nothing.yaml", "-o", tmp_path / "o.tar.zst")
    assert missing.returncode == 4
    assert missing.stderr == f"Error: {tmp_path / 'nothing.yaml'}: no such file (list file)\n"
    binary = tmp_path / "binary.yaml"
    binary.write_bytes(b"\xff\xfe")
    result = archiver("sync", binary, "-o", tmp_path / "o.tar.zst")
    assert result.stderr == f"Error: {binary}: not UTF-8 text: not a list file\n"
    assert not (tmp_path / "o.tar.zst").exists()
