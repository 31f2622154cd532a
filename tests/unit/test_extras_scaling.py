"""Bundles of many signed images: each image's extras are looked up, not searched for among
all of them (ls of 2,000 signed images: 2.45 s; df compared every image with every extra,
field by field: 8.5 s). Counted, never timed; what is found is what a search finds."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from archiver.engine import extras
from archiver.engine.graph import resolve
from archiver.engine.image_store import ImageStore
from archiver.model.image import ResolvedImage
from archiver.places.archive import open_source
from tests import cosign_format as cf
from tests.counting import counted
from tests.extras_layout import image, layout

IMAGES = 25


class _Walks(list):  # type: ignore[type-arg]
    """A list that counts the times it is walked through."""

    walks = 0

    def __iter__(self) -> Any:
        _Walks.walks += 1
        return super().__iter__()


def _signed(root: Path) -> Path:
    key = cf.new_key("ecdsa")
    entries: list[tuple[cf.Artifact, str | None]] = []
    for i in range(IMAGES):
        app = image(f"app{i}\n".encode())
        signature = cf.signature(key, f"example.com/app{i}", app.digest)
        subject = cf.descriptor(cf.OCI_MANIFEST, app.manifest)
        sbom = cf.referrer(subject, "application/spdx+json", f'{{"i":{i}}}'.encode(), {})
        sbom_subject = cf.descriptor(cf.OCI_MANIFEST, sbom.manifest)
        on_sbom = cf.signature(key, f"example.com/app{i}", sbom.digest)
        entries += [
            (sbom, None),  # a referrer listed before the cosign tag: the tag still goes first
            (app, f"example.com/app{i}:1"),
            (signature, f"example.com/app{i}:sha256-{app.digest[7:]}.sig"),
            (on_sbom, f"example.com/app{i}:sha256-{sbom_subject['digest'][7:]}.sig"),
        ]
    return layout(root, entries)


def _searched(parted: extras.Parted, subjects: set[Any]) -> list[Any]:
    """What ``of`` found before it looked extras up: a search of all, generation by generation."""
    wanted, found, taken = set(subjects), [], set()
    while True:
        generation = [
            (e, x)
            for e, x in parted.extras
            if x.subject in wanted and e.descriptor.digest not in taken
        ]
        if not generation:
            return found
        generation.sort(key=lambda item: item[1].tag is None)
        found += generation
        taken |= {e.descriptor.digest for e, _ in generation}
        wanted = {e.descriptor.digest for e, _ in generation}


def test_extras_of_each_image_are_looked_up(tmp_path: Path) -> None:
    with open_source(str(_signed(tmp_path / "layout"))) as source:
        parted = extras.split(source)
        roots = [resolve(source, entry) for entry in parted.images]
        expected = [_searched(parted, set(extras.subjects(root))) for root in roots]
        parted.extras = _Walks(parted.extras)
        _Walks.walks = 0
        found = [parted.of(extras.subjects(root)) for root in roots]
    assert found == expected
    assert all(len(f) == 3 for f in found)  # the signature, the SBOM, the SBOM's signature
    assert [x.tag is None for _, x in found[0]] == [False, True, False]
    assert _Walks.walks <= 1  # was once per generation of every image


def test_df_does_not_compare_images_with_extras(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with open_source(str(_signed(tmp_path / "layout"))) as source:
        store = ImageStore(source)
        compared = counted(monkeypatch, ResolvedImage, "__eq__")
        usage = store.usage()
    assert compared.count == 0  # was every image against every extra, field by field
    assert usage.extras == 3 * IMAGES and len(usage.images) == IMAGES
