"""Images fetched for a bundle at once: up to ``jobs`` transfers, each fetching its share of
the images from their registries into a spool bundle of its own (its layers compressed
there, on a thread of its own), before the one transfer that writes OUT from the earlier
OUT and the spools copies their frames as they are (unread, not compressed again).

Images of one repository go to the same spool (they share layers most often: each layer
is fetched once); the groups are balanced by their number of images. The spools live in a
folder beside OUT (the same file system) and are removed at the end, whatever happens.
What it costs: the new layers are written twice (to a spool, then to OUT), read once.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import threading
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from archiver.blobs.zstd_writer import ZstdOptions
from archiver.engine.concurrent import balanced, connected
from archiver.engine.sync_plan import Wanted, on_threads
from archiver.places.registry.registries import Registries
from archiver.places.transports import Place

if TYPE_CHECKING:
    from archiver.engine.copy import Progress
    from archiver.engine.transfer import TransferRequest


def share_out(items: list[Wanted], jobs: int) -> list[list[Wanted]]:
    """``items`` in up to ``jobs`` shares, the images of one repository in one share."""
    groups = connected([[item.ref.name] for item in items])
    return [[items[i] for i in share] for share in balanced(groups, len, jobs)]


@contextlib.contextmanager
def spooled(
    shared: list[list[Wanted]],
    request_for: Callable[[list[Wanted], Place], TransferRequest],
    output: str,
    registries: Registries,
    on_event: Callable[[str], None],
) -> Iterator[list[Place]]:
    """Each share fetched into a spool bundle of its own, all at once; the spools' places
    (removed when the block ends). ``request_for`` makes the transfer of one share."""
    from archiver.engine.transfer import transfer

    folder = tempfile.mkdtemp(prefix=".sync-", dir=os.path.dirname(os.path.abspath(output)))
    lock = threading.Lock()
    try:
        places = [Place(os.path.join(folder, f"{i}.tar.zst")) for i in range(len(shared))]

        def fetch(i: int) -> None:
            transfer(request_for(shared[i], places[i]), _Quiet(), registries)
            with lock:
                for item in shared[i]:
                    on_event(f"Fetched {item.name}")

        on_threads(fetch, list(range(len(shared))), len(shared))
        yield places
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def threads_each(zstd: ZstdOptions | None, spools: int) -> ZstdOptions:
    """The zstd options of each of ``spools`` written at once: the threads shared out."""
    given = zstd or ZstdOptions()
    return replace(given, threads=max(1, given.threads // max(1, spools)))


class _Quiet:
    """A spool's transfer says nothing (OUT's transfer draws the bars)."""

    def progress(self, kind: str) -> contextlib.AbstractContextManager[Progress]:
        return contextlib.nullcontext(_NoProgress())

    def daemon_messages(
        self,
    ) -> contextlib.AbstractContextManager[Callable[[dict[str, Any]], None] | None]:
        return contextlib.nullcontext(None)

    def blob_watch(self) -> Any:
        return None

    def event(self, line: str) -> None:
        pass

    def notice(self, line: str) -> None:
        pass

    def loaded(self, lines: list[str]) -> None:
        pass


class _NoProgress:
    def planned(self, images: int, blobs: int, size: int) -> None:
        pass

    def advanced(self, size: int) -> None:
        pass

    def moved(self, descriptor: Any) -> None:
        pass
