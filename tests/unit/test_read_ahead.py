"""Unpacking a bundle decodes the frames of the layers it reads ahead, across layers, on a
small pool of decompressors: each frame once, in order, never the frames of other images."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from archiver.blobs.path_tree import open_tree
from archiver.blobs.seek_table import Frame
from archiver.blobs.zstd_reader import SeekableReader
from archiver.engine.copy import copy
from archiver.places.archive import ArchiveSource
from archiver.places.layout_writer import open_sink
from tests.conftest import Run
from tests.factory import docker_save, random_layer


@pytest.fixture
def bundle(tmp_path: Path, run: Run) -> Path:
    images = [
        ([f"t/app{i}:1"], [random_layer(64 * 1024, seed=i * 10 + j) for j in range(3)])
        for i in range(6)
    ]
    docker_save(tmp_path / "in.tar", images)
    out = tmp_path / "many.tar.zst"
    assert run("pack", tmp_path / "in.tar", "-o", out).code == 0
    return out


def _decodes(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, str]]:
    seen: list[tuple[int, str]] = []
    real, public = SeekableReader._decode, SeekableReader.decode_into

    def decode(self: SeekableReader, index: int) -> bytes:
        seen.append((index, threading.current_thread().name))
        return real(self, index)

    def decode_frame(self: SeekableReader, frame: Frame, into: bytearray) -> memoryview:
        # a tar file's own workers
        seen.append((self.frames.index(frame), threading.current_thread().name))
        return public(self, frame, into)

    monkeypatch.setattr(SeekableReader, "_decode", decode)
    monkeypatch.setattr(SeekableReader, "decode_into", decode_frame)
    return seen


_OUTPUTS = pytest.mark.parametrize(
    "fmt",
    ["docker", "oci-dir"],  # a tar file decodes into its place, a directory reads ahead
)


@_OUTPUTS
def test_small_layers_are_decoded_ahead_each_frame_once(
    bundle: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fmt: str
) -> None:
    seen = _decodes(monkeypatch)
    with open_tree(str(bundle)) as tree:
        source = ArchiveSource(tree)
        head = len(seen)
        copy(source, open_sink(str(tmp_path / "out"), fmt), source.images())
    layers = seen[head:]
    assert len(layers) == 18  # one frame per small layer
    assert len({index for index, _ in layers}) == len(layers)  # each decoded once
    # on the pool, while the layer before is written: not on the thread that writes
    main = threading.main_thread().name
    assert all(name != main for _, name in layers), layers


@_OUTPUTS
def test_one_image_decodes_only_its_frames(
    bundle: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fmt: str
) -> None:
    seen = _decodes(monkeypatch)
    with open_tree(str(bundle)) as tree:
        source = ArchiveSource(tree)
        head = len(seen)
        wanted = [e for e in source.images() if e.refs[0].repository == "t/app3"]
        copy(source, open_sink(str(tmp_path / "out"), fmt), wanted)
    assert len(seen[head:]) == 3
