"""``archiver unpack BUNDLE -o OUT``: a bundle back to any format; ``-o -`` streams a tar."""

from __future__ import annotations

import click

from archiver.cli.transfer import Request, Selection, selection_options, transfer

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
@selection_options
def command(bundle: str, output_path: str, fmt: str | None, selection: Selection) -> None:
    """Unpack BUNDLE (or any archive); only the frames of the chosen images are read."""
    transfer(Request([bundle], output_path, fmt, selection))
