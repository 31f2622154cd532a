"""Deterministic parallel compression of a stream into one gzip member or zstd frames.

The input is cut into fixed-size blocks, each compressed on its own on a thread pool (zlib
and zstandard release the GIL), and the results are joined in order, as pigz does, so one
large layer uses every core. The output depends on the bytes in and the fixed settings
only, never on the thread count or the machine (given the same zlib and libzstd):

gzip: a fixed 10-byte header (no name, mtime 0, no extra flags, OS 255 "unknown"); each
block a raw deflate stream at a fixed level, primed with the last 32 KiB of the block
before it (a preset dictionary, as pigz does: the ratio of one stream, and still
independent work), ended by a sync flush; then an empty final block (``03 00``) and the
trailer: the CRC-32 of the whole input (the blocks' CRCs combined) and its size mod 2^32.

zstd: each block one frame at a fixed level with its content size and no checksum; the
frames concatenated are one valid zstd stream.

At most two blocks per thread are in flight: memory stays bounded whatever the input.
The SHA-256 and size of the compressed bytes are computed as they are written.
"""

from __future__ import annotations

import hashlib
import os
import struct
import threading
import zlib
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import BinaryIO, Protocol

import zstandard

GZIP_HEADER = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"
"""ID1 ID2, deflate, no flags, mtime 0, no extra flags, OS 255 (unknown)."""
_DEFLATE_END = b"\x03\x00"  # an empty final fixed-Huffman block
_WINDOW = 32 * 1024


def default_threads() -> int:
    return os.cpu_count() or 1


@dataclass(frozen=True)
class BlockOptions:
    """How a stream is compressed; everything that decides the bytes out (``threads`` does
    not)."""

    kind: str
    """``"gzip"`` or ``"zstd"``."""
    level: int
    block_size: int
    threads: int = field(default_factory=default_threads)


GZIP = BlockOptions("gzip", 6, 1024 * 1024)
ZSTD = BlockOptions("zstd", 3, 4 * 1024 * 1024)
KINDS = {"gzip": GZIP, "zstd": ZSTD}


class Writable(Protocol):
    def write(self, data: bytes, /) -> int | None: ...


@dataclass
class Compressed:
    """What was written: the compressed bytes' SHA-256 (hex) and size, the input's size."""

    sha256: str
    size: int
    size_in: int


# -- CRC-32 of a concatenation (zlib's crc32_combine, with the shift operator cached) ------

_POLY = 0xEDB88320


def _times(matrix: list[int], vector: int) -> int:
    total, i = 0, 0
    while vector:
        if vector & 1:
            total ^= matrix[i]
        vector >>= 1
        i += 1
    return total


def _compose(a: list[int], b: list[int]) -> list[int]:
    """The operator applying ``b`` then ``a``."""
    return [_times(a, column) for column in b]


def _shift_operator(length: int) -> list[int]:
    """The operator that runs a CRC register over ``length`` zero bytes."""
    one_bit = [_POLY] + [1 << n for n in range(31)]
    op = one_bit
    for _ in range(3):
        op = _compose(op, op)  # 2, 4, 8 zero bits: one zero byte
    result = [1 << n for n in range(32)]  # identity
    while length:
        if length & 1:
            result = _compose(op, result)
        length >>= 1
        if length:
            op = _compose(op, op)
    return result


_operators: dict[int, list[int]] = {}
_operators_lock = threading.Lock()


def crc32_combine(crc1: int, crc2: int, length2: int) -> int:
    """The CRC-32 of A + B from crc32(A), crc32(B) and len(B)."""
    with _operators_lock:
        op = _operators.get(length2)
        if op is None:
            if len(_operators) > 64:
                _operators.clear()
            op = _operators[length2] = _shift_operator(length2)
    return _times(op, crc1) ^ crc2


# -- blocks ------------------------------------------------------------------------------


def _gzip_block(level: int, data: bytes, dictionary: bytes) -> tuple[bytes, int]:
    if dictionary:
        packer = zlib.compressobj(level, zlib.DEFLATED, -15, 8, zlib.Z_DEFAULT_STRATEGY, dictionary)
    else:
        packer = zlib.compressobj(level, zlib.DEFLATED, -15, 8, zlib.Z_DEFAULT_STRATEGY)
    out = packer.compress(data) + packer.flush(zlib.Z_SYNC_FLUSH)
    return out, zlib.crc32(data)


class _Zstd:
    def __init__(self, level: int) -> None:
        self._level = level
        self._local = threading.local()

    def block(self, data: bytes) -> tuple[bytes, int]:
        packer = getattr(self._local, "packer", None)
        if packer is None:
            packer = self._local.packer = zstandard.ZstdCompressor(
                level=self._level, write_content_size=True, write_checksum=False
            )
        return packer.compress(data), 0


def _read_block(stream: BinaryIO, size: int) -> bytes:
    parts, left = [], size
    while left:
        piece = stream.read(left)
        if not piece:
            break
        parts.append(piece)
        left -= len(piece)
    return b"".join(parts)


def compress(
    stream: BinaryIO,
    out: Writable,
    options: BlockOptions,
    on_block: Callable[[int], None] | None = None,
) -> Compressed:
    """Compress ``stream`` (read to its end) into ``out``; ``on_block`` hears each block's
    input size as it is written."""
    digest = hashlib.sha256()
    written = 0

    def emit(data: bytes) -> None:
        nonlocal written
        if data:
            digest.update(data)
            out.write(data)
            written += len(data)

    if options.kind == "gzip":
        emit(GZIP_HEADER)
        zstd = None
    elif options.kind == "zstd":
        zstd = _Zstd(options.level)
    else:
        raise ValueError(f"unknown compression {options.kind!r}")
    crc, size_in = 0, 0
    previous = b""
    pending: deque[tuple[Future[tuple[bytes, int]], int]] = deque()
    threads = max(1, options.threads)
    pool = ThreadPoolExecutor(threads, thread_name_prefix="compress") if threads > 1 else None

    def finish_one() -> None:
        nonlocal crc
        future, length = pending.popleft()
        data, block_crc = future.result()
        emit(data)
        if zstd is None:
            crc = crc32_combine(crc, block_crc, length)
        if on_block is not None:
            on_block(length)

    def run(block: bytes, dictionary: bytes) -> tuple[bytes, int]:
        if zstd is not None:
            return zstd.block(block)
        return _gzip_block(options.level, block, dictionary)

    try:
        while True:
            block = _read_block(stream, options.block_size)
            if not block:
                break
            dictionary = previous[-_WINDOW:]
            previous = block
            if pool is None:
                done: Future[tuple[bytes, int]] = Future()
                done.set_result(run(block, dictionary))
                pending.append((done, len(block)))
            else:
                pending.append((pool.submit(run, block, dictionary), len(block)))
            while len(pending) >= 2 * threads or (pool is None and pending):
                finish_one()
            size_in += len(block)
        while pending:
            finish_one()
    finally:
        for future, _ in pending:
            future.cancel()
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
    if zstd is None:
        emit(_DEFLATE_END + struct.pack("<II", crc & 0xFFFFFFFF, size_in & 0xFFFFFFFF))
    elif size_in == 0:
        emit(zstandard.ZstdCompressor(level=options.level, write_content_size=True).compress(b""))
    return Compressed(digest.hexdigest(), written, size_in)
