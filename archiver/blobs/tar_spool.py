"""A tar read once from a stream (a pipe, a daemon's response), its members' bytes spooled
as they arrive, hashed, into zstd frames of their own in a file; the tree
(``TarTree.from_stream``) then reads them back from there."""

from __future__ import annotations

import errno
import hashlib
import io
import tarfile
from collections.abc import Callable
from tempfile import gettempdir
from typing import BinaryIO

from archiver.blobs import limits
from archiver.blobs.atomic import named
from archiver.blobs.seek_table import Frame
from archiver.blobs.tree import check_header_read, normalise_name
from archiver.blobs.zstd_writer import SeekableWriter, ZstdOptions
from archiver.errors import InputError


def spool_tar(
    stream: BinaryIO,
    origin: str,
    spool: BinaryIO,
    options: ZstdOptions,
    add: Callable[[tarfile.TarInfo, int], None],
) -> tuple[list[Frame], dict[str, str]]:
    """Read a tar from a pipe once: every member's bytes go, hashed, into zstd frames in
    ``spool`` (each member starting and ending a frame, compressed in parallel as they
    arrive); ``add`` is told of every member and where its bytes start in the spool.
    The frames written, and the sha256 of each regular member by its normalised name."""
    digests: dict[str, str] = {}
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
                    digests[normalise_name(info.name, origin)] = _spool_member(body, info, writer)
                add(info, offset)
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
    except OSError as exc:
        writer.discard()
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):  # the spool's disk, not the stream
            where = spool.name if isinstance(spool.name, str) else gettempdir() + " (spool)"
            raise named(exc, where) from None
        raise
    except BaseException:
        writer.discard()
        raise
    frames = writer.flush_frames()
    spool.flush()
    return frames, digests


class _Forward:
    """A stream read once, front to back, seen as the file tarfile's ``r:`` mode expects:
    headers come through ``read`` (tarfile parses them, pax and GNU extensions included),
    member bytes through ``readinto`` straight into the caller's buffers (never through
    tarfile's own stream buffer, which copies every byte several times), and ``seek`` only
    skips forward. The last header block read is kept, to check the end-of-archive block."""

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
        size = check_header_read(size, self.origin, self._pos - tarfile.BLOCKSIZE)
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
