"""An OCI layout directory rewritten where it lies (``tag``, ``rmi``, ``prune`` of an OCI dir)."""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
from pathlib import Path
from typing import BinaryIO

from archiver.blobs import limits
from archiver.blobs.atomic import replace_file
from archiver.errors import InputError
from archiver.model.descriptor import Descriptor
from archiver.model.digest import Digest
from archiver.model.image import ResolvedImage, write_order
from archiver.places.base import Sink
from archiver.places.docker_save import MANIFEST_FILE
from archiver.places.layout_writer import LayoutDocuments
from archiver.places.oci_layout import INDEX_FILE


class DirLayoutRewrite(Sink):
    """An OCI layout directory changed in place: the blobs it lacks are added (each under a
    temporary name first), ``index.json`` (and ``manifest.json``, when it has one) replaced
    atomically at ``commit``, and only then the blobs nothing references any more removed.
    A crash leaves either the old names or the new, never a name without its blobs.

    Nothing is written or removed outside the directory: ``blobs`` and its algorithm
    folders must be real directories (not links), and every blob is created, renamed and
    removed relative to its folder's descriptor, never through a link planted in it."""

    def __init__(self, target: str) -> None:
        self.origin = target
        self._root = Path(target)
        self._docker = (self._root / MANIFEST_FILE).is_file()
        self._documents = LayoutDocuments()
        self._kept: set[Digest] = set()
        self._added: list[tuple[int, str]] = []
        self._folders: dict[str, int] = {}
        self._blobs = self._open_folder(None, "blobs")

    def _open_folder(self, parent: int | None, name: str) -> int:
        """A folder of the layout opened without following a link (made when missing)."""
        shown = name if parent is None else f"blobs/{name}"
        path = str(self._root / name) if parent is None else name
        for attempt in (1, 2):
            try:
                return os.open(
                    path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=parent
                )
            except FileNotFoundError:
                if attempt == 2:
                    raise
                os.mkdir(path, 0o777, dir_fd=parent)
            except OSError:
                raise InputError(
                    f"{self.origin}: {shown} is not a directory of the layout (a link or a "
                    f"file): nothing changed"
                ) from None
        raise AssertionError  # the loop returns or raises

    def _folder(self, algorithm: str) -> int:
        if algorithm not in self._folders:
            self._folders[algorithm] = self._open_folder(self._blobs, algorithm)
        return self._folders[algorithm]

    def begin(self, roots: list[ResolvedImage]) -> None:
        for root in roots:
            self._documents.add(root)
        self._kept = {descriptor.digest for descriptor, _ in write_order(roots)}

    def has(self, descriptor: Descriptor) -> bool:
        digest = descriptor.digest
        try:
            st = os.stat(digest.hex, dir_fd=self._folder(digest.algorithm), follow_symlinks=False)
        except FileNotFoundError:
            return False
        return stat.S_ISREG(st.st_mode) and st.st_size == descriptor.size

    def put_blob(self, descriptor: Descriptor, stream: BinaryIO) -> None:
        digest = descriptor.digest
        folder = self._folder(digest.algorithm)
        temp = f".{digest.hex}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        fd = os.open(temp, flags, 0o666, dir_fd=folder)  # O_EXCL: never through a link
        self._added.append((folder, temp))
        with open(fd, "wb") as out:
            while chunk := stream.read(limits.COPY_CHUNK):
                out.write(chunk)
        os.replace(temp, digest.hex, src_dir_fd=folder, dst_dir_fd=folder)

    def commit(self) -> None:
        replace_file(self._root / INDEX_FILE, self._documents.index())
        if self._docker:
            replace_file(self._root / MANIFEST_FILE, self._documents.docker_manifest())
        for algorithm in os.listdir(self._blobs):
            try:
                folder = self._folder(algorithm)
            except InputError:
                continue  # not a folder of blobs
            for name in os.listdir(folder):
                try:
                    digest = Digest.parse(f"{algorithm}:{name}")
                except InputError:
                    continue  # not a blob (a temporary file of another writer, say)
                if digest not in self._kept:
                    os.unlink(name, dir_fd=folder)
        self._close()

    def abort(self) -> None:
        for folder, temp in self._added:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temp, dir_fd=folder)
        self._close()

    def _close(self) -> None:
        for fd in [*self._folders.values(), self._blobs]:
            os.close(fd)
        self._folders.clear()
        self._blobs = -1
