"""``archiver inventory PLACE -o inv.json``: what a place holds, for deltas made elsewhere."""

from __future__ import annotations

from pathlib import Path

import click

from archiver.blobs.atomic import replace_file
from archiver.cli import common
from archiver.cli.common import insecure_option
from archiver.engine import inventory
from archiver.places.transports import parse_place


@click.command("inventory")
@click.argument("place_name", metavar="PLACE")
@click.option(
    "-o",
    "--output",
    "output_path",
    default="-",
    show_default=True,
    help="The inventory file (JSON) to write; '-': standard output.",
)
@insecure_option
def command(place_name: str, output_path: str, insecure: tuple[str, ...]) -> None:
    """Record what PLACE holds (blob digests, diff_ids, layer chains, images), reading no
    layer: docker-daemon:[REF,...], docker://HOST[/REPO[:TAG]], or an archive/bundle/OCI dir.

    Pass the file to --base of pack, save, pull or convert to write only what PLACE lacks."""
    found = inventory.of_place(parse_place(place_name), common.registries(insecure))
    text = found.to_json()
    if output_path == "-":
        click.echo(text, nl=False)
    else:
        replace_file(Path(output_path), text.encode(), mode=0o600)
        click.echo(
            f"Inventory of {found.origin}: {len(found.images)} images, {len(found.blobs)} blobs, "
            f"{len(found.chains)} layer chains -> {output_path} ({found.checksum})",
            err=True,
        )
