"""Several inputs seen as one (engine.merge) at the cost of the images, not their square:
a pack of 200 docker-save archives matched every image against every image before it and
asked every input in turn for every blob (pack of 2,000 images in 200 archives: 2.4 s, two
thirds of it there). Counted in calls, never timed."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from archiver.engine import merge
from archiver.engine.graph import resolve
from archiver.engine.merge import MultiSource
from archiver.model.digest import Digest
from archiver.places.archive import ArchiveSource, open_source
from tests.counting import counted
from tests.factory import docker_save, layer

ARCHIVES = 24
PER_ARCHIVE = 2


class _Counted:
    """A source whose ``has_blob`` calls are counted (everything else passes through)."""

    def __init__(self, source: ArchiveSource, calls: list[int]) -> None:
        self._source = source
        self._calls = calls

    def has_blob(self, digest: Digest) -> bool:
        self._calls[0] += 1
        return self._source.has_blob(digest)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._source, name)


def _archives(tmp_path: Path) -> list[Path]:
    """ARCHIVES archives of PER_ARCHIVE images each, all on one shared base; the first
    image of each archive is also in the next archive (the same image twice: merged)."""
    base = layer({"base": b"base\n"})
    out = []
    for a in range(ARCHIVES):
        images = [
            ([f"many/app{a * PER_ARCHIVE + i}:1"], [base, layer({f"own{a}-{i}": b"x"})])
            for i in range(PER_ARCHIVE)
        ]
        if a:
            images.append(
                ([f"many/app{(a - 1) * PER_ARCHIVE}:1"], [base, layer({f"own{a - 1}-0": b"x"})])
            )
        out.append(docker_save(tmp_path / f"save{a:03}.tar", images))
    return out


@contextlib.contextmanager
def _opened(paths: list[Path]) -> Iterator[list[ArchiveSource]]:
    with contextlib.ExitStack() as stack:
        yield [stack.enter_context(open_source(str(p))) for p in paths]


def test_inputs_are_asked_for_each_blob_a_bounded_number_of_times(tmp_path: Path) -> None:
    calls = [0]
    with _opened(_archives(tmp_path)) as sources:
        counted = [_Counted(s, calls) for s in sources]
        merged = MultiSource(counted)  # type: ignore[arg-type]
        blobs: list[Digest] = []
        for entry in merged.images():
            root = resolve(merged, entry)
            for image in root.images:
                blobs += [image.manifest.config.digest]
                blobs += [d.digest for d in image.manifest.layers]
        distinct = set(blobs)
        calls[0] = 0
        holders = {digest: merged.blob_origin(digest) for digest in blobs}
        # linear: a few questions a blob, whatever the number of inputs (was ~inputs/2)
        assert calls[0] <= 2 * len(distinct) + len(sources)
        for digest, origin in holders.items():  # still the first input holding it
            first = next(s for s in sources if s.has_blob(digest))
            assert origin == first.blob_origin(digest)


def test_images_are_matched_against_the_few_that_may_be_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    compared = counted(monkeypatch, merge, "_same")
    with _opened(_archives(tmp_path)) as sources:
        merged = MultiSource(sources)
        entries = sum(len(s.images()) for s in sources)
        assert compared.count <= entries  # was every image against every one before it
        names = sorted(str(ref) for entry in merged.images() for ref in entry.refs)
    # the same image in two archives is one image; every name once
    assert len(merged.images()) == ARCHIVES * PER_ARCHIVE
    assert names == sorted(f"docker.io/many/app{i}:1" for i in range(ARCHIVES * PER_ARCHIVE))
