"""The per-registry cache files (the diff_id -> compressed descriptor map, the blob
locations): round trip, and a file that is corrupt or too large is a cache started
afresh, never an error."""

from __future__ import annotations

from pathlib import Path

import pytest

from archiver.engine.layer_map import LayerMap
from archiver.model import media
from archiver.model.descriptor import Descriptor
from archiver.model.digest import Digest
from archiver.places.registry import cache_file
from archiver.places.registry.locations import BlobLocations

DIFF_ID = Digest.parse("sha256:" + "a" * 64)
GZIPPED = Descriptor(media.OCI_LAYER_GZIP, Digest.parse("sha256:" + "b" * 64), 123)


@pytest.fixture(autouse=True)
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


def test_round_trip_per_registry_and_compression() -> None:
    first = LayerMap.load("r.example:5000")
    first.add("gzip", DIFF_ID, GZIPPED)
    first.save()
    again = LayerMap.load("r.example:5000")
    assert again.get("gzip", DIFF_ID) == GZIPPED
    assert again.get("zstd", DIFF_ID) is None
    assert LayerMap.load("other.example").get("gzip", DIFF_ID) is None
    assert (
        oct(cache_file.cache_path("registry-layers", "r.example:5000").stat().st_mode & 0o777)
        == "0o600"
    )


@pytest.mark.parametrize("content", [b"{not json", b'{"layers": {"gzip:x": 1}}', b"[]"])
def test_a_corrupt_file_starts_afresh(content: bytes) -> None:
    for kind in ("registry-layers", "registry-blobs"):
        path = cache_file.cache_path(kind, "r.example")
        path.parent.mkdir(parents=True)
        path.write_bytes(content)
    assert LayerMap.load("r.example").get("gzip", DIFF_ID) is None
    assert BlobLocations.load("r.example").repositories == {}


def test_a_file_over_the_cap_is_not_read(monkeypatch: pytest.MonkeyPatch) -> None:
    first = LayerMap.load("r.example")
    first.add("gzip", DIFF_ID, GZIPPED)
    first.save()
    locations = BlobLocations.load("r.example")
    locations.add(DIFF_ID, "team/app")
    locations.save()
    assert BlobLocations.load("r.example").find(DIFF_ID, "other") == "team/app"
    monkeypatch.setattr(cache_file, "MAX_FILE", 10)
    assert LayerMap.load("r.example").get("gzip", DIFF_ID) is None
    assert BlobLocations.load("r.example").find(DIFF_ID, "other") is None
