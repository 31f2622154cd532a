"""A bundle of many members ends with its member index (blobs.tar_members): ls reads the
head and that frame only, one image's unpack its own frames, and an index that lies is
caught before a member is read. Bundles without one read as before."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from archiver.blobs import tar_members
from archiver.blobs.path_tree import open_tree
from archiver.blobs.seek_table import Frame
from archiver.blobs.tar_tree import TarTree
from archiver.blobs.zstd_reader import SeekableReader
from archiver.engine.catalog import records
from archiver.places.archive import ArchiveSource
from tests.conftest import Run
from tests.factory import docker_save, random_layer

IMAGES = [
    ([f"t/app{i}:1"], [random_layer(70 * 1024, seed=i * 10 + j) for j in range(2)])
    for i in range(4)
]


def _pack(run: Run, tmp_path: Path, name: str) -> Path:
    source = tmp_path / "in.tar"
    if not source.exists():
        docker_save(source, IMAGES)
    out = tmp_path / name
    result = run("pack", source, "-o", out)
    assert result.code == 0, result.err
    return out


@pytest.fixture
def indexed(run: Run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(tar_members, "INDEX_FROM", 1)  # small bundles get one too
    return _pack(run, tmp_path, "indexed.tar.zst")


def _listing(run: Run, bundle: Path) -> list[dict]:
    result = run("ls", "--json", bundle)
    assert result.code == 0, result.err
    return json.loads(result.out)


def _decoded(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Frames decompressed (whole or a prefix) from now on, by index."""
    seen: list[int] = []
    whole, prefix, public = (
        SeekableReader._decode,
        SeekableReader._prefix,
        SeekableReader.decode_into,
    )

    def decode(self: SeekableReader, index: int) -> bytes:
        seen.append(index)
        return whole(self, index)

    def decode_frame(self: SeekableReader, frame: Frame, into: bytearray) -> memoryview:
        # an unpack's own workers
        seen.append(self.frames.index(frame))
        return public(self, frame, into)

    def part(self: SeekableReader, index: int, length: int) -> bytes:
        seen.append(index)
        return prefix(self, index, length)

    monkeypatch.setattr(SeekableReader, "_decode", decode)
    monkeypatch.setattr(SeekableReader, "_prefix", part)
    monkeypatch.setattr(SeekableReader, "decode_into", decode_frame)
    return seen


def test_the_index_is_the_last_member_and_lists_the_same(
    indexed: Path, run: Run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tar_members, "INDEX_FROM", 256)  # as shipped: this one has none
    plain = _pack(run, tmp_path, "plain.tar.zst")
    names = subprocess.run(
        ["tar", "-t"],
        input=subprocess.run(["zstd", "-dc", str(indexed)], capture_output=True).stdout,
        capture_output=True,
        check=True,
    ).stdout.split()
    assert names[-1] == tar_members.MEMBERS_FILE.encode()
    assert (
        tar_members.MEMBERS_FILE.encode()
        not in subprocess.run(["zstd", "-dc", str(plain)], capture_output=True, check=True).stdout
    )
    assert _listing(run, indexed) == _listing(run, plain)
    assert run("verify", indexed).code == 0


def test_ls_reads_the_head_and_the_index_frame_only(
    indexed: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen = _decoded(monkeypatch)
    with open_tree(str(indexed)) as tree:
        assert isinstance(tree, TarTree)
        reader = tree.access
        assert isinstance(reader, SeekableReader)
        assert len(records(ArchiveSource(tree))) == 4
        touched = sorted(set(seen))
        first_layer = min(
            f[0].offset for n in tree.files() if (f := tree.frames_of(n)) and tree.size(n) > 60_000
        )
        frames = reader.frames
    head = [i for i in touched if frames[i].offset < first_layer]
    assert touched == [*head, len(frames) - 1]


def test_one_image_touches_its_frames_only(
    indexed: Path, run: Run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with open_tree(str(indexed)) as tree:
        source = ArchiveSource(tree)
        wanted = next(r for r in records(source) if r.entry.refs[0].repository == "t/app2")
        own = {
            frame.offset
            for layer in wanted.image.manifest.layers
            for frame in tree.frames_of(f"blobs/sha256/{layer.digest.hex}") or []
        }
        layer_frames = {
            frame.offset
            for name in tree.files()
            if tree.size(name) > 60_000
            for frame in tree.frames_of(name) or []
        }
        offsets = [f.offset for f in tree.access.frames]  # type: ignore[attr-defined]
    seen = _decoded(monkeypatch)
    result = run("unpack", indexed, "--image", "t/app2:1", "-o", tmp_path / "one.tar")
    assert result.code == 0, result.err
    touched_layers = {offsets[i] for i in seen} & layer_frames
    assert touched_layers == own


def test_an_index_that_lies_is_caught_before_a_member_is_read(
    run: Run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tar_members, "INDEX_FROM", 1)
    real = tar_members.encode

    def shifted(entries: list[tar_members.Entry]) -> bytes:
        last = entries[-1]  # a layer: said to be a byte shorter than its header says
        moved = tar_members.Entry(last.name, last.kind, last.offset, last.size - 1)
        return real([*entries[:-1], moved])

    monkeypatch.setattr(tar_members, "encode", shifted)
    bundle = _pack(run, tmp_path, "lying.tar.zst")
    monkeypatch.setattr(tar_members, "encode", real)
    assert len(_listing(run, bundle)) == 4  # the head is where it says
    result = run("unpack", bundle, "-o", tmp_path / "out.tar")
    assert result.code == 2, result.err
    assert "member index places" in result.err and str(bundle) in result.err


def test_an_index_it_cannot_read_means_a_scan(
    run: Run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tar_members, "INDEX_FROM", 1)
    monkeypatch.setattr(tar_members, "encode", lambda entries: b'{"archiverMembers": 99}')
    bundle = _pack(run, tmp_path, "future.tar.zst")
    with open_tree(str(bundle)) as tree:
        assert len(records(ArchiveSource(tree))) == 4
    assert run("unpack", bundle, "-o", tmp_path / "out.tar").code == 0


def test_a_rewrite_keeps_an_index_that_reads(indexed: Path, run: Run) -> None:
    assert run("tag", indexed, "t/app1:1", "t/renamed:2").code == 0
    assert run("rmi", indexed, "t/app3:1").code == 0
    with open_tree(str(indexed)) as tree:
        assert isinstance(tree, TarTree)
        assert tree.exists(tar_members.MEMBERS_FILE)
    names = sorted(r["reference"] for r in _listing(run, indexed))
    assert names == sorted(
        ["docker.io/t/app0:1", "docker.io/t/app1:1", "docker.io/t/renamed:2", "docker.io/t/app2:1"]
    )
    assert run("verify", indexed).code == 0


def test_an_index_larger_than_a_frame_has_a_frame_of_its_own(
    run: Run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bundle of 10,000 images has an index of 5 MB, more than a frame holds: its last
    frame is made as large as the index (it was left out, and ls read every header)."""
    many = [([f"t/app{i}:1"], [random_layer(64, seed=i)]) for i in range(300)]
    source = docker_save(tmp_path / "many.tar", many)
    bundle = tmp_path / "many.tar.zst"
    result = run("pack", source, "-o", bundle, "--frame-size", str(64 * 1024))
    assert result.code == 0, result.err
    seen = _decoded(monkeypatch)
    with open_tree(str(bundle)) as tree:
        assert isinstance(tree, TarTree)
        reader = tree.access
        assert isinstance(reader, SeekableReader)
        last = reader.frames[-1]
        assert last.size > 64 * 1024  # the index, in one frame larger than the others
        assert tar_members.MEMBERS_FILE in tree.files()
        assert tree.member_index_problem() is None  # there, and it agrees with the tar
        assert len(records(ArchiveSource(tree))) == 300
        touched = set(seen)
    assert len(reader.frames) - 1 in touched
    assert all(frame.size <= 64 * 1024 for frame in reader.frames[:-1])
    assert run("verify", bundle).code == 0
