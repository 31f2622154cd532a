"""What several commands share: opening inputs, options, progress bars."""

from __future__ import annotations

import contextlib
import sys
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any

import click

from archiver.engine.opening import open_place
from archiver.model.descriptor import Descriptor
from archiver.model.platform import Platform
from archiver.places.base import Source
from archiver.places.oci_layout import DELTA_BASE, DELTA_BASE_ORIGIN
from archiver.places.transports import parse_place

if TYPE_CHECKING:  # imported when used: a command that never shows a bar does not pay
    # for tqdm's import
    from tqdm import tqdm

    from archiver.places.registry.registries import Registries


@contextlib.contextmanager
def opened(name: str) -> Iterator[tuple[Source, str | None]]:
    """Open an input named on the command line (transport prefix and ``:ref`` allowed);
    the image the ``:ref`` names, if any."""
    place = parse_place(name)
    with open_place(place) as source:
        yield source, place.ref


def registries(insecure: tuple[str, ...] = ()) -> Registries:
    """The registries of the command running (one client each, shared by its threads and
    places; ``insecure``: names allowed plain HTTP or unverified TLS), closed when it ends."""
    from archiver.places.registry.registries import Registries

    context = click.get_current_context()
    found = context.meta.get("archiver.registries")
    if found is None:
        found = context.meta["archiver.registries"] = Registries()
        context.call_on_close(found.close)
    found.allow_insecure(insecure)
    assert isinstance(found, Registries)
    return found


def platform_option(func: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--platform",
        metavar="OS/ARCH[/VARIANT]",
        help="Which image of a multi-platform index to show (default: this host's).",
    )(func)


def insecure_option(func: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--insecure-registry",
        "insecure",
        multiple=True,
        metavar="HOST[:PORT]",
        help="Allow plain HTTP or unverified TLS for this registry (repeatable).",
    )(func)


def parse_platform(text: str | None) -> Platform | None:
    return Platform.parse(text) if text else None


def parse_platforms(given: Iterable[str]) -> list[Platform]:
    """``--platform`` values, each one platform or several separated by commas (as
    ``docker buildx --platform`` takes them)."""
    return [Platform.parse(part.strip()) for text in given for part in text.split(",") if part]


class Bar:
    """A tqdm bar on stderr (bytes, with images and blobs beside), drawn only on a terminal."""

    def __init__(self, bar: tqdm | _Unshown) -> None:
        self._bar = bar
        self._images = 0
        self._blobs = 0
        self._done = 0

    def planned(self, images: int, blobs: int, size: int) -> None:
        self._images, self._blobs = images, blobs
        self._bar.reset(total=size)
        self._bar.set_postfix_str(f"{images} images, 0/{blobs} blobs")

    def advanced(self, size: int) -> None:
        self._bar.update(size)

    def moved(self, descriptor: Descriptor) -> None:
        self._done += 1
        total = f"/{self._blobs}" if self._blobs else ""
        self._bar.set_postfix_str(
            f"{self._images} images, {self._done}{total} blobs", refresh=False
        )


class _Unshown:
    """What a bar does when none is drawn."""

    def reset(self, total: int | None = None) -> None:
        pass

    def update(self, n: int = 1) -> None:
        pass

    def set_postfix_str(self, s: str = "", refresh: bool = True) -> None:
        pass


@contextlib.contextmanager
def progress(desc: str, quiet: bool = False) -> Iterator[Bar]:
    """Progress on stderr, shown only when stderr is a terminal and not ``quiet``."""
    if quiet or not sys.stderr.isatty():
        yield Bar(_Unshown())
        return
    from tqdm import tqdm

    with tqdm(desc=desc, unit="B", unit_scale=True, file=sys.stderr, leave=False) as bar:
        yield Bar(bar)


class BlobBars:
    """One bar per blob in flight (parallel uploads), on a terminal, under the total."""

    def __init__(self, quiet: bool = False) -> None:
        self._shown = not quiet and sys.stderr.isatty()
        self._free: list[int] = []
        self._next = 1
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def __call__(self, descriptor: Descriptor) -> Iterator[Callable[[int], None]]:
        if not self._shown:
            yield lambda size: None
            return
        from tqdm import tqdm

        with self._lock:
            position = self._free.pop() if self._free else self._next
            self._next = max(self._next, position + 1)
        bar = tqdm(
            desc=descriptor.digest.hex[:12],
            total=descriptor.size,
            unit="B",
            unit_scale=True,
            file=sys.stderr,
            position=position,
            leave=False,
        )
        try:
            yield bar.update
        finally:
            bar.close()
            with self._lock:
                self._free.append(position)


@contextlib.contextmanager
def daemon_progress(quiet: bool = False) -> Iterator[Callable[[dict[str, Any]], None] | None]:
    """The daemon's own progress messages (``Loading layer``...) as a bar, on a terminal;
    None when nothing is to be shown (the daemon is then asked to be quiet)."""
    if quiet or not sys.stderr.isatty():
        yield None
        return
    from tqdm import tqdm

    with tqdm(desc="daemon", unit="B", unit_scale=True, file=sys.stderr, leave=False) as bar:

        def show(message: dict[str, Any]) -> None:
            detail = message.get("progressDetail") or {}
            if "total" in detail and "current" in detail:
                bar.set_description(f"daemon: {message.get('status', '')} {message.get('id', '')}")
                bar.reset(total=detail["total"])
                bar.update(detail["current"])

        yield show


def is_delta(source: Source) -> str | None:
    """The base a delta was made against (its origin and checksum), or None."""
    annotations = source.annotations
    checksum = annotations.get(DELTA_BASE)
    if checksum is None:
        return None
    return f"{annotations.get(DELTA_BASE_ORIGIN, 'a base')} ({checksum})"
