"""Inventories and deltas on archives (the daemon and registry sides are in
tests/integration/test_airgap.py)."""

from __future__ import annotations

import json
import os
from pathlib import Path

from tests.conftest import SAMPLES, Run
from tests.factory import docker_save, random_layer

MIB = 1024 * 1024


def _releases(tmp_path: Path) -> tuple[Path, Path]:
    """Release 1: a 1 MiB base and an app; release 2: the same base, a new app layer."""
    base = random_layer(MIB, seed=1)
    one = docker_save(tmp_path / "r1.tar", [(["app:1"], [base, random_layer(100_000, seed=2)])])
    two = docker_save(tmp_path / "r2.tar", [(["app:2"], [base, random_layer(200_000, seed=3)])])
    return one, two


def test_inventory_round_trip_and_tampering(run: Run, tmp_path: Path) -> None:
    inv = tmp_path / "inv.json"
    result = run("inventory", SAMPLES / "hybrid.tar", "-o", inv)
    assert result.code == 0, result.err
    data = json.loads(inv.read_text())
    assert data["format"] == "archiver-inventory" and data["kind"] == "archive"
    assert len(data["blobs"]) == 9 and len(data["diffIds"]) == 3
    assert {i["reference"] for i in data["images"]} >= {"demo/app:2.1", "demo/base:1.0"}

    data["blobs"].pop()
    inv.write_text(json.dumps(data))
    tampered = run("pack", SAMPLES / "oci", "--base", inv, "-o", tmp_path / "x.tar.zst")
    assert tampered.code == 3 and "the inventory was changed" in tampered.err
    data["version"] = 2
    inv.write_text(json.dumps(data))
    newer = run("pack", SAMPLES / "oci", "--base", inv, "-o", tmp_path / "x.tar.zst")
    assert newer.code == 2 and "inventory version 2" in newer.err
    inv.write_text('{"something": "else"}')
    other = run("pack", SAMPLES / "oci", "--base", inv, "-o", tmp_path / "x.tar.zst")
    assert other.code == 2 and "not an archiver inventory" in other.err
    assert not (tmp_path / "x.tar.zst").exists()


def test_delta_against_an_inventory_and_completed_by_its_base(run: Run, tmp_path: Path) -> None:
    one, two = _releases(tmp_path)
    inv = tmp_path / "inv.json"
    run("inventory", one, "-o", inv)
    delta, full = tmp_path / "delta.tar.zst", tmp_path / "full.tar.zst"
    result = run("pack", two, "--base", inv, "-o", delta, "--json")
    assert result.code == 0, result.err
    summary = json.loads(result.out)
    assert summary["left_to_base"]["layers"] == 1
    assert summary["left_to_base"]["bytes"] > MIB
    assert run("pack", two, "-o", full).code == 0
    assert os.path.getsize(delta) < os.path.getsize(full) / 3  # the base stayed behind

    verified = json.loads(run("verify", "--json", delta).out)
    assert verified["ok"] and len(verified["left_to_base"]) == 1
    assert verified["delta_base"].endswith(f"({json.loads(inv.read_text())['checksum']})")
    (item,) = json.loads(run("inspect", delta, "app:2").out)
    assert item["LeftToBase"] == verified["left_to_base"]

    # without its base a delta cannot be made whole: said before anything is written
    target = tmp_path / "whole.tar"
    alone = run("unpack", delta, "-o", target)
    assert alone.code == 4 and "neither in it nor at" in alone.err and not target.exists()
    assert run("unpack", delta, "--base", one, "-o", target).code == 0
    assert run("verify", target).code == 0
    merged = tmp_path / "merged.tar.zst"
    assert run("merge", delta, "--base", one, "-o", merged).code == 0
    ids = [json.loads(run("ls", "--json", p).out)[0]["id"] for p in (merged, full, target)]
    assert ids[0] == ids[1] == ids[2]


def test_delta_against_an_earlier_bundle(run: Run, tmp_path: Path) -> None:
    one, two = _releases(tmp_path)
    first = tmp_path / "r1.tar.zst"
    assert run("pack", one, "-o", first).code == 0
    delta = tmp_path / "r2-delta.tar.zst"
    result = run("pack", two, "--base", first, "-o", delta)
    assert result.code == 0 and "1 layers (1.05MB) left to the base" in result.out
    assert "A delta against" in run("ls", delta).err
