"""One transfer as every moving verb asks for it (convert, copy, pack, merge, unpack, load,
save, pull, push): open the inputs, pick the images, write them to one target, and say
what happened in a ``TransferResult``. Nothing here prints: a ``Reporter`` (the CLI's) is
told as things happen, and renders the result at the end."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from archiver.blobs.parts import Split
from archiver.blobs.zstd_writer import ZstdOptions
from archiver.engine import catalog, extras, inventory
from archiver.engine.copy import CopyReport, Progress, copy
from archiver.engine.graph import resolve
from archiver.engine.inventory import Inventory
from archiver.engine.merge import MultiSource, WithBase
from archiver.engine.opening import open_place
from archiver.engine.verify import verify
from archiver.errors import ArchiverError, InputError
from archiver.model.extras import ExtrasFilter
from archiver.model.image import ImageEntry
from archiver.model.per_image import PerImage
from archiver.model.platform import Platform
from archiver.model.reference import Reference
from archiver.places.archive import ArchiveSource
from archiver.places.base import Source
from archiver.places.layout_writer import open_sink
from archiver.places.oci_layout import DELTA_BASE, DELTA_BASE_ORIGIN
from archiver.places.registry import DEFAULT_JOBS
from archiver.places.transports import CONTAINERD, DAEMON, REGISTRY, Place

if TYPE_CHECKING:
    from archiver.places.registry.registries import Registries


@dataclass(frozen=True)
class PushOptions:
    """Where a push sends images (see ``engine.push.destinations``)."""

    to: str | None = None
    tag: str | None = None
    jobs: int = DEFAULT_JOBS
    compress: str = "gzip"
    """How plain layers are compressed on the way: "gzip", "zstd" or "none"."""


@dataclass
class TransferRequest:
    inputs: list[Place]
    target: Place
    fmt: str
    """"bundle", "docker", "oci", "oci-dir", DAEMON, REGISTRY or CONTAINERD."""
    images: tuple[str, ...] = ()
    platforms: list[Platform] | None = None
    zstd: ZstdOptions | None = None
    prefer: str = "error"
    keep_going: bool = False
    retag: str | None = None
    push: PushOptions | None = None
    base: Place | None = None
    """An inventory or an earlier archive: write a delta that leaves out what it holds;
    with ``complete``, an archive that supplies what the input (a delta) left out."""
    complete: bool = False
    split: Split | None = None
    extras: ExtrasFilter = field(default_factory=ExtrasFilter)
    """Signatures, attestations, SBOMs and referrers taken with images from a registry."""
    reuse_frames: bool = False
    """Bundles among the inputs hand their layers' frames to a bundle target unread (sync
    writes its earlier output anew)."""
    per_image: PerImage = field(default_factory=PerImage)
    """Platforms, extras and names of single images (sync's list items)."""

    def platforms_of(self, entry: ImageEntry) -> list[Platform] | None:
        return self.per_image.platforms_of(entry, self.platforms)


@dataclass
class TransferResult:
    report: CopyReport = field(default_factory=CopyReport)
    skipped_inputs: list[dict[str, str]] = field(default_factory=list)
    """Inputs left out with --keep-going: ``input`` and ``reason``."""
    loaded: list[str] = field(default_factory=list)
    """The daemon's ``Loaded image`` lines."""
    parts: list[str] = field(default_factory=list)
    bytes_written: int | None = None
    """The output's size on disk (None: not a file)."""
    base: Inventory | None = None
    """The base a delta was written against."""
    pushed: dict[str, Any] | None = None
    """A push's summary (repositories, blobs pushed, mounted, skipped...)."""
    per_image: list[dict[str, Any]] | None = None
    """With --keep-going into a daemon or a registry: each image's ``status`` and ``reason``."""


class Reporter(Protocol):
    """What a transfer tells as it goes (the CLI draws bars and prints lines)."""

    def progress(self, kind: str) -> contextlib.AbstractContextManager[Progress]: ...

    def daemon_messages(
        self,
    ) -> contextlib.AbstractContextManager[Callable[[dict[str, Any]], None] | None]: ...

    def blob_watch(self) -> Any:
        """Per-blob progress of parallel uploads (``places.registry.place.Watch``), or None."""
        ...

    def event(self, line: str) -> None:
        """A line about one blob or image as it happens (a push's ``Layer already exists``)."""
        ...

    def notice(self, line: str) -> None:
        """A note beside the output (a daemon that refused a partial archive)."""
        ...

    def loaded(self, lines: list[str]) -> None:
        """A daemon's report lines for one image, with --keep-going, as each is loaded."""
        ...


def transfer(
    request: TransferRequest, reporter: Reporter, registries: Registries | None = None
) -> TransferResult:
    """Copy the selected images of every input into one target; registries are reached
    through ``registries`` (the command's)."""
    result = TransferResult()
    fmt = request.fmt
    with contextlib.ExitStack() as stack:
        source, entries = _select(request, _open_inputs(request, result, stack, registries))
        entries = _extras_for(request, source, entries, reporter)
        base: Inventory | None = None
        if request.base is not None and request.complete:
            source = WithBase(source, stack.enter_context(open_place(request.base)))
        elif request.base is not None:
            if fmt in (DAEMON, REGISTRY, CONTAINERD):
                raise InputError(
                    "--base writes a delta archive; a daemon or a registry is sent only "
                    "what it lacks anyway"
                )
            base = _read_base(request.base, stack)
            result.base = base
        if fmt == REGISTRY:
            _to_registry(request, source, entries, reporter, result, registries)
        elif fmt == DAEMON:
            _to_daemon(request, source, entries, reporter, result)
        elif fmt == CONTAINERD:
            from archiver.engine.load import load_into_containerd  # grpc: containerd only

            with reporter.progress("send") as bar:
                result.report, result.loaded = load_into_containerd(
                    request.target, source, entries, request.platforms, bar
                )
        else:
            annotations = (
                {DELTA_BASE: base.checksum, DELTA_BASE_ORIGIN: base.origin} if base else None
            )
            target = request.target.path
            roots = [resolve(source, e, request.platforms_of(e)) for e in entries]
            with reporter.progress(fmt) as bar:
                sink = open_sink(
                    target, fmt, request.zstd, annotations=annotations, split=request.split
                )
                result.report = copy(
                    source,
                    sink,
                    entries,
                    request.platforms,
                    progress=bar,
                    leave_out=base.holdings if base else None,
                    roots=roots,
                )
                result.parts = list(sink.parts)
            result.bytes_written = _size_on_disk(target, fmt, result.parts, request.split)
    return result


def _size_on_disk(target: str, fmt: str, parts: list[str], split: Split | None) -> int | None:
    if parts:
        folder = os.path.dirname(target)
        return sum(os.path.getsize(os.path.join(folder, p)) for p in parts)
    if fmt == "oci-dir" or target == "-" or split is not None:
        return None
    return os.path.getsize(target)


def _open_inputs(
    request: TransferRequest,
    result: TransferResult,
    stack: contextlib.ExitStack,
    registries: Registries | None,
) -> list[tuple[Source, str | None]]:
    opened: list[tuple[Source, str | None]] = []
    for place in request.inputs:
        try:
            source = stack.enter_context(
                open_place(place, request.zstd, registries, request.reuse_frames)
            )
            if place.format == REGISTRY and request.extras.enabled:
                from archiver.engine.extras_registry import with_extras  # httpx

                with_extras(source, request.platforms, request.extras, request.per_image)
            # a bad input is left out of a file written from many; a daemon or a registry
            # gets image by image instead (see _each_image)
            per_image = request.fmt in (DAEMON, REGISTRY)
            if request.keep_going and not per_image and isinstance(source, ArchiveSource):
                report = verify(source)  # find a bad input before anything is written
                if not report.ok:
                    raise ArchiverError(report.problems[0])
        except ArchiverError as exc:
            if not request.keep_going:
                raise
            result.skipped_inputs.append({"input": str(place), "reason": str(exc)})
            continue
        opened.append((source, place.ref))
    if not opened:
        raise ArchiverError(
            "no readable input: " + "; ".join(i["reason"] for i in result.skipped_inputs)
        )
    return opened


def _select(
    request: TransferRequest, opened: list[tuple[Source, str | None]]
) -> tuple[Source, list[ImageEntry]]:
    source: Source = (
        opened[0][0] if len(opened) == 1 else MultiSource([s for s, _ in opened], request.prefer)
    )
    names = list(request.images) + [ref for _, ref in opened if ref]
    entries = source.images()
    if names:
        records = catalog.records(source)
        entries = [r.entry for r in catalog.select(records, names, source.origin)]
    entries = [request.per_image.renamed(entry) for entry in entries]
    if request.retag:
        if len(entries) != 1:
            raise InputError(f"--tag needs exactly one image, {len(entries)} are selected")
        chosen = entries[0]
        new_name = (Reference.parse(request.retag),)
        entries = [ImageEntry(chosen.descriptor, new_name, synthetic=chosen.synthetic)]
    return source, entries


def _extras_for(
    request: TransferRequest, source: Source, entries: list[ImageEntry], reporter: Reporter
) -> list[ImageEntry]:
    """A daemon or containerd takes no extras (a note says so); a push places them beside
    their images itself; a file takes those of the images chosen by name."""
    parted = extras.split(source, platforms=request.platforms)
    if not parted.extras:
        return entries
    kept = {entry.descriptor.digest for entry, _ in parted.extras}
    images = [e for e in entries if e.descriptor.digest not in kept]
    if request.fmt in (DAEMON, CONTAINERD):
        reporter.notice(
            f"{len(parted.extras)} signatures, attestations, SBOMs or referrers are not "
            f"loaded: {'containerd' if request.fmt == CONTAINERD else 'a daemon'} is given "
            f"images only"
        )
        return images
    if request.fmt == REGISTRY:
        return images
    chosen = {entry.descriptor.digest for entry in entries}
    carrying = [e for e in images if request.per_image.takes_extras(e)]
    subjects = [
        d for e in carrying for d in extras.subjects(resolve(source, e, request.platforms_of(e)))
    ]
    added = [e for e, _ in parted.of(subjects) if e.descriptor.digest not in chosen]
    return entries + added


def _read_base(place: Place, stack: contextlib.ExitStack) -> Inventory:
    """An inventory file, or an archive or bundle inventoried on the fly."""
    if place.format is None and inventory.is_inventory_file(place.path):
        return inventory.read(place.path)
    return inventory.of_source(stack.enter_context(open_place(place)))


def _to_registry(
    request: TransferRequest,
    source: Source,
    entries: list[ImageEntry],
    reporter: Reporter,
    result: TransferResult,
    registries: Registries | None,
) -> None:
    """Into a registry: ``push`` (its options), or ``copy ... docker://REF``."""
    from archiver.engine.push import push_images  # httpx: registry verbs only

    reference = ",".join(request.target.names) or None
    options = request.push or PushOptions(tag=reference)

    def push(chosen: list[ImageEntry]) -> dict[str, Any]:
        return push_images(
            source,
            chosen,
            options.to,
            options.tag,
            request.platforms,
            options.jobs,
            reporter.event,
            lambda: reporter.progress("push"),
            reporter.blob_watch(),
            registries,
            options.compress,
        )

    if request.keep_going:
        result.per_image = _each_image(result, entries, push)
        return
    pushed = push(entries)
    pushed["left_out"] += [f"{i['input']}: {i['reason']}" for i in result.skipped_inputs]
    result.pushed = pushed


def _to_daemon(
    request: TransferRequest,
    source: Source,
    entries: list[ImageEntry],
    reporter: Reporter,
    result: TransferResult,
) -> None:
    """Into the daemon, leaving out the layers it holds."""
    from archiver.engine.load import load_images  # http.client: daemon verbs only
    from archiver.places.daemon.client import DaemonClient

    def load(chosen: list[ImageEntry]) -> tuple[CopyReport, list[str]]:
        with reporter.progress("send") as bar, reporter.daemon_messages() as shown:
            return load_images(
                DaemonClient(),
                source,
                chosen,
                request.platforms,
                progress=bar,
                on_message=shown,
                notice=reporter.notice,
            )

    if not request.keep_going:
        result.report, result.loaded = load(entries)
        return

    def each(chosen: list[ImageEntry]) -> dict[str, Any]:
        _, lines = load(chosen)
        reporter.loaded(lines)
        return {"loaded": lines}

    result.per_image = _each_image(result, entries, each)


def _each_image(
    result: TransferResult,
    entries: list[ImageEntry],
    action: Callable[[list[ImageEntry]], Any],
) -> list[dict[str, Any]]:
    """``--keep-going``: one image at a time, past failures."""
    results: list[dict[str, Any]] = [
        {"image": item["input"], "status": "skipped", "reason": item["reason"]}
        for item in result.skipped_inputs
    ]
    for entry in entries:
        try:
            detail = action([entry])
        except ArchiverError as exc:
            results.append({"image": entry.label, "status": "failed", "reason": str(exc)})
            continue
        results.append({"image": entry.label, "status": "ok", "detail": detail})
    return results
