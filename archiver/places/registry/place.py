"""A registry repository as a Source (pull) and a Sink (push), for the one copy engine.

Pull: manifests are asked for with every OCI and Docker media type, by tag or digest, and
checked against the digest asked for and the one the registry states; children of an
index are read from the same repository. Push: each layer is looked up first (HEAD: "Layer
already exists"), mounted from another repository of the registry that has it, or
uploaded (``uploads.Upload``: chunked, resumable); manifests go last, children before
their indexes, so a registry never holds a manifest that names a blob it lacks.
"""

from __future__ import annotations

import contextlib
import io
import threading
from collections.abc import Callable, Iterator
from typing import Any, BinaryIO, cast

import httpx

from archiver.errors import InputError, IntegrityError
from archiver.model import media
from archiver.model.descriptor import Descriptor
from archiver.model.digest import Digest
from archiver.model.documents import Manifest
from archiver.model.image import ImageEntry, ResolvedImage
from archiver.model.json_decode import load_json
from archiver.model.reference import Reference
from archiver.places.base import Opener, Sink, Source
from archiver.places.registry.api import Fetched
from archiver.places.registry.client import RegistryClient
from archiver.places.registry.locations import BlobLocations
from archiver.places.registry.uploads import Upload

_READ = 1024 * 1024


class RegistrySource(Source):
    """The images named by ``refs`` (all on ``client``'s registry)."""

    def __init__(self, client: RegistryClient, refs: list[Reference]) -> None:
        self.client = client
        self.origin = client.registry
        self._documents: dict[Digest, bytes] = {}
        self._repository: dict[Digest, str] = {}
        self._manifests: set[Digest] = set()
        self._entries: dict[Digest, ImageEntry] = {}
        for ref in refs:
            self.add(ref)

    def add(
        self,
        ref: Reference,
        annotations: dict[str, str] | None = None,
        fetched: Fetched | None = None,
    ) -> ImageEntry:
        """List ``ref`` (``fetched``, or fetched now) with an extra's ``annotations``."""
        wanted = str(ref.digest) if ref.digest is not None else (ref.tag or "latest")
        fetched = fetched or self.client.get_manifest(ref.repository, wanted)
        data, stated = fetched.data, fetched.stated_digest
        digest = Digest.from_bytes(data)
        where = f"{self.origin}/{ref.repository}:{wanted}"
        if ref.digest is not None and digest != ref.digest:
            raise IntegrityError(where, str(ref.digest), f"the registry sent {digest}")
        if stated and stated.startswith("sha256:") and stated != str(digest):
            raise IntegrityError(where, stated, f"the manifest's bytes hash to {digest}")
        media_type = fetched.media_type or _media_type_of(data, fetched.url)
        self._remember(digest, data, ref.repository, fetched.url)
        descriptor = Descriptor(media_type, digest, len(data), annotations=annotations or {})
        entry = ImageEntry(descriptor, (ref,) if ref.tag else ())
        previous = self._entries.get(digest)
        self._entries[digest] = previous.merged(entry) if previous else entry
        return self._entries[digest]

    def _remember(self, digest: Digest, data: bytes, repository: str, url: str) -> None:
        """Keep a document and learn its children: they live in the same repository."""
        self._documents[digest] = data
        self._manifests.add(digest)
        self._repository[digest] = repository
        document = load_json(data, url)
        if not isinstance(document, dict):
            return
        for child in document.get("manifests") or []:
            if isinstance(child, dict) and isinstance(child.get("digest"), str):
                with_digest = _digest(child["digest"])
                if with_digest is not None:
                    self._manifests.add(with_digest)
                    self._repository.setdefault(with_digest, repository)
        for blob in [document.get("config"), *(document.get("layers") or [])]:
            if isinstance(blob, dict) and isinstance(blob.get("digest"), str):
                with_digest = _digest(blob["digest"])
                if with_digest is not None:
                    self._repository.setdefault(with_digest, repository)

    def images(self) -> list[ImageEntry]:
        return list(self._entries.values())

    def repository_of(self, digest: Digest) -> str | None:
        return self._repository.get(digest)

    def has_blob(self, digest: Digest) -> bool:
        return digest in self._repository

    def blob_origin(self, digest: Digest) -> str:
        return f"{self.origin}/{self._repository.get(digest, '?')}"

    def open_blob(self, digest: Digest) -> BinaryIO:
        if digest in self._documents:
            return io.BytesIO(self._documents[digest])
        repository = self._repository[digest]
        if digest in self._manifests:
            fetched = self.client.get_manifest(repository, str(digest))
            self._remember(digest, fetched.data, repository, fetched.url)
            return io.BytesIO(fetched.data)
        return cast(BinaryIO, ResponseReader(self.client.open_blob(repository, str(digest))))


class ResponseReader(io.RawIOBase):
    """A streamed HTTP response body as a file to read (never held whole)."""

    def __init__(self, response: httpx.Response) -> None:
        super().__init__()
        self._response = response
        self._chunks = response.iter_raw(_READ)
        self._pending = b""

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        if size is None or size < 0:
            return b"".join([self._pending, *self._chunks])
        while not self._pending:
            try:
                self._pending = next(self._chunks)
            except StopIteration:
                return b""
            except httpx.TransportError as exc:
                raise IntegrityError(
                    str(self._response.url), "", f"the download broke off ({exc})"
                ) from None
        data, self._pending = self._pending[:size], self._pending[size:]
        return data

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def close(self) -> None:
        self._response.close()
        super().close()


Event = Callable[[str], None]
Watch = Callable[[Descriptor], contextlib.AbstractContextManager[Callable[[int], None]]]
"""Per-blob progress: a context around each upload, told of the bytes as they are read."""


@contextlib.contextmanager
def _unwatched(descriptor: Descriptor) -> Iterator[Callable[[int], None]]:
    yield lambda size: None


class _Counting(io.RawIOBase):
    def __init__(self, stream: BinaryIO, seen: Callable[[int], None]) -> None:
        super().__init__()
        self._stream, self._seen = stream, seen

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        data = self._stream.read(-1 if size is None else size)
        self._seen(len(data))
        return data

    def close(self) -> None:
        self._stream.close()
        super().close()


class RegistrySink(Sink):
    """One repository of a registry; ``targets`` maps each root's digest to the tags it gets
    there (none: pushed by digest)."""

    parallel = True

    def __init__(
        self,
        client: RegistryClient,
        repository: str,
        targets: dict[Digest, list[str]],
        known: BlobLocations,
        on_event: Event | None = None,
        mount_hint: Callable[[Digest], str | None] | None = None,
        watch: Watch | None = None,
        turn: int | None = None,
    ) -> None:
        self.client = client
        self.turn = turn
        """This repository's place in a push of several at once (``BlobLocations``)."""
        self._watch = watch
        self.repository = repository
        self.origin = f"{client.registry}/{repository}"
        self._targets = targets
        self._known = known
        self._on_event = on_event or (lambda line: None)
        self._mount_hint = mount_hint
        self._roots: list[ResolvedImage] = []
        self._documents: set[Digest] = set()
        self._announced = False
        self._present: dict[Digest, bool] = {}
        self._layer_lines: list[tuple[Digest, str]] = []
        self._lock = threading.Lock()
        self.pushed: list[dict[str, Any]] = []
        self.stats = {"pushed": 0, "mounted": 0, "skipped": 0, "bytes": 0, "resumed": 0}

    def begin(self, roots: list[ResolvedImage]) -> None:
        self._roots = roots
        for root in roots:
            for descriptor, _ in root.blobs():
                if media.is_manifest(descriptor.media_type) or media.is_index(
                    descriptor.media_type
                ):
                    self._documents.add(descriptor.digest)
        if not self._announced:  # begun again with the documents rewritten (compressed)
            self._on_event(f"The push refers to repository [{self.origin}]")
            self._announced = True

    def has(self, descriptor: Descriptor) -> bool:
        if descriptor.digest in self._documents:
            return True  # manifests and indexes are put in commit, after their blobs
        with self._lock:
            known = self._present.get(descriptor.digest)
        if known is not None:
            return known
        size = self.client.blob_exists(self.repository, str(descriptor.digest), push=True)
        there = size is not None
        with self._lock:
            self._present[descriptor.digest] = there
        if there:
            self._known.add(descriptor.digest, self.repository)
            if self.turn is not None:  # found here: the next repository needing it goes on
                self._known.passed(str(descriptor.digest), self.turn)
            self._count("skipped")
            self._layer_event(descriptor, "Layer already exists")
        return there

    def put_blob(self, descriptor: Descriptor, stream: BinaryIO) -> None:
        self.put_blob_from(descriptor, lambda: stream)

    def put_blob_from(self, descriptor: Descriptor, opener: Opener) -> None:
        with self._known.sending(str(descriptor.digest), self.turn):  # or mounted after
            with (self._watch or _unwatched)(descriptor) as seen:
                upload = Upload(
                    self.client,
                    self.repository,
                    descriptor,
                    lambda: cast(BinaryIO, _Counting(opener(), seen)),
                )
                for source in self._mount_sources(descriptor.digest):
                    if upload.mount(source):
                        self._count("mounted")
                        self._layer_event(descriptor, f"Mounted from {source}")
                        self._known.add(descriptor.digest, self.repository)
                        return
                upload.run()
            self._known.add(descriptor.digest, self.repository)
        self._count("pushed", descriptor.size - upload.resumed_from)
        if upload.resumed_from:
            self._count("resumed")
        self._layer_event(descriptor, "Pushed")

    def _layer_event(self, descriptor: Descriptor, what: str) -> None:
        """docker push's line for a layer (configs go unnamed, as there), held until the
        repository's layers are done, and then said in the order of the images' layers:
        the same lines in the same order whichever upload ends first."""
        if media.is_layer(descriptor.media_type):
            with self._lock:
                self._layer_lines.append(
                    (descriptor.digest, f"{descriptor.digest.hex[:12]}: {what}")
                )

    def _say_layers(self) -> None:
        order: dict[Digest, int] = {}
        for root in self._roots:
            for descriptor, data in root.blobs():
                if data is None:
                    order.setdefault(descriptor.digest, len(order))
        with self._lock:
            lines, self._layer_lines = self._layer_lines, []
        for _, line in sorted(lines, key=lambda item: order.get(item[0], len(order))):
            self._on_event(line)

    def _mount_sources(self, digest: Digest) -> list[str]:
        found = [self._known.find(digest, self.repository)]
        if self._mount_hint is not None:
            found.append(self._mount_hint(digest))
        return [r for r in dict.fromkeys(found) if r and r != self.repository]

    def _count(self, key: str, size: int = 0) -> None:
        with self._lock:
            self.stats[key] += 1
            self.stats["bytes"] += size

    def commit(self) -> None:
        """Manifests after their blobs, indexes after their manifests, tags last."""
        self._say_layers()
        for root in self._roots:
            for descriptor, data in root.blobs():
                if data is None or descriptor.digest not in self._documents:
                    continue
                if descriptor.digest == root.descriptor.digest:
                    continue
                self.client.put_manifest(
                    self.repository, str(descriptor.digest), data, descriptor.media_type
                )
            raw, descriptor = _tagged_document(root)
            named = self._targets.get(root.entry.descriptor.digest) or []
            # a digest "tag" is the document's own digest (which compressing may change)
            tags = [t for t in named if not t.startswith("sha256:")] or [str(descriptor.digest)]
            for tag in tags:
                self.client.put_manifest(self.repository, tag, raw, descriptor.media_type)
                shown = tag if not tag.startswith("sha256:") else "<none>"
                self._on_event(f"{shown}: digest: {descriptor.digest} size: {descriptor.size}")
                self.pushed.append(
                    {
                        "reference": f"{self.origin}:{tag}"
                        if not tag.startswith("sha256:")
                        else f"{self.origin}@{tag}",
                        "digest": str(descriptor.digest),
                        "size": descriptor.size,
                    }
                )

    def abort(self) -> None:
        """Nothing to undo: blobs without a manifest are invisible, and kept for a rerun."""
        self._say_layers()


def _tagged_document(root: ResolvedImage) -> tuple[bytes, Descriptor]:
    """What a tag points to: the root, or, for an index of which only one image is here
    (pulled for one platform), that image's manifest, as docker pushes it; a registry
    refuses an index naming manifests it lacks."""
    if isinstance(root.document, Manifest):
        return root.document.raw, root.descriptor
    here = {node.descriptor.digest for node in root.images}
    here |= {index.descriptor().digest for index in root.indexes}
    named = {child.digest for index in root.indexes for child in index.manifests}
    if named <= here:
        return root.document.raw, root.descriptor
    if len(root.images) == 1:
        node = root.images[0]
        return node.manifest.raw, node.manifest.descriptor()
    raise InputError(
        f"{root.entry.label}: the index names {len(named - here)} manifests that are not "
        f"here; push one platform (--platform) or pull it with --all-platforms"
    )


def _media_type_of(data: bytes, url: str) -> str:
    document = load_json(data, url)
    found = document.get("mediaType") if isinstance(document, dict) else None
    return str(found) if found else media.OCI_MANIFEST


def _digest(text: str) -> Digest | None:
    try:
        return Digest.parse(text)
    except Exception:
        return None
