"""``archiver pack`` and ``archiver merge``: many inputs into one bundle, every blob once."""

from __future__ import annotations

import click

from archiver.cli.transfer import (
    PREFER,
    Request,
    selection_options,
    transfer,
    zstd_from,
    zstd_options,
)


def _pack(
    inputs: tuple[str, ...],
    output_path: str,
    images: tuple[str, ...],
    platforms: tuple[str, ...],
    quiet: bool,
    as_json: bool,
    level: int,
    threads: int,
    long_window: bool,
    frame_size: int,
    prefer: str,
    keep_going: bool,
) -> None:
    transfer(
        Request(
            list(inputs),
            output_path,
            "bundle",
            images,
            platforms,
            zstd_from(level, threads, long_window, frame_size),
            prefer=prefer,
            keep_going=keep_going,
            quiet=quiet,
            as_json=as_json,
        )
    )


def _options(func):  # type: ignore[no-untyped-def]
    func = zstd_options(func)
    func = selection_options(func)
    func = click.option(
        "--keep-going",
        is_flag=True,
        help="Leave out inputs that are unreadable or fail verification.",
    )(func)
    func = click.option(
        "--prefer",
        type=click.Choice(PREFER),
        default="error",
        show_default=True,
        help="Which input wins when two give one name to different images.",
    )(func)
    func = click.option(
        "-o",
        "--output",
        "output_path",
        required=True,
        metavar="OUT.tar.zst",
        help="The bundle to write.",
    )(func)
    return click.argument("inputs", nargs=-1, required=True)(func)


@click.command("pack")
@_options
def command(**kwargs: object) -> None:
    """Pack INPUTS (any archives, bundles, '-' for stdin) into one deduplicated bundle."""
    _pack(**kwargs)  # type: ignore[arg-type]


@click.command("merge")
@_options
def merge_command(**kwargs: object) -> None:
    """Merge bundles (or any archives) into one bundle, every blob once."""
    _pack(**kwargs)  # type: ignore[arg-type]
