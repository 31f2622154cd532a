"""``archiver unpack BUNDLE -o OUT``: a bundle back to any format; ``-o -`` streams a tar."""

from __future__ import annotations

import click

from archiver.cli.transfer import request, run
from archiver.cli.transfer_options import Selection, base_option, selection_options
from archiver.places.transports import parse_place

_FORMATS = ("docker", "oci", "oci-dir")


@click.command("unpack")
@click.argument("bundle")
@click.option(
    "-o",
    "--output",
    "output_path",
    required=True,
    metavar="OUT",
    help="Where to write; '-' streams a docker-loadable tar to stdout.",
)
@click.option("--to", "fmt", type=click.Choice(_FORMATS), help="Output format (default: docker).")
@base_option(complete=True)
@selection_options
def command(
    bundle: str, output_path: str, fmt: str | None, base: str | None, selection: Selection
) -> None:
    """Unpack BUNDLE (or any archive); only the frames of the chosen images are read.
    A delta is unpacked whole with --base (the bundle or archive it was made against)."""
    target = parse_place(output_path)
    wanted = request(
        [parse_place(bundle)],
        target,
        fmt or target.format or "docker",
        selection,
        base=parse_place(base) if base else None,
        complete=True,
    )
    run(wanted, selection)
