"""Which images go to a daemon in which of the loads sent side by side (the loads themselves,
with a real dockerd, are in tests/integration/test_daemon.py)."""

from __future__ import annotations

import hashlib
from collections.abc import Collection
from pathlib import Path

from archiver.engine.concurrent import MOST_AT_ONCE
from archiver.engine.graph import resolve
from archiver.engine.load import concurrent_loads
from archiver.model.holdings import Holdings
from archiver.model.image import ResolvedImage
from archiver.places.archive import open_source
from tests.factory import docker_save, random_layer

KIB = 1024


def _roots(tmp_path: Path, images: list[tuple[list[str], list[bytes]]]) -> list[ResolvedImage]:
    with open_source(str(docker_save(tmp_path / "in.tar", images))) as source:
        return [resolve(source, entry) for entry in source.images()]


def _names(loads: list[list[ResolvedImage]]) -> list[list[str]]:
    return [[root.entry.label for root in load] for load in loads]


def _sets(loads: list[list[ResolvedImage]] | list[list[str]]) -> set[frozenset[str]]:
    return {frozenset(r if isinstance(r, str) else r.entry.label for r in load) for load in loads}


def side_by_side(
    roots: list[ResolvedImage], held: Collection[str], most: int = MOST_AT_ONCE
) -> list[list[ResolvedImage]]:
    """The loads for a daemon holding the layer chains ``held``."""
    skipped = Holdings(chains=frozenset(held)).held_layers(roots)
    return concurrent_loads(roots, skipped, most)


def _diff_id(layer: bytes) -> str:
    return "sha256:" + hashlib.sha256(layer).hexdigest()


BASE = random_layer(64 * KIB, seed=1)
APPS = [(f"app{i}:1", random_layer((i + 1) * 16 * KIB, seed=10 + i)) for i in range(3)]
OTHER = random_layer(8 * KIB, seed=20)


def _images() -> list[tuple[list[str], list[bytes]]]:
    return [
        (["base:1"], [BASE]),
        *(([name], [BASE, layer]) for name, layer in APPS),
        (["other:1"], [OTHER]),
    ]


def test_images_sharing_a_missing_layer_go_in_one_load(tmp_path: Path) -> None:
    loads = side_by_side(_roots(tmp_path, _images()), held=())
    assert _names(loads) == [["base:1", "app0:1", "app1:1", "app2:1"], ["other:1"]]


def test_with_the_base_held_each_app_goes_in_a_load_of_its_own(tmp_path: Path) -> None:
    roots = _roots(tmp_path, _images())
    # the base's chain is held: the apps share no layer the daemon lacks; base:1 and (its
    # layer held too) other:1 need none: they go together, then into the lightest load
    held = {_diff_id(BASE), _diff_id(OTHER)}
    assert _sets(side_by_side(roots, held, most=4)) == _sets(
        [["app0:1"], ["app1:1"], ["app2:1"], ["base:1", "other:1"]]
    )
    assert _sets(side_by_side(roots, held)) == _sets(
        [["base:1", "app0:1", "other:1"], ["app1:1"], ["app2:1"]]
    )
    assert _names(side_by_side(roots, held={_diff_id(BASE)}, most=1)) == [
        [r.entry.label for r in roots]
    ]


def test_more_groups_than_loads_are_balanced_by_bytes(tmp_path: Path) -> None:
    sizes = [64, 8, 8, 32, 16, 16]  # KiB, one independent image each
    images = [([f"i{n}:1"], [random_layer(s * KIB, seed=n)]) for n, s in enumerate(sizes)]
    loads = side_by_side(_roots(tmp_path, images), held=(), most=3)
    kib = {f"i{n}:1": s for n, s in enumerate(sizes)}
    # the heaviest first, each into the lightest load: 64 | 32 + 8 | 16 + 16 + 8
    assert sorted(sorted(kib[name] for name in load) for load in _names(loads)) == [
        [8, 16, 16],
        [8, 32],
        [64],
    ]


def test_one_image_is_one_load(tmp_path: Path) -> None:
    roots = _roots(tmp_path, [(["solo:1"], [random_layer(KIB), random_layer(KIB, seed=2)])])
    assert _names(side_by_side(roots, held=())) == [["solo:1"]]
