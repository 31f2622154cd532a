"""A push of many repositories at once to the real distribution registry: what the push
learns (where each blob is, what each layer became) is written to its cache files now and
then and at the end, not whole once per repository (a push of 2,000 repositories rewrote
20,000-entry files 4,000 times)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from archiver.engine import layer_map, push
from archiver.places.registry import locations
from archiver.places.registry.cache_file import cache_path
from tests.conftest import Run
from tests.factory import docker_save, layer
from tests.integration.registry_peers import Registry
from tests.isolation import own_registry_client

REPOSITORIES = 24


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    own_registry_client(tmp_path, monkeypatch)


def test_many_repositories_write_the_caches_once_at_the_end(
    run: Run,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    start: Callable[..., Registry],
) -> None:
    registry = start()
    base = layer({"base.txt": b"shared by every image\n"})
    archive = docker_save(
        tmp_path / "many.tar",
        [([f"team/app{i}:1"], [base, layer({f"own{i}.txt": b"x"})]) for i in range(REPOSITORIES)],
    )
    monkeypatch.setattr(push, "SAVE_EVERY", 3600.0, raising=False)  # none before the end
    written: list[str] = []

    def counted(real: Callable[..., None]) -> Callable[..., None]:
        def write(path: Path, data: dict[str, Any]) -> None:
            written.append(path.parent.name)
            real(path, data)

        return write

    monkeypatch.setattr(locations, "write_cache", counted(locations.write_cache))
    monkeypatch.setattr(layer_map, "write_cache", counted(layer_map.write_cache))
    result = run("push", archive, "--to", f"{registry.host}/ns")
    assert result.code == 0, result.err
    assert result.out.count("Pushed") + result.out.count("Mounted from") >= REPOSITORIES
    # each cache once, at the end (was once per repository each)
    assert sorted(written) == ["registry-blobs", "registry-layers"]
    kept = json.loads(cache_path("registry-blobs", registry.host).read_text())["blobs"]
    assert len(kept) == 2 * REPOSITORIES + 1  # each config and own layer, and the base
