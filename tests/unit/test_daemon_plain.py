"""A zstd or gzip layer made plain for a daemon: decompressed, checked against its diff_id
and its own digest, one IntegrityError line otherwise."""

from __future__ import annotations

import gzip
import hashlib
import io

import pytest
import zstandard

from archiver.blobs.verify import VerifyingReader
from archiver.errors import IntegrityError
from archiver.model import media
from archiver.model.descriptor import Descriptor
from archiver.model.digest import Digest
from archiver.places.daemon.plain import plain_layer

TAR = b"plain layer bytes " * 10_000
DIFF_ID = Digest.parse("sha256:" + hashlib.sha256(TAR).hexdigest())


def _verified(packed: bytes, media_type: str) -> tuple[Descriptor, VerifyingReader]:
    descriptor = Descriptor(media_type, Digest.from_bytes(packed), len(packed))
    reader = VerifyingReader(io.BytesIO(packed), descriptor.digest, descriptor.size, "test")
    return descriptor, reader


@pytest.mark.parametrize(
    ("packed", "media_type"),
    [
        (zstandard.ZstdCompressor().compress(TAR), media.OCI_LAYER_ZSTD),
        (gzip.compress(TAR), media.OCI_LAYER_GZIP),
    ],
)
def test_plain_layer_gives_the_tar_and_its_size(packed: bytes, media_type: str) -> None:
    descriptor, reader = _verified(packed, media_type)
    with plain_layer(descriptor, DIFF_ID, reader, "test") as (plain, size):  # type: ignore[arg-type]
        assert size == len(TAR) and plain.read() == TAR


def test_a_wrong_diff_id_or_broken_layer_is_one_integrity_error() -> None:
    packed = zstandard.ZstdCompressor().compress(TAR)
    descriptor, reader = _verified(packed, media.OCI_LAYER_ZSTD)
    other = Digest.parse("sha256:" + "0" * 64)
    with (
        pytest.raises(IntegrityError, match="its diff_id is sha256:000"),
        plain_layer(descriptor, other, reader, "test"),  # type: ignore[arg-type]
    ):
        pass
    descriptor, reader = _verified(b"\x28\xb5\x2f\xfd" + b"garbage" * 10, media.OCI_LAYER_ZSTD)
    with (
        pytest.raises(IntegrityError, match="does not decompress"),
        plain_layer(descriptor, DIFF_ID, reader, "test"),  # type: ignore[arg-type]
    ):
        pass
