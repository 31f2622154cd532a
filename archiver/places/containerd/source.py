"""containerd as a source: its image records as entries, blobs read from its content store.

An image record is a full name and the descriptor of a manifest or an index; records of one
target are one entry with all their names. Records whose names are not image references
(containerd accepts any name) are left out.
"""

from __future__ import annotations

from typing import BinaryIO

from archiver.errors import InputError, NotFound
from archiver.model.descriptor import Descriptor
from archiver.model.digest import Digest
from archiver.model.image import ImageEntry
from archiver.model.reference import Reference
from archiver.places.base import Source
from archiver.places.containerd.client import ContainerdClient
from archiver.places.containerd.content import ContentStore
from archiver.places.containerd.images import ImageStore


class ContainerdSource(Source):
    """The images of ``client``'s namespace (only those ``names`` names, when given)."""

    def __init__(self, client: ContainerdClient, names: tuple[str, ...] = ()) -> None:
        self.origin = client.origin
        self._client = client
        self._content = ContentStore(client)
        self._names = [Reference.parse(name) for name in names]
        self._entries: list[ImageEntry] | None = None

    def images(self) -> list[ImageEntry]:
        if self._entries is None:
            self._entries = self._read_entries()
        return list(self._entries)

    def _read_entries(self) -> list[ImageEntry]:
        wanted = [str(ref) for ref in self._names]
        records = ImageStore(self._client).list(wanted or None)
        found = {record.name for record in records}
        missing = [name for name in wanted if name not in found]
        if missing:
            raise NotFound(f"{self.origin}: no image {', '.join(missing)}")
        entries: dict[Digest, ImageEntry] = {}
        for record in records:
            try:
                ref = Reference.parse(record.name)
                descriptor = Descriptor(
                    record.target.media_type, Digest.parse(record.target.digest), record.target.size
                )
            except InputError:
                continue  # not an image reference: a name only containerd gives meaning to
            entry = ImageEntry(descriptor, (ref,))
            known = entries.get(descriptor.digest)
            entries[descriptor.digest] = known.merged(entry) if known else entry
        return list(entries.values())

    def has_blob(self, digest: Digest) -> bool:
        return self._content.has(digest)

    def blob_origin(self, digest: Digest) -> str:
        return self.origin

    def open_blob(self, digest: Digest) -> BinaryIO:
        if not self._content.has(digest):
            raise NotFound(f"{self.origin}: blob {digest} is not in its content store")
        return self._content.open(digest)
