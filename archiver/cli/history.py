"""``archiver history ARCHIVE IMAGE``: the build history of an image, as docker shows it."""

from __future__ import annotations

from typing import Any

import click

from archiver.cli import common, output
from archiver.engine import catalog
from archiver.engine.catalog import ImageRecord

DEFAULT_TABLE = "table {{.ID}}\t{{.CreatedSince}}\t{{.CreatedBy}}\t{{.Size}}\t{{.Comment}}"
HEADERS = {"ID": "IMAGE", "CreatedSince": "CREATED", "CreatedBy": "CREATED BY"}
_TRUNCATE = 45


def history_rows(record: ImageRecord, no_trunc: bool = False) -> list[dict[str, Any]]:
    """Newest first; each non-empty entry gets the size of its layer."""
    layers = list(record.image.manifest.layers)
    entries = record.config.history
    sizes: list[int] = []
    position = 0
    for entry in entries:
        if entry.empty_layer:
            sizes.append(0)
        else:
            sizes.append(layers[position].size if position < len(layers) else 0)
            position += 1
    rows = []
    newest = len(entries) - 1
    for i in range(newest, -1, -1):
        entry = entries[i]
        created_by = entry.created_by.replace("\t", " ")
        if not no_trunc and len(created_by) > _TRUNCATE:
            created_by = created_by[: _TRUNCATE - 1] + "…"
        image_id = "<missing>"
        if i == newest:
            image_id = str(record.id) if no_trunc else record.id.short()
        rows.append(
            {
                "ID": image_id,
                "CreatedSince": output.since(entry.created),
                "CreatedAt": entry.created or "",
                "CreatedBy": created_by,
                "Size": output.human_size(sizes[i]),
                "Comment": entry.comment,
            }
        )
    return rows


@click.command("history")
@click.argument("archive")
@click.argument("image")
@click.option("--no-trunc", is_flag=True, help="Don't truncate output.")
@click.option("-q", "--quiet", is_flag=True, help="Only show image IDs.")
@click.option("--format", "template", help="Go template, as docker history --format.")
@common.platform_option
def command(
    archive: str,
    image: str,
    no_trunc: bool,
    quiet: bool,
    template: str | None,
    platform: str | None,
) -> None:
    """Show the history of IMAGE in ARCHIVE like `docker history`."""
    with common.opened(archive) as (source, _ref):
        record = catalog.find(
            catalog.records(source, common.parse_platform(platform)), image, source.origin
        )
    rows = history_rows(record, no_trunc)
    if quiet:
        click.echo("\n".join(row["ID"] for row in rows))
        return
    text = output.render_rows(template, DEFAULT_TABLE, rows, headers=HEADERS)
    if text:
        click.echo(text)
