"""``archiver df ARCHIVE``: what the images of an archive take, as ``docker system df``."""

from __future__ import annotations

from typing import Any

import click

from archiver.cli import common, output
from archiver.cli.ls import rows as image_rows
from archiver.engine.image_store import ImageStore, Usage
from archiver.engine.rewrite import stored_blobs
from archiver.places.archive import ArchiveSource

SUMMARY_TABLE = "table {{.Type}}\t{{.TotalCount}}\t{{.Active}}\t{{.Size}}\t{{.Reclaimable}}"
SUMMARY_HEADERS = {"TotalCount": "TOTAL"}
IMAGES_TABLE = (
    "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}"
    "\t{{.SharedSize}}\t{{.UniqueSize}}"
)
_SIZE_HEADERS = {"SharedSize": "SHARED SIZE", "UniqueSize": "UNIQUE SIZE"}
LAYERS_TABLE = "table {{.Digest}}\t{{.Size}}\t{{.Images}}"


def _percent_of(part: int, whole: int) -> str:
    size = output.human_size(part)
    return f"{size} ({part * 100 // whole}%)" if whole > 0 else size


def summary_row(usage: Usage) -> dict[str, Any]:
    return {
        "Type": "Images",
        "TotalCount": str(len(usage.images)),
        "Active": str(usage.active),
        "Size": output.human_size(usage.size),
        "Reclaimable": _percent_of(usage.reclaimable, usage.size),
    }


def to_json(usage: Usage) -> dict[str, Any]:
    return {
        "images": [
            {
                "id": str(u.record.id),
                "names": [r.familiar() for r in u.record.entry.refs] + list(u.record.entry.tags),
                "size": u.record.size,
                "shared_size": u.shared,
                "unique_size": u.unique,
            }
            for u in usage.images
        ],
        "layers": [
            {"digest": str(layer.digest), "size": layer.size, "images": layer.images}
            for layer in usage.layers
        ],
        "extras": {"count": usage.extras, "size": usage.extras_size},
        "total_count": len(usage.images),
        "active": usage.active,
        "size": usage.size,
        "reclaimable": usage.reclaimable,
    }


@click.command("df")
@click.argument("archive")
@click.option("-v", "--verbose", is_flag=True, help="Per image and per layer.")
@click.option("--format", "template", help="Go template for the summary, as docker system df.")
@click.option("--json", "as_json", is_flag=True, help="Everything, as JSON.")
def command(archive: str, verbose: bool, template: str | None, as_json: bool) -> None:
    """Show the space ARCHIVE's images take: total, shared, and what `prune` would free.

    ACTIVE counts tagged images (what `prune -a` keeps); RECLAIMABLE is what `prune`
    would free: dangling images' own blobs and blobs nothing references."""
    with common.opened(archive) as (source, _ref):
        store = ImageStore(source)
        referenced = store.blob_sizes()
        held = stored_blobs(source.tree) if isinstance(source, ArchiveSource) else {}
        stray = sum(size for digest, size in held.items() if digest not in referenced)
        usage = store.usage(stray)
    if as_json:
        click.echo(output.to_json(to_json(usage)))
        return
    if not verbose:
        click.echo(
            output.render_rows(template, SUMMARY_TABLE, [summary_row(usage)], SUMMARY_HEADERS)
        )
        return
    click.echo("Images space usage:\n")
    listed = []
    for u in usage.images:
        row = image_rows([u.record])[0]  # one row per image: its first name, as docker
        row.update(
            SharedSize=output.human_size(u.shared),
            UniqueSize=output.human_size(u.unique),
        )
        listed.append(row)
    click.echo(output.render_rows(None, IMAGES_TABLE, listed, _SIZE_HEADERS))
    click.echo("\nLayers space usage:\n")
    layers = [
        {
            "Digest": str(layer.digest),
            "Size": output.human_size(layer.size),
            "Images": str(layer.images),
        }
        for layer in usage.layers
    ]
    click.echo(output.render_rows(None, LAYERS_TABLE, layers, {"Digest": "LAYER"}))
    if usage.extras:
        click.echo(
            f"\nSignatures, attestations, SBOMs and referrers: {usage.extras}, "
            f"{output.human_size(usage.extras_size)} of their own"
        )
