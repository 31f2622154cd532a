"""Saving images from a Docker daemon: asked for a few at once, merged into one source."""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Callable, Iterator

from archiver.blobs.zstd_writer import ZstdOptions
from archiver.engine import catalog
from archiver.engine.concurrent import MOST_AT_ONCE, balanced, connected, on_threads
from archiver.engine.merge import MultiSource
from archiver.errors import ArchiverError
from archiver.model.digest import Digest
from archiver.model.image import ImageEntry
from archiver.places.archive import ArchiveSource
from archiver.places.base import Source
from archiver.places.daemon.client import DaemonClient
from archiver.places.daemon.source import saved


@contextlib.contextmanager
def open_daemon_source(
    client: DaemonClient, names: list[str], options: ZstdOptions | None = None
) -> Iterator[ArchiveSource | MultiSource]:
    """Images from the daemon, read into zstd frames as it streams them (see
    ``places.daemon.source``). Images that share no layer are asked for at once (see
    ``concurrent_saves``)."""
    options = options or ZstdOptions()
    groups = concurrent_saves(client, names)
    with contextlib.ExitStack() as stack:
        sources = _spooled(client, groups, options, stack)
        source = sources[0] if len(sources) == 1 else MultiSource(sources)
        source.reorder(_asked_order(source, names))
        yield source


def concurrent_saves(
    client: DaemonClient, names: list[str], most: int = MOST_AT_ONCE
) -> list[list[str]]:
    """``names`` in up to ``most`` saves the daemon makes at once (it writes each image's
    layers out before it sends the first byte): images sharing a layer are in one save (no
    layer is written twice), balanced by their size. A name the daemon lacks is NotFound,
    before anything is saved."""
    details = [client.inspect(name) for name in names]
    keys = [[image["Id"], *((image.get("RootFS") or {}).get("Layers") or [])] for image in details]

    def weight(indexes: list[int]) -> int:
        return sum({details[i]["Id"]: details[i].get("Size") or 0 for i in indexes}.values())

    return [[names[i] for i in b] for b in balanced(connected(keys), weight, most)]


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
        try:
            results[i] = saved(client, groups[i], spools[i], options)
        except BaseException as exc:  # raised below, in the caller's thread
            results[i] = exc

    if len(groups) == 1:
        run(0)
    else:
        on_threads("docker-save", len(groups), run)
    for result in results:
        if isinstance(result, BaseException):
            raise result
    return [r for r in results if isinstance(r, ArchiveSource)]


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
