"""``archiver inventory PLACE -o inv.json``: what a place holds, for deltas made elsewhere."""

from __future__ import annotations

from pathlib import Path

import click

from archiver.blobs.atomic import replace_file
from archiver.cli import common
from archiver.cli.common import insecure_option
from archiver.errors import InputError
from archiver.model.reference import Reference
from archiver.places import inventory
from archiver.places.daemon.client import DaemonClient
from archiver.places.registry.client import allow_insecure, client_for
from archiver.places.transports import DAEMON, REGISTRY, parse_place


def take(place_name: str) -> inventory.Inventory:
    """The inventory of a daemon (``docker-daemon:``; ``docker-daemon:REF[,REF...]``: those
    images), a registry (``docker://HOST``: every
    repository; ``docker://HOST/REPO[,HOST/REPO...]``: those; ``docker://HOST/REPO:TAG``:
    one image), or an archive, bundle or OCI dir."""
    place = parse_place(place_name)
    if place.format == DAEMON:  # docker-daemon:REF[,REF...]: those images alone
        names = [name for name in place.path.split(",") if name] or None
        return inventory.of_daemon(DaemonClient(), names)
    if place.format == REGISTRY:
        host, _, rest = place.path.partition("/")
        if not rest:
            client = client_for(host)
            return inventory.of_registry(client, client.catalog())
        refs = [Reference.parse(name, default_tag=False) for name in place.path.split(",")]
        if len({ref.registry for ref in refs}) != 1 or len({ref.tag for ref in refs}) != 1:
            raise InputError(
                f"{place_name}: name repositories of one registry (REPO,REPO or REPO:TAG)"
            )
        client = client_for(refs[0].registry)
        return inventory.of_registry(client, [ref.repository for ref in refs], refs[0].tag)
    with common.opened(place_name) as (source, _ref):
        return inventory.of_source(source)


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
    allow_insecure(insecure)
    found = take(place_name)
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
