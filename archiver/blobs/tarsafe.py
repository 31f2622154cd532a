"""File trees over a tar (indexed once, read by offset) or a directory, refusing escapes.

Both trees answer the same questions: which regular files exist, how big they are, and a
stream of one of them. Names are normalised (``./a//b`` -> ``a/b``); absolute names, ``..``
components, duplicate members and links that leave the tree are refused as InputError.
"""

from __future__ import annotations

import hashlib
import io
import os
import posixpath
import stat
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol, cast

from archiver.blobs import limits
from archiver.blobs.seekable import (
    Frame,
    SeekableReader,
    SeekableWriter,
    ZstdOptions,
)
from archiver.errors import InputError, NotFound

_MAX_LINK_HOPS = 40


def normalise_name(name: str, origin: str) -> str:
    """A member name as a clean relative POSIX path; refuse absolute names and ``..``."""
    if name.startswith("/") or (len(name) > 1 and name[1] == ":"):
        raise InputError(f"{origin}: unsafe member name {name!r}: absolute path")
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise InputError(f"{origin}: unsafe member name {name!r}: '..' component")
    return "/".join(parts)


class Tree(Protocol):
    """A read-only file tree: a tar archive or a directory."""

    origin: str

    def exists(self, name: str) -> bool: ...

    def size(self, name: str) -> int: ...

    def open(self, name: str) -> BinaryIO: ...

    def files(self) -> list[str]: ...


class RandomAccess(Protocol):
    """Bytes that can be read at any offset: a file, or a seekable zstd bundle."""

    size: int

    def pread(self, length: int, offset: int, end: int | None = None) -> bytes:
        """``length`` bytes at ``offset``; ``end``: sequential reading continues up to it."""
        ...


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


@dataclass(frozen=True)
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
        if index:
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
        writer = SeekableWriter(spool, options)
        body = _Forward(stream, origin)
        count = 0
        try:
            with tarfile.open(fileobj=body, mode="r:") as archive:  # type: ignore[call-overload]
                info, archive.firstmember = archive.firstmember, None
                while info is not None:
                    count += 1
                    if count > limits.MAX_TAR_MEMBERS:
                        raise InputError(f"{origin}: more than {limits.MAX_TAR_MEMBERS} members")
                    offset = writer.bytes_in
                    if info.issparse():  # its bytes on the stream are not its content
                        raise InputError(f"{origin}: sparse tar member {info.name!r}: refused")
                    if info.isreg():
                        tree.digests[normalise_name(info.name, origin)] = _spool_member(
                            body, info, writer
                        )
                    tree._add(info, None, offset)
                    archive.members.clear()  # our index only: flat memory
                    body.skip_to(archive.offset)  # the rest of the member, and its padding
                    info = archive.next()
                if body.last_block != (archive.offset, bytes(tarfile.BLOCKSIZE)):
                    raise InputError(
                        f"{origin}: truncated tar: it ends without an end-of-archive block"
                    )
        except (tarfile.TarError, EOFError) as exc:
            writer.discard()
            raise InputError(f"{origin}: truncated or corrupt tar ({exc})") from None
        except BaseException:
            writer.discard()
            raise
        frames = writer.flush_frames()
        spool.flush()
        tree._access = SeekableReader(spool.fileno(), frames, origin)
        return tree

    def frames_of(self, name: str) -> list[Frame] | None:
        """The zstd frames holding exactly this member's bytes, when it has frames of its own."""
        member = self._resolve(name)
        between = getattr(self._access, "frames_between", None)
        return between(member.offset, member.offset + member.size) if between else None

    def sha256_of(self, name: str) -> str | None:
        """The sha256 a member's bytes had as they arrived, for trees spooled from a stream."""
        return self.digests.get(self._resolve(name).name)

    @property
    def access(self) -> RandomAccess:
        return self._access

    def _index(self) -> None:
        total = self._access.size
        headers_only = _AccessFile(self._access, sequential=False)  # jumps header to header
        file = io.BufferedReader(headers_only, buffer_size=tarfile.BLOCKSIZE)
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
        name = normalise_name(info.name, self.origin)
        if not name:
            return
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
        if kind == "file" and total is not None and offset + info.size > total:
            raise InputError(
                f"{self.origin}: truncated tar: member {name} needs {info.size} bytes, "
                f"the file ends first"
            )
        previous = self._members.get(name)
        if previous is not None and not (previous.kind == kind == "dir"):
            raise InputError(f"{self.origin}: duplicate tar member {name!r}")
        if kind in ("symlink", "hardlink"):
            self._check_link(name, info.linkname, kind)
        self._members[name] = _Member(name, kind, offset, info.size, info.linkname)

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
        current = normalise_name(name, self.origin)
        for _ in range(_MAX_LINK_HOPS):
            member = self._members.get(current)
            if member is None:
                raise NotFound(f"{self.origin}: no member {current!r}")
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
        try:
            self._resolve(name)
        except NotFound:
            return False
        return True

    def size(self, name: str) -> int:
        return self._resolve(name).size

    def open(self, name: str) -> BinaryIO:
        member = self._resolve(name)
        return cast(BinaryIO, _AccessFile(self._access, member.offset, member.size))

    def files(self) -> list[str]:
        return [m.name for m in self._members.values() if m.kind != "dir"]


class _Forward:
    """A stream read once, front to back, seen as the file tarfile's ``r:`` mode expects:
    headers come through ``read`` (tarfile parses them, pax and GNU extensions included),
    member bytes through ``readinto`` straight into the caller's buffers (never through
    tarfile's own stream buffer, which copies every byte several times), and ``seek`` only
    skips forward. The last header block read is kept, to check the end-of-archive block."""

    _MAX_READ = 1024 * 1024
    """Headers (pax records, GNU long names) larger than this are refused, not buffered."""

    def __init__(self, stream: BinaryIO, origin: str) -> None:
        self._stream = stream
        self.origin = origin
        self._pos = 0
        self.last_block: tuple[int, bytes] | None = None

    def readinto(self, view: memoryview) -> int:
        """Fill ``view``; fewer bytes only at the end of the stream."""
        got = 0
        while got < len(view):
            n = self._stream.readinto(view[got:])  # type: ignore[attr-defined]
            if not n:
                break
            got += n
        self._pos += got
        return got

    def read(self, size: int | None = -1) -> bytes:
        if size is None or size < 0 or size > self._MAX_READ:
            raise InputError(f"{self.origin}: a tar header of {size} bytes: refused")
        buffer = bytearray(size)
        start = self._pos
        data = bytes(buffer[: self.readinto(memoryview(buffer))])
        if size == tarfile.BLOCKSIZE:
            self.last_block = (start, data)
        return data

    def tell(self) -> int:
        return self._pos

    def seek(self, pos: int, whence: int = 0) -> int:
        if whence != 0 or pos < self._pos:
            raise io.UnsupportedOperation("a stream only goes forward")
        self.skip_to(pos)
        return self._pos

    def skip_to(self, pos: int) -> None:
        """Read and drop the bytes up to ``pos`` (a member's bytes not spooled, padding)."""
        scratch = memoryview(bytearray(min(limits.COPY_CHUNK, max(0, pos - self._pos))))
        while self._pos < pos:
            if not self.readinto(scratch[: pos - self._pos]):
                return  # the end: the next header read finds it


class _NoAccess:
    size = 0

    def pread(self, length: int, offset: int, end: int | None = None) -> bytes:
        raise InputError("internal: a tree being spooled cannot be read yet")


def _spool_member(body: _Forward, info: tarfile.TarInfo, writer: SeekableWriter) -> str:
    """Copy one member into frames of its own, read straight into each frame's buffer;
    return its sha256 (hex)."""
    hasher = hashlib.sha256()
    writer.end_frame()
    left = info.size
    while left:
        frame = bytearray(min(left, writer.frame_size))
        got = body.readinto(memoryview(frame))
        if got < len(frame):
            raise InputError(
                f"{body.origin}: truncated tar: member {info.name} ends after "
                f"{info.size - left + got} of {info.size} bytes"
            )
        hasher.update(frame)
        writer.write_frame(frame)
        left -= got
    writer.end_frame()
    return hasher.hexdigest()


class DirTree:
    """A directory; symlinks are followed only while they stay inside it."""

    def __init__(self, root: Path, origin: str) -> None:
        self.origin = origin
        self._root = root.resolve()

    def _path(self, name: str) -> Path:
        clean = normalise_name(name, self.origin)
        path = self._root / clean
        try:
            real = path.resolve()
        except (RuntimeError, OSError) as exc:  # a symlink loop
            raise InputError(f"{self.origin}: cannot resolve {clean!r} ({exc})") from None
        if real != self._root and self._root not in real.parents:
            raise InputError(f"{self.origin}: unsafe path {clean!r}: a link leaves the directory")
        return real

    def exists(self, name: str) -> bool:
        return self._path(name).is_file()

    def size(self, name: str) -> int:
        path = self._path(name)
        try:
            st = path.stat()
        except FileNotFoundError:
            raise NotFound(f"{self.origin}: no file {name!r}") from None
        if not stat.S_ISREG(st.st_mode):
            raise InputError(f"{self.origin}: {name!r} is not a regular file")
        return st.st_size

    def open(self, name: str) -> BinaryIO:
        path = self._path(name)
        try:
            return path.open("rb")
        except FileNotFoundError:
            raise NotFound(f"{self.origin}: no file {name!r}") from None
        except IsADirectoryError:
            raise InputError(f"{self.origin}: {name!r} is not a regular file") from None

    def files(self) -> list[str]:
        out = []
        for dirpath, _dirs, names in os.walk(self._root):
            for n in names:
                out.append(
                    os.path.relpath(os.path.join(dirpath, n), self._root).replace(os.sep, "/")
                )
        return sorted(out)
