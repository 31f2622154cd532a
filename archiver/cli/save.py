"""``archiver save REF... -o OUT``: images from a Docker daemon into a bundle (or archive)."""

from __future__ import annotations

import click

from archiver.blobs.parts import Split
from archiver.blobs.zstd_writer import ZstdOptions
from archiver.cli.transfer import request, run
from archiver.cli.transfer_options import Selection, bundle_output_options, writer_options
from archiver.errors import InputError
from archiver.places.daemon.client import DaemonClient
from archiver.places.transports import Place, parse_place

_UNTAGGED = "<none>:<none>"


def daemon_names(client: DaemonClient, untagged: bool) -> list[str]:
    """Every tagged image of the daemon by name, and with ``untagged`` the rest by ID."""
    names: list[str] = []
    for image in client.images():
        tags = [t for t in image.get("RepoTags") or [] if t != _UNTAGGED]
        if tags:
            names.extend(tags)
        elif untagged:
            names.append(image["Id"])
    return names


@click.command("save")
@click.argument("refs", nargs=-1)
@bundle_output_options
@click.option("--all", "everything", is_flag=True, help="Every tagged image of the daemon.")
@click.option("-a", "untagged", is_flag=True, help="With --all: untagged images too.")
@writer_options
def command(
    refs: tuple[str, ...],
    output_path: str,
    fmt: str,
    everything: bool,
    untagged: bool,
    base: str | None,
    selection: Selection,
    zstd: ZstdOptions,
    split: Split | None,
) -> None:
    """Save images from the Docker daemon (GET /images/get, streamed) to OUT."""
    names = list(refs)
    if everything:
        names += daemon_names(DaemonClient(), untagged)
    if not names:
        raise InputError("name the images to save, or use --all")
    wanted = request(
        [Place.daemon(tuple(names))],
        parse_place(output_path),
        fmt,
        selection,
        zstd=zstd,
        base=parse_place(base) if base else None,
        split=split,
    )
    run(wanted, selection)
