"""Rewriting an archive where it lies: the same format, new names, fewer images.

A tar or a bundle is written anew beside itself and renamed over the old one (its mode
kept); in a bundle, the layers' zstd frames are copied as they are, never decompressed or
recompressed, so a rewrite costs little more than a copy of the file. An OCI directory is
changed in place (``DirLayoutRewrite``). Either way the copy engine does the writing, and
until the final rename the archive is exactly as it was.

Rewritable: bundles (and any zstd tar, which becomes a bundle), plain tars (docker-save legacy
or hybrid, rewritten as the hybrid; OCI tars stay OCI), and OCI layout directories.
Archives compressed otherwise (gzip, xz, bzip2) and standard input are read-only.
"""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from archiver.blobs import compression
from archiver.blobs.lock import locked
from archiver.blobs.parts import bundle_name
from archiver.blobs.path_tree import open_tree
from archiver.blobs.tree import Tree
from archiver.engine.copy import CopyReport, Progress, copy
from archiver.errors import InputError, NotFound
from archiver.model.digest import Digest
from archiver.model.image import ImageEntry
from archiver.places.archive import ArchiveSource
from archiver.places.base import Sink
from archiver.places.docker_save import MANIFEST_FILE
from archiver.places.layout_rewrite import DirLayoutRewrite
from archiver.places.layout_writer import open_sink
from archiver.places.oci_layout import is_layout


@dataclass
class RewritableArchive:
    """An archive opened for rewriting: read it through ``source``, then ``write``."""

    path: str
    format: str  # "bundle", "docker", "oci" or "oci-dir"
    source: ArchiveSource
    mode: int

    def stored_blobs(self) -> dict[Digest, int]:
        """Blobs the archive holds under ``blobs/`` (referenced or not), with their sizes."""
        return stored_blobs(self.source.tree)

    def write(
        self, entries: list[ImageEntry], progress: Progress | None = None, verify: bool = False
    ) -> CopyReport:
        """Write ``entries`` back, replacing the archive only once all is written;
        ``verify``: the frames of a bundle's layers, copied as they are, are read and
        hashed first (else only their sizes are checked against the seek table)."""
        sink: Sink
        if self.format == "oci-dir":
            sink = DirLayoutRewrite(self.path)
        else:
            sink = open_sink(self.path, self.format, mode=self.mode)
        return copy(self.source, sink, entries, progress=progress, verify_reused=verify)


@contextlib.contextmanager
def open_for_rewrite(
    path: str, on_wait: Callable[[str], None] | None = None
) -> Iterator[RewritableArchive]:
    """Open ``path`` for a rewrite, refusing at once what cannot be rewritten. The archive
    is locked until the block ends: a second rewrite of it waits (``on_wait`` is told) and
    then reads what the first wrote. A symbolic link is written through: its target is
    replaced, the link stays."""
    if path != "-" and os.path.islink(path):
        path = os.path.realpath(path)
    target = Path(path)
    if bundle_name(path) is not None:
        raise InputError(
            f"{path}: a bundle in parts is read-only here: join it first "
            f"(archiver convert {path} NAME.tar.zst --to bundle)"
        )
    try:
        st = target.stat()
    except FileNotFoundError:
        raise NotFound(f"{path}: no such file or directory") from None
    if path == "-" or not (stat.S_ISREG(st.st_mode) or stat.S_ISDIR(st.st_mode)):
        raise InputError(f"{path}: only a file or a directory can be rewritten")
    _check_writable(target, stat.S_ISDIR(st.st_mode))
    kind = None if target.is_dir() else _compression(target)
    if kind not in (None, "zstd"):
        raise InputError(
            f"{path}: a {kind}-compressed archive is read-only here: convert it to a "
            f"bundle first (archiver convert {path} NAME.tar.zst --to bundle)"
        )
    with locked(path, on_wait), open_tree(path) as tree:
        source = ArchiveSource(tree, reuse_frames=True)
        fmt = _format(tree, target, kind)
        yield RewritableArchive(path, fmt, source, stat.S_IMODE(os.stat(path).st_mode))


def _check_writable(target: Path, is_dir: bool) -> None:
    """Permission to change the file, and to create and rename beside it."""
    place = target if is_dir else target.parent
    if not os.access(target, os.W_OK) or not os.access(place, os.W_OK | os.X_OK):
        raise InputError(f"{target}: read-only: permission denied, nothing changed")


def _compression(target: Path) -> str | None:
    with target.open("rb") as file:
        return compression.sniff(file.read(compression.MAGIC_LENGTH))


def _format(tree: Tree, target: Path, kind: str | None) -> str:
    if target.is_dir():
        if not is_layout(tree):
            raise InputError(
                f"{target}: only an OCI layout directory can be rewritten (no oci-layout "
                f"and index.json)"
            )
        return "oci-dir"
    if kind == "zstd":
        return "bundle"
    return "docker" if tree.exists(MANIFEST_FILE) or not is_layout(tree) else "oci"


def stored_blobs(tree: Tree) -> dict[Digest, int]:
    """Files named ``blobs/<algorithm>/<hex>`` in ``tree``, with their sizes."""
    found = {}
    for name in tree.files():
        parts = name.split("/")
        if len(parts) != 3 or parts[0] != "blobs":
            continue
        try:
            digest = Digest.parse(f"{parts[1]}:{parts[2]}")
        except InputError:
            continue
        found[digest] = tree.size(name)
    return found
