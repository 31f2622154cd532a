"""``archiver push SOURCE``: images of any archive, bundle or place into a registry."""

from __future__ import annotations

import click

from archiver.cli import common
from archiver.cli.common import insecure_option
from archiver.cli.transfer import request, run
from archiver.cli.transfer_options import (
    Selection,
    compress_option,
    jobs_option,
    keep_going_option,
    selection_options,
)
from archiver.engine.transfer import PushOptions
from archiver.places.transports import REGISTRY, Place, parse_place


@click.command("push")
@click.argument("source_name", metavar="SOURCE")
@click.option("--to", "to", metavar="REGISTRY[/NAMESPACE]", help="Push every name there.")
@click.option("--tag", "tag", metavar="REF", help="Push the (one) image under this name.")
@jobs_option("Blobs uploaded at once.")
@compress_option
@insecure_option
@keep_going_option
@selection_options
def command(
    source_name: str,
    to: str | None,
    tag: str | None,
    jobs: int,
    compress: str,
    insecure: tuple[str, ...],
    keep_going: bool,
    selection: Selection,
) -> None:
    """Push the images of SOURCE (an archive, a bundle, docker-daemon:REF, docker://REF).

    Each image goes under its own names, under --tag, or with --to under the same names
    moved to another registry and namespace. Layers the registry has are skipped ("Layer
    already exists"), those another repository of it has are mounted, the rest uploaded
    in parallel, resuming where an interrupted upload stopped; manifests go last. Plain
    layers (a docker save archive's) are gzip-compressed on the way, deterministically, so
    a second push finds them with a HEAD and uploads nothing."""
    common.registries(insecure)
    wanted = request(
        [parse_place(source_name)],
        Place.registry(),
        REGISTRY,
        selection,
        keep_going=keep_going,
        push=PushOptions(to, tag, jobs, compress),
    )
    run(wanted, selection)
