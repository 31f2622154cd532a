"""What may sit between two members a bundle's member index places (``blobs.tar_members``):
the headers of the next member, nothing else.

A tool that reads the tar in order (docker load, skopeo, GNU tar) sees every member; a
reader that trusts the index sees only those it lists. So the bytes from the end of one
listed file (its data padded to a block) to the data of the next must parse as exactly the
headers of the members listed there: the directories between them, then the file, each a
ustar header, optionally after one pax extended header and one GNU long name or long link
(as archiver's tar writer and Python's tarfile write them). Another member there, a pax
global header, a sparse file, an end-of-archive block: the gap is refused.
"""

from __future__ import annotations

import io
import tarfile
from collections.abc import Callable

from archiver.blobs import limits, tar_members, tarwriter
from archiver.blobs.tar_members import Entry

_BLOCK = tarfile.BLOCKSIZE
_EXTENSIONS = (tarfile.XHDTYPE, tarfile.GNUTYPE_LONGNAME, tarfile.GNUTYPE_LONGLINK)
_TYPES = {"file": (tarfile.REGTYPE, tarfile.AREGTYPE), "dir": (tarfile.DIRTYPE,)}


def padded_end(entry: Entry) -> int:
    """Where the member after ``entry`` may start its headers."""
    return entry.offset + -(-entry.size // _BLOCK) * _BLOCK


def header_size(entry: Entry) -> int:
    """The bytes of headers archiver's tar writer puts before ``entry``'s data (-1 for a
    name it cannot write)."""
    if entry.kind == "file" and tarwriter.is_plain(entry.name, entry.size):
        return _BLOCK
    try:
        if entry.kind == "file":
            return len(tarwriter.header(entry.name, entry.size, tarfile.REGTYPE, 0o644))
        return len(tarwriter.header(entry.name + "/", 0, tarfile.DIRTYPE, 0o755))
    except ValueError:  # (UnicodeEncodeError) a lone surrogate from the JSON
        return -1


def problem(read: Callable[[int, int], bytes], start: int, listed: list[Entry]) -> str | None:
    """None when the tar's bytes from ``start`` to the data of the last of ``listed``
    (``read(length, offset)``) are exactly the headers of ``listed``, in order; else what
    is wrong there."""
    length = listed[-1].offset - start
    if length > limits.MAX_MEMBER_HEADERS:
        return f"{length} bytes of headers, over the {limits.MAX_MEMBER_HEADERS}-byte limit"
    gap = read(length, start)
    if len(listed) == 1 and len(gap) == _BLOCK:  # the common case: one ustar header
        if tar_members.is_plain_header(gap, listed[0].name, listed[0].size):
            return None
        info = tar_members.header_of(gap)
        if info is None:
            return f"no tar header at {start}"
        return _differs(info, listed[0], start, _BLOCK)
    chained = _chain(gap, start, listed)
    return chained if chained is not None else _parsed(gap, start, listed)


def _chain(gap: bytes, start: int, listed: list[Entry]) -> str | None:
    """The gap's blocks as a chain of headers, one member's after another's: each member
    at most one pax header, one long name and one long link before its own header."""
    position = 0
    for entry in listed:
        extensions: set[bytes] = set()
        while True:
            info = tar_members.header_of(gap[position : position + _BLOCK])
            if info is None:
                return f"no tar header at {start + position}"
            if info.type in _EXTENSIONS and info.type not in extensions:
                extensions.add(info.type)
                position += _BLOCK + -(-info.size // _BLOCK) * _BLOCK
                continue
            position += _BLOCK
            if info.type not in _TYPES[entry.kind] or start + position != entry.offset:
                return f"member {info.name!r} at {start + position - _BLOCK}"
            break
    return None


def _parsed(gap: bytes, start: int, listed: list[Entry]) -> str | None:
    """The chain read as tarfile reads it: names and sizes from the pax records and long
    names, the data of each where the index says."""
    try:
        archive = tarfile.open(fileobj=io.BytesIO(gap), mode="r:")  # noqa: SIM115
        for entry in listed:
            info = archive.next()
            if info is None:
                return f"no tar header at {start + archive.offset}"
            differs = _differs(info, entry, start, info.offset_data)
            if differs is not None:
                return differs
    except (tarfile.TarError, EOFError, ValueError) as exc:
        return f"no tar header there ({exc})"
    return None


def _differs(info: tarfile.TarInfo, entry: Entry, start: int, data_at: int) -> str | None:
    if (
        info.name != entry.name
        or info.type not in _TYPES[entry.kind]
        or info.sparse is not None
        or info.size != entry.size
        or start + data_at != entry.offset
    ):
        return f"member {info.name!r} at {start + info.offset}"
    return None


Placed = tuple[str, str, int, int]
"""A member as a scan or a member index places it: name, kind, data offset, size."""


def disagreement(scanned: list[Placed], indexed: list[Placed]) -> str | None:
    """The first member, in tar order, that a scan of the tar's headers and its member
    index do not place alike; None when they agree on every one."""
    listed = {member[0]: member for member in indexed}
    for name, kind, offset, size in scanned:
        own = listed.pop(name, None)
        if own is None:
            return f"the tar has member {name!r} at {offset}, its member index does not list it"
        if own != (name, kind, offset, size):
            return (
                f"member {name!r}: its member index places a {own[1]} of {own[3]} bytes at "
                f"{own[2]}, the tar has a {kind} of {size} bytes at {offset}"
            )
    for name, *_ in listed.values():
        return f"its member index lists {name!r}, the tar has no such member"
    return None
