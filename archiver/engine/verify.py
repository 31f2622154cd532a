"""Check a whole source: every document's schema, every blob's digest and size, every diff_id."""

from __future__ import annotations

from dataclasses import dataclass, field

from archiver.blobs import compression, limits
from archiver.blobs.tar_tree import TarTree
from archiver.blobs.verify import VerifyingReader, drain
from archiver.engine.copy import Progress
from archiver.engine.graph import resolve
from archiver.errors import ArchiverError, IntegrityError
from archiver.model import media
from archiver.model.descriptor import Descriptor
from archiver.model.digest import Digest
from archiver.places.archive import ArchiveSource
from archiver.places.base import Source


@dataclass
class VerifyReport:
    images: int = 0
    blobs: int = 0
    bytes: int = 0
    problems: list[str] = field(default_factory=list)
    left_to_base: list[Digest] = field(default_factory=list)
    """Layers a delta leaves to its base (not in it, so not checked)."""

    @property
    def ok(self) -> bool:
        return not self.problems


def verify(source: Source, progress: Progress | None = None, delta: bool = False) -> VerifyReport:
    """Read everything reachable once; collect every problem instead of stopping at the
    first. In a ``delta``, a missing layer is one its base supplies, not a problem. A
    bundle read through its member index has every tar header read and compared with the
    index first: if they disagree, that is the one problem (what the index shows is not
    what a tool reading the tar in order sees)."""
    report = VerifyReport()
    tree = source.tree if isinstance(source, ArchiveSource) else None
    members = tree.member_index_problem() if isinstance(tree, TarTree) else None
    if members is not None:
        report.problems.append(members)
        return report
    checked: set[Digest] = set()
    for entry in source.images():
        try:
            root = resolve(source, entry)
        except ArchiverError as exc:
            report.problems.append(f"{entry.label}: {exc}")
            continue
        report.images += 1
        diff_ids = {
            layer.digest: diff_id
            for node in root.images
            if node.config is not None
            for layer, diff_id in zip(node.manifest.layers, node.config.diff_ids, strict=True)
        }
        for descriptor, data in root.blobs():
            if descriptor.digest in checked:
                continue
            checked.add(descriptor.digest)
            if data is not None:  # a document: verified as it was read
                report.blobs += 1
                report.bytes += descriptor.size
                continue
            if not source.has_blob(descriptor.digest):
                if delta and media.is_layer(descriptor.media_type):
                    report.left_to_base.append(descriptor.digest)
                elif not media.is_foreign(descriptor.media_type):
                    report.problems.append(
                        f"{source.origin}: blob {descriptor.digest}: missing from the archive"
                    )
                continue
            try:
                _verify_blob(source, descriptor, diff_ids.get(descriptor.digest), progress)
            except ArchiverError as exc:
                report.problems.append(str(exc))
                continue
            report.blobs += 1
            report.bytes += descriptor.size
            if progress is not None:
                progress.moved(descriptor)
    return report


def _verify_blob(
    source: Source, descriptor: Descriptor, diff_id: Digest | None, progress: Progress | None
) -> None:
    reader = VerifyingReader(
        source.open_blob(descriptor.digest),
        descriptor.digest,
        descriptor.size,
        source.origin,
        progress.advanced if progress is not None else None,
    )
    kind = media.layer_compression(descriptor.media_type)
    with reader:
        if diff_id is None or kind is None:
            drain(reader)  # an uncompressed layer's digest is its diff_id: checked in resolve
            return
        _check_diff_id(source, descriptor, reader, kind, diff_id)


def _check_diff_id(
    source: Source, descriptor: Descriptor, reader: VerifyingReader, kind: str, diff_id: Digest
) -> None:
    hasher = diff_id.hasher()
    try:
        with compression.open_decompressed(reader, kind, source.origin) as plain:  # type: ignore[arg-type]
            while chunk := plain.read(limits.COPY_CHUNK):
                hasher.update(chunk)
        drain(reader)
    except compression.DECOMPRESSION_ERRORS as exc:
        raise IntegrityError(
            source.origin, str(descriptor.digest), f"cannot decompress {kind} layer ({exc})"
        ) from None
    got = Digest(diff_id.algorithm, hasher.hexdigest())
    if got != diff_id:
        raise IntegrityError(
            source.origin,
            str(descriptor.digest),
            f"uncompressed content {got} does not match the config's diff_id {diff_id}",
        )
