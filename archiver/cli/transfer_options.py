"""The options every moving verb shares, each group handed to the command as one value:
the selection (``--image``, ``--platform``, ``-q``, ``--json``), zstd, split media, ``--base``,
``--keep-going`` and the extras taken from registries (``--no-extras``, ``--extras``)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import click

from archiver.blobs.block_compress import COMPRESSIONS
from archiver.blobs.parts import Split, parse_size
from archiver.blobs.seek_table import MAX_FRAME
from archiver.blobs.zstd_writer import DEFAULT_FRAME_SIZE, ZstdOptions, default_threads
from archiver.errors import InputError
from archiver.model.extras import ExtrasFilter
from archiver.places.layout_writer import FORMATS
from archiver.places.registry import DEFAULT_JOBS


@dataclass(frozen=True)
class Selection:
    """What every transferring command takes: which images, which platforms, how loud."""

    images: tuple[str, ...] = ()
    platforms: tuple[str, ...] = ()
    quiet: bool = False
    as_json: bool = False


def _grouped(
    func: Callable[..., Any], name: str, build: Callable[..., Any], options: list[Any]
) -> Callable[..., Any]:
    """Add ``options`` to a click command and hand them to it as one value, ``name``."""
    keys = [option(lambda: None).__click_params__[0].name for option in options]

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        kwargs[name] = build(**{key: kwargs.pop(key) for key in keys})
        return func(*args, **kwargs)

    for option in reversed(options):
        wrapper = option(wrapper)
    return wrapper


def zstd_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """--level, --threads, --long, --frame-size, given to the command as ``zstd``."""
    return _grouped(
        func,
        "zstd",
        _zstd,
        [
            click.option(
                "--level",
                type=click.IntRange(1, 22),
                default=3,
                show_default=True,
                help="zstd compression level.",
            ),
            click.option(
                "--threads",
                type=click.IntRange(0, 256),
                default=default_threads(),
                show_default="CPU count",
                help="zstd frames compressed in parallel (0 or 1: inline).",
            ),
            click.option(
                "--long",
                "long_window",
                is_flag=True,
                help="zstd long-distance matching (128 MiB window).",
            ),
            click.option(
                "--frame-size",
                type=click.IntRange(64 * 1024, MAX_FRAME),
                default=DEFAULT_FRAME_SIZE,
                show_default=True,
                help="Decompressed bytes per zstd frame at most.",
            ),
        ],
    )


def _zstd(level: int, threads: int, long_window: bool, frame_size: int) -> ZstdOptions:
    return ZstdOptions(level=level, threads=threads, frame_size=frame_size, long_window=long_window)


def split_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """--split-size and --only-part, given to the command as ``split``."""
    return _grouped(
        func,
        "split",
        _split,
        [
            click.option(
                "--split-size",
                metavar="SIZE|fat32",
                help="Write the bundle in parts of SIZE (4G, 700M; fat32: 4 GiB - 1) with "
                "a NAME.parts.json of their checksums.",
            ),
            click.option(
                "--only-part",
                type=click.IntRange(1),
                metavar="N",
                help="With --split-size: write part N again alone (checked against the "
                "manifest before it replaces anything).",
            ),
        ],
    )


def _split(split_size: str | None, only_part: int | None) -> Split | None:
    if split_size is None:
        if only_part is not None:
            raise InputError("--only-part goes with --split-size")
        return None
    return Split(parse_size(split_size), only_part)


def selection_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """--image, --platform, -q, --json, given to the command as ``selection``."""
    return _grouped(
        func,
        "selection",
        Selection,
        [
            click.option(
                "--image",
                "images",
                multiple=True,
                metavar="REF",
                help="Only these images (repeatable).",
            ),
            click.option(
                "--platform",
                "platforms",
                multiple=True,
                metavar="OS/ARCH[/VARIANT]",
                help="Only these platforms of multi-platform images (repeatable, or "
                "separated by commas; default: all).",
            ),
            click.option("-q", "--quiet", is_flag=True, help="No progress, no summary."),
            click.option("--json", "as_json", is_flag=True, help="A JSON summary."),
        ],
    )


def extras_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """--no-extras and --extras TYPE, given to the command as ``extras`` (an ExtrasFilter)."""
    return _grouped(
        func,
        "extras",
        _extras,
        [
            click.option(
                "--no-extras",
                is_flag=True,
                help="Leave signatures, attestations, SBOMs, referrers behind.",
            ),
            click.option(
                "--extras",
                "extra_types",
                multiple=True,
                metavar="TYPE",
                help="Only extras of this artifact type or kind (sig, att, sbom, referrer); "
                "repeatable.",
            ),
        ],
    )


def _extras(no_extras: bool, extra_types: tuple[str, ...]) -> ExtrasFilter:
    if no_extras and extra_types:
        raise InputError("--no-extras and --extras TYPE contradict each other")
    return ExtrasFilter(enabled=not no_extras, types=extra_types)


def keep_going_option(func: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--keep-going",
        is_flag=True,
        help="Go on past an image that fails; end with a summary per image.",
    )(func)


def base_option(complete: bool) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """``--base``: a delta against it (``complete=False``), or what completes a delta."""
    text = (
        "An archive or bundle holding what the input (a delta) left out: write it whole."
        if complete
        else "An inventory (archiver inventory) or an earlier archive/bundle: write only "
        "what it lacks (a delta)."
    )
    return click.option("--base", "base", metavar="INVENTORY|ARCHIVE", help=text)


def bundle_output_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """``-o OUT`` and ``--to FORMAT`` (a bundle by default), for the verbs that write what
    they fetch from elsewhere (save, pull)."""
    for option in (
        click.option(
            "--to",
            "fmt",
            type=click.Choice(FORMATS),
            default="bundle",
            show_default=True,
            help="Output format.",
        ),
        click.option(
            "-o",
            "--output",
            "output_path",
            required=True,
            metavar="OUT.tar.zst",
            help="Where to write; '-': standard output (not with --to oci-dir).",
        ),
    ):
        func = option(func)
    return func


def writer_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """What every command that writes an archive from other places takes: --base (a
    delta), the selection, zstd and split options (as ``base``, ``selection``, ``zstd``
    and ``split``)."""
    for option in (split_options, zstd_options, selection_options, base_option(False)):
        func = option(func)
    return func


compress_option = click.option(
    "--compress",
    type=click.Choice(COMPRESSIONS),
    default="gzip",
    show_default=True,
    help="Into a registry: how layers held as plain tars are compressed on the way (as "
    "docker push does); compressed layers go as they are.",
)


def jobs_option(what: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """``-j/--jobs``: how many of ``what`` (the help's words) go at once."""
    return click.option(
        "-j",
        "--jobs",
        type=click.IntRange(1, 64),
        default=DEFAULT_JOBS,
        show_default=True,
        help=what,
    )
