"""Running a transfer from the command line: a request from the verb's options, the
engine's ``transfer``, and the result rendered (a summary line, ``--json``, the daemon's
``Loaded image`` lines, a summary per image with ``--keep-going``)."""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable
from typing import Any

import click

from archiver.cli import common, output
from archiver.cli.transfer_options import Selection
from archiver.engine.copy import Progress
from archiver.engine.transfer import TransferRequest, TransferResult, transfer
from archiver.errors import ArchiverError
from archiver.model.platform import Platform
from archiver.places.transports import CONTAINERD, DAEMON, REGISTRY, Place


def platforms_of(selection: Selection) -> list[Platform] | None:
    return common.parse_platforms(selection.platforms) or None


def request(
    inputs: list[Place], target: Place, fmt: str, selection: Selection, **options: Any
) -> TransferRequest:
    """A request for the images and platforms ``selection`` names."""
    return TransferRequest(
        inputs,
        target,
        fmt,
        images=selection.images,
        platforms=platforms_of(selection),
        **options,
    )


class _Reporter:
    """Bars on stderr (on a terminal, unless quiet), lines on stdout."""

    def __init__(self, quiet: bool, as_json: bool) -> None:
        self._quiet = quiet
        self._as_json = as_json
        self._lock = threading.Lock()

    def progress(self, kind: str) -> contextlib.AbstractContextManager[Progress]:
        return common.progress(kind, self._quiet)

    def daemon_messages(
        self,
    ) -> contextlib.AbstractContextManager[Callable[[dict[str, Any]], None] | None]:
        return common.daemon_progress(self._quiet)

    def blob_watch(self) -> common.BlobBars:
        return common.BlobBars(self._quiet)

    def event(self, line: str) -> None:
        if not self._quiet:
            with self._lock:
                click.echo(line)

    def notice(self, line: str) -> None:
        click.echo(line, err=True)

    def loaded(self, lines: list[str]) -> None:
        if not self._as_json:
            click.echo("\n".join(lines))


def run(request: TransferRequest, selection: Selection) -> None:
    """Run ``request`` and print what came of it; a failing exit when not all was done."""
    to_stdout = request.target.path == "-" and request.fmt not in (DAEMON, REGISTRY, CONTAINERD)
    quiet = selection.quiet or selection.as_json or to_stdout
    registries = common.registries() if _reaches_registry(request) else None
    result = transfer(request, _Reporter(quiet, selection.as_json), registries)
    if result.per_image is not None:
        _render_per_image(result.per_image, selection)
    elif result.pushed is not None:
        _render_push(result.pushed, selection)
    else:
        _render_copy(request, result, selection, to_stdout)
    if result.skipped_inputs:  # --keep-going: the output holds what could be read
        raise ArchiverError(
            f"{len(result.skipped_inputs)} of {len(request.inputs)} inputs left out "
            f"(the output holds the rest)"
        )


def _reaches_registry(request: TransferRequest) -> bool:
    places = [*request.inputs, request.target, *([request.base] if request.base else [])]
    return any(place.format == REGISTRY for place in places)


def _render_push(pushed: dict[str, Any], selection: Selection) -> None:
    if selection.as_json:
        click.echo(output.to_json(pushed))
        return
    for line in pushed["left_out"]:
        click.echo(f"Left out {line}", err=True)


def _render_copy(
    request: TransferRequest, result: TransferResult, selection: Selection, to_stdout: bool
) -> None:
    report, fmt, target = result.report, request.fmt, request.target.path
    if selection.as_json:
        click.echo(output.to_json(_summary(request, result)), err=to_stdout)
        return
    for item in result.skipped_inputs:
        click.echo(f"Left out {item['input']}: {item['reason']}", err=True)
    if fmt in (DAEMON, CONTAINERD):
        click.echo("\n".join(result.loaded))
        return
    if selection.quiet or to_stdout:
        return
    written = result.bytes_written
    size = f", {output.human_size(written)} written" if written is not None else ""
    extras = f" (and {report.extras} extras)" if report.extras else ""
    click.echo(
        f"Wrote {report.images} images{extras}, {report.blobs_written} blobs "
        f"({output.human_size(report.bytes_written)} read{size}, "
        f"{output.human_size(report.bytes_deduplicated)} saved by dedup) "
        f"to {target} ({fmt})"
    )
    parts = result.parts
    if parts and request.split is not None and request.split.only_part is not None:
        click.echo(f"Part written again, as the manifest has it: {parts[0]}")
    elif parts:
        click.echo(
            f"In {len(parts)} parts: {', '.join(parts[:2])}{', …' if len(parts) > 2 else ''}"
            f" (checksums in {os.path.basename(target)}.parts.json)"
        )
    if result.base is not None:
        base = result.base
        click.echo(
            f"A delta against {base.origin} ({base.checksum[:19]}): {report.left_to_base} "
            f"layers ({output.human_size(report.bytes_left_to_base)}) left to the base"
        )


def _summary(request: TransferRequest, result: TransferResult) -> dict[str, Any]:
    """What ``--json`` prints of a copy into a file or a daemon."""
    report = result.report
    summary: dict[str, Any] = {
        "images": report.images,
        "extras": report.extras,
        "blobs": report.blobs_written,
        "bytes_read": report.bytes_written,
        "bytes_written": result.bytes_written,
        "bytes_saved_by_dedup": report.bytes_deduplicated,
        "output": (
            str(request.target) if request.fmt == CONTAINERD else request.target.path or DAEMON
        ),
        "format": request.fmt,
        "left_out": result.skipped_inputs,
    }
    if request.fmt in (DAEMON, CONTAINERD):
        summary.update(layers_already_there=report.blobs_skipped, loaded=result.loaded)
    if result.parts:
        summary["parts"] = result.parts
    if result.base is not None:
        summary["left_to_base"] = {
            "base": result.base.checksum,
            "base_origin": result.base.origin,
            "layers": report.left_to_base,
            "bytes": report.bytes_left_to_base,
        }
    return summary


def _render_per_image(results: list[dict[str, Any]], selection: Selection) -> None:
    """``--keep-going`` into a daemon or a registry: a summary per image, and a failing
    exit if any image failed."""
    counts = {k: sum(1 for r in results if r["status"] == k) for k in ("ok", "skipped", "failed")}
    if selection.as_json:
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
