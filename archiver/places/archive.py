"""One Source over any archive tree: OCI layout (dir or tar), docker-save legacy, or the hybrid.

The hybrid (Docker ≥ 25) carries both an OCI ``index.json`` and a docker ``manifest.json``;
their entries are merged by config digest so each image is listed once with all its names.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Callable, Iterator
from typing import BinaryIO

from archiver.blobs import limits
from archiver.blobs.path_tree import open_tree
from archiver.blobs.tar_tree import TarTree
from archiver.blobs.tree import Tree
from archiver.blobs.zstd_reader import SeekableReader
from archiver.blobs.zstd_writer import ZstdOptions
from archiver.errors import ArchiverError, InputError, NotFound
from archiver.model.digest import Digest
from archiver.model.documents import Manifest, parse_document
from archiver.model.image import ImageEntry
from archiver.places.base import InFrames, Precompressed, Source, read_document
from archiver.places.docker_save import MANIFEST_FILE, Blobs, read_items, synthesize
from archiver.places.oci_layout import (
    blob_path,
    is_layout,
    read_index,
    read_json,
)

REPOSITORIES_FILE = "repositories"


class ArchiveSource(Source):
    """Images and blobs of an archive tree; blobs are streamed in place, never extracted."""

    def __init__(
        self, tree: Tree, spool_options: ZstdOptions | None = None, reuse_frames: bool = False
    ) -> None:
        self.origin = tree.origin
        self._tree = tree
        self.spool_options = spool_options
        self.reuse_frames = reuse_frames
        """Hand out a bundle's layer frames as they are (rewriting the bundle in place)."""
        self._documents: dict[Digest, bytes] = {}
        self._paths: dict[Digest, str] = {}
        has_layout = is_layout(tree)
        has_docker = tree.exists(MANIFEST_FILE)
        if not has_layout and not has_docker:
            if tree.exists(REPOSITORIES_FILE):
                raise InputError(
                    f"{self.origin}: no {MANIFEST_FILE}: the pre-1.10 docker save format "
                    f"is not supported"
                )
            raise InputError(
                f"{self.origin}: not an image archive (no {MANIFEST_FILE}, no oci-layout "
                f"and index.json)"
            )
        if tree.exists(REPOSITORIES_FILE):
            read_json(tree, REPOSITORIES_FILE, "docker-save-repositories")
        self._entries, self._annotations = read_index(tree) if has_layout else ([], {})
        if has_docker:
            self._merge_docker_save()

    def _merge_docker_save(self) -> None:
        """Names from ``manifest.json`` join the layout entry with the same config;
        entries the layout lacks become synthetic ones."""
        blobs = Blobs()
        by_config = self._configs_of_layout_entries()
        for item in read_items(self._tree):
            position = by_config.get(item.config_digest)
            if position is None:
                self._entries.append(synthesize(self._tree, item, blobs))
                by_config[item.config_digest] = len(self._entries) - 1
                continue
            named = ImageEntry(self._entries[position].descriptor, item.refs)
            self._entries[position] = self._entries[position].merged(named)
        self._documents.update(blobs.documents)
        self._paths.update(blobs.paths)

    def _configs_of_layout_entries(self) -> dict[Digest, int]:
        """Config digest -> position of the layout entry holding that image (best effort)."""
        found: dict[Digest, int] = {}
        for position, entry in enumerate(self._entries):
            pending = [entry.descriptor]
            seen: set[Digest] = set()  # each document once (a fan-out, a cycle)
            while pending and len(seen) < limits.MAX_DOCUMENTS:
                desc = pending.pop()
                if desc.digest in seen:
                    continue
                seen.add(desc.digest)
                try:
                    if not self.has_blob(desc.digest):
                        continue
                    raw = read_document(self, desc)
                    document = parse_document(raw, self.origin, desc.media_type)
                except ArchiverError:
                    continue  # reported when this entry is actually read
                if isinstance(document, Manifest):
                    found.setdefault(document.config.digest, position)
                else:
                    pending.extend(document.manifests)
        return found

    @property
    def tree(self) -> Tree:
        return self._tree

    def images(self) -> list[ImageEntry]:
        return list(self._entries)

    def reorder(self, key: Callable[[ImageEntry], int]) -> None:
        """List the images sorted by ``key`` (stable: ties keep the archive's order)."""
        self._entries.sort(key=key)

    def has_blob(self, digest: Digest) -> bool:
        return (
            digest in self._documents
            or digest in self._paths
            or self._tree.exists(blob_path(digest))
        )

    def blob_candidates(self) -> frozenset[Digest] | None:
        """The blobs of a tar archive, from its member names (a blob's path is a member's
        name, so this is every blob ``has_blob`` finds); None for a directory."""
        if not isinstance(self._tree, TarTree):
            return None
        named = set()
        for name in self._tree.files():
            top, _, rest = name.partition("/")
            algorithm, _, hexpart = rest.partition("/")
            if top == "blobs" and Digest.is_valid(f"{algorithm}:{hexpart}"):
                named.add(Digest(algorithm, hexpart))
        return frozenset(named | self._documents.keys() | self._paths.keys())

    @property
    def annotations(self) -> dict[str, str]:
        """index.json's own annotations: a delta names its base here (DELTA_BASE)."""
        return self._annotations

    def precompressed(self, digest: Digest) -> Precompressed | None:
        """The blob's own zstd frames: those of a member spooled from a stream (with the
        digest it had as it arrived), or, with ``reuse_frames``, those of a bundle's layer."""
        tree = self._tree
        spooled = self.spool_options is not None
        if not isinstance(tree, TarTree) or not (spooled or self.reuse_frames):
            return None
        if digest.algorithm != "sha256":
            return None
        path = blob_path(digest) if tree.exists(blob_path(digest)) else self._paths.get(digest)
        if path is None:
            return None
        frames = tree.frames_of(path)
        sha256 = tree.sha256_of(path)
        if frames is None or (spooled and sha256 is None):
            return None
        fd: int | None = getattr(tree.access, "fd", None)
        if fd is None:
            return None  # a split bundle: its frames are read, not copied
        access = tree.access
        reader = access if isinstance(access, SeekableReader) else None
        lead = reader.frame_before(frames[0]) if frames and reader is not None else None
        return Precompressed(fd, frames, sha256, tree.size(path), self.spool_options, lead)

    def in_frames(self, digest: Digest) -> InFrames | None:
        """A layer of a bundle, held in whole frames of its own: a sink may decode them."""
        tree = self._tree
        if not isinstance(tree, TarTree) or digest in self._documents:
            return None
        access = tree.access
        if not isinstance(access, SeekableReader):
            return None
        path = blob_path(digest) if tree.exists(blob_path(digest)) else self._paths.get(digest)
        if path is None or not tree.exists(path):
            return None
        frames = tree.frames_of(path)
        if frames is None:
            return None
        return InFrames(frames, access.decode_into, tree.size(path))

    def will_read(self, digests: list[Digest]) -> None:
        """Blobs of a tree read in place are decoded ahead (frames copied as they are, by a
        rewrite or from a spooled stream, are not read at all)."""
        tree = self._tree
        if not isinstance(tree, TarTree) or self.reuse_frames or self.spool_options:
            return
        names = []
        for digest in digests:
            if digest in self._documents:
                continue
            path = blob_path(digest)
            if not tree.exists(path):
                path = self._paths.get(digest, "")
            if path and tree.exists(path):
                names.append(path)
        tree.prefetch(names)

    def blob_origin(self, digest: Digest) -> str:
        return self.origin

    def open_blob(self, digest: Digest) -> BinaryIO:
        if digest in self._documents:
            return io.BytesIO(self._documents[digest])
        path = blob_path(digest)
        if self._tree.exists(path):
            return self._tree.open(path)
        if digest in self._paths:
            return self._tree.open(self._paths[digest])
        raise NotFound(f"{self.origin}: blob {digest} is not in the archive")


@contextlib.contextmanager
def open_source(name: str) -> Iterator[ArchiveSource]:
    """Open an archive by path (directory, file, compressed or not, ``-`` for stdin)."""
    with open_tree(name) as tree:
        yield ArchiveSource(tree)
