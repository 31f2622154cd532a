"""Loading images into a Docker daemon: what it lacks, in a few loads at once; and into
containerd (``load_into_containerd``).

The daemon registers the layers of one load one after the other, of several loads at
once; each load is one ``copy()`` into a DaemonSink of its own.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Collection
from typing import Any

from archiver.engine import inventory
from archiver.engine.concurrent import MOST_AT_ONCE, balanced, connected, on_threads
from archiver.engine.copy import CopyReport, Progress, copy, plan
from archiver.engine.graph import resolve
from archiver.errors import InputError, PeerError
from archiver.model.descriptor import Descriptor
from archiver.model.digest import Digest
from archiver.model.image import ImageEntry, ResolvedImage
from archiver.model.platform import Platform
from archiver.model.reference import Reference
from archiver.places.base import Source
from archiver.places.daemon.client import DaemonClient
from archiver.places.daemon.sink import DaemonSink
from archiver.places.daemon.traits import DaemonTraits
from archiver.places.transports import Place


def load_images(
    client: DaemonClient,
    source: Source,
    entries: list[ImageEntry],
    platforms: list[Platform] | None = None,
    progress: Progress | None = None,
    on_message: Callable[[dict[str, Any]], None] | None = None,
    notice: Callable[[str], None] | None = None,
) -> tuple[CopyReport, list[str]]:
    """Load ``entries`` into the daemon without the layers it holds, in up to MOST_AT_ONCE
    loads at once (see ``concurrent_loads``); the daemon's ``Loaded image`` lines, load by load.

    Loads end together: each sends all its blobs, then waits for the others before the end
    of its tar lets the daemon load it, so a corrupt blob found in any load stops them all
    before the daemon tags anything. A daemon that refuses an archive without the layers it
    holds is sent that load again, whole (``notice`` says so)."""
    roots = [resolve(source, entry, platforms) for entry in entries]
    traits = DaemonTraits.of(client.version(), client.info())
    decompress = traits.unreadable
    skipped: set[Digest] = set()
    if traits.takes_partial_archives:
        skipped = set(inventory.of_daemon(client).holdings.held_layers(roots))
    loads = concurrent_loads(roots, skipped)
    if len(loads) <= 1:
        return _load(client, source, roots, skipped, progress, on_message, notice, decompress)
    if progress is not None:
        todo = [d for d, data in plan(roots) if data is None and d.digest not in skipped]
        progress.planned(len(roots), len(todo), sum(d.size for d in todo))
        progress = _PlannedAlready(progress)
    together = _Together(len(loads))
    results: list[tuple[CopyReport, list[str]] | None] = [None] * len(loads)

    def run(i: int) -> None:
        try:
            results[i] = _load(
                client,
                source,
                loads[i],
                skipped,
                progress,
                on_message,
                notice,
                decompress,
                together,
            )
        except BaseException as exc:  # raised below, in the caller's thread
            together.failed(exc)

    try:
        on_threads("docker-load", len(loads), run)
    except BaseException as exc:  # interrupted: loads still sending never end their tar
        together.failed(exc)
        raise
    if together.error is not None:
        raise together.error
    done = [r for r in results if r is not None]
    report = CopyReport.total([r for r, _ in done])
    report.blobs_skipped = len(skipped)  # once, not once per load
    return report, [line for _, lines in done for line in lines]


CONTAINERD_JOBS = 4
"""Blobs written into containerd at once."""


def load_into_containerd(
    place: Place,
    source: Source,
    entries: list[ImageEntry],
    platforms: list[Platform] | None = None,
    progress: Progress | None = None,
) -> tuple[CopyReport, list[str]]:
    """Load ``entries`` into the containerd ``place`` names: the blobs its content store
    lacks are sent, each image unpacked into the snapshotter ($CONTAINERD_SNAPSHOTTER, else
    the namespace's default, else overlayfs, else native) and named (a name in ``place``:
    the one image so named); ``Loaded image`` lines."""
    from archiver.engine.opening import containerd_client  # grpc: containerd verbs only
    from archiver.places.containerd.sink import ContainerdSink
    from archiver.places.containerd.unpack import choose_snapshotter

    if len(place.names) > 1:
        raise InputError(f"{place}: one name at most for the images loaded")
    name = Reference.parse(place.names[0]) if place.names else None
    with containerd_client(place) as client:
        snapshotter = choose_snapshotter(client, os.environ.get("CONTAINERD_SNAPSHOTTER"))
        sink = ContainerdSink(client, snapshotter, name)
        report = copy(source, sink, entries, platforms, progress=progress, jobs=CONTAINERD_JOBS)
    return report, sink.loaded


class _Together:
    """Loads sent side by side: each, its blobs sent, waits for the others before it lets
    the daemon load; the first to fail before then cuts them all (the daemon loads none)."""

    def __init__(self, count: int) -> None:
        self._barrier = threading.Barrier(count, action=self._passed)
        self._lock = threading.Lock()
        self._sinks: list[DaemonSink] = []
        self._loading = False
        self.error: BaseException | None = None
        """The first error: the one that stopped the others (theirs come after)."""

    def _passed(self) -> None:
        self._loading = True

    def joined(self, sink: DaemonSink) -> None:
        with self._lock:
            self._sinks.append(sink)

    def wait(self) -> None:
        self._barrier.wait()

    def failed(self, error: BaseException) -> None:
        with self._lock:
            if self.error is None:
                self.error = error
            if self._loading:  # the daemon has every load: the others finish theirs
                return
        self._barrier.abort()
        for sink in self._sinks:
            sink.abort()


def _load(
    client: DaemonClient,
    source: Source,
    roots: list[ResolvedImage],
    skipped: set[Digest],
    progress: Progress | None,
    on_message: Callable[[dict[str, Any]], None] | None,
    notice: Callable[[str], None] | None,
    decompress: frozenset[str],
    together: _Together | None = None,
) -> tuple[CopyReport, list[str]]:
    entries = [root.entry for root in roots]
    mine = skipped & {d.digest for root in roots for d, data in root.blobs() if data is None}
    sink = DaemonSink(client, mine, on_message, together.wait if together else None, decompress)
    if together is not None:
        together.joined(sink)
    try:
        report = copy(source, sink, entries, progress=progress, roots=roots)
    except PeerError as exc:
        # side by side, only once the others have ended too (they wait for this one)
        if not sink.skipped or (together is not None and not sink.ended):
            raise
        if notice is not None:
            notice(f"The daemon refused a partial archive ({exc}); sending all.")
        sink = DaemonSink(client, on_message=on_message, decompress=decompress)
        report = copy(source, sink, entries, progress=progress, roots=roots)
    return report, sink.loaded()


def concurrent_loads(
    roots: list[ResolvedImage], skipped: Collection[Digest], most: int = MOST_AT_ONCE
) -> list[list[ResolvedImage]]:
    """The images in up to ``most`` loads a daemon can take at once. Images sharing a layer
    it lacks go in one load (no layer is sent twice, no load needs another's layers), as do
    the images of one config, and the images it lacks no layer of; the loads are balanced by
    the bytes they send (the heaviest first, each into the lightest load so far)."""
    sends = [
        {d.digest: d.size for d, data in root.blobs() if data is None and d.digest not in skipped}
        for root in roots
    ]
    keys = [
        [*sends[i], *(node.manifest.config.digest for node in root.images)] if sends[i] else [None]
        for i, root in enumerate(roots)
    ]

    def weight(indexes: list[int]) -> int:
        return sum({d: size for i in indexes for d, size in sends[i].items()}.values())

    return [[roots[i] for i in b] for b in balanced(connected(keys), weight, most)]


class _PlannedAlready:
    """The progress of loads side by side: one plan for all, made before they start."""

    def __init__(self, progress: Progress) -> None:
        self._progress = progress

    def planned(self, images: int, blobs: int, size: int) -> None:
        pass

    def advanced(self, size: int) -> None:
        self._progress.advanced(size)

    def moved(self, descriptor: Descriptor) -> None:
        self._progress.moved(descriptor)
