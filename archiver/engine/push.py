"""Pushing images to a registry: where each goes, then one copy per repository, a few
repositories at once.

Every repository of the push shares the registry's client (scheme, tokens, connections)
and what is known of where blobs are, so a layer uploaded to one repository is mounted
into the others instead of sent again: a repository that needs a layer another is sending
waits for it, then mounts it (``BlobLocations.sending``). Their lines are printed in the
order of the repositories, as a push of one after the other prints them.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any, TypeVar, cast

from archiver.blobs.block_compress import COMPRESSIONS, KINDS
from archiver.engine import extras as extras_in
from archiver.engine import extras_registry
from archiver.engine.copy import Progress, copy
from archiver.engine.graph import resolve
from archiver.engine.layer_map import LayerMap
from archiver.engine.push_ahead import Ahead
from archiver.engine.push_compress import CompressingSink, compress_layer, to_compress
from archiver.errors import InputError
from archiver.model.descriptor import Descriptor
from archiver.model.digest import Digest
from archiver.model.image import ImageEntry
from archiver.model.platform import Platform
from archiver.model.reference import DEFAULT_REGISTRY, Reference
from archiver.places.base import Sink, Source
from archiver.places.registry.locations import BlobLocations
from archiver.places.registry.place import RegistrySink, RegistrySource, Watch
from archiver.places.registry.registries import Registries, given_or_own

SAVE_EVERY = 2.0
"""Seconds between writes of the caches a push learns (and one at its end)."""
REPOSITORIES_AT_ONCE = 4
"""Repositories pushed at once: one's own layers go up while another sends a shared one."""


@dataclass
class Destination:
    """One repository of one registry, and the tags each image gets there."""

    registry: str
    repository: str
    entries: list[ImageEntry] = field(default_factory=list)
    tags: dict[Digest, list[str]] = field(default_factory=dict)

    def add(self, entry: ImageEntry, tag: str | None) -> None:
        digest = entry.descriptor.digest
        if digest not in self.tags:
            self.entries.append(entry)
            self.tags[digest] = []
        if tag and tag not in self.tags[digest]:
            self.tags[digest].append(tag)


def destinations(
    entries: list[ImageEntry], to: str | None, tag: str | None
) -> tuple[list[Destination], list[str]]:
    """Where each image goes: ``tag`` (one image), or its names moved under ``to``
    (``REGISTRY[/NAMESPACE]``), or its own names. Also: why some images stay behind."""
    found: dict[tuple[str, str], Destination] = {}
    left: list[str] = []

    def place(entry: ImageEntry, ref: Reference) -> None:
        key = (ref.registry, ref.repository)
        found.setdefault(key, Destination(*key)).add(entry, ref.tag or _digest_tag(ref, entry))

    if tag is not None:
        if len(entries) != 1:
            raise InputError(f"--tag needs exactly one image, {len(entries)} are selected")
        place(entries[0], Reference.parse(tag))
        return list(found.values()), left
    registry, namespace = _split_to(to) if to else (None, "")
    for entry in entries:
        if not entry.refs:
            left.append(f"{entry.label}: no name to push it under (use --tag)")
            continue
        for ref in entry.refs:
            if registry is not None:
                path = ref.repository
                if ref.registry == DEFAULT_REGISTRY:
                    path = path.removeprefix("library/")
                ref = Reference(registry, f"{namespace}/{path}" if namespace else path, ref.tag)
            place(entry, ref)
    return list(found.values()), left


def _digest_tag(ref: Reference, entry: ImageEntry) -> str | None:
    return None if ref.digest is None else str(entry.descriptor.digest)


def _split_to(to: str) -> tuple[str, str]:
    registry, _, namespace = to.strip("/").partition("/")
    probe = Reference.parse(f"{to.strip('/')}/x:1")  # validates host and namespace
    if probe.registry != registry:
        raise InputError(f"--to {to!r}: start with a registry host (host[:port][/namespace])")
    return registry, namespace


def push_images(
    source: Source,
    entries: list[ImageEntry],
    to: str | None,
    tag: str | None,
    platforms: list[Platform] | None,
    jobs: int,
    on_event: Callable[[str], None],
    progress: Callable[[], contextlib.AbstractContextManager[Progress]] | None = None,
    watch: Watch | None = None,
    registries: Registries | None = None,
    compress: str = "gzip",
) -> dict[str, Any]:
    """Push ``entries`` of ``source``; return the summary ``--json`` prints. Clients come
    from the command's ``registries`` (or are made for this push alone). Plain layers are
    compressed with ``compress`` ("gzip", "zstd" or "none": see ``engine.push_compress``)."""
    if compress not in COMPRESSIONS:
        raise InputError(f"--compress {compress!r}: use one of {', '.join(COMPRESSIONS)}")
    parted = extras_in.split(source, platforms=platforms)  # the chosen images' extras come too
    kept = {entry.descriptor.digest for entry, _ in parted.extras}
    targets, left = destinations([e for e in entries if e.descriptor.digest not in kept], to, tag)
    left += extras_registry.place_extras(source, parted, targets, platforms)
    signed = frozenset(extra.subject for _, extra in parted.extras)  # pushed as they are
    if not targets:
        raise InputError("nothing to push: " + "; ".join(left or ["no image selected"]))
    roots = [[resolve(source, entry, platforms) for entry in t.entries] for t in targets]
    registries_used = list(dict.fromkeys(t.registry for t in targets))
    known = {registry: BlobLocations.load(registry) for registry in registries_used}
    layer_maps = {registry: LayerMap.load(registry) for registry in registries_used}
    ahead: Ahead | None = None
    if compress != "none":
        options = KINDS[compress]
        order = [
            (layer, i)
            for i, target in enumerate(targets)
            for layer in to_compress(roots[i], signed)
            if layer_maps[target.registry].get(compress, layer.digest) is None  # a re-push
        ]
        ahead = Ahead(source, order, lambda d, o, s: compress_layer(d, o, s, options))
    for i, target in enumerate(targets):  # a blob several need: they take it in this order
        for root in roots[i]:
            for descriptor, data in root.blobs():
                if data is None:
                    known[target.registry].needed_by(descriptor.digest, i)
    events = _InOrder(on_event, len(targets))
    saving = _Saving([*known.values(), *layer_maps.values()])

    def push_one(i: int, clients: Registries, bar: Progress | None) -> tuple[RegistrySink, int]:
        target = targets[i]
        client = clients.client(target.registry)
        locations = known[target.registry]
        hint: Callable[[Digest], str | None] | None = None
        if isinstance(source, RegistrySource) and source.client.registry == target.registry:
            hint = source.repository_of
        said = events.of(i)
        sink = RegistrySink(
            client, target.repository, target.tags, locations, said, hint, watch, turn=i
        )
        wrapped: Sink = sink
        if compress != "none":
            layers = layer_maps[target.registry]
            wrapped = CompressingSink(sink, KINDS[compress], layers, locations, signed, ahead)
        try:
            copy(source, wrapped, target.entries, platforms, bar, jobs, roots=roots[i])
            extras_registry.update_fallback_tags(source, client, target.repository, target.entries)
        finally:
            if ahead is not None:
                ahead.done_with(i)
            locations.ended(i)
            events.ended(i)
            saving.now_and_then()
        return sink, wrapped.compressed if isinstance(wrapped, CompressingSink) else 0

    with given_or_own(registries) as clients, _closing(ahead):
        with (progress or _no_progress)() as bar:
            shared = _Summed(bar) if bar is not None else None
            try:
                done = _each_repository(lambda i: push_one(i, clients, shared), len(targets))
            finally:  # what was learnt is kept, whatever stopped the push
                saving.now()
        summary: dict[str, Any] = {"pushed": [], "left_out": left}
        totals = {"pushed": 0, "mounted": 0, "skipped": 0, "bytes": 0, "resumed": 0}
        compressed = 0
        for sink, count in done:
            compressed += count
            summary["pushed"] += sink.pushed
            for key, value in sink.stats.items():
                totals[key] += value
        summary.update(
            blobs_pushed=totals["pushed"],
            blobs_mounted=totals["mounted"],
            blobs_skipped=totals["skipped"],
            uploads_resumed=totals["resumed"],
            bytes_pushed=totals["bytes"],
            layers_compressed=compressed + (ahead.compressed if ahead is not None else 0),
        )
        return summary


T = TypeVar("T")


def _each_repository(push_one: Callable[[int], T], count: int) -> list[T]:
    """``push_one`` of every repository, REPOSITORIES_AT_ONCE at a time; the first to fail
    (in the order of the repositories) stops those not begun and is raised, as an
    interrupt does (the repositories being pushed end first)."""
    if count == 1:
        return [push_one(0)]
    with ThreadPoolExecutor(min(count, REPOSITORIES_AT_ONCE), "push") as pool:
        futures = [pool.submit(push_one, i) for i in range(count)]
        try:
            wait(futures, return_when=FIRST_EXCEPTION)
        finally:  # a failure, or an interrupt (Ctrl-C): those not begun never begin
            for future in futures:
                future.cancel()
    for future in futures:
        if not future.cancelled() and future.exception() is not None:
            raise cast(BaseException, future.exception())
    return [future.result() for future in futures]


class _Saving:
    """The caches a push learns (where blobs are, what layers became) written as the
    repositories end, at most every SAVE_EVERY seconds (each write is the whole file: once
    per repository made a push of 2,000 repositories write 20 GB), and at the end."""

    def __init__(self, caches: list[BlobLocations | LayerMap]) -> None:
        self._caches = caches
        self._lock = threading.Lock()
        self._last = time.monotonic()

    def now_and_then(self) -> None:
        if time.monotonic() - self._last < SAVE_EVERY:
            return
        if self._lock.acquire(blocking=False):  # else another repository is saving them
            try:
                self._save()
            finally:
                self._lock.release()

    def now(self) -> None:
        with self._lock:
            self._save()

    def _save(self) -> None:
        for cache in self._caches:
            cache.save()
        self._last = time.monotonic()


class _InOrder:
    """Each repository's lines in the order of the repositories, as a push of one after
    the other prints them: the first unfinished repository's lines go out as they come,
    the others' are held until it ends."""

    def __init__(self, out: Callable[[str], None], count: int) -> None:
        self._out = out
        self._held: list[list[str]] = [[] for _ in range(count)]
        self._ended = [False] * count
        self._first = 0
        self._lock = threading.Lock()

    def of(self, i: int) -> Callable[[str], None]:
        def said(line: str) -> None:
            with self._lock:
                if i == self._first:
                    self._out(line)
                else:
                    self._held[i].append(line)

        return said

    def ended(self, i: int) -> None:
        with self._lock:
            self._ended[i] = True
            while self._first < len(self._ended) and self._ended[self._first]:
                self._first += 1
                if self._first < len(self._held):
                    for line in self._held[self._first]:
                        self._out(line)
                    self._held[self._first].clear()


class _Summed:
    """One bar for the repositories pushed at once: each copy's plan adds to it."""

    def __init__(self, bar: Progress) -> None:
        self._bar = bar
        self._plan = [0, 0, 0]
        self._sent = 0
        self._lock = threading.Lock()

    def planned(self, images: int, blobs: int, size: int) -> None:
        with self._lock:
            self._plan = [a + b for a, b in zip(self._plan, (images, blobs, size), strict=True)]
            self._bar.planned(*self._plan)  # a bar starts again at 0 when planned
            self._bar.advanced(self._sent)

    def advanced(self, size: int) -> None:
        with self._lock:
            self._sent += size
            self._bar.advanced(size)

    def moved(self, descriptor: Descriptor) -> None:
        with self._lock:
            self._bar.moved(descriptor)


@contextlib.contextmanager
def _closing(ahead: Ahead | None) -> Iterator[None]:
    """Compressing ahead while the repositories are pushed; stopped at the end."""
    if ahead is not None:
        ahead.start()
    try:
        yield
    finally:
        if ahead is not None:
            ahead.close()


@contextlib.contextmanager
def _no_progress() -> Iterator[None]:
    yield None
