"""prune, rmi and tag on an archive of many images cost what the images cost, not their
square: prune asked every image for its platform image once per image (and hashed every
layer chain again after each image it deleted): 0.4 s for 200 images, 25 s for 2,000.
Counted in calls, never timed; the events are docker's (the oracle tests check those
against a real daemon)."""

from __future__ import annotations

from pathlib import Path

import pytest

from archiver.engine import image_store, store_index
from archiver.engine.image_store import ImageStore
from archiver.model.digest import chain_ids
from archiver.model.image import ResolvedImage
from archiver.places.archive import open_source
from tests.counting import counted
from tests.factory import docker_save, layer

TAGGED = 30
DANGLING = 12


def _archive(tmp_path: Path) -> Path:
    """TAGGED tagged images on one base; DANGLING untagged ones on the same base and a
    middle layer they share, each with a top layer of its own."""
    base, middle = layer({"base": b"b"}), layer({"middle": b"m"})
    images = [([f"app{i}:1"], [base, layer({f"own{i}": b"x"})]) for i in range(TAGGED)]
    images += [([], [base, middle, layer({f"gone{i}": b"y"})]) for i in range(DANGLING)]
    return docker_save(tmp_path / "many.tar", images)


def test_prune_asks_each_image_a_bounded_number_of_times(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with open_source(str(_archive(tmp_path))) as source:
        store = ImageStore(source)
        images = len(store.roots)
        ids = {f"Deleted: {r.id}" for r in store.records() if r.entry.dangling}
        asked = counted(monkeypatch, ResolvedImage, "default_image")
        hashed = counted(monkeypatch, image_store, "chain_ids")
        hashed_too = counted(monkeypatch, store_index, "chain_ids")
        events = [str(event) for event in store.prune()]
    assert asked.count <= 3 * images  # was images x images
    assert hashed.count + hashed_too.count <= images + DANGLING  # was images x images deleted
    assert len(ids) == DANGLING
    assert [e for e in events if e in ids] == sorted(ids, key=events.index)
    assert len(store.roots) == TAGGED
    # each dangling image's own top layer goes with it; the middle layer they share goes
    # with the last of them; the base, which the tagged images use, stays
    chains = [e for e in events if e not in ids]
    assert len(chains) == DANGLING + 1 and all(c.startswith("Deleted: ") for c in chains)
    kept = {
        chain
        for root in store.roots
        for node in root.images
        if node.config is not None
        for chain in chain_ids(node.config.diff_ids)
    }
    assert not kept & {c.removeprefix("Deleted: ") for c in chains}
