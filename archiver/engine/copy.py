"""The only code that moves image bytes: ``copy(source, sink, selection)``."""

from __future__ import annotations

import io
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, fields
from typing import BinaryIO, Protocol, TypeVar

from archiver.blobs.verify import VerifyingReader, drain
from archiver.engine.extras import extra_of_root
from archiver.engine.graph import resolve
from archiver.errors import IntegrityError, NotFound
from archiver.model import media
from archiver.model.descriptor import Descriptor
from archiver.model.digest import Digest
from archiver.model.holdings import Holdings
from archiver.model.image import ImageEntry, ResolvedImage, write_order
from archiver.model.platform import Platform
from archiver.places.base import InFrames, Precompressed, Sink, Source

T = TypeVar("T")
R = TypeVar("R")


class Progress(Protocol):
    """What a copy reports as it goes (the CLI draws progress bars from it)."""

    def planned(self, images: int, blobs: int, size: int) -> None:
        """Before the first blob: how much is to be moved."""

    def advanced(self, size: int) -> None:
        """As bytes of a blob flow."""

    def moved(self, descriptor: Descriptor) -> None:
        """After each blob."""


@dataclass
class CopyReport:
    images: int = 0
    extras: int = 0
    """Signatures, attestations, SBOMs and referrers written beside the images."""
    blobs_written: int = 0
    blobs_skipped: int = 0
    bytes_written: int = 0
    bytes_referenced: int = 0
    """Bytes of every blob of every image, counted once per image that uses it."""
    foreign_skipped: int = 0
    left_to_base: int = 0
    """Layers not written because the base the output is a delta against holds them."""
    bytes_left_to_base: int = 0

    @classmethod
    def total(cls, reports: Sequence[CopyReport]) -> CopyReport:
        """The reports of several copies added up, field by field."""
        counts = [asdict(report) for report in reports]
        return cls(**{f.name: sum(c[f.name] for c in counts) for f in fields(cls)})

    @property
    def bytes_deduplicated(self) -> int:
        """What sharing saved: bytes referenced beyond the bytes stored."""
        return max(0, self.bytes_referenced - self.bytes_written - self.bytes_left_to_base)


def plan(images: Sequence[ResolvedImage]) -> list[tuple[Descriptor, bytes | None]]:
    """Every blob once, in the order writers put them (see ``model.image.write_order``)."""
    return write_order(images)


def copy(
    source: Source,
    sink: Sink,
    entries: Sequence[ImageEntry],
    platforms: list[Platform] | None = None,
    progress: Progress | None = None,
    jobs: int = 1,
    leave_out: Holdings | None = None,
    roots: list[ResolvedImage] | None = None,
    verify_reused: bool = False,
) -> CopyReport:
    """Copy ``entries`` of ``source`` into ``sink``; commit on success, abort on any error.

    Documents are read (capped, verified) before anything is written and announced to the
    sink with ``begin``; then every blob streams once, verified against its digest and size
    as it flows; blobs the sink already has are skipped; the sink commits at the end.
    A sink that says it is ``parallel`` (a registry) gets up to ``jobs`` layers at once.
    ``leave_out`` is what a base holds: its layers are not written (a delta). A layer that
    the source lacks (a delta read without its base) and the sink lacks too stops the copy
    before any blob is sent, naming them all. ``roots`` are ``entries`` already resolved
    (by a caller that had to look at them first). Frames of a bundle being rewritten are
    copied unread; with ``verify_reused`` they are read and hashed first.
    """
    report = CopyReport()
    try:
        if roots is None:
            roots = [resolve(source, entry, platforms) for entry in entries]
        report.bytes_referenced = sum(d.size for root in roots for d, _ in root.blobs())
        blobs = plan(roots)
        omitted = leave_out.held_layers(roots) if leave_out is not None else {}
        report.left_to_base = len(omitted)
        report.bytes_left_to_base = sum(omitted.values())
        blobs = [b for b in blobs if b[0].digest not in omitted]
        sink.begin(roots)
        layers = [d for d, data in blobs if data is None]
        # layers the sink already holds are skipped; documents it holds now were written
        # with its head in begin()
        held = _each(sink.has, layers, jobs, sink)
        present = {d.digest for d, there in zip(layers, held, strict=True) if there}
        _check_complete(source, sink, [d for d in layers if d.digest not in present])
        in_place = _in_frames(source, sink, [d for d in layers if d.digest not in present])
        if jobs <= 1 or not sink.parallel:  # read one after the other: decoded ahead
            source.will_read(
                [d.digest for d in layers if d.digest not in present and d.digest not in in_place]
            )
        if progress is not None:
            todo = [d for d, _ in blobs if d.digest not in present]
            progress.planned(len(roots), len(todo), sum(d.size for d in todo))
        report.blobs_skipped = len(present)

        lock = threading.Lock()

        def one(item: tuple[Descriptor, bytes | None]) -> None:
            held = in_place.get(item[0].digest)
            _copy_blob(source, sink, item[0], item[1], report, progress, lock, verify_reused, held)

        _each(one, [b for b in blobs if b[1] is None and b[0].digest not in present], jobs, sink)
        for item in blobs:
            if item[1] is not None:
                one(item)
        report.extras = sum(1 for root in roots if extra_of_root(root) is not None)
        report.images = len(roots) - report.extras
        sink.commit()
    except BaseException:
        sink.abort()
        raise
    return report


def _in_frames(source: Source, sink: Sink, layers: list[Descriptor]) -> dict[Digest, InFrames]:
    """Layers the sink decodes itself from the source's frames (into its file, in parallel)."""
    if not sink.fills_in_place:
        return {}
    found = {}
    for descriptor in layers:
        held = source.in_frames(descriptor.digest) if source.has_blob(descriptor.digest) else None
        if held is not None:
            found[descriptor.digest] = held
    return found


def _check_complete(source: Source, sink: Sink, needed: list[Descriptor]) -> None:
    missing = [
        d for d in needed if not source.has_blob(d.digest) and not media.is_foreign(d.media_type)
    ]
    if not missing:
        return
    names = ", ".join(d.digest.hex[:12] for d in missing[:8])
    more = f" and {len(missing) - 8} more" if len(missing) > 8 else ""
    raise NotFound(
        f"{source.origin}: {len(missing)} layers are neither in it nor at {sink.origin}: "
        f"{names}{more} (a delta needs its base: load or push the base first, or give "
        f"--base)"
    )


def _each(work: Callable[[T], R], items: list[T], jobs: int, sink: Sink) -> list[R]:
    """``work`` on every item, on up to ``jobs`` threads when the sink takes that."""
    if jobs <= 1 or len(items) <= 1 or not sink.parallel:
        return [work(item) for item in items]
    with ThreadPoolExecutor(min(jobs, len(items))) as pool:
        futures = [pool.submit(work, item) for item in items]
        try:
            return [future.result() for future in futures]
        except BaseException:
            for future in futures:
                future.cancel()
            raise


def _copy_blob(
    source: Source,
    sink: Sink,
    descriptor: Descriptor,
    data: bytes | None,
    report: CopyReport,
    progress: Progress | None,
    lock: threading.Lock,
    verify_reused: bool = False,
    held: InFrames | None = None,
) -> None:
    if sink.has(descriptor):  # written with the head in begin()
        pass
    elif data is not None:
        _put(sink, source, descriptor, io.BytesIO(data), progress)
    elif (frames := _precompressed(source, sink, descriptor, verify_reused)) is not None:
        sink.put_frames(descriptor, frames)
        if progress is not None:
            progress.advanced(descriptor.size)
    elif held is not None:  # decoded and verified by the sink, by its commit at the latest
        origin = source.blob_origin(descriptor.digest)
        _check_size(origin, descriptor, held.size)
        sink.put_in_frames(descriptor, held, origin)
        if progress is not None:
            progress.advanced(descriptor.size)
    elif source.has_blob(descriptor.digest):
        _put(sink, source, descriptor, source.open_blob(descriptor.digest), progress)
    elif media.is_foreign(descriptor.media_type):
        with lock:
            report.foreign_skipped += 1
        return
    else:
        raise NotFound(
            f"{source.blob_origin(descriptor.digest)}: blob {descriptor.digest} "
            f"({descriptor.media_type}) is named by a manifest but missing from the archive"
        )
    with lock:
        report.blobs_written += 1
        report.bytes_written += descriptor.size
        if progress is not None:
            progress.moved(descriptor)


def _check_size(origin: str, descriptor: Descriptor, size: int) -> None:
    if size != descriptor.size:
        raise IntegrityError(
            origin, str(descriptor.digest), f"size {size}, the descriptor says {descriptor.size}"
        )


def _precompressed(
    source: Source, sink: Sink, descriptor: Descriptor, verify_reused: bool
) -> Precompressed | None:
    """Frames the sink can take as they are (a bundle fed from a spooled stream, or a bundle
    rewritten in place), after checking the size, and the digest the bytes had when they
    arrived where one was taken."""
    found = source.precompressed(descriptor.digest)
    if found is None or not sink.accepts_frames(found.options):
        return None
    origin = source.blob_origin(descriptor.digest)
    _check_size(origin, descriptor, found.size)
    if found.sha256 is None and verify_reused:  # frames copied unread: read them once
        with _verifying(source.open_blob(descriptor.digest), descriptor, origin, None) as reader:
            drain(reader)
    if found.sha256 is not None and found.sha256 != descriptor.digest.hex:
        raise IntegrityError(
            origin,
            str(descriptor.digest),
            f"digest mismatch: got sha256:{found.sha256}, want {descriptor.digest} "
            f"after {found.size} bytes",
        )
    return found


def _put(
    sink: Sink,
    source: Source,
    descriptor: Descriptor,
    stream: BinaryIO,
    progress: Progress | None,
) -> None:
    origin = source.blob_origin(descriptor.digest)
    on_read = progress.advanced if progress is not None else None
    first = [stream]

    def opener() -> BinaryIO:
        # the first opening is the stream at hand; a sink that must start again (a
        # registry upload cut off) gets the blob opened anew, verified anew
        opened = first.pop() if first else source.open_blob(descriptor.digest)
        return _verifying(opened, descriptor, origin, on_read)  # type: ignore[return-value]

    sink.put_blob_from(descriptor, opener)


def _verifying(
    stream: BinaryIO,
    descriptor: Descriptor,
    origin: str,
    on_read: Callable[[int], None] | None,
) -> VerifyingReader:
    return VerifyingReader(stream, descriptor.digest, descriptor.size, origin, on_read)
