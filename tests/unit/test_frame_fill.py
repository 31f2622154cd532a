"""A bundle unpacked to a tar file: its layers' frames decoded in parallel straight into
their places in the file, every blob verified before the file is renamed into place."""

from __future__ import annotations

import hashlib
import os
import random
import threading
import time
from pathlib import Path

import pytest
import zstandard

from archiver.blobs.frame_fill import FrameFiller
from archiver.blobs.path_tree import open_tree
from archiver.blobs.seek_table import Frame
from archiver.blobs.zstd_reader import SeekableReader
from archiver.engine.copy import copy
from archiver.errors import IntegrityError
from archiver.model.digest import Digest
from archiver.places.archive import ArchiveSource
from archiver.places.layout_writer import TarLayoutSink
from tests.conftest import Run
from tests.factory import docker_save, random_layer

FRAME = 64 * 1024


@pytest.fixture
def bundle(tmp_path: Path, run: Run) -> Path:
    """Layers of many frames (64 KiB frames) and of one, two of them shared."""
    shared = random_layer(5 * FRAME + 123, seed=99)
    images = [
        ([f"t/app{i}:1"], [shared, random_layer(3 * FRAME + i * 1000, seed=i), b"x" * (i + 1)])
        for i in range(4)
    ]
    docker_save(tmp_path / "in.tar", images)
    out = tmp_path / "b.tar.zst"
    assert run("pack", tmp_path / "in.tar", "-o", out, "--frame-size", FRAME).code == 0
    return out


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


def test_a_tar_file_is_byte_for_byte_the_streamed_tar(
    bundle: Path, run: Run, tmp_path: Path
) -> None:
    filled = tmp_path / "filled.tar"
    assert run("unpack", bundle, "-o", filled).code == 0
    streamed = tmp_path / "streamed.tar"
    with open_tree(str(bundle)) as tree, streamed.open("wb") as out:
        source = ArchiveSource(tree)
        sink = TarLayoutSink(out)  # a stream: read ahead, written in order
        assert not sink.fills_in_place and TarLayoutSink(str(tmp_path / "x")).fills_in_place
        copy(source, sink, source.images())
    assert streamed.stat().st_size > 15 * FRAME
    assert filled.read_bytes() == streamed.read_bytes()
    assert run("verify", filled).code == 0


def _layer_frames(bundle: Path) -> tuple[str, list[Frame]]:
    """The digest of the first layer of several frames, and its frames."""
    with open_tree(str(bundle)) as tree:
        for name in tree.files():
            frames = tree.frames_of(name) if name.startswith("blobs/") else None
            if frames and len(frames) >= 3:
                return name.rsplit("/", 1)[1], frames
    raise AssertionError("no layer of several frames")


@pytest.mark.parametrize("damage", ["content", "frame"])
def test_a_damaged_frame_mid_layer_leaves_nothing(
    bundle: Path, run: Run, tmp_path: Path, damage: str
) -> None:
    digest, frames = _layer_frames(bundle)
    middle = frames[len(frames) // 2]
    data = bytearray(bundle.read_bytes())
    if damage == "content":  # still a frame, other bytes: the digest finds it
        at = middle.compressed_offset + middle.compressed_size // 2
        data[at] ^= 0xFF
    else:  # a frame zstd cannot decode (the block after the frame header)
        at = middle.compressed_offset + 6
        data[at : at + 3] = b"\xff\xff\xff"
    bundle.write_bytes(bytes(data))
    out = tmp_path / "out" / "u.tar"
    out.parent.mkdir()
    result = run("unpack", bundle, "-o", out)
    assert result.code == 3, result.err
    message = result.err.strip()
    assert "\n" not in message and "Traceback" not in message
    assert str(bundle) in message and digest in message, message
    assert not out.exists()
    assert _leftovers(out.parent) == []


def _blob(data: bytes, frame: int) -> tuple[Digest, list[Frame], dict[int, bytes]]:
    frames, pieces, offset = [], {}, 0
    for start in range(0, len(data), frame):
        piece = data[start : start + frame]
        frames.append(Frame(0, 0, 1000 + offset, len(piece)))  # decoded offsets count
        pieces[1000 + offset] = piece
        offset += len(piece)
    return Digest("sha256", hashlib.sha256(data).hexdigest()), frames, pieces


def _into(piece: bytes, buffer: bytearray) -> memoryview:
    """A decoder's answer: ``piece`` in the buffer it was given."""
    buffer[: len(piece)] = piece
    return memoryview(buffer)[: len(piece)]


def test_frames_decoded_out_of_order_land_in_place_and_verify(tmp_path: Path) -> None:
    rng = random.Random(7)
    blobs = [rng.randbytes(rng.randrange(0, 50_000)) for _ in range(40)]
    path = tmp_path / "out"
    fd = os.open(path, os.O_RDWR | os.O_CREAT)
    filler = FrameFiller(fd, str(path), threads=4)
    expected, offset = bytearray(), 0
    for data in blobs:
        digest, frames, pieces = _blob(data, 4096)

        def decode(frame: Frame, into: bytearray, pieces: dict[int, bytes] = pieces) -> memoryview:
            time.sleep(rng.random() / 2000)  # workers finish in any order
            return _into(pieces[frame.offset], into)

        gap = b"h" * 512
        filler.write_at(gap, offset)
        filler.fill(digest, len(data), frames, decode, offset + len(gap), "bundle")
        expected += gap + data
        offset += len(gap) + len(data)
    filler.finish()
    os.close(fd)
    assert path.read_bytes() == bytes(expected)


def test_bytes_before_a_blob_go_with_its_first_frame(tmp_path: Path) -> None:
    path = tmp_path / "out"
    fd = os.open(path, os.O_RDWR | os.O_CREAT)
    filler = FrameFiller(fd, str(path), threads=2)
    data = os.urandom(10_000)
    digest, frames, pieces = _blob(data, 4096)
    empty = Digest("sha256", hashlib.sha256(b"").hexdigest())
    filler.fill(digest, 10_000, frames, lambda f, b: _into(pieces[f.offset], b), 3, "b", b"abc")
    filler.fill(empty, 0, [], lambda f, b: _into(b"", b), 10_008, "b", b"defgh")  # no frames
    filler.finish()
    os.close(fd)
    assert path.read_bytes() == b"abc" + data + b"defgh"


def test_a_wrong_frame_is_the_error_of_its_blob(tmp_path: Path) -> None:
    fd = os.open(tmp_path / "out", os.O_RDWR | os.O_CREAT)
    filler = FrameFiller(fd, "out", threads=2)
    good, frames, pieces = _blob(b"a" * 20_000, 4096)
    filler.fill(good, 20_000, frames, lambda f, into: _into(pieces[f.offset], into), 0, "bundle")
    bad, frames, wrong = _blob(b"b" * 20_000, 4096)
    wrong[frames[2].offset] = b"c" * 4096
    with pytest.raises(IntegrityError) as caught:  # by the next fill, or by finish
        filler.fill(bad, 20_000, frames, lambda f, b: _into(wrong[f.offset], b), 20_000, "bundle")
        filler.fill(good, 20_000, frames, lambda f, b: _into(pieces[f.offset], b), 40_000, "bundle")
        filler.finish()
    os.close(fd)
    assert caught.value.blob == str(bad) and "digest mismatch" in caught.value.detail
    assert "after 20000 bytes" in str(caught.value)


def test_an_error_stops_the_queue_and_memory_stays_bounded(tmp_path: Path) -> None:
    fd = os.open(tmp_path / "out", os.O_RDWR | os.O_CREAT)
    filler = FrameFiller(fd, "out", threads=2)
    live, peak, lock = [0], [0], threading.Lock()
    digest, frames, pieces = _blob(os.urandom(400 * 1024), 1024)

    def decode(frame: Frame, into: bytearray) -> memoryview:
        with lock:
            live[0] += 1
            peak[0] = max(peak[0], live[0])
        time.sleep(0.0005)
        with lock:
            live[0] -= 1
        if frame.offset - 1000 == 300 * 1024:
            raise IntegrityError("bundle", "frame at 9", "corrupt zstd frame (bad block)")
        return _into(pieces[frame.offset], into)

    with pytest.raises(IntegrityError) as caught:
        filler.fill(digest, 400 * 1024, frames, decode, 0, "bundle")
        filler.finish()
    filler.cancel()
    os.close(fd)
    assert caught.value.blob == str(digest)
    assert "frame at 9: corrupt zstd frame" in caught.value.detail
    assert peak[0] <= 6


def test_the_reader_decodes_a_frame_on_any_thread(bundle: Path) -> None:
    with open_tree(str(bundle)) as tree:
        reader = tree.access
        assert isinstance(reader, SeekableReader)
        frames = reader.frames
        results: dict[int, bytes] = {}
        threads = [
            threading.Thread(
                target=lambda i=i: results.update(
                    {i: bytes(reader.decode_into(frames[i], bytearray(frames[i].size + 1)))}
                )
            )
            for i in range(len(frames))
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        whole = b"".join(results[i] for i in range(len(frames)))
        assert whole == reader.pread(reader.size, 0)


def test_a_full_disk_names_the_file_and_leaves_nothing(
    bundle: Path, run: Run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import errno

    real = os.pwrite

    def pwrite(fd: int, data: bytes | memoryview, offset: int) -> int:
        if len(data) > FRAME // 2:  # a layer's frame: the disk is full
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real(fd, data, offset)

    monkeypatch.setattr(os, "pwrite", pwrite)
    out = tmp_path / "out" / "u.tar"
    out.parent.mkdir()
    result = run("unpack", bundle, "-o", out)
    assert result.code != 0
    message = result.err.strip()
    assert "\n" not in message and str(out) in message and "No space left" in message, message
    assert not out.exists() and _leftovers(out.parent) == []


@pytest.mark.parametrize("content_size", [True, False])
def test_one_frame_decoder_new_bytes_or_a_buffer(content_size: bool) -> None:
    from archiver.blobs.zstd_reader import decode_frame

    data = os.urandom(3000) * 3
    frame_bytes = zstandard.ZstdCompressor(write_content_size=content_size).compress(data)
    frame = Frame(0, len(frame_bytes), 0, len(data))
    buffer = bytearray(len(data) + 1)
    assert decode_frame(frame_bytes, frame, "b") == data
    assert bytes(decode_frame(frame_bytes, frame, "b", buffer)) == data
    short = Frame(0, len(frame_bytes), 0, len(data) - 1)  # the table says less: refused
    for into in (None, buffer):
        with pytest.raises(IntegrityError, match=r"seek table says|corrupt"):
            decode_frame(frame_bytes, short, "b", *([into] if into is not None else []))
        with pytest.raises(IntegrityError, match=r"corrupt zstd frame|decompressed to \d+ bytes"):
            decode_frame(frame_bytes[:-5], frame, "b", *([into] if into is not None else []))
