"""``archiver load ARCHIVE``: images into a Docker daemon, sending only what it lacks."""

from __future__ import annotations

import click

from archiver.cli.transfer import request, run
from archiver.cli.transfer_options import Selection, keep_going_option, selection_options
from archiver.places.transports import DAEMON, Place, parse_place


@click.command("load")
@click.argument("archive")
@click.option("--tag", "retag", metavar="NEW_REF", help="Load the (one) image under this name.")
@keep_going_option
@selection_options
def command(archive: str, retag: str | None, keep_going: bool, selection: Selection) -> None:
    """Load ARCHIVE (any archive or bundle) into the Docker daemon at DOCKER_HOST.

    Layers whose chains the daemon already holds are not sent. Prints docker's
    `Loaded image: REF` lines.
    """
    wanted = request(
        [parse_place(archive)],
        Place.daemon(),
        DAEMON,
        selection,
        retag=retag,
        keep_going=keep_going,
    )
    run(wanted, selection)
