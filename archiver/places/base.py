"""The two faces every place has: a Source of images and blobs, a Sink that accepts them.

A place is an adapter (docker-save tar, OCI layout, later bundles, daemons, registries).
Only the copy engine moves bytes between them; places never copy on their own.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, BinaryIO, Protocol

from archiver.blobs.seek_table import Frame
from archiver.blobs.zstd_writer import ZstdOptions
from archiver.model.descriptor import Descriptor
from archiver.model.digest import Digest
from archiver.model.reference import Reference

if TYPE_CHECKING:
    from archiver.engine.graph import Root


@dataclass(frozen=True)
class ImageEntry:
    """One top-level image a place holds: a manifest or an index, and its names.

    ``refs`` are full references (``docker.io/library/nginx:1.25``); ``tags`` are bare
    OCI layout names (``org.opencontainers.image.ref.name`` = ``v1``) that are not
    references. No refs and no tags: a dangling image. ``synthetic`` marks a manifest we
    made up for a docker-save entry that had none (its digest is not a real one).
    """

    descriptor: Descriptor
    refs: tuple[Reference, ...] = ()
    tags: tuple[str, ...] = ()
    synthetic: bool = False

    @property
    def dangling(self) -> bool:
        return not self.refs and not self.tags

    def merged(self, other: ImageEntry) -> ImageEntry:
        """The same image with both entries' names; a real manifest wins over a synthetic one."""
        refs = self.refs + tuple(r for r in other.refs if r not in self.refs)
        tags = self.tags + tuple(t for t in other.tags if t not in self.tags)
        kept = other if self.synthetic and not other.synthetic else self
        return ImageEntry(kept.descriptor, refs, tags, kept.synthetic)

    @property
    def label(self) -> str:
        """How to name this image in a message: its first name, else its digest."""
        if self.refs:
            return self.refs[0].familiar()
        if self.tags:
            return self.tags[0]
        return str(self.descriptor.digest)


@dataclass(frozen=True)
class Precompressed:
    """A blob already held as independent zstd frames in ``fd``: a bundle writer may copy
    the frames instead of recompressing them.

    Frames spooled from a stream were made with ``options`` and hashed as they arrived
    (``sha256``). Frames of a bundle being rewritten in place have neither (``None``): they
    are handed out only by a source opened to reuse them, and copied unread.
    """

    fd: int
    frames: list[Frame]
    sha256: str | None
    size: int
    options: ZstdOptions | None


class Source(Protocol):
    """A place images are read from."""

    origin: str

    def images(self) -> list[ImageEntry]:
        """Every top-level image, in the place's own order."""
        ...

    def has_blob(self, digest: Digest) -> bool: ...

    def blob_origin(self, digest: Digest) -> str:
        """The file a blob comes from, to name it in errors (several inputs may be merged)."""
        ...

    def open_blob(self, digest: Digest) -> BinaryIO:
        """The raw bytes of a blob (the engine verifies them); NotFound when absent."""
        ...


class Sink(Protocol):
    """A place images are written to; nothing is visible until ``commit``."""

    origin: str

    def begin(self, roots: list[Root]) -> None:
        """Hear every image to be written before any blob (documents are already read)."""
        ...

    def has(self, descriptor: Descriptor) -> bool: ...

    def put_blob(self, descriptor: Descriptor, stream: BinaryIO) -> None:
        """Store a blob; ``stream`` verifies itself and must be read to its end."""
        ...

    def commit(self) -> None: ...

    def abort(self) -> None: ...
