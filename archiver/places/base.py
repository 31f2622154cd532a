"""The two faces every place has: a Source of images and blobs, a Sink that accepts them.

A place is an adapter (a docker-save tar, an OCI layout, a bundle, a daemon, a registry).
Only the copy engine moves bytes between them; places never copy on their own and never
import the engine.

What a place can do beyond the minimum is declared here, as members of the protocols with
a default that says "cannot" (or does the minimum), so the engine asks the type and never
probes an object: a place that can do more subclasses the protocol and overrides them.

    Source.precompressed(digest)   a blob held as independent zstd frames (see Precompressed)
    Source.in_frames(digest)       a blob held as whole zstd frames to decode (see InFrames)
    Source.annotations             the top-level index's annotations (a delta names its base)
    Sink.parallel                  takes puts of several blobs at once (from several threads)
    Sink.put_blob_from(d, opener)  may re-open a blob to start a put again (a registry
                                   upload cut off); by default one put of one opening
    Sink.accepts_frames(options)   takes a Precompressed blob's frames as they are
    Sink.put_frames(d, blob)       ... and is handed them (only when it accepted them)
    Sink.fills_in_place            decodes InFrames blobs itself, in parallel, into its file
    Sink.put_in_frames(d, blob, o) ... and is handed them (verifies them by commit)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, BinaryIO, ClassVar, Protocol

from archiver.blobs import limits
from archiver.blobs.seek_table import Frame
from archiver.blobs.zstd_writer import ZstdOptions
from archiver.model.descriptor import Descriptor
from archiver.model.digest import Digest
from archiver.model.image import ImageEntry, ResolvedImage
from archiver.places.read_once import read_verified

if TYPE_CHECKING:
    from archiver.blobs.frame_fill import Decode

Opener = Callable[[], BinaryIO]
"""Opens a blob's bytes, verified as they are read (the engine makes it)."""


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
    lead: Frame | None = None
    """The frame before the blob's (in a bundle: the padding of the member before, and
    the blob's tar header): a writer whose next bytes are that frame's copies it too."""


@dataclass(frozen=True)
class InFrames:
    """A blob held as whole zstd frames (a bundle's layer), ``size`` bytes once decoded by
    ``decode`` (on any thread): a sink writing a file may decode them itself, in parallel,
    each frame straight to its place."""

    frames: list[Frame]
    decode: Decode
    size: int


class Source(Protocol):
    """A place images are read from."""

    origin: str

    def images(self) -> list[ImageEntry]:
        """Every top-level image, in the place's own order."""
        ...

    def has_blob(self, digest: Digest) -> bool: ...

    def blob_candidates(self) -> frozenset[Digest] | None:
        """Every blob ``has_blob`` may say yes to (more is fine, never fewer), when the
        place knows them without asking anyone; None: ask ``has_blob`` (the default)."""
        return None

    def blob_origin(self, digest: Digest) -> str:
        """The file a blob comes from, to name it in errors (several inputs may be merged)."""
        ...

    def open_blob(self, digest: Digest) -> BinaryIO:
        """The raw bytes of a blob (the engine verifies them); NotFound when absent."""
        ...

    def precompressed(self, digest: Digest) -> Precompressed | None:
        """The blob as zstd frames a bundle writer may copy as they are; None: read it."""
        return None

    def in_frames(self, digest: Digest) -> InFrames | None:
        """The blob as whole zstd frames a sink may decode itself; None: read it."""
        return None

    def will_read(self, digests: list[Digest]) -> None:
        """A hint: these blobs will be opened and read whole, one after the other, in this
        order (a bundle decodes their frames ahead). Nothing by default."""
        return None

    @property
    def annotations(self) -> dict[str, str]:
        """The annotations of the place's top-level index (none by default)."""
        return {}


class Sink(Protocol):
    """A place images are written to; nothing is visible until ``commit``."""

    origin: str
    parallel: ClassVar[bool] = False

    def begin(self, images: list[ResolvedImage]) -> None:
        """Hear every image to be written before any blob (documents are already read)."""
        ...

    def has(self, descriptor: Descriptor) -> bool: ...

    def put_blob(self, descriptor: Descriptor, stream: BinaryIO) -> None:
        """Store a blob; ``stream`` verifies itself and must be read to its end."""
        ...

    def put_blob_from(self, descriptor: Descriptor, opener: Opener) -> None:
        """Store a blob opened by ``opener``; a sink that can start a put again overrides
        this and calls ``opener`` once per try."""
        with opener() as stream:
            self.put_blob(descriptor, stream)

    def accepts_frames(self, options: ZstdOptions | None) -> bool:
        """Takes already compressed frames made with ``options`` as they are."""
        return False

    def put_frames(self, descriptor: Descriptor, blob: Precompressed) -> None:
        """Store a blob as the frames it is held in (only after ``accepts_frames``)."""
        raise TypeError(f"{self.origin}: takes no precompressed frames")

    @property
    def fills_in_place(self) -> bool:
        """Takes blobs as frames to decode (``put_in_frames``)."""
        return False

    def put_in_frames(self, descriptor: Descriptor, blob: InFrames, origin: str) -> None:
        """Store a blob by decoding its frames (only when ``fills_in_place``); its digest
        is checked by ``commit`` at the latest (``origin`` names its file in errors)."""
        raise TypeError(f"{self.origin}: takes no frames to decode")

    def commit(self) -> None: ...

    def abort(self) -> None: ...


def read_document(
    source: Source, descriptor: Descriptor, limit: int = limits.MAX_DOCUMENT
) -> bytes:
    """Read a small blob whole, verified against its descriptor and capped at ``limit``
    (once per command: see ``read_once``)."""
    return read_verified(
        descriptor, lambda: source.open_blob(descriptor.digest), source.origin, limit
    )
