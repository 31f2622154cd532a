"""Compressing a push's plain layers ahead of the repositories that upload them.

A push sends a few repositories at once, and each repository's copy compresses its plain
layers when it reaches them: the layers of later repositories would wait for the uploads
before them, with the cores idle while the registry takes the large ones. ``Ahead`` walks
every plain layer of the whole push once, the largest first (so that what is left to upload
when the cores are done is small), on one thread (``blobs.block_compress`` already spreads
each layer over every core), and spools each compressed layer to a temporary file for the
repository that needs it.

A repository that reaches a layer waits for the thread to compress it: one layer at a time
on every core, rather than all at once on the same cores. Only when the thread is stopped,
or waits for its layers to be taken, does a repository compress a layer itself (as without
``Ahead``). At most ``budget`` bytes of plain layers are compressed and not yet taken (at
least one layer): the temporary disk stays bounded. A repository's layers it never took (a
mount, a layer the registry had) are dropped when it ends; everything is dropped, and the
thread stopped, when the push ends. The source is read through a ``VerifyingReader``: a
layer that does not match its digest fails the repository that takes it.
"""

from __future__ import annotations

import contextlib
import io
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import BinaryIO, cast

from archiver.blobs.verify import VerifyingReader
from archiver.errors import IntegrityError
from archiver.model.descriptor import Descriptor
from archiver.model.digest import Digest
from archiver.places.base import Opener, Source

BUDGET = 2 * 1024 * 1024 * 1024
"""Plain bytes compressed ahead and not yet taken (the temporary files hold less)."""


class Stopped(Exception):
    """The push ended while a layer was being compressed ahead."""


class Spool:
    """A temporary file holding one compressed layer, read again per upload attempt."""

    def __init__(self) -> None:
        self.file = cast(BinaryIO, tempfile.NamedTemporaryFile(prefix="archiver-push-"))  # noqa: SIM115
        self.result: Descriptor | None = None

    def __enter__(self) -> Spool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.file.close()

    def reader(self, expected: Descriptor) -> BinaryIO:
        """The spooled bytes to upload (hashed once, as they were written: the registry
        checks the digest again when the upload ends)."""
        if self.result is None or self.result.digest != expected.digest:
            got = "nothing" if self.result is None else str(self.result.digest)
            raise IntegrityError(
                "compressed layer",
                str(expected.digest),
                f"compressing it again made {got} (another compressor version?)",
            )
        return open(self.file.name, "rb")


Compressor = Callable[[Descriptor, Opener, Spool], Descriptor]
"""Compresses a plain layer (opened, verified, by the opener) into a spool."""


@dataclass
class _Slot:
    descriptor: Descriptor
    owner: int
    """The repository (its place in the push) that needs it first."""
    state: str = "new"  # new | running | done | failed | claimed
    spool: Spool | None = None
    error: BaseException | None = None


class Ahead:
    """Plain layers of a push (``order``: each with the repository that needs it first),
    compressed ahead by ``compressor``."""

    def __init__(
        self,
        source: Source,
        order: list[tuple[Descriptor, int]],
        compressor: Compressor,
        budget: int = BUDGET,
    ) -> None:
        self._source = source
        self._compressor = compressor
        self._budget = budget
        self._slots: dict[Digest, _Slot] = {}
        for descriptor, owner in order:
            self._slots.setdefault(descriptor.digest, _Slot(descriptor, owner))
        self._queue = sorted(self._slots.values(), key=lambda slot: -slot.descriptor.size)
        """Largest first: when the cores are done, what is left to upload is small."""
        self._held = 0
        self._ended: set[int] = set()
        """The repositories that ended (pushed at once, they end in any order)."""
        self._stop = False
        self._running = False
        """The thread is there to compress what is asked (started, not stopped or ended)."""
        self._starved = False
        """The thread waits for compressed layers to be taken (``budget``)."""
        self._cond = threading.Condition()
        self._thread = threading.Thread(target=self._run, name="compress-ahead", daemon=True)
        self.compressed = 0

    def start(self) -> None:
        if self._queue:
            self._running = True
            self._thread.start()

    # -- the repositories' side ------------------------------------------------------------

    def take(self, digest: Digest) -> Spool | None:
        """The layer compressed (the caller closes its file), or None: compress it yourself
        (the thread will not)."""
        with self._cond:
            slot = self._slots.get(digest)
            if slot is None:
                return None
            while slot.state == "new" and self._running and not self._starved:
                self._cond.wait()  # its turn comes: every core on one layer at a time
            if slot.state == "new":  # no thread, or it waits for layers to be taken
                slot.state = "claimed"
                return None
            while slot.state == "running":
                self._cond.wait()
            if slot.state == "failed":
                assert slot.error is not None
                raise slot.error
            if slot.state != "done" or slot.spool is None:
                return None  # already taken, or dropped: compress it again
            spool, slot.spool, slot.state = slot.spool, None, "claimed"
            self._held -= slot.descriptor.size
            self._cond.notify_all()
            return spool

    def done_with(self, owner: int) -> None:
        """Repository ``owner`` ended: drop the layers it never took."""
        with self._cond:
            self._ended.add(owner)
            for slot in self._slots.values():
                if slot.owner == owner and slot.state in ("new", "done"):
                    self._drop(slot)
            self._cond.notify_all()

    def close(self) -> None:
        """Stop the thread (a layer being compressed stops at its next read), drop all."""
        with self._cond:
            self._stop = True
            for slot in self._slots.values():
                if slot.state in ("new", "done"):
                    self._drop(slot)
            self._cond.notify_all()
        if self._thread.is_alive():
            self._thread.join()

    def _drop(self, slot: _Slot) -> None:
        if slot.spool is not None:
            with contextlib.suppress(OSError):
                slot.spool.file.close()
            slot.spool = None
            self._held -= slot.descriptor.size
        slot.state = "claimed"

    # -- the thread --------------------------------------------------------------------------

    def _next(self) -> _Slot | None:
        with self._cond:
            while True:
                while self._queue and self._queue[0].state != "new":
                    self._queue.pop(0)
                if self._stop or not self._queue:
                    return None
                slot = self._queue[0]
                if self._held == 0 or self._held + slot.descriptor.size <= self._budget:
                    self._queue.pop(0)
                    slot.state = "running"
                    self._held += slot.descriptor.size
                    return slot
                self._starved = True  # the repositories waiting compress their own now
                self._cond.notify_all()
                self._cond.wait()
                self._starved = False

    def _run(self) -> None:
        try:
            self._compress_all()
        finally:
            with self._cond:
                self._running = False
                self._cond.notify_all()

    def _compress_all(self) -> None:
        while (slot := self._next()) is not None:
            spool = Spool()
            try:
                self._compressor(slot.descriptor, self._opener(slot.descriptor), spool)
            except BaseException as exc:  # handed to the repository that takes it
                spool.close()
                with self._cond:
                    self._held -= slot.descriptor.size
                    slot.state = "claimed" if isinstance(exc, Stopped) else "failed"
                    slot.error = exc
                    self._cond.notify_all()
                continue
            with self._cond:
                slot.spool, slot.state = spool, "done"
                self.compressed += 1
                if self._stop or slot.owner in self._ended:  # no one will take it now
                    self._drop(slot)
                self._cond.notify_all()

    def _opener(self, descriptor: Descriptor) -> Opener:
        def opened() -> BinaryIO:
            origin = self._source.blob_origin(descriptor.digest)
            stream = self._source.open_blob(descriptor.digest)
            reader = VerifyingReader(stream, descriptor.digest, descriptor.size, origin)
            return _Stoppable(reader, self)  # type: ignore[return-value]

        return opened

    @property
    def stopped(self) -> bool:
        return self._stop


class _Stoppable(io.RawIOBase):
    """A reader that fails once the push has ended (so the thread stops at once)."""

    def __init__(self, stream: VerifyingReader, ahead: Ahead) -> None:
        super().__init__()
        self._stream = stream
        self._ahead = ahead

    def readable(self) -> bool:
        return True

    def close(self) -> None:
        self._stream.close()
        super().close()

    def read(self, size: int | None = -1) -> bytes:
        if self._ahead.stopped:
            raise Stopped("the push ended")
        return self._stream.read(size)
