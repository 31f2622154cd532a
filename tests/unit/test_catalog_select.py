"""Naming many images at once (``pack --image`` ×N, a sync list of thousands): each name is
looked up, not searched for among every image (a sync of 2,000 images compared 4 M pairs).
Counted in calls, never timed; what is chosen is what one lookup at a time chooses."""

from __future__ import annotations

from pathlib import Path

import pytest

from archiver.engine import catalog
from archiver.engine.catalog import records, select
from archiver.places.archive import open_source
from tests.counting import counted
from tests.factory import docker_save, layer

IMAGES = 40


def test_select_looks_each_name_up(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    archive = docker_save(
        tmp_path / "many.tar",
        [([f"app{i}:1", f"other/app{i}:v{i}"], [layer({f"f{i}": b"x"})]) for i in range(IMAGES)],
    )
    with open_source(str(archive)) as source:
        found = records(source)
        wanted = [f"app{i}:1" for i in range(0, IMAGES, 2)]
        wanted += [f"docker.io/other/app{i}:v{i}" for i in range(1, IMAGES, 4)]
        wanted += [found[5].id.hex[:12], f"app7@{found[7].digest}" if found[7].digest else ""]
        wanted = [w for w in wanted if w]
        one_at_a_time = {id(r): r for name in wanted for r in catalog.find_all(found, name, "x")}
        compared = counted(monkeypatch, catalog, "_names")
        chosen = select(found, wanted, "x")
    assert [id(r) for r in chosen] == [id(r) for r in found if id(r) in one_at_a_time]
    assert compared.count <= len(wanted)  # was every name against every image
    with pytest.raises(Exception, match="no image"):
        select(found, ["app1:1", "nothere:1"], "x")
