"""``archiver convert INPUT OUTPUT``: any readable archive to any writable format."""

from __future__ import annotations

import click

from archiver.cli import common, output
from archiver.engine import catalog
from archiver.engine.copy import copy
from archiver.places.layout_writer import FORMATS, open_sink
from archiver.places.transports import parse_place


@click.command("convert")
@click.argument("source_name", metavar="INPUT")
@click.argument("target_name", metavar="OUTPUT")
@click.option("--to", "fmt", type=click.Choice(FORMATS), help="Output format (default: docker).")
@click.option(
    "--image", "images", multiple=True, metavar="REF", help="Only these images (repeatable)."
)
@click.option(
    "--platform",
    "platforms",
    multiple=True,
    metavar="OS/ARCH[/VARIANT]",
    help="Only these platforms of multi-platform images (default: all present).",
)
@click.option("-q", "--quiet", is_flag=True, help="No progress, no summary.")
@click.option("--json", "as_json", is_flag=True, help="A JSON summary.")
def command(
    source_name: str,
    target_name: str,
    fmt: str | None,
    images: tuple[str, ...],
    platforms: tuple[str, ...],
    quiet: bool,
    as_json: bool,
) -> None:
    """Convert INPUT (docker-save, hybrid, OCI dir/tar; compressed or not) to OUTPUT.

    Formats: docker (the hybrid docker-save + OCI tar, the default), oci (an OCI layout
    tar, "oci-archive"), oci-dir (an OCI layout directory). Prefixes docker-archive:,
    oci-archive: and oci: choose the format too.
    """
    target = parse_place(target_name)
    fmt = fmt or target.format or "docker"
    wanted = [common.parse_platform(p) for p in platforms]
    with common.opened(source_name) as (source, ref):
        names = list(images) + ([ref] if ref else [])
        entries = source.images()
        if names:
            entries = [
                r.entry for r in common.select(catalog.records(source), names, source.origin)
            ]
        sink = open_sink(target.path, fmt)
        with common.progress(0, "convert", quiet or as_json) as tick:
            report = copy(source, sink, entries, [p for p in wanted if p] or None, progress=tick)
    summary = {
        "images": report.images,
        "blobs": report.blobs_written,
        "bytes": report.bytes_written,
        "output": target.path,
        "format": fmt,
    }
    if as_json:
        click.echo(output.to_json(summary))
    elif not quiet:
        click.echo(
            f"Wrote {report.images} images, {report.blobs_written} blobs "
            f"({output.human_size(report.bytes_written)}) to {target.path} ({fmt})"
        )
