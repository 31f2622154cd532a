"""``archiver ls ARCHIVE``: the images of an archive, as ``docker images`` lists them."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import click

from archiver.cli import common, output
from archiver.engine import catalog
from archiver.engine import extras as extras_in
from archiver.engine.catalog import ImageRecord
from archiver.errors import InputError
from archiver.model import extras
from archiver.model.extras import Extra
from archiver.model.reference import Reference, match_reference

DEFAULT_TABLE = "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}"
DIGESTS_TABLE = (
    "table {{.Repository}}\t{{.Tag}}\t{{.Digest}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}"
)
NONE = "<none>"


def rows(
    records: list[ImageRecord],
    no_trunc: bool = False,
    carried: dict[int, list[Extra]] | None = None,
) -> list[dict[str, Any]]:
    """One row per (image, name), dangling images once with ``<none>``; docker's fields,
    and the extras each image carries (``carried``, by id of its root)."""
    out = []
    for record in records:
        names: list[tuple[Reference | None, str | None]] = [(r, None) for r in record.entry.refs]
        names += [(None, t) for t in record.entry.tags]
        found = (carried or {}).get(id(record.root), [])
        for ref, tag in names or [(None, None)]:
            row = _row(record, ref, tag, no_trunc)
            row["Extras"] = extras.summary(found)
            if found:  # only where there is something, as the table's column
                row["_json"]["extras"] = [e.to_json() for e in found]
            out.append(row)
    return out


def _row(
    record: ImageRecord, ref: Reference | None, tag: str | None, no_trunc: bool
) -> dict[str, Any]:
    config = record.config
    if ref is not None:
        repository, shown_tag = ref.familiar_name, ref.tag or NONE
    else:
        repository, shown_tag = NONE, tag or NONE
    image_id = str(record.id) if no_trunc else record.id.short()
    return {
        "Repository": repository,
        "Tag": shown_tag,
        "ID": image_id,
        "Digest": str(record.digest) if record.digest else NONE,
        "CreatedSince": output.since(config.created),
        "CreatedAt": config.created or "",
        "Size": output.human_size(record.size),
        "VirtualSize": output.human_size(record.size),
        "SharedSize": "N/A",
        "UniqueSize": "N/A",
        "Containers": "N/A",
        "_json": {
            "reference": str(ref) if ref is not None else None,
            "repository": repository,
            "tag": shown_tag,
            "id": str(record.id),
            "digest": str(record.digest) if record.digest else None,
            "created": config.created,
            "size": record.size,
            "platform": str(record.image.platform) if record.image.platform else None,
            "layers": [str(d) for d in config.diff_ids],
        },
        "_dangling": ref is None and tag is None,
        "_record": record,
        "_ref": ref,
    }


FILTERS = "dangling=true|false, reference=PATTERN, before=IMAGE, since=IMAGE, label=KEY[=VALUE]"


def _filter(
    records: list[ImageRecord],
    all_rows: list[dict[str, Any]],
    filters: tuple[str, ...],
    origin: str,
) -> list[dict[str, Any]]:
    """docker's ``images --filter``: any reference pattern may match, every label must;
    before/since compare creation times with the named image's."""
    dangling: bool | None = None
    patterns: list[str] = []
    labels: list[tuple[str, str | None]] = []
    before: datetime | None = None
    since: datetime | None = None
    for item in filters:
        key, sep, value = item.partition("=")
        if key == "dangling" and sep and value.lower() in ("true", "false", "1", "0"):
            dangling = value.lower() in ("true", "1")
        elif key == "reference" and sep and value:
            patterns.append(value)
        elif key == "label" and sep and value:
            name, has_value, wanted = value.partition("=")
            labels.append((name, wanted if has_value else None))
        elif key in ("before", "since") and sep and value:
            created = _created(catalog.find(records, value, origin))
            if key == "before":
                before = created
            else:
                since = created
        else:
            raise InputError(f"invalid filter {item!r}: use {FILTERS}")
    kept = []
    for row in all_rows:
        record: ImageRecord = row["_record"]
        if dangling is not None and row["_dangling"] != dangling:
            continue
        if patterns and not (
            row["_ref"] is not None and any(match_reference(p, row["_ref"]) for p in patterns)
        ):
            continue
        if not all(_has_label(record, name, wanted) for name, wanted in labels):
            continue
        if before is not None and not (_created(record) < before):
            continue
        if since is not None and not (_created(record) > since):
            continue
        kept.append(row)
    return kept


def _created(record: ImageRecord) -> datetime:
    return output.parse_time(record.config.created) or datetime.min.replace(tzinfo=UTC)


def _has_label(record: ImageRecord, name: str, wanted: str | None) -> bool:
    labels = record.config.config.get("Labels") or {}
    return name in labels and (wanted is None or labels[name] == wanted)


@click.command("ls")
@click.argument("archive")
@click.option("-a", "--all", "show_all", is_flag=True, help="Accepted for docker compatibility.")
@click.option("--digests", is_flag=True, help="Show digests.")
@click.option("--no-trunc", is_flag=True, help="Don't truncate output.")
@click.option("-q", "--quiet", is_flag=True, help="Only show image IDs.")
@click.option("-f", "--filter", "filters", multiple=True, help=FILTERS)
@click.option(
    "--format", "template", help="Go template, or 'table ...', as docker images --format."
)
@click.option("--json", "as_json", is_flag=True, help="A JSON array, one object per (image, tag).")
@common.platform_option
def command(
    archive: str,
    show_all: bool,
    digests: bool,
    no_trunc: bool,
    quiet: bool,
    filters: tuple[str, ...],
    template: str | None,
    as_json: bool,
    platform: str | None,
) -> None:
    """List the images of ARCHIVE like `docker images`."""
    with common.opened(archive) as (source, _ref):
        records = catalog.records(source, common.parse_platform(platform))
        carried = extras_in.carried_by(source, [r.root for r in records])
        listed = _filter(records, rows(records, no_trunc, carried), filters, source.origin)
        delta = common.is_delta(source)
        if delta is not None and not (quiet or as_json or template):
            missing = {
                layer.digest
                for record in records
                for layer in record.image.manifest.layers
                if not source.has_blob(layer.digest)
            }
            click.echo(
                f"A delta against {delta}: {len(missing)} layers are left to the base",
                err=True,
            )
    if as_json:
        click.echo(output.to_json([row["_json"] for row in listed]))
    elif quiet:
        click.echo("\n".join(dict.fromkeys(row["ID"] for row in listed)) or "", nl=bool(listed))
    else:
        table = DIGESTS_TABLE if digests else DEFAULT_TABLE
        if any(row["Extras"] for row in listed):  # a column only where there is something
            table += "\t{{.Extras}}"
        text = output.render_rows(template, table, listed)
        if text:
            click.echo(text)
