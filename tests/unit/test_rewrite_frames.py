"""A bundle rewritten where it lies copies its layers' frames unread: their sizes are
checked against the seek table always, their digests with --verify."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

from archiver.blobs.path_tree import open_tree
from archiver.blobs.tar_tree import TarTree
from archiver.model.digest import Digest
from archiver.places.oci_layout import blob_path
from tests.conftest import Run
from tests.factory import docker_save, random_layer

KIB = 1024


def _swapped_layers(tmp_path: Path, run: Run) -> Path:
    """A bundle whose two layers (same size, incompressible) have traded frames: the seek
    table still adds up, the bytes are wrong."""
    first, second = random_layer(96 * KIB, seed=1), random_layer(96 * KIB, seed=2)
    source = docker_save(tmp_path / "in.tar", [(["a:1"], [first]), (["b:1"], [second])])
    bundle = tmp_path / "b.tar.zst"
    assert run("pack", source, "-o", bundle).code == 0
    with open_tree(str(bundle)) as tree:
        assert isinstance(tree, TarTree)
        frames = [
            tree.frames_of(blob_path(Digest.parse("sha256:" + hashlib.sha256(layer).hexdigest())))
            for layer in (first, second)
        ]
    assert frames[0] and frames[1] and len(frames[0]) == len(frames[1]) == 1
    (one,), (two,) = frames[0], frames[1]
    assert one.compressed_size == two.compressed_size
    data = bytearray(bundle.read_bytes())
    a = slice(one.compressed_offset, one.compressed_offset + one.compressed_size)
    b = slice(two.compressed_offset, two.compressed_offset + two.compressed_size)
    data[a], data[b] = data[b], data[a]
    bundle.write_bytes(bytes(data))
    return bundle


def test_tag_with_verify_finds_frames_that_are_not_their_layer(tmp_path: Path, run: Run) -> None:
    bundle = _swapped_layers(tmp_path, run)
    before = bundle.read_bytes()
    result = run("tag", bundle, "a:1", "c:1", "--verify")
    assert result.code == 3, result.err
    assert len(result.err.strip().splitlines()) == 1 and "digest mismatch" in result.err
    assert bundle.read_bytes() == before  # nothing changed
    assert run("verify", bundle).code != 0  # verify sees it too


def test_tag_without_verify_copies_frames_unread(tmp_path: Path, run: Run) -> None:
    bundle = _swapped_layers(tmp_path, run)
    copy = tmp_path / "copy.tar.zst"
    shutil.copy(bundle, copy)
    assert run("tag", copy, "a:1", "c:1").code == 0  # fast path: sizes only
