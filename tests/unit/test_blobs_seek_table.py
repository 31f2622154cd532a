"""A seek table whose sizes lie is found when the bundle is opened (issue #16): one line,
an integrity error naming the file and the frame, before any member is read."""

from __future__ import annotations

import os
import struct
from pathlib import Path

import pytest

from archiver.blobs.seek_table import read_seek_table
from archiver.blobs.zstd_reader import SeekableReader
from archiver.errors import IntegrityError
from tests.conftest import SAMPLES, Run

BUNDLE = SAMPLES / "bundle.tar.zst"


def _entries(data: bytes) -> tuple[int, int]:
    """(number of frames, offset of the first table entry)."""
    count = struct.unpack("<I", data[-9:-5])[0]
    return count, len(data) - (8 + count * 8 + 9) + 8


def _lying(tmp_path: Path, change: str) -> Path:
    data = bytearray(BUNDLE.read_bytes())
    count, start = _entries(bytes(data))
    last = start + (count - 1) * 8
    if change == "last decompressed size":
        size = struct.unpack_from("<I", data, last + 4)[0]
        struct.pack_into("<I", data, last + 4, size + 512)
    elif change == "last decompressed size, smaller":
        size = struct.unpack_from("<I", data, last + 4)[0]
        struct.pack_into("<I", data, last + 4, size - 1)
    else:  # a frame boundary moved: the compressed sizes still add up to the file
        before = last - 8
        a, b = struct.unpack_from("<I", data, before)[0], struct.unpack_from("<I", data, last)[0]
        struct.pack_into("<I", data, before, a + 3)
        struct.pack_into("<I", data, last, b - 3)
    path = tmp_path / "lying.tar.zst"
    path.write_bytes(bytes(data))
    return path


CHANGES = ["last decompressed size", "last decompressed size, smaller", "boundary"]


@pytest.mark.parametrize("change", CHANGES)
def test_a_lying_seek_table_is_refused_when_opened(tmp_path: Path, change: str) -> None:
    path = _lying(tmp_path, change)
    fd = os.open(path, os.O_RDONLY)
    try:
        frames = read_seek_table(fd, path.stat().st_size)
        assert frames is not None  # the table alone looks well formed
        with pytest.raises(IntegrityError) as caught:
            SeekableReader.open(fd, str(path))
    finally:
        os.close(fd)
    message = str(caught.value)
    assert message.startswith(f"{path}: blob frame {len(frames) - 1} at offset")
    assert "\n" not in message


@pytest.mark.parametrize("change", CHANGES)
def test_a_lying_seek_table_fails_ls_in_one_line(run: Run, tmp_path: Path, change: str) -> None:
    path = _lying(tmp_path, change)
    result = run("ls", path)
    assert result.code == IntegrityError.exit_code
    assert result.err.startswith(f"Error: {path}: blob frame ")
    assert result.err.count("\n") == 1 and "Traceback" not in result.err


def test_an_honest_bundle_opens(tmp_path: Path) -> None:
    fd = os.open(BUNDLE, os.O_RDONLY)
    try:
        reader = SeekableReader.open(fd, str(BUNDLE))
        assert reader is not None and reader.size > 0
    finally:
        os.close(fd)
