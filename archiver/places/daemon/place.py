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
from collections.abc import Callable, Iterator
from typing import Any, BinaryIO

from archiver.blobs.seekable import ZstdOptions
from archiver.blobs.tarsafe import TarTree
from archiver.engine import catalog
from archiver.engine.graph import Root
from archiver.errors import ArchiverError, PeerError
from archiver.model.descriptor import Descriptor
from archiver.model.digest import Digest, chain_ids
from archiver.places import inventory
from archiver.places.archive import ArchiveSource
from archiver.places.base import ImageEntry
from archiver.places.daemon.client import DaemonClient, Upload
from archiver.places.layout_writer import TarLayoutSink


def skippable_layers(roots: list[Root], chains: set[str]) -> set[Digest]:
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
    """Load images into a daemon: a hybrid tar streamed onto the connection of /images/load."""

    def __init__(
        self,
        client: DaemonClient,
        send_known_layers: bool = False,
        on_message: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        self.origin = f"docker-daemon ({client.host})"
        self._client = client
        self._on_message = on_message
        self._send_all = send_known_layers
        self.skipped: set[Digest] = set()
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
        if not self._send_all:
            held = set(inventory.of_daemon(self._client).chains)
            self.skipped = skippable_layers(roots, held)
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


@contextlib.contextmanager
def open_daemon_source(
    client: DaemonClient, names: list[str], options: ZstdOptions | None = None
) -> Iterator[ArchiveSource]:
    """Images from the daemon: ``GET /images/get`` read as it streams, every member hashed
    and compressed into zstd frames of its own in a temporary file while the daemon is still
    writing (docker writes manifest.json last, so nothing can be written out before the
    end); a bundle made with the same ``options`` then copies those frames as they are."""
    options = options or ZstdOptions()
    origin = f"docker-daemon:{','.join(names)}"
    with tempfile.TemporaryFile(prefix="archiver-save-") as spool, client.get(names) as stream:
        try:
            tree = TarTree.from_stream(stream, origin, spool, options)
        except (http.client.HTTPException, ConnectionError, TimeoutError) as exc:
            raise PeerError(f"{origin}: the daemon's stream broke off ({exc!r})") from None
        source = ArchiveSource(tree, spool_options=options)
        source.reorder(_asked_order(source, names))
        yield source


def _asked_order(source: ArchiveSource, names: list[str]) -> Callable[[ImageEntry], int]:
    """Images by the first name that asks for them: docker's tar lists them in no stable
    order (a Go map's, in docker 20.10), and the same save should give the same bundle."""
    position: dict[Digest, int] = {}
    records = catalog.records(source)
    for index, name in enumerate(names):
        with contextlib.suppress(ArchiverError):  # the daemon had it; a name we read otherwise
            for record in catalog.find_all(records, name, source.origin):
                position.setdefault(record.entry.descriptor.digest, index)
    return lambda entry: position.get(entry.descriptor.digest, len(names))
