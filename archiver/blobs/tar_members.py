"""A bundle's member index: where every member of its tar is, in a member of its own.

The last member of the tar of a bundle of many members (``archiver-members.json``, right
before the end-of-archive blocks, in the bundle's last frame) lists every member before it:
``{"archiverMembers": 1, "members": [[name, kind, offset, size], ...]}`` with ``kind``
``"f"`` (a file) or ``"d"`` (a directory) and ``offset`` where its bytes start in the tar.
A reader decodes that one frame instead of every header frame of the bundle (one per
layer): listing 2,000 images reads the head and this frame. Tools that do not know it see
one more file beside ``index.json`` and ignore it. Bundles without it (written before it,
or of fewer than INDEX_FROM members) are scanned header by header as before. The index is
a map, not a proof: before a reader reads a member, the tar from the end of the member
before it must hold that member's own headers and nothing else (``blobs.member_gaps``), and
``archiver verify`` compares every header of the tar with it (``TarTree``).
"""

from __future__ import annotations

import json
import tarfile
from dataclasses import dataclass
from typing import Any

MEMBERS_FILE = "archiver-members.json"
VERSION = 1
INDEX_FROM = 256
"""Bundles of fewer members have no index: scanning their headers costs next to nothing."""
_KINDS = {"f": "file", "d": "dir"}
_CODES = {kind: code for code, kind in _KINDS.items()}


@dataclass(frozen=True, slots=True)
class Entry:
    name: str
    kind: str  # "file" or "dir"
    offset: int
    size: int


def encode(entries: list[Entry]) -> bytes:
    """The index's bytes: compact, deterministic."""
    members = [[e.name, _CODES[e.kind], e.offset, e.size] for e in entries]
    document = {"archiverMembers": VERSION, "members": members}
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode()


def decode(raw: bytes) -> list[Entry] | None:
    """The entries of an index, None when it is not one this version reads (the caller
    then scans the tar); names are checked by the caller, as a scan checks them."""
    try:
        document: Any = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return None
    if not isinstance(document, dict) or document.get("archiverMembers") != VERSION:
        return None
    members = document.get("members")
    if not isinstance(members, list):
        return None
    entries = []
    for item in members:
        if not (isinstance(item, list) and len(item) == 4):
            return None
        name, code, offset, size = item
        if not (
            isinstance(name, str)
            and code in _KINDS
            and type(offset) is int
            and type(size) is int
            and offset >= tarfile.BLOCKSIZE
            and offset % tarfile.BLOCKSIZE == 0
            and size >= 0
        ):
            return None
        entries.append(Entry(name, _KINDS[code], offset, size))
    return entries


def header_of(block: bytes) -> tarfile.TarInfo | None:
    """The tar header in ``block`` (512 bytes), None when it is not a valid one."""
    try:
        return tarfile.TarInfo.frombuf(block, "utf-8", "surrogateescape")
    except (tarfile.HeaderError, ValueError):
        return None


def is_plain_header(block: bytes, name: str, size: int) -> bool:
    """Whether ``block`` is, checksum and all, the ustar header of a regular file ``name``
    (ASCII, at most 100 bytes, no prefix) of ``size`` bytes in octal: the header archiver's
    writer makes for nearly every member, told without tarfile (which takes four times as
    long). False proves nothing: tarfile then reads the block."""
    if (
        len(block) != tarfile.BLOCKSIZE
        or block[156:157] not in (b"0", b"\0")
        or block[345:346] != b"\0"
        or len(name) > 100
        or not name.isascii()
        or name.endswith("/")
        or block[:100].rstrip(b"\0") != name.encode()
    ):
        return False
    try:
        stored = int(block[148:156].rstrip(b"\0 ").decode("ascii"), 8)
        octal = block[124:136].rstrip(b"\0 ").decode("ascii")
        return stored == sum(block[:148]) + 8 * 32 + sum(block[156:]) and int(octal, 8) == size
    except (UnicodeDecodeError, ValueError):
        return False
