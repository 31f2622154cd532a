"""Frames copied from one file to another on a file system that clones (XFS, btrfs): laid
at the same offset within a block as in the source, so the kernel shares the blocks
instead of copying them.

``copy_file_range`` shares extents (a reflink) only for ranges that start on a block
boundary in both files. A bundle rewritten (tag, rmi, prune, a sync that keeps images)
copies runs of frames whose offsets in the old file are anywhere; the new file's head has
another length. So before a long run, an empty zstd frame of the right length (it holds no
bytes: every zstd decoder skips it, and the seek table lists it as a frame of size 0)
brings the run to the same offset within a block as in the old file; the run is then
copied in three parts: up to the first boundary, the whole blocks (shared), the rest.

Elsewhere (ext4, tmpfs, another file system than the source's) nothing changes: no empty
frame is written, and the output is byte for byte what it was.
"""

from __future__ import annotations

import os

CLONING = frozenset({"xfs", "btrfs"})
"""File systems whose copy_file_range shares whole blocks between files."""
CLONED_FROM = 256 * 1024
"""Runs shorter than this (or than 64 blocks) are copied as they are: an empty frame costs
up to a block."""

_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
_EMPTY_CHECKSUM = bytes.fromhex("99e9d851")
"""The content checksum of no bytes (the low 32 bits of XXH64 of nothing)."""
_HEADS = (
    (_ZSTD_MAGIC + b"\x20" + bytes(1), b""),  # single segment, 1-byte content size 0
    (_ZSTD_MAGIC + b"\x24" + bytes(1), _EMPTY_CHECKSUM),  # ... and its checksum
    (_ZSTD_MAGIC + b"\xe0" + bytes(8), b""),  # single segment, 8-byte content size 0
    (_ZSTD_MAGIC + b"\xe4" + bytes(8), _EMPTY_CHECKSUM),
)
_EMPTY_BLOCK = b"\x00\x00\x00"  # a raw block of no bytes
_LAST_EMPTY_BLOCK = b"\x01\x00\x00"
SMALLEST_EMPTY_FRAME = 18
"""Every length from this one on can be an empty frame (as can 9, 12, 13, 15 and 16)."""


def empty_frame(length: int) -> bytes:
    """A zstd frame of exactly ``length`` bytes that decompresses to nothing: a header
    saying so, then empty raw blocks."""
    for head, tail in _HEADS:
        blocks = length - len(head) - len(tail)
        if blocks >= 3 and blocks % 3 == 0:
            return head + _EMPTY_BLOCK * (blocks // 3 - 1) + _LAST_EMPTY_BLOCK + tail
    raise ValueError(f"no empty zstd frame is {length} bytes long")


def padding(position: int, source_offset: int, block: int) -> int:
    """The length of the empty frame to write at ``position`` so that what follows lies at
    ``source_offset``'s place within a block; 0: it does already."""
    gap = (source_offset - position) % block
    if gap == 0:
        return 0
    return gap if gap >= SMALLEST_EMPTY_FRAME else gap + block


def pieces(start: int, length: int, block: int) -> list[tuple[int, int]]:
    """``length`` bytes from ``start`` as (start, length) parts: up to the first block
    boundary, whole blocks, the rest (empty parts left out)."""
    head = min(length, -start % block)
    middle = (length - head) // block * block
    parts = [(start, head), (start + head, middle), (start + head + middle, length - head - middle)]
    return [(at, size) for at, size in parts if size]


def clones(source: int, target: int) -> bool:
    """Whether a copy from ``source`` into ``target`` (open files) can share their blocks:
    one file system, of a kind that clones."""
    device = os.fstat(target).st_dev
    return os.fstat(source).st_dev == device and _filesystem(device, target) in CLONING


def block_size(fd: int) -> int:
    return os.fstatvfs(fd).f_frsize or 4096


def _filesystem(device: int, fd: int) -> str | None:
    """The type of the file system ``fd`` (a file on ``device``) is on, from
    /proc/self/mountinfo: the mount of that device, else (btrfs numbers each subvolume
    apart) the mount the file's path is under."""
    known = _types.get(device)
    if known is None:
        known = _types[device] = _lookup(device, fd) or ""
    return known or None


_types: dict[int, str] = {}


def _lookup(device: int, fd: int) -> str | None:
    wanted = f"{os.major(device)}:{os.minor(device)}"
    try:
        path = os.readlink(f"/proc/self/fd/{fd}")
        with open("/proc/self/mountinfo") as lines:
            mounts = [line.split(" - ", 1) for line in lines if " - " in line]
    except OSError:
        return None
    under, deepest = None, -1
    for mount, rest in mounts:
        fields, kind = mount.split(), rest.split()[0]
        if len(fields) < 5:
            continue
        if fields[2] == wanted:
            return kind
        point = fields[4].replace("\\040", " ")
        if (path == point or path.startswith(point.rstrip("/") + "/")) and len(point) > deepest:
            under, deepest = kind, len(point)
    return under
