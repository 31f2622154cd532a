"""The fast paths of writing a bundle (issue #21) give the bytes the slow ones gave: small
frames compressed inline, adjacent frames copied in one call, a copy counted towards the
next background sync, a clean member name looked up without normalising it."""

from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path

import pytest
import zstandard

from archiver.blobs import zstd_writer
from archiver.blobs.atomic import SyncingFile
from archiver.blobs.seek_table import Frame, read_seek_table
from archiver.blobs.tar_tree import _clean
from archiver.blobs.tarwriter import ustar_header
from archiver.blobs.tree import normalise_name
from archiver.blobs.zstd_writer import SeekableWriter, ZstdOptions


class _Bytes:
    def __init__(self, data: bytes) -> None:
        self.data = data

    def pread(self, length: int, offset: int, end: int | None = None) -> bytes:
        return self.data[offset : offset + length]


def _frames_of(data: bytes) -> list[bytes]:
    table = read_seek_table(_Bytes(data), len(data))
    assert table is not None
    return [
        zstandard.ZstdDecompressor().decompress(
            data[f.compressed_offset : f.compressed_offset + f.compressed_size]
        )
        for f in table
    ]


def test_small_and_large_frames_keep_their_order() -> None:
    out = io.BytesIO()
    writer = SeekableWriter(out, ZstdOptions(threads=2, frame_size=256 * 1024))
    pieces = [os.urandom(200 * 1024), b"small", os.urandom(100), os.urandom(256 * 1024), b"x"]
    for piece in pieces:
        writer.write(piece)
        writer.end_frame()
    writer.close()
    assert _frames_of(out.getvalue()) == pieces


def test_adjacent_frames_are_one_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[int, int]] = []
    real = os.copy_file_range

    def copy_range(src: int, dst: int, count: int, offset_src: int | None = None) -> int:
        calls.append((offset_src or 0, count))
        return real(src, dst, count, offset_src)

    monkeypatch.setattr(os, "copy_file_range", copy_range)
    source = tmp_path / "source"
    source.write_bytes(os.urandom(40))
    out = SyncingFile(str(tmp_path / "out"))
    writer = SeekableWriter(out, ZstdOptions(threads=1))
    fd = os.open(source, os.O_RDONLY)
    try:  # copied when something else is written next, adjacent frames as one run
        writer.copy_frames(fd, [Frame(0, 10, 0, 20), Frame(10, 5, 20, 9)])
        writer.copy_frames(fd, [Frame(30, 4, 29, 8)])
        writer.copy_frames(fd, [Frame(34, 1, 37, 1)])
        assert calls == []
        writer.write(b"more")
        writer.flush_frames()
    finally:
        os.close(fd)
    out.close()
    assert calls == [(0, 15), (30, 5)]
    data = (tmp_path / "out").read_bytes()
    assert data[:15] == source.read_bytes()[:15] and data[15:20] == source.read_bytes()[30:35]


def test_copied_frames_count_towards_a_background_sync(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    synced: list[int] = []
    monkeypatch.setattr(os, "fdatasync", lambda fd: synced.append(fd))
    source = tmp_path / "source"
    source.write_bytes(os.urandom(3000))
    out = SyncingFile(str(tmp_path / "out"), step=1000)
    writer = SeekableWriter(out, ZstdOptions(threads=1))
    fd = os.open(source, os.O_RDONLY)
    try:
        writer.copy_frames(fd, [Frame(0, 1500, 0, 1), Frame(1500, 1500, 1, 1)])
        writer.flush_frames()
    finally:
        os.close(fd)
    out.sync()
    out.close()
    assert synced, "the copied bytes started a sync"
    assert (tmp_path / "out").read_bytes() == source.read_bytes()


@pytest.mark.parametrize(
    "name",
    [
        "a/b",
        "blobs/sha256/ab",
        "a/./b",
        "./a",
        "a/../b",
        "..",
        "a/..",
        "/a",
        "C:a",
        "a//b",
        "a/",
        ".a",
        "a/.b",
        "a.b",
        "a",
        "a/b.",
    ],
)
def test_a_name_taken_as_clean_is_its_own_normal_form(name: str) -> None:
    try:
        normal = normalise_name(name, "t")
    except Exception:
        normal = None
    assert not _clean(name) or normal == name


def test_inline_threshold_is_below_a_frame() -> None:
    assert zstd_writer.INLINE_BELOW < zstd_writer.DEFAULT_FRAME_SIZE


@pytest.mark.parametrize("name", ["blobs/sha256/" + "a" * 64, "index.json", "x" * 100, "a b/c"])
@pytest.mark.parametrize("size", [0, 1, 511, 512, 10**9, 8**11 - 1])
@pytest.mark.parametrize("mode", [0o644, 0o755])
def test_a_ustar_header_is_the_one_tarfile_writes(name: str, size: int, mode: int) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime, info.uid, info.gid = size, mode, 0, 0, 0
    info.uname = info.gname = ""
    assert ustar_header(name, size, tarfile.REGTYPE, mode) == info.tobuf(
        tarfile.PAX_FORMAT, "utf-8", "surrogateescape"
    )


@pytest.mark.parametrize(
    ("name", "size", "kind"),
    [
        ("x" * 101, 1, tarfile.REGTYPE),
        ("é", 1, tarfile.REGTYPE),
        ("a", 8**11, tarfile.REGTYPE),
        ("blobs/", 0, tarfile.DIRTYPE),
    ],
)
def test_other_members_are_left_to_tarfile(name: str, size: int, kind: bytes) -> None:
    assert ustar_header(name, size, kind, 0o644) is None
