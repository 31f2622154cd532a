"""What several commands share: opening inputs, choosing images, progress bars."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import click
from tqdm import tqdm

from archiver.engine import catalog
from archiver.engine.catalog import ImageRecord
from archiver.model.descriptor import Descriptor
from archiver.model.platform import Platform
from archiver.places.archive import ArchiveSource, open_source
from archiver.places.transports import parse_place


@contextlib.contextmanager
def opened(name: str) -> Iterator[tuple[ArchiveSource, str | None]]:
    """Open an input named on the command line (transport prefix and ``:ref`` allowed)."""
    place = parse_place(name)
    with open_source(place.path) as source:
        yield source, place.ref


def platform_option(func: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--platform",
        metavar="OS/ARCH[/VARIANT]",
        help="Which image of a multi-platform index to show (default: this host's).",
    )(func)


def parse_platform(text: str | None) -> Platform | None:
    return Platform.parse(text) if text else None


def select(records: Sequence[ImageRecord], wanted: Sequence[str], origin: str) -> list[ImageRecord]:
    """The records named by ``wanted`` (all when empty), in archive order, each once."""
    if not wanted:
        return list(records)
    chosen: dict[int, ImageRecord] = {}
    for name in wanted:
        for record in catalog.find_all(records, name, origin):
            chosen[id(record)] = record
    return [r for r in records if id(r) in chosen]


@contextlib.contextmanager
def progress(
    total: int, desc: str, quiet: bool = False
) -> Iterator[Callable[[Descriptor, int], None]]:
    """A byte progress bar on stderr, shown only when stderr is a terminal."""
    disabled = quiet or not sys.stderr.isatty()
    with tqdm(
        total=total,
        desc=desc,
        unit="B",
        unit_scale=True,
        file=sys.stderr,
        disable=disabled,
        leave=False,
    ) as bar:
        yield lambda _desc, n: bar.update(n)
