"""Hard caps on every in-memory read, so a hostile archive cannot make us allocate gigabytes."""

from __future__ import annotations

from typing import BinaryIO

from archiver.errors import InputError

MAX_DOCUMENT = 4 * 1024 * 1024
"""A manifest, an index or an image config."""
MAX_ARCHIVE_INDEX = 16 * 1024 * 1024
"""``manifest.json``, ``index.json``, ``repositories`` of an archive."""
MAX_SMALL_FILE = 64 * 1024
"""``oci-layout`` and similar marker files."""
MAX_TAR_MEMBERS = 1_000_000
"""Members indexed in one tar."""
MAX_MEMBER_HEADERS = 64 * 1024
"""The header blocks (pax records and long names included) before one member of a bundle
placed by its member index, and the directories' between it and the file before it."""
MAX_INDEX_DEPTH = 8
"""Nesting of indexes inside indexes."""
MAX_DOCUMENTS = 10_000
"""Distinct indexes, manifests and configs below one top-level image."""
MAX_DOCUMENTS_SIZE = 256 * 1024 * 1024
"""Their bytes in all (each is read whole and kept while the image is walked)."""
COPY_CHUNK = 1024 * 1024
"""Bytes moved per read when streaming a blob."""


def read_capped(stream: BinaryIO, limit: int, origin: str) -> bytes:
    """Read the whole stream, refusing more than ``limit`` bytes."""
    data = stream.read(limit + 1)
    if len(data) > limit:
        raise InputError(f"{origin}: larger than the {limit}-byte limit for this kind of document")
    return data
