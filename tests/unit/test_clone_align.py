"""Runs of frames a rewrite copies are laid, on a file system that clones, at their old
offset within a block (an empty zstd frame before them), so copy_file_range shares whole
blocks; the bundle reads exactly as it would have without. Elsewhere nothing changes.
(The blocks really shared on XFS: tests/integration/test_reflink.py.)"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
import zstandard

from archiver.blobs import clone_align, tar_members, zstd_writer
from archiver.blobs.clone_align import empty_frame, padding, pieces
from archiver.blobs.seek_table import read_seek_table
from tests.conftest import Run
from tests.factory import docker_save, random_layer
from tests.integration.peers import require

LENGTHS = [9, 12, 13, 15, 16, *range(18, 200), 4095, 4096, 4097, 4096 + 17]


@pytest.mark.parametrize("length", LENGTHS)
def test_an_empty_frame_of_that_length_decodes_to_nothing(length: int) -> None:
    frame = empty_frame(length)
    assert len(frame) == length
    assert zstandard.get_frame_parameters(frame).content_size == 0
    with zstandard.ZstdDecompressor().stream_reader(frame) as reader:
        assert reader.read(16) == b""


def test_the_zstd_tool_skips_empty_frames_between_frames(tmp_path: Path) -> None:
    data = b"a line of text\n" * 1000
    frame = zstandard.ZstdCompressor().compress(data)
    joined = tmp_path / "joined.zst"
    joined.write_bytes(frame + empty_frame(18) + empty_frame(4113) + frame + empty_frame(21))
    zstd = require("zstd")
    done = subprocess.run([zstd, "-dc", str(joined)], capture_output=True, check=True)
    assert done.stdout == data + data


@pytest.mark.parametrize("length", [0, 1, 2, 10, 11, 14, 17])
def test_no_empty_frame_is_that_short(length: int) -> None:
    with pytest.raises(ValueError, match="no empty zstd frame"):
        empty_frame(length)


@pytest.mark.parametrize("position", [0, 1, 17, 4078, 4095, 4096, 10_000])
@pytest.mark.parametrize("source", [0, 5, 4095, 4096, 123_457])
def test_padding_puts_what_follows_at_the_source_offset_within_a_block(
    position: int, source: int
) -> None:
    pad = padding(position, source, 4096)
    assert (position + pad) % 4096 == source % 4096
    assert pad == 0 or clone_align.SMALLEST_EMPTY_FRAME <= pad < 4096 + 18
    if pad:
        empty_frame(pad)  # one can be made that long


def test_a_range_is_cut_at_the_first_block_boundary_and_after_the_last_whole_block() -> None:
    assert pieces(5000, 20_000, 4096) == [(5000, 3192), (8192, 16384), (24576, 424)]
    assert pieces(8192, 8192, 4096) == [(8192, 8192)]
    assert pieces(10, 100, 4096) == [(10, 100)]


FRAME = 64 * 1024
IMAGES = [
    ([f"t/app{i}:1"], [random_layer(5 * FRAME + 7 * i, seed=i), random_layer(900, seed=50 + i)])
    for i in range(4)
]


def _bundle(run: Run, where: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(tar_members, "INDEX_FROM", 1)
    docker_save(where / "in.tar", IMAGES)
    out = where / "b.tar.zst"
    assert run("pack", where / "in.tar", "-o", out, "--frame-size", FRAME).code == 0
    return out


def _entries(bundle: Path) -> list[tuple[int, int]]:
    """The seek table's (compressed, decompressed) sizes."""
    with bundle.open("rb") as file:
        frames = read_seek_table(file.fileno(), bundle.stat().st_size)
    assert frames is not None
    return [(frame.compressed_size, frame.size) for frame in frames]


def _plain(bundle: Path) -> bytes:
    with bundle.open("rb") as file:
        return zstandard.ZstdDecompressor().stream_reader(file, read_across_frames=True).read()


def test_a_rewrite_where_blocks_can_be_shared_aligns_its_runs_and_reads_the_same(
    run: Run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    plain_dir, cloning_dir = tmp_path / "plain", tmp_path / "cloning"
    plain_dir.mkdir()
    cloning_dir.mkdir()
    plain, cloning = _bundle(run, plain_dir, monkeypatch), _bundle(run, cloning_dir, monkeypatch)
    assert plain.read_bytes() == cloning.read_bytes()
    assert run("tag", plain, "t/app1:1", "t/renamed:2").code == 0  # this file system: as ever
    assert all(decompressed for _, decompressed in _entries(plain))

    calls: list[tuple[int, int, int]] = []  # source offset, target offset, length
    real = os.copy_file_range

    def copy_range(src: int, dst: int, count: int, offset_src: int | None = None) -> int:
        assert offset_src is not None
        calls.append((offset_src, os.lseek(dst, 0, os.SEEK_CUR), count))
        return real(src, dst, count, offset_src)

    monkeypatch.setattr(os, "copy_file_range", copy_range)
    monkeypatch.setattr(zstd_writer, "clones", lambda source, target: True)
    monkeypatch.setattr(zstd_writer, "block_size", lambda fd: 4096)
    assert run("tag", cloning, "t/app1:1", "t/renamed:2").code == 0

    whole_blocks = [(s, t, n) for s, t, n in calls if n >= 4096 and n % 4096 == 0]
    assert whole_blocks and sum(n for *_, n in whole_blocks) > 0.8 * cloning.stat().st_size
    assert all(s % 4096 == 0 and t % 4096 == 0 for s, t, _ in whole_blocks)
    pads = [c for c, d in _entries(cloning) if d == 0]
    assert pads and all(c >= clone_align.SMALLEST_EMPTY_FRAME for c in pads)
    assert _plain(cloning) == _plain(plain)  # the same tar: the empty frames hold nothing
    assert run("verify", cloning).code == 0
    for verb in (["ls", "--json"], ["inspect", "t/app2:1"], ["history", "t/renamed:2"]):
        assert run(verb[0], cloning, *verb[1:]).out == run(verb[0], plain, *verb[1:]).out
    one_plain, one_cloning = tmp_path / "one-plain.tar", tmp_path / "one-cloning.tar"
    assert run("unpack", plain, "--image", "t/app3:1", "-o", one_plain).code == 0
    assert run("unpack", cloning, "--image", "t/app3:1", "-o", one_cloning).code == 0
    assert one_plain.read_bytes() == one_cloning.read_bytes()
    # rewritten again, empty frames and all
    assert run("rmi", cloning, "t/app0:1").code == 0
    assert run("rmi", plain, "t/app0:1").code == 0
    assert _plain(cloning) == _plain(plain)
    assert run("verify", cloning).code == 0


def test_a_short_run_is_copied_as_it_is(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(zstd_writer, "clones", lambda source, target: True)
    source = tmp_path / "source"
    source.write_bytes(os.urandom(3 * 4096))
    out = tmp_path / "out"
    with source.open("rb") as read, out.open("wb") as file:
        writer = zstd_writer.SeekableWriter(file, zstd_writer.ZstdOptions(threads=1))
        writer.write(b"x" * 100)
        writer.copy_frames(read.fileno(), [zstd_writer.Frame(5, 9000, 0, 1)])
        writer.close()
    compressed = len(zstandard.ZstdCompressor().compress(b"x" * 100))
    assert _entries(out) == [(compressed, 100), (9000, 1)]  # no empty frame between
