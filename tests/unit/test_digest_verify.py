import io

import pytest

from archiver.blobs.verify import VerifyingReader, drain
from archiver.errors import InputError, IntegrityError
from archiver.model.digest import Digest

HELLO = Digest.from_bytes(b"hello")


def test_digest_round_trip() -> None:
    text = str(HELLO)
    assert text.startswith("sha256:") and len(text) == 71
    assert Digest.parse(text) == HELLO
    assert HELLO.short() == HELLO.hex[:12]


@pytest.mark.parametrize(
    "text",
    [
        "",
        "sha256",
        "sha256:",
        "sha256:abc",
        "md5:" + "0" * 32,
        "sha256:" + "A" * 64,
        "sha256:" + "g" * 64,
    ],
)
def test_bad_digests_are_refused(text: str) -> None:
    with pytest.raises(InputError):
        Digest.parse(text)


def _read(data: bytes, digest: Digest, size: int) -> bytes:
    reader = VerifyingReader(io.BytesIO(data), digest, size, "test.tar")
    out = b""
    while chunk := reader.read(2):
        out += chunk
    return out


def test_verifying_reader_passes_good_bytes() -> None:
    assert _read(b"hello", HELLO, 5) == b"hello"


def test_verifying_reader_reports_mismatch_with_got_and_want() -> None:
    with pytest.raises(IntegrityError) as err:
        _read(b"hellO", HELLO, 5)
    message = str(err.value)
    assert "test.tar" in message and str(HELLO) in message and "got sha256:" in message


def test_verifying_reader_stops_at_declared_size() -> None:
    with pytest.raises(IntegrityError, match="size exceeded"):
        _read(b"hello world", HELLO, 5)


def test_verifying_reader_reports_truncation() -> None:
    with pytest.raises(IntegrityError, match="truncated: got 3 of 5"):
        _read(b"hel", HELLO, 5)


def test_drain_counts() -> None:
    assert drain(VerifyingReader(io.BytesIO(b"hello"), HELLO, 5, "x")) == 5


BIG = bytes(range(256)) * 4096 * 9  # 9 MiB: chunks large enough to be hashed behind the reads


@pytest.mark.parametrize("chunk", [1024 * 1024, 300 * 1024 + 7])
def test_large_chunks_hashed_behind_keep_their_order(chunk: int) -> None:
    reader = VerifyingReader(io.BytesIO(BIG), Digest.from_bytes(BIG), len(BIG), "big.tar")
    out = []
    while data := reader.read(chunk):
        out.append(data)
    assert b"".join(out) == BIG


def test_large_chunks_with_a_wrong_byte_fail_at_the_end() -> None:
    bad = BIG[:-1] + b"\x00"
    reader = VerifyingReader(io.BytesIO(bad), Digest.from_bytes(BIG), len(BIG), "big.tar")
    with pytest.raises(IntegrityError, match="digest mismatch"):
        drain(reader)


def test_a_reader_closed_halfway_stops_its_hashing() -> None:
    reader = VerifyingReader(io.BytesIO(BIG), Digest.from_bytes(BIG), len(BIG), "big.tar")
    reader.read(1024 * 1024)
    reader.read(1024 * 1024)
    reader.close()
    assert reader._hashing is None
