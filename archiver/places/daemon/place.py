"""The Docker daemon as a source (``GET /images/get``) and a sink (``POST /images/load``).

The sink streams a hybrid tar made on the fly by the same TarLayoutSink every archive uses
straight onto the connection to the daemon; it leaves out the layer bodies whose layer
chains the daemon already holds (docker load looks a chain up before it opens the layer's file).
"""

from __future__ import annotations

import contextlib
import http.client
import tempfile
import threading
from collections.abc import Callable, Collection, Hashable, Iterator, Sequence
from dataclasses import fields
from typing import Any, BinaryIO

from archiver.blobs.tar_tree import TarTree
from archiver.blobs.zstd_writer import ZstdOptions
from archiver.engine import catalog
from archiver.engine.copy import CopyReport, Progress, copy, plan
from archiver.engine.graph import Root, resolve
from archiver.errors import ArchiverError, PeerError
from archiver.model.descriptor import Descriptor
from archiver.model.digest import Digest, chain_ids
from archiver.model.platform import Platform
from archiver.places import inventory
from archiver.places.archive import ArchiveSource
from archiver.places.base import ImageEntry, Source
from archiver.places.daemon.client import DaemonClient, Upload
from archiver.places.layout_writer import TarLayoutSink
from archiver.places.multi import MultiSource


def skippable_layers(roots: list[Root], chains: Collection[str]) -> set[Digest]:
    """Layer blobs every image using them can do without: the daemon has their chain."""
    skip: set[Digest] = set()
    needed: set[Digest] = set()
    for root in roots:
        for node in root.images:
            if node.config is None:
                continue
            ids = chain_ids(node.config.diff_ids)
            for layer, chain in zip(node.manifest.layers, ids, strict=True):
                (skip if chain in chains else needed).add(layer.digest)
    return skip - needed


class DaemonSink:
    """Load images into a daemon: a hybrid tar streamed onto the connection of /images/load,
    without the layers whose chains are ``held`` (all are sent when none are given).
    ``before_end`` is called when every blob is sent, before the tar's end lets the daemon
    start loading (loads side by side end together)."""

    def __init__(
        self,
        client: DaemonClient,
        held: Collection[str] = (),
        on_message: Callable[[dict[str, Any]], None] | None = None,
        before_end: Callable[[], object] | None = None,
    ) -> None:
        self.origin = f"docker-daemon ({client.host})"
        self._client = client
        self._on_message = on_message
        self._held = held
        self._before_end = before_end
        self.skipped: set[Digest] = set()
        self.ended = False
        """Every blob was sent: the daemon was let load (what it says now is about that)."""
        self.messages: list[dict[str, Any]] = []
        self._error: BaseException | None = None
        self._roots: list[Root] = []
        self._upload: Upload | None = None
        self._thread: threading.Thread | None = None
        self._tar: TarLayoutSink | None = None

    def _start(self) -> TarLayoutSink:
        """Open the stream to the daemon at the first byte to send (so a copy that stops
        before, a delta missing its base, say, sends the daemon nothing at all)."""
        if self._tar is None:
            self._upload = self._client.load(quiet=self._on_message is None)
            self._tar = TarLayoutSink(self._upload, docker=True)  # type: ignore[arg-type]
            self._thread = threading.Thread(target=self._post, name="docker-load", daemon=True)
            self._thread.start()
            tar = self._tar
            self._write(lambda: tar.begin(self._roots))
        return self._tar

    def _post(self) -> None:
        """The daemon's response, read while the tar is still being sent."""
        assert self._upload is not None
        try:
            for message in self._upload.messages():
                self.messages.append(message)
                if self._on_message is not None:
                    self._on_message(message)
        except BaseException as exc:  # reported by commit/abort in the caller's thread
            self._error = exc

    def _daemon_error(self) -> ArchiverError | None:
        if isinstance(self._error, ArchiverError):
            return self._error
        if self._error is not None:
            return PeerError(f"Docker daemon: load failed: {self._error}")
        for message in self.messages:
            detail = message.get("errorDetail") or {}
            text = detail.get("message") or message.get("error")
            if text:
                return PeerError(f"Docker daemon: load failed: {text}")
        return None

    def begin(self, roots: list[Root]) -> None:
        self.skipped = skippable_layers(roots, self._held)
        self._roots = roots
        self._documents = {d.digest for root in roots for d, data in root.blobs() if data}

    def has(self, descriptor: Descriptor) -> bool:
        # documents go with the head, written when the stream opens
        return descriptor.digest in self.skipped or descriptor.digest in self._documents

    def put_blob(self, descriptor: Descriptor, stream: BinaryIO) -> None:
        tar = self._start()
        self._write(lambda: tar.put_blob(descriptor, stream))

    def _write(self, action: Any) -> None:
        try:
            action()
        except (ConnectionError, TimeoutError):  # the daemon stopped reading: say why
            self._upload = None
            if self._thread is not None:
                self._thread.join()
            raise self._daemon_error() or PeerError(
                "Docker daemon closed the load stream"
            ) from None

    def commit(self) -> None:
        tar = self._start()
        if self._before_end is not None:
            self._before_end()
        self.ended = True
        self._write(tar.commit)
        upload = self._upload
        if upload is not None:
            self._write(upload.close)
        assert self._thread is not None
        self._thread.join()
        error = self._daemon_error()
        if error is not None:
            raise error

    def abort(self) -> None:
        """Cut the stream short: the daemon sees a body that never ends and loads nothing
        (and nothing at all when the stream never opened)."""
        if self._upload is not None:
            self._upload.abort()
        if self._thread is not None:
            self._thread.join(timeout=60)

    def loaded(self) -> list[str]:
        """The daemon's own report lines (``Loaded image: ...``)."""
        return [m["stream"].strip() for m in self.messages if m.get("stream", "").strip()]


MOST_LOADS = 3
"""Loads sent to a daemon side by side. It registers the layers of one load one after the
other, of several loads at once: docker loading three images of 10-30 MB of layers took
0.62 s in one load and 0.50 s in three at once, on 2 cores."""


def load_images(
    client: DaemonClient,
    source: Source,
    entries: list[ImageEntry],
    platforms: list[Platform] | None = None,
    progress: Progress | None = None,
    on_message: Callable[[dict[str, Any]], None] | None = None,
    notice: Callable[[str], None] | None = None,
) -> tuple[CopyReport, list[str]]:
    """Load ``entries`` into the daemon without the layers it holds, in up to MOST_LOADS
    loads at once (see ``side_by_side``); the daemon's ``Loaded image`` lines, load by load.

    Loads end together: each sends all its blobs, then waits for the others before the end
    of its tar lets the daemon load it, so a corrupt blob found in any load stops them all
    before the daemon tags anything. A daemon that refuses an archive without the layers it
    holds is sent that load again, whole (``notice`` says so)."""
    roots = [resolve(source, entry, platforms) for entry in entries]
    held = inventory.of_daemon(client).chains
    loads = side_by_side(roots, held)
    if len(loads) <= 1:
        return _load(client, source, roots, held, progress, on_message, notice)
    skipped = skippable_layers(roots, held)
    if progress is not None:
        todo = [d for d, data in plan(roots) if data is None and d.digest not in skipped]
        progress.planned(len(roots), len(todo), sum(d.size for d in todo))
        progress = _PlannedAlready(progress)
    together = _Together(len(loads))
    results: list[tuple[CopyReport, list[str]] | None] = [None] * len(loads)

    def run(i: int) -> None:
        try:
            results[i] = _load(
                client, source, loads[i], held, progress, on_message, notice, together
            )
        except BaseException as exc:  # raised below, in the caller's thread
            together.failed(exc)

    try:
        _on_threads("docker-load", len(loads), run)
    except BaseException as exc:  # interrupted: loads still sending never end their tar
        together.failed(exc)
        raise
    if together.error is not None:
        raise together.error
    done = [r for r in results if r is not None]
    report = CopyReport(
        **{f.name: sum(getattr(r, f.name) for r, _ in done) for f in fields(CopyReport)}
    )
    report.blobs_skipped = len(skipped)  # once, not once per load
    return report, [line for _, lines in done for line in lines]


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
    roots: list[Root],
    held: Collection[str],
    progress: Progress | None,
    on_message: Callable[[dict[str, Any]], None] | None,
    notice: Callable[[str], None] | None,
    together: _Together | None = None,
) -> tuple[CopyReport, list[str]]:
    entries = [root.entry for root in roots]
    sink = DaemonSink(client, held, on_message, together.wait if together else None)
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
        sink = DaemonSink(client, on_message=on_message)
        report = copy(source, sink, entries, progress=progress, roots=roots)
    return report, sink.loaded()


def side_by_side(
    roots: list[Root], held: Collection[str], most: int = MOST_LOADS
) -> list[list[Root]]:
    """The images in up to ``most`` loads a daemon can take at once. Images sharing a layer
    it lacks go in one load (no layer is sent twice, no load needs another's layers), as do
    the images of one config, and the images it lacks no layer of; the loads are balanced by
    the bytes they send (the heaviest first, each into the lightest load so far)."""
    skip = skippable_layers(roots, held)
    sends = [
        {d.digest: d.size for d, data in root.blobs() if data is None and d.digest not in skip}
        for root in roots
    ]
    keys = [
        [*sends[i], *(node.manifest.config.digest for node in root.images)] if sends[i] else [None]
        for i, root in enumerate(roots)
    ]

    def weight(indexes: list[int]) -> int:
        return sum({d: size for i in indexes for d, size in sends[i].items()}.values())

    return [[roots[i] for i in b] for b in _balanced(_connected(keys), weight, most)]


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


@contextlib.contextmanager
def open_daemon_source(
    client: DaemonClient, names: list[str], options: ZstdOptions | None = None
) -> Iterator[ArchiveSource | MultiSource]:
    """Images from the daemon: ``GET /images/get`` read as it streams, every member hashed
    and compressed into zstd frames of its own in a temporary file while the daemon is still
    writing (docker writes manifest.json last, so nothing can be written out before the
    end); a bundle made with the same ``options`` then copies those frames as they are.
    Images that share no layer are asked for side by side (see ``saved_side_by_side``)."""
    options = options or ZstdOptions()
    groups = saved_side_by_side(client, names)
    with contextlib.ExitStack() as stack:
        sources = _spooled(client, groups, options, stack)
        source = sources[0] if len(sources) == 1 else MultiSource(sources)
        source.reorder(_asked_order(source, names))
        yield source


def saved_side_by_side(
    client: DaemonClient, names: list[str], most: int = MOST_LOADS
) -> list[list[str]]:
    """``names`` in up to ``most`` saves the daemon makes at once (it writes each image's
    layers out before it sends the first byte): images sharing a layer are in one save (no
    layer is written twice), balanced by their size. A name the daemon lacks is NotFound,
    before anything is saved."""
    details = [client.inspect(name) for name in names]
    keys = [[image["Id"], *((image.get("RootFS") or {}).get("Layers") or [])] for image in details]

    def weight(indexes: list[int]) -> int:
        return sum({details[i]["Id"]: details[i].get("Size") or 0 for i in indexes}.values())

    return [[names[i] for i in b] for b in _balanced(_connected(keys), weight, most)]


def _connected(keys: Sequence[Sequence[Hashable]]) -> list[list[int]]:
    """The indexes of ``keys`` grouped: two sharing a key, directly or through others, are
    in one group."""
    group = list(range(len(keys)))

    def find(i: int) -> int:
        while group[i] != i:
            group[i] = group[group[i]]
            i = group[i]
        return i

    first: dict[Hashable, int] = {}
    for i, own in enumerate(keys):
        for key in own:
            group[find(i)] = find(first.setdefault(key, i))
    members: dict[int, list[int]] = {}
    for i in range(len(keys)):
        members.setdefault(find(i), []).append(i)
    return list(members.values())


def _balanced(
    groups: list[list[int]], weight: Callable[[list[int]], int], most: int
) -> list[list[int]]:
    """Groups (of indexes) into up to ``most`` bins, the heaviest first, each into the
    lightest bin so far; bins in the order of their first index, indexes in order."""
    bins: list[list[int]] = [[] for _ in range(min(most, len(groups)))]
    loads = [0] * len(bins)
    for indexes in sorted(groups, key=weight, reverse=True):
        lightest = loads.index(min(loads))
        bins[lightest] += indexes
        loads[lightest] += weight(indexes)
    return [sorted(b) for b in sorted(bins, key=min) if b]


def _spooled(
    client: DaemonClient,
    groups: list[list[str]],
    options: ZstdOptions,
    stack: contextlib.ExitStack,
) -> list[ArchiveSource]:
    """One source per group, read from the daemon at the same time; the first error."""
    spools = [
        stack.enter_context(tempfile.TemporaryFile(prefix="archiver-save-"))  # noqa: SIM115
        for _ in groups
    ]
    results: list[ArchiveSource | BaseException | None] = [None] * len(groups)

    def run(i: int) -> None:
        origin = f"docker-daemon:{','.join(groups[i])}"
        try:
            with client.get(groups[i]) as stream:
                tree = TarTree.from_stream(stream, origin, spools[i], options)
            results[i] = ArchiveSource(tree, spool_options=options)
        except (http.client.HTTPException, ConnectionError, TimeoutError) as exc:
            results[i] = PeerError(f"{origin}: the daemon's stream broke off ({exc!r})")
        except BaseException as exc:  # raised below, in the caller's thread
            results[i] = exc

    if len(groups) == 1:
        run(0)
    else:
        _on_threads("docker-save", len(groups), run)
    for result in results:
        if isinstance(result, BaseException):
            raise result
    return [r for r in results if isinstance(r, ArchiveSource)]


def _on_threads(name: str, count: int, run: Callable[[int], None]) -> None:
    """``run(0)`` ... ``run(count - 1)`` at once, each on a thread of its own; back when all
    are (a thread that outlives an interrupted caller does not hold the process up)."""
    threads = [
        threading.Thread(target=run, args=(i,), name=f"{name}-{i}", daemon=True)
        for i in range(count)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def _asked_order(source: Source, names: list[str]) -> Callable[[ImageEntry], int]:
    """Images by the first name that asks for them: docker's tar lists them in no stable
    order (a Go map's, in docker 20.10), and the same save should give the same bundle."""
    position: dict[Digest, int] = {}
    records = catalog.records(source)
    for index, name in enumerate(names):
        with contextlib.suppress(ArchiverError):  # the daemon had it; a name we read otherwise
            for record in catalog.find_all(records, name, source.origin):
                position.setdefault(record.entry.descriptor.digest, index)
    return lambda entry: position.get(entry.descriptor.digest, len(names))
