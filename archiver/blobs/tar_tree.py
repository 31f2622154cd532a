"""A tar as a file tree (``tree.Tree``), indexed once; members are read in place by offset
through a RandomAccess: a file, or a seekable zstd bundle. Unsafe names, duplicates and
links that leave the archive are refused as the index is built."""

from __future__ import annotations

import io
import posixpath
import tarfile
from dataclasses import dataclass
from typing import BinaryIO, cast

from archiver.blobs import limits, member_gaps, tar_members
from archiver.blobs.seek_table import Frame
from archiver.blobs.tar_spool import spool_tar
from archiver.blobs.tree import RandomAccess, check_header_read, normalise_name
from archiver.blobs.zstd_reader import SeekableReader
from archiver.blobs.zstd_writer import ZstdOptions
from archiver.errors import InputError, NotFound

_MAX_LINK_HOPS = 40


class _AccessFile(io.RawIOBase):
    """A read-only, seekable file object over a RandomAccess (for tarfile's header scan)."""

    def __init__(
        self,
        access: RandomAccess,
        offset: int = 0,
        size: int | None = None,
        sequential: bool = True,
    ) -> None:
        super().__init__()
        self._access = access
        self._sequential = sequential
        self._offset = offset
        self._size = access.size - offset if size is None else size
        self._pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, pos: int, whence: int = 0) -> int:
        base = {0: 0, 1: self._pos, 2: self._size}[whence]
        self._pos = max(0, min(self._size, base + pos))
        return self._pos

    def tell(self) -> int:
        return self._pos

    def read(self, size: int | None = -1) -> bytes:
        """The bytes as the access hands them out (a member's reader has no buffer of its
        own: a copy into one cost as much as decompressing a layer's frames)."""
        left = self._size - self._pos
        want = left if size is None or size < 0 else min(size, left)
        if want <= 0:
            return b""
        end = self._offset + self._size if self._sequential else None
        data = self._access.pread(want, self._offset + self._pos, end)
        self._pos += len(data)
        return data

    def readall(self) -> bytes:
        return self.read()

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


class _HeaderReader(io.BufferedReader):
    """The headers of a tar as tarfile reads them, a block at a time; a pax record or GNU
    long name is read whole, so its declared size is checked before anything is allocated."""

    def __init__(self, raw: _AccessFile, origin: str) -> None:
        super().__init__(raw, buffer_size=tarfile.BLOCKSIZE)
        self._origin = origin

    def read(self, size: int | None = -1) -> bytes:
        size = check_header_read(size, self._origin, self.tell() - tarfile.BLOCKSIZE)
        return super().read(size)


@dataclass(frozen=True, slots=True)
class _Member:
    name: str
    kind: str  # "file", "dir", "symlink", "hardlink", "other"
    offset: int
    size: int
    linkname: str


class TarTree:
    """A tar file indexed once; members are read in place by offset."""

    def __init__(self, access: RandomAccess, origin: str, index: bool = True) -> None:
        self.origin = origin
        self._access = access
        self._members: dict[str, _Member] = {}
        self.digests: dict[str, str] = {}
        """sha256 of members hashed as they arrived (trees spooled from a stream)."""
        self._listed: list[tar_members.Entry] = []
        """A bundle's member index as it lists its members, then itself (kept when the
        index is not used, for ``member_index_problem``)."""
        self._unchecked: dict[str, int] | None = None
        """Members placed by the member index whose own headers are not read yet (and where
        the index lists them)."""
        if index and not self._index_from_members_file():
            self._index()

    @classmethod
    def from_stream(
        cls,
        stream: BinaryIO,
        origin: str,
        spool: BinaryIO,
        options: ZstdOptions,
    ) -> TarTree:
        """Read a tar from a pipe once: every member's bytes go, hashed, into zstd frames in
        ``spool`` (each member starting and ending a frame, compressed in parallel as they
        arrive), and the tree reads them back from there."""
        tree = cls(_NoAccess(), origin, index=False)
        frames, tree.digests = spool_tar(
            stream, origin, spool, options, lambda info, offset: tree._add(info, None, offset)
        )
        tree._access = SeekableReader(spool.fileno(), frames, origin)
        return tree

    def frames_of(self, name: str) -> list[Frame] | None:
        """The zstd frames holding exactly this member's bytes, when it has frames of its own."""
        member = self._checked(self._resolve(name))
        between = getattr(self._access, "frames_between", None)
        return between(member.offset, member.offset + member.size) if between else None

    def prefetch(self, names: list[str]) -> None:
        """These members will be read whole, in this order (a bundle decodes their frames
        ahead; a plain tar needs no help)."""
        if isinstance(self._access, SeekableReader):
            members = [self._resolve(name) for name in names]
            self._access.prefetch([(self._read_from(m), m.offset + m.size) for m in members])

    def sha256_of(self, name: str) -> str | None:
        """The sha256 a member's bytes had as they arrived, for trees spooled from a stream."""
        return self.digests.get(self._resolve(name).name)

    @property
    def access(self) -> RandomAccess:
        return self._access

    def _index(self) -> None:
        total = self._access.size
        headers_only = _AccessFile(self._access, sequential=False)  # jumps header to header
        file = _HeaderReader(headers_only, self.origin)
        try:
            archive = tarfile.open(fileobj=file, mode="r:")  # noqa: SIM115
            count = 0
            while True:
                # go straight to the next header: tarfile would otherwise read the last
                # byte of the previous member (in a bundle, a whole frame) to detect EOF;
                # our own checks (member ends, end-of-archive block) catch truncation
                file.seek(archive.offset)
                info = archive.next()
                if info is None:
                    break
                count += 1
                if count > limits.MAX_TAR_MEMBERS:
                    raise InputError(f"{self.origin}: more than {limits.MAX_TAR_MEMBERS} members")
                self._add(info, total, info.offset_data)
                archive.members.clear()  # type: ignore[attr-defined]  # our index only: flat memory
            end = archive.offset
        except tarfile.ReadError as exc:
            if total == 0 or "empty file" in str(exc):
                raise InputError(f"{self.origin}: empty file, not an image archive") from None
            raise InputError(f"{self.origin}: not a readable tar archive ({exc})") from None
        except (tarfile.TarError, EOFError) as exc:
            raise InputError(f"{self.origin}: truncated or corrupt tar ({exc})") from None
        if self._access.pread(tarfile.BLOCKSIZE, end) != bytes(tarfile.BLOCKSIZE):
            raise InputError(
                f"{self.origin}: truncated tar: it ends without an end-of-archive block"
            )

    def _add(self, info: tarfile.TarInfo, total: int | None, offset: int) -> None:
        if info.isreg():
            kind = "file"
        elif info.isdir():
            kind = "dir"
        elif info.issym():
            kind = "symlink"
        elif info.islnk():
            kind = "hardlink"
        else:
            kind = "other"
        self._add_member(info.name, kind, offset, info.size, info.linkname, total)

    def _add_member(
        self, raw_name: str, kind: str, offset: int, size: int, linkname: str, total: int | None
    ) -> str:
        name = normalise_name(raw_name, self.origin)
        if not name:
            return name
        if kind == "file" and total is not None and offset + size > total:
            raise InputError(
                f"{self.origin}: truncated tar: member {name} needs {size} bytes, "
                f"the file ends first"
            )
        previous = self._members.get(name)
        if previous is not None and not (previous.kind == kind == "dir"):
            raise InputError(f"{self.origin}: duplicate tar member {name!r}")
        if kind in ("symlink", "hardlink"):
            self._check_link(name, linkname, kind)
        self._members[name] = _Member(name, kind, offset, size, linkname)
        return name

    def _index_from_members_file(self) -> bool:
        """Index a bundle from its member index (``blobs.tar_members``) in its last frame:
        True when it has a valid one, False to scan the tar's headers instead."""
        access = self._access
        if not isinstance(access, SeekableReader) or not access.frames:
            return False
        last = access.frames[-1]
        block = tarfile.BLOCKSIZE
        if last.size < 3 * block or last.size > limits.MAX_ARCHIVE_INDEX:
            return False
        data = access.pread(last.size, last.offset)
        info = tar_members.header_of(data[:block])
        if info is None or info.name != tar_members.MEMBERS_FILE or not info.isreg():
            return False
        padded = block + -(-info.size // block) * block
        if last.size < padded + 2 * block or data[block + info.size :].count(0) != len(data) - (
            block + info.size
        ):
            return False  # the index, then nothing but the end-of-archive blocks
        entries = tar_members.decode(data[block : block + info.size])
        if entries is None:
            return False
        own = tar_members.Entry(tar_members.MEMBERS_FILE, "file", last.offset + block, info.size)
        self._listed = [*entries, own]
        end = 0  # in order, each right after the one before, headers as the writer's
        for entry in entries:
            if (entry.kind == "dir" and entry.size) or entry.offset - end != (
                member_gaps.header_size(entry)
            ):
                return self._forget()
            end = member_gaps.padded_end(entry)
        if end != last.offset or (entries and entries[-1].kind != "file"):
            return self._forget()  # nothing between the last file listed and the index
        if len(entries) > limits.MAX_TAR_MEMBERS:
            raise InputError(f"{self.origin}: more than {limits.MAX_TAR_MEMBERS} members")
        self._unchecked = {}
        for position, entry in enumerate(entries):
            name = self._add_member(entry.name, entry.kind, entry.offset, entry.size, "", None)
            if name and entry.kind == "file":
                self._unchecked[name] = position
        self._add_member(own.name, own.kind, own.offset, own.size, "", None)
        return True

    def _forget(self) -> bool:
        self._members.clear()
        return False

    def _gap(self, position: int) -> tuple[int, list[tar_members.Entry]]:
        """Where the headers of the file listed at ``position`` start (the end of the file
        listed before it), and the members listed from there to it (directories, then it)."""
        listed = self._listed
        first = position
        while first and listed[first - 1].kind == "dir":
            first -= 1
        start = member_gaps.padded_end(listed[first - 1]) if first else 0
        return start, listed[first : position + 1]

    def _read_from(self, member: _Member) -> int:
        """Where reading ``member`` starts: its headers first while they are unchecked."""
        position = (self._unchecked or {}).get(member.name)
        return member.offset if position is None else self._gap(position)[0]

    def _checked(self, member: _Member) -> _Member:
        """A member placed by the member index, once the tar from the end of the file
        before it to its data holds its own headers (and its directories') and nothing else."""
        unchecked = self._unchecked
        position = None if unchecked is None else unchecked.get(member.name)
        if unchecked is None or position is None:
            return member
        start, listed = self._gap(position)
        problem = member_gaps.problem(self._access.pread, start, listed)
        if problem is not None:
            raise InputError(
                f"{self.origin}: its member index places {member.name!r} at {member.offset}, "
                f"the tar does not (from {start}: {problem})"
            )
        unchecked.pop(member.name, None)  # (another thread may have checked it too)
        return member

    def member_index_problem(self) -> str | None:
        """For a bundle with a member index: where a scan of every tar header disagrees
        with the index (a member it does not list, or lists otherwise), in one line; None
        when they agree, and for a tar without one (or with one this version cannot read)."""
        if not self._listed:
            return None
        scanned = self if self._unchecked is None else TarTree(self._access, self.origin, False)
        try:
            if scanned is not self:
                scanned._index()
            listed = [(normalise_name(e.name, self.origin), e) for e in self._listed]
        except InputError as exc:
            return str(exc)
        problem = member_gaps.disagreement(
            [(m.name, m.kind, m.offset, m.size) for m in scanned._members.values()],
            [(name, e.kind, e.offset, e.size) for name, e in listed if name],
        )
        return None if problem is None else f"{self.origin}: {problem}"

    def _check_link(self, name: str, target: str, kind: str) -> None:
        if target.startswith("/"):
            raise InputError(f"{self.origin}: unsafe link {name!r} -> {target!r}: absolute target")
        base = posixpath.dirname(name) if kind == "symlink" else ""
        joined = posixpath.normpath(posixpath.join(base, target))
        if joined == ".." or joined.startswith("../"):
            raise InputError(
                f"{self.origin}: unsafe link {name!r} -> {target!r}: leaves the archive"
            )

    def _resolve(self, name: str) -> _Member:
        found = self._lookup(name)
        if isinstance(found, str):
            raise NotFound(f"{self.origin}: no member {found!r}")
        return found

    def _lookup(self, name: str) -> _Member | str:
        """The regular file ``name`` is, links followed; or the name found missing (no
        exception: ``exists`` is asked for every blob of every input of a pack)."""
        member = self._members.get(name)
        if member is not None and member.kind == "file":
            return member  # the common case: a normalised name of a file
        if member is None and _clean(name):
            return name  # as common: a blob another input of a pack holds
        current = normalise_name(name, self.origin)
        for _ in range(_MAX_LINK_HOPS):
            member = self._members.get(current)
            if member is None:
                return current
            if member.kind == "file":
                return member
            if member.kind == "symlink":
                target = posixpath.join(posixpath.dirname(current), member.linkname)
            elif member.kind == "hardlink":
                target = member.linkname
            else:
                raise InputError(f"{self.origin}: member {current!r} is not a regular file")
            current = normalise_name(posixpath.normpath(target), self.origin)
        raise InputError(f"{self.origin}: too many links resolving {name!r}")

    def exists(self, name: str) -> bool:
        return not isinstance(self._lookup(name), str)

    def size(self, name: str) -> int:
        return self._resolve(name).size

    def open(self, name: str) -> BinaryIO:
        member = self._checked(self._resolve(name))
        return cast(BinaryIO, _AccessFile(self._access, member.offset, member.size))

    def files(self) -> list[str]:
        return [m.name for m in self._members.values() if m.kind != "dir"]


def _clean(name: str) -> bool:
    """``name`` is already what ``normalise_name`` makes of it (no test of it can fail)."""
    return not (
        name.startswith(("/", "."))
        or name.endswith(("/", "."))
        or "//" in name
        or "/." in name
        or name[1:2] == ":"
    )


class _NoAccess:
    size = 0

    def pread(self, length: int, offset: int, end: int | None = None) -> bytes:
        raise InputError("internal: a tree being spooled cannot be read yet")
