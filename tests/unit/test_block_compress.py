"""The parallel block compressor: valid gzip/zstd (read by Python and by gzip(1)/zstd(1)),
the same bytes for any thread count, a fixed header per member, bounded read-ahead."""

from __future__ import annotations

import dataclasses
import gzip
import io
import os
import random
import shutil
import subprocess

import pytest
import zstandard

from archiver.blobs.block_compress import GZIP, GZIP_HEADER, ZSTD, compress


def _data(size: int, seed: int = 1) -> bytes:
    rng = random.Random(seed)
    words = [bytes(rng.randrange(97, 123) for _ in range(rng.randrange(2, 9))) for _ in range(500)]
    text = b" ".join(rng.choice(words) for _ in range(size // 5))
    return (text + rng.randbytes(size // 10))[:size]


def _packed(data: bytes, **changes: object) -> bytes:
    out = io.BytesIO()
    options = dataclasses.replace(GZIP, **changes)  # type: ignore[arg-type]
    result = compress(io.BytesIO(data), out, options)
    assert result.size == len(out.getvalue())
    assert result.size_in == len(data)
    return out.getvalue()


def _tool(name: str, packed: bytes) -> bytes:
    tool = shutil.which(name)
    assert tool is not None
    return subprocess.run([tool, "-dc"], input=packed, capture_output=True, check=True).stdout


@pytest.mark.parametrize("size", [0, 1, 4096, 3 * 65536 + 17])
def test_gzip_round_trips_through_python_and_gzip_tool(size: int) -> None:
    data = _data(size)
    packed = _packed(data, block_size=65536)
    members = max(1, -(-size // 65536))
    assert packed.startswith(GZIP_HEADER) and packed.count(GZIP_HEADER) >= members
    assert gzip.decompress(packed) == data
    assert _tool("gzip", packed) == data


def test_gzip_is_the_same_for_every_thread_count() -> None:
    data = _data(600_000)
    outs = {_packed(data, block_size=65536, threads=n) for n in (1, 2, 3, 8)}
    assert len(outs) == 1


def test_gzip_in_1_mib_members_is_about_the_size_of_one_zlib_stream() -> None:
    data = _data(4_000_000)
    assert len(_packed(data)) <= 1.02 * len(gzip.compress(data, GZIP.level))


def test_block_size_and_level_change_the_bytes() -> None:
    data = _data(300_000)
    assert _packed(data, block_size=65536) != _packed(data, block_size=32768)
    assert _packed(data, level=6) != _packed(data)


def test_zstd_frames_round_trip_and_are_deterministic() -> None:
    data = _data(500_000)
    outs = set()
    for threads in (1, 2, 4):
        out = io.BytesIO()
        options = dataclasses.replace(ZSTD, block_size=100_000, threads=threads)
        compress(io.BytesIO(data), out, options)
        outs.add(out.getvalue())
    assert len(outs) == 1
    (packed,) = outs
    reader = zstandard.ZstdDecompressor().stream_reader(io.BytesIO(packed), read_across_frames=True)
    assert reader.read() == data
    assert _tool("zstd", packed) == data
    empty = io.BytesIO()
    compress(io.BytesIO(b""), empty, ZSTD)
    assert zstandard.ZstdDecompressor().decompress(empty.getvalue()) == b""


def test_read_ahead_is_bounded() -> None:
    data = os.urandom(64 * 4096)
    source = io.BytesIO(data)
    ahead: list[int] = []
    written_in = 0

    def on_block(size: int) -> None:
        nonlocal written_in
        written_in += size
        ahead.append(source.tell() - written_in)

    options = dataclasses.replace(GZIP, block_size=4096, threads=2)
    compress(source, io.BytesIO(), options, on_block)
    assert max(ahead) <= 2 * 2 * 4096
