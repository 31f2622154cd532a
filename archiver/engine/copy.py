"""The only code that moves image bytes: ``copy(source, sink, selection)``."""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from archiver.blobs.verify import VerifyingReader
from archiver.engine.graph import Root, resolve
from archiver.errors import NotFound
from archiver.model import media
from archiver.model.descriptor import Descriptor
from archiver.model.platform import Platform
from archiver.places.base import ImageEntry, Sink, Source

Progress = Callable[[Descriptor, int], None]
"""Called after each blob with its descriptor and the bytes moved."""


@dataclass
class CopyReport:
    images: int = 0
    blobs_written: int = 0
    blobs_skipped: int = 0
    bytes_written: int = 0
    foreign_skipped: int = 0


def copy(
    source: Source,
    sink: Sink,
    entries: Sequence[ImageEntry],
    platforms: list[Platform] | None = None,
    progress: Progress | None = None,
) -> CopyReport:
    """Copy ``entries`` of ``source`` into ``sink``; commit on success, abort on any error.

    Every blob is verified against its digest and size while it streams; blobs the sink
    already has are skipped; a root is recorded only after all of its blobs.
    """
    report = CopyReport()
    try:
        roots = [resolve(source, entry, platforms) for entry in entries]
        for root in roots:
            _copy_root(source, sink, root, report, progress)
        sink.commit()
    except BaseException:
        sink.abort()
        raise
    return report


def _copy_root(
    source: Source, sink: Sink, root: Root, report: CopyReport, progress: Progress | None
) -> None:
    for descriptor, data in root.blobs():
        if sink.has(descriptor):
            report.blobs_skipped += 1
            continue
        if data is not None:
            stream = io.BytesIO(data)
        elif source.has_blob(descriptor.digest):
            stream = source.open_blob(descriptor.digest)  # type: ignore[assignment]
        elif media.is_foreign(descriptor.media_type):
            report.foreign_skipped += 1
            continue
        else:
            raise NotFound(
                f"{source.origin}: blob {descriptor.digest} ({descriptor.media_type}) is "
                f"named by a manifest but missing from the archive"
            )
        with VerifyingReader(stream, descriptor.digest, descriptor.size, source.origin) as reader:
            sink.put_blob(descriptor, reader)  # type: ignore[arg-type]
        report.blobs_written += 1
        report.bytes_written += descriptor.size
        if progress is not None:
            progress(descriptor, descriptor.size)
    sink.put_root(root)
    report.images += 1
