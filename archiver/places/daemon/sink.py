"""The Docker daemon as a sink: ``POST /images/load`` fed a hybrid tar as it is made.

The tar is made by the same TarLayoutSink every archive uses and goes straight onto the
connection to the daemon; the layer bodies whose layer chains the daemon already holds are
left out (docker load looks a chain up before it opens the layer's file). Layers in a
compression the daemon cannot read (zstd, before Docker 23) are decompressed on the way and
named by their diff_id in ``manifest.json``: the daemon gets plain tars, the image ID (the
config's digest) is the same.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Collection
from typing import Any, BinaryIO

from archiver.errors import ArchiverError, PeerError
from archiver.model import media
from archiver.model.descriptor import Descriptor
from archiver.model.digest import Digest
from archiver.model.image import ResolvedImage
from archiver.places.base import Sink
from archiver.places.daemon.client import DaemonClient, Upload
from archiver.places.daemon.plain import plain_layer
from archiver.places.layout_writer import TarLayoutSink


class DaemonSink(Sink):
    """Load images into a daemon: a hybrid tar streamed onto the connection of /images/load,
    without the layer bodies in ``skip`` (the daemon holds their chains: the engine says
    which, see ``model.holdings``; all are sent when none are given).
    ``before_end`` is called when every blob is sent, before the tar's end lets the daemon
    start loading (loads side by side end together)."""

    def __init__(
        self,
        client: DaemonClient,
        skip: Collection[Digest] = (),
        on_message: Callable[[dict[str, Any]], None] | None = None,
        before_end: Callable[[], object] | None = None,
        decompress: Collection[str] = (),
    ) -> None:
        self.origin = f"docker-daemon ({client.host})"
        self._client = client
        self._on_message = on_message
        self._before_end = before_end
        self.skipped = frozenset(skip)
        self._decompress = frozenset(decompress)
        self._plain: dict[Digest, Digest] = {}
        """Layers the daemon cannot read as they are: sent as plain tars, by diff_id."""
        self.ended = False
        """Every blob was sent: the daemon was let load (what it says now is about that)."""
        self.messages: list[dict[str, Any]] = []
        self._error: BaseException | None = None
        self._roots: list[ResolvedImage] = []
        self._upload: Upload | None = None
        self._thread: threading.Thread | None = None
        self._tar: TarLayoutSink | None = None

    def _start(self) -> TarLayoutSink:
        """Open the stream to the daemon at the first byte to send (so a copy that stops
        before, a delta missing its base, say, sends the daemon nothing at all)."""
        if self._tar is None:
            self._upload = self._client.load(quiet=self._on_message is None)
            self._tar = TarLayoutSink(
                self._upload,  # type: ignore[arg-type]
                docker=True,
                renamed=self._plain,
            )
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

    def begin(self, roots: list[ResolvedImage]) -> None:
        self._roots = roots
        self._documents = {d.digest for root in roots for d, data in root.blobs() if data}
        for root in roots:
            for node in root.images:
                if node.config is None:
                    continue
                for layer, diff_id in zip(node.manifest.layers, node.config.diff_ids, strict=True):
                    if media.layer_compression(layer.media_type) in self._decompress:
                        self._plain[layer.digest] = diff_id

    def has(self, descriptor: Descriptor) -> bool:
        # documents go with the head, written when the stream opens
        return descriptor.digest in self.skipped or descriptor.digest in self._documents

    def put_blob(self, descriptor: Descriptor, stream: BinaryIO) -> None:
        diff_id = self._plain.get(descriptor.digest)
        if diff_id is not None:
            with plain_layer(descriptor, diff_id, stream, self.origin) as (plain, size):
                tar = self._start()
                renamed = Descriptor(media.OCI_LAYER_TAR, diff_id, size)
                self._write(lambda: tar.put_blob(renamed, plain))
            return
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
        """The daemon's own report lines (``Loaded image: ...``), one per image: podman
        says ``Loaded image: a,b,c`` of all the images of a load in one."""
        lines: list[str] = []
        for message in self.messages:
            text = message.get("stream", "")
            for line in text.splitlines() if isinstance(text, str) else []:
                line = line.strip()
                prefix, _, names = line.partition(": ")
                if prefix in ("Loaded image", "Loaded image(s)") and "," in names:
                    lines += [f"Loaded image: {name.strip()}" for name in names.split(",")]
                elif line:
                    lines.append(line)
        return list(dict.fromkeys(lines))
