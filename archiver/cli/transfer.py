"""What convert, pack, merge and unpack share: open inputs, pick images, copy, summarise."""

from __future__ import annotations

import contextlib
import functools
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import click

from archiver.blobs.parts import Split, parse_size
from archiver.blobs.seek_table import MAX_FRAME
from archiver.blobs.zstd_writer import DEFAULT_FRAME_SIZE, ZstdOptions, default_threads
from archiver.cli import common, output
from archiver.engine import catalog
from archiver.engine.copy import CopyReport, copy
from archiver.engine.graph import Root
from archiver.engine.verify import verify
from archiver.errors import ArchiverError, InputError
from archiver.model.platform import Platform
from archiver.model.reference import Reference
from archiver.places import inventory
from archiver.places.archive import ArchiveSource
from archiver.places.base import ImageEntry, Source
from archiver.places.inventory import Inventory
from archiver.places.layout_writer import FORMATS, open_sink
from archiver.places.multi import PREFER, MultiSource, WithBase
from archiver.places.oci_layout import DELTA_BASE, DELTA_BASE_ORIGIN
from archiver.places.registry import DEFAULT_JOBS
from archiver.places.transports import DAEMON, REGISTRY, Place, parse_place


@dataclass(frozen=True)
class Selection:
    """What every transferring command takes: which images, which platforms, how loud."""

    images: tuple[str, ...] = ()
    platforms: tuple[str, ...] = ()
    quiet: bool = False
    as_json: bool = False


@dataclass(frozen=True)
class PushOptions:
    """Where a push sends images (see ``places.registry.push.destinations``)."""

    to: str | None = None
    tag: str | None = None
    jobs: int = DEFAULT_JOBS
    insecure: tuple[str, ...] = ()


@dataclass
class Request:
    inputs: list[str]
    target: str
    fmt: str | None
    selection: Selection
    zstd: ZstdOptions | None = None
    prefer: str = "error"
    keep_going: bool = False
    retag: str | None = None
    left_out: list[dict[str, str]] = field(default_factory=list)
    push: PushOptions | None = None
    base: str | None = None
    """An inventory or an earlier archive: write a delta that leaves out what it holds;
    with ``complete``, an archive that supplies what the input (a delta) left out."""
    complete: bool = False
    split: Split | None = None


def _grouped(
    func: Callable[..., Any], name: str, build: Callable[..., Any], options: list[Any]
) -> Callable[..., Any]:
    """Add ``options`` to a click command and hand them to it as one value, ``name``."""
    keys = [option(lambda: None).__click_params__[0].name for option in options]

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        kwargs[name] = build(**{key: kwargs.pop(key) for key in keys})
        return func(*args, **kwargs)

    for option in reversed(options):
        wrapper = option(wrapper)
    return wrapper


def zstd_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """--level, --threads, --long, --frame-size, given to the command as ``zstd``."""
    return _grouped(
        func,
        "zstd",
        _zstd,
        [
            click.option(
                "--level",
                type=click.IntRange(1, 22),
                default=3,
                show_default=True,
                help="zstd compression level.",
            ),
            click.option(
                "--threads",
                type=click.IntRange(0, 256),
                default=default_threads(),
                show_default="CPU count",
                help="zstd frames compressed in parallel (0 or 1: inline).",
            ),
            click.option(
                "--long",
                "long_window",
                is_flag=True,
                help="zstd long-distance matching (128 MiB window).",
            ),
            click.option(
                "--frame-size",
                type=click.IntRange(64 * 1024, MAX_FRAME),
                default=DEFAULT_FRAME_SIZE,
                show_default=True,
                help="Decompressed bytes per zstd frame at most.",
            ),
        ],
    )


def _zstd(level: int, threads: int, long_window: bool, frame_size: int) -> ZstdOptions:
    return ZstdOptions(level=level, threads=threads, frame_size=frame_size, long_window=long_window)


def split_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """--split-size and --only-part, given to the command as ``split``."""
    return _grouped(
        func,
        "split",
        _split,
        [
            click.option(
                "--split-size",
                metavar="SIZE|fat32",
                help="Write the bundle in parts of SIZE (4G, 700M; fat32: 4 GiB - 1) with "
                "a NAME.parts.json of their checksums.",
            ),
            click.option(
                "--only-part",
                type=click.IntRange(1),
                metavar="N",
                help="With --split-size: write part N again alone (checked against the "
                "manifest before it replaces anything).",
            ),
        ],
    )


def _split(split_size: str | None, only_part: int | None) -> Split | None:
    if split_size is None:
        if only_part is not None:
            raise InputError("--only-part goes with --split-size")
        return None
    return Split(parse_size(split_size), only_part)


def selection_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """--image, --platform, -q, --json, given to the command as ``selection``."""
    return _grouped(
        func,
        "selection",
        Selection,
        [
            click.option(
                "--image",
                "images",
                multiple=True,
                metavar="REF",
                help="Only these images (repeatable).",
            ),
            click.option(
                "--platform",
                "platforms",
                multiple=True,
                metavar="OS/ARCH[/VARIANT]",
                help="Only these platforms of multi-platform images (default: all).",
            ),
            click.option("-q", "--quiet", is_flag=True, help="No progress, no summary."),
            click.option("--json", "as_json", is_flag=True, help="A JSON summary."),
        ],
    )


def _open_inputs(request: Request, stack: contextlib.ExitStack) -> list[tuple[Source, str | None]]:
    opened: list[tuple[Source, str | None]] = []
    for name in request.inputs:
        try:
            source, ref = stack.enter_context(common.opened(name, request.zstd))
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
            request.left_out.append({"input": name, "reason": str(exc)})
            continue
        opened.append((source, ref))
    if not opened:
        raise ArchiverError(
            "no readable input: " + "; ".join(i["reason"] for i in request.left_out)
        )
    return opened


def _select(
    request: Request, opened: list[tuple[Source, str | None]]
) -> tuple[Source, list[ImageEntry]]:
    source: Source = (
        opened[0][0] if len(opened) == 1 else MultiSource([s for s, _ in opened], request.prefer)
    )
    names = list(request.selection.images) + [ref for _, ref in opened if ref]
    entries = source.images()
    if names:
        records = catalog.records(source)
        entries = [r.entry for r in common.select(records, names, source.origin)]
    if request.retag:
        if len(entries) != 1:
            raise InputError(f"--tag needs exactly one image, {len(entries)} are selected")
        chosen = entries[0]
        new_name = (Reference.parse(request.retag),)
        entries = [ImageEntry(chosen.descriptor, new_name, synthetic=chosen.synthetic)]
    return source, entries


def transfer(request: Request) -> None:
    """Copy the selected images of every input into one target, then print a summary."""
    target = parse_place(request.target) if request.target else Place("", None, REGISTRY)
    fmt = request.fmt or target.format or "docker"
    wanted = [
        p for p in (common.parse_platform(p) for p in request.selection.platforms) if p
    ] or None
    quiet = request.selection.quiet or request.selection.as_json or target.path == "-"
    loaded: list[str] = []
    parts: list[str] = []
    with contextlib.ExitStack() as stack:
        if request.push is not None:
            from archiver.places.registry.client import allow_insecure

            allow_insecure(request.push.insecure)
        source, entries = _select(request, _open_inputs(request, stack))
        leave_out: Callable[[list[Root]], dict[str, int]] | None = None
        annotations: dict[str, str] | None = None
        base: Inventory | None = None
        if request.base is not None and request.complete:
            base_source, _ = stack.enter_context(common.opened(request.base))
            source = WithBase(source, base_source)
        elif request.base is not None:
            if fmt in (DAEMON, REGISTRY):
                raise InputError(
                    "--base writes a delta archive; a daemon or a registry is sent only "
                    "what it lacks anyway"
                )
            base = _load_base(request.base, stack)
            leave_out = base.leaves_out
            annotations = {DELTA_BASE: base.checksum, DELTA_BASE_ORIGIN: base.origin}
        if fmt == REGISTRY:

            def push(chosen: list[ImageEntry]) -> dict[str, Any]:
                return _push(request, source, chosen, wanted, target.path or None, quiet)

            if request.keep_going:
                _each_image(request, entries, push)
                return
            pushed = push(entries)
            pushed["left_out"] += [f"{i['input']}: {i['reason']}" for i in request.left_out]
            if request.selection.as_json:
                click.echo(output.to_json(pushed))
            for line in [] if request.selection.as_json else pushed["left_out"]:
                click.echo(f"Left out {line}", err=True)
            return
        if fmt == DAEMON and request.keep_going:

            def load(chosen: list[ImageEntry]) -> dict[str, Any]:
                _, lines = _load(source, chosen, wanted, quiet)
                if not request.selection.as_json:
                    click.echo("\n".join(lines))
                return {"loaded": lines}

            _each_image(request, entries, load)
            return
        if fmt == DAEMON:
            report, loaded = _load(source, entries, wanted, quiet)
        else:
            with common.progress(fmt, quiet) as bar:
                sink = open_sink(
                    target.path, fmt, request.zstd, annotations=annotations, split=request.split
                )
                report = copy(source, sink, entries, wanted, progress=bar, leave_out=leave_out)
                parts = list(getattr(sink, "parts", []))
    on_disk = fmt not in ("oci-dir", DAEMON) and target.path != "-"
    folder = os.path.dirname(target.path)
    if parts:
        written: int | None = sum(os.path.getsize(os.path.join(folder, p)) for p in parts)
    else:
        written = os.path.getsize(target.path) if on_disk and not request.split else None
    summary: dict[str, Any] = {
        "images": report.images,
        "blobs": report.blobs_written,
        "bytes_read": report.bytes_written,
        "bytes_written": written,
        "bytes_saved_by_dedup": report.bytes_deduplicated,
        "output": target.path or DAEMON,
        "format": fmt,
        "left_out": request.left_out,
    }
    if fmt == DAEMON:
        summary.update(layers_already_there=report.blobs_skipped, loaded=loaded)
    if parts:
        summary["parts"] = parts
    if base is not None:
        summary["left_to_base"] = {
            "base": base.checksum,
            "base_origin": base.origin,
            "layers": report.left_out,
            "bytes": report.bytes_left_out,
        }
    if request.selection.as_json:
        click.echo(output.to_json(summary), err=target.path == "-")
        _fail_if_left_out(request)
        return
    for item in request.left_out:
        click.echo(f"Left out {item['input']}: {item['reason']}", err=True)
    if fmt == DAEMON:
        click.echo("\n".join(loaded))
    elif not request.selection.quiet and target.path != "-":
        size = f", {output.human_size(written)} written" if written is not None else ""
        click.echo(
            f"Wrote {report.images} images, {report.blobs_written} blobs "
            f"({output.human_size(report.bytes_written)} read{size}, "
            f"{output.human_size(report.bytes_deduplicated)} saved by dedup) "
            f"to {target.path} ({fmt})"
        )
        if parts and request.split is not None and request.split.only_part is not None:
            click.echo(f"Part written again, as the manifest has it: {parts[0]}")
        elif parts:
            click.echo(
                f"In {len(parts)} parts: {', '.join(parts[:2])}{', …' if len(parts) > 2 else ''}"
                f" (checksums in {os.path.basename(target.path)}.parts.json)"
            )
        if base is not None:
            click.echo(
                f"A delta against {base.origin} ({base.checksum[:19]}): {report.left_out} "
                f"layers ({output.human_size(report.bytes_left_out)}) left to the base"
            )
    _fail_if_left_out(request)


def _fail_if_left_out(request: Request) -> None:
    """With --keep-going, the output holds what could be read; the exit says not all."""
    if request.left_out:
        raise ArchiverError(
            f"{len(request.left_out)} of {len(request.inputs)} inputs left out "
            f"(the output holds the rest)"
        )


def _load_base(name: str, stack: contextlib.ExitStack) -> Inventory:
    """An inventory file, or an archive or bundle inventoried on the fly."""
    if inventory.is_inventory_file(name):
        return inventory.read(name)
    base_source, _ = stack.enter_context(common.opened(name))
    return inventory.of_source(base_source)


def keep_going_option(func: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--keep-going",
        is_flag=True,
        help="Go on past an image that fails; end with a summary per image.",
    )(func)


def base_option(complete: bool) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """``--base``: a delta against it (``complete=False``), or what completes a delta."""
    text = (
        "An archive or bundle holding what the input (a delta) left out: write it whole."
        if complete
        else "An inventory (archiver inventory) or an earlier archive/bundle: write only "
        "what it lacks (a delta)."
    )
    return click.option("--base", "base", metavar="INVENTORY|ARCHIVE", help=text)


def writer_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """What every command that writes an archive from other places takes: --base (a
    delta), the selection, zstd and split options (as ``base``, ``selection``, ``zstd``
    and ``split``)."""
    for option in (split_options, zstd_options, selection_options, base_option(False)):
        func = option(func)
    return func


def _push(
    request: Request,
    source: Source,
    entries: list[ImageEntry],
    wanted: list[Platform] | None,
    reference: str | None,
    quiet: bool,
) -> dict[str, Any]:
    """Into a registry: ``push`` (its options), or ``copy ... docker://REF``."""
    from archiver.places.registry.push import push_images

    options = request.push or PushOptions(tag=reference)
    lock = threading.Lock()

    def show(line: str) -> None:
        if not quiet:
            with lock:
                click.echo(line)

    return push_images(
        source,
        entries,
        options.to,
        options.tag,
        wanted,
        options.jobs,
        show,
        lambda: common.progress("push", quiet),
        common.BlobBars(quiet),
    )


def _each_image(
    request: Request, entries: list[ImageEntry], action: Callable[[list[ImageEntry]], Any]
) -> None:
    """``--keep-going``: one image at a time, past failures; then a summary per image, and
    a failing exit if any image failed."""
    results: list[dict[str, Any]] = [
        {"image": item["input"], "status": "skipped", "reason": item["reason"]}
        for item in request.left_out
    ]
    for entry in entries:
        try:
            detail = action([entry])
        except ArchiverError as exc:
            results.append({"image": entry.label, "status": "failed", "reason": str(exc)})
            continue
        results.append({"image": entry.label, "status": "ok", "detail": detail})
    counts = {k: sum(1 for r in results if r["status"] == k) for k in ("ok", "skipped", "failed")}
    if request.selection.as_json:
        click.echo(output.to_json({**counts, "images": results}))
    else:
        click.echo(
            f"Summary: {counts['ok']} ok, {counts['skipped']} skipped, {counts['failed']} failed"
        )
        for result in results:
            reason = f": {result['reason']}" if result.get("reason") else ""
            click.echo(f"  {result['status']:8}{result['image']}{reason}")
    if counts["failed"] or counts["skipped"]:
        raise ArchiverError(
            f"{counts['failed']} failed and {counts['skipped']} skipped of {len(results)} images"
        )


def _load(
    source: Source, entries: list[ImageEntry], wanted: list[Platform] | None, quiet: bool
) -> tuple[CopyReport, list[str]]:
    """Into the daemon, leaving out the layers it holds."""
    from archiver.places.daemon.client import DaemonClient  # http.client: daemon verbs only
    from archiver.places.daemon.place import load_images

    with common.progress("send", quiet) as bar, common.daemon_progress(quiet) as shown:
        return load_images(
            DaemonClient(),
            source,
            entries,
            wanted,
            progress=bar,
            on_message=shown,
            notice=lambda line: click.echo(line, err=True),
        )


__all__ = [
    "FORMATS",
    "PREFER",
    "PushOptions",
    "Request",
    "Selection",
    "base_option",
    "keep_going_option",
    "selection_options",
    "split_options",
    "transfer",
    "writer_options",
    "zstd_options",
]
