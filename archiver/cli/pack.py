"""``archiver pack`` and ``archiver merge``: many inputs into one bundle, every blob once."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from archiver.blobs.parts import Split
from archiver.blobs.zstd_writer import ZstdOptions
from archiver.cli.transfer import request, run
from archiver.cli.transfer_options import (
    Selection,
    base_option,
    selection_options,
    split_options,
    zstd_options,
)
from archiver.engine.merge import PREFER
from archiver.places.transports import parse_place


def _pack(
    inputs: tuple[str, ...],
    output_path: str,
    prefer: str,
    keep_going: bool,
    selection: Selection,
    zstd: ZstdOptions,
    base: str | None,
    complete: bool,
    split: Split | None,
) -> None:
    wanted = request(
        [parse_place(name) for name in inputs],
        parse_place(output_path),
        "bundle",
        selection,
        zstd=zstd,
        prefer=prefer,
        keep_going=keep_going,
        base=parse_place(base) if base else None,
        complete=complete,
        split=split,
    )
    run(wanted, selection)


def _options(func: Callable[..., Any]) -> Callable[..., Any]:
    for option in (
        split_options,
        zstd_options,
        selection_options,
        click.option(
            "--keep-going",
            is_flag=True,
            help="Leave out inputs that are unreadable or fail verification.",
        ),
        click.option(
            "--prefer",
            type=click.Choice(PREFER),
            default="error",
            show_default=True,
            help="Which input wins when two give one name to different images.",
        ),
        click.option(
            "-o",
            "--output",
            "output_path",
            required=True,
            metavar="OUT.tar.zst",
            help="The bundle to write.",
        ),
        click.argument("inputs", nargs=-1, required=True),
    ):
        func = option(func)
    return func


@click.command("pack")
@_options
@base_option(complete=False)
def command(**kwargs: Any) -> None:
    """Pack INPUTS (any archives, bundles, '-' for stdin) into one deduplicated bundle;
    with --base, only what the base lacks (a delta)."""
    _pack(**kwargs, complete=False)


@click.command("merge")
@_options
@base_option(complete=True)
def merge_command(**kwargs: Any) -> None:
    """Merge bundles (or any archives) into one bundle, every blob once; with --base, a
    delta is completed from its base."""
    _pack(**kwargs, complete=True)
