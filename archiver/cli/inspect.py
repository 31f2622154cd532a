"""``archiver inspect ARCHIVE IMAGE...``: docker-inspect-shaped JSON of images in an archive."""

from __future__ import annotations

from typing import Any

import click

from archiver.cli import common, output
from archiver.cli.template import render
from archiver.engine import catalog
from archiver.engine import extras as extras_in
from archiver.engine.catalog import ImageRecord


def inspect_image(record: ImageRecord) -> dict[str, Any]:
    """The fields `docker image inspect` shows, from the config and the manifest."""
    data = record.config.data
    return {
        "Id": str(record.id),
        "RepoTags": [ref.familiar() for ref in record.entry.refs if ref.tag],
        "RepoDigests": record.repo_digests,
        "Parent": "",
        "Comment": data.get("comment", ""),
        "Created": record.config.created or "",
        "Container": data.get("container", ""),
        "ContainerConfig": data.get("container_config") or {},
        "DockerVersion": data.get("docker_version", ""),
        "Author": data.get("author", ""),
        "Config": record.config.config,
        "Architecture": record.config.architecture,
        "Variant": record.config.variant or "",
        "Os": record.config.os,
        "Size": record.size,
        "VirtualSize": record.size,
        "RootFS": {"Type": "layers", "Layers": [str(d) for d in record.config.diff_ids]},
        "Metadata": {"LastTagTime": "0001-01-01T00:00:00Z"},
        "Descriptor": record.entry.descriptor.to_json() if record.digest else None,
    }


@click.command("inspect")
@click.argument("archive")
@click.argument("images", nargs=-1, required=True)
@click.option("-f", "--format", "template", help="Go template, as docker inspect --format.")
@common.platform_option
def command(
    archive: str, images: tuple[str, ...], template: str | None, platform: str | None
) -> None:
    """Show details of IMAGES in ARCHIVE like `docker image inspect`."""
    with common.opened(archive) as (source, _ref):
        records = catalog.records(source, common.parse_platform(platform))
        chosen = [catalog.find(records, name, source.origin) for name in images]
        found = [inspect_image(record) for record in chosen]
        carried = extras_in.carried_by(source, [record.root for record in chosen])
        for item, record in zip(found, chosen, strict=True):
            item["Extras"] = [e.to_json() for e in carried.get(id(record.root), [])]
        if common.is_delta(source) is not None:
            for item, record in zip(found, chosen, strict=True):
                item["LeftToBase"] = [  # layers this delta leaves to its base
                    str(layer.digest)
                    for layer in record.image.manifest.layers
                    if not source.has_blob(layer.digest)
                ]
    if template:
        for item in found:
            click.echo(render(template, item))
    else:
        click.echo(output.to_json(found))
