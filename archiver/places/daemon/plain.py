"""A compressed layer as the plain tar a daemon can read: decompressed once into a
temporary file (a tar entry's size comes before its bytes), checked against its diff_id."""

from __future__ import annotations

import contextlib
import hashlib
import tempfile
from collections.abc import Iterator
from typing import BinaryIO, cast

from archiver.blobs import limits
from archiver.blobs.compression import DECOMPRESSION_ERRORS, open_decompressed
from archiver.blobs.verify import drain
from archiver.errors import IntegrityError
from archiver.model import media
from archiver.model.descriptor import Descriptor
from archiver.model.digest import Digest


@contextlib.contextmanager
def plain_layer(
    descriptor: Descriptor, diff_id: Digest, stream: BinaryIO, origin: str
) -> Iterator[tuple[BinaryIO, int]]:
    """The decompressed bytes of the layer ``stream`` holds (read to its end, so its own
    digest is checked) and their size; IntegrityError when they do not hash to ``diff_id``."""
    kind = media.layer_compression(descriptor.media_type) or "gzip"
    hasher = hashlib.sha256()
    size = 0
    with tempfile.TemporaryFile(prefix="archiver-plain-") as spool:
        try:
            with open_decompressed(stream, kind, origin) as plain:
                while chunk := plain.read(limits.COPY_CHUNK):
                    hasher.update(chunk)
                    spool.write(chunk)
                    size += len(chunk)
                drain(stream)  # to its end: where its digest is checked
        except DECOMPRESSION_ERRORS as exc:
            if isinstance(exc, IntegrityError):
                raise
            raise IntegrityError(
                origin, str(descriptor.digest), f"the {kind} layer does not decompress: {exc}"
            ) from None
        if f"sha256:{hasher.hexdigest()}" != str(diff_id):
            raise IntegrityError(
                origin,
                str(descriptor.digest),
                f"decompressed, it hashes to sha256:{hasher.hexdigest()}, its diff_id is {diff_id}",
            )
        spool.seek(0)
        yield cast(BinaryIO, spool), size
