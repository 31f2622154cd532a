"""Split media: bundles in parts, read as one, checked part by part, a part written again."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from archiver.blobs.parts import FAT32, parse_size
from tests.conftest import Run
from tests.factory import docker_save, random_layer

MIB = 1024 * 1024


@pytest.fixture
def source(tmp_path: Path) -> Path:
    return docker_save(
        tmp_path / "in.tar",
        [(["big:1"], [random_layer(4 * MIB, seed=1)]), (["big:2"], [random_layer(MIB, seed=2)])],
    )


def _parts(folder: Path, name: str) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.name.startswith(f"{name}.0"))


def test_sizes() -> None:
    assert parse_size("4G") == 4 * 1024**3
    assert parse_size("700M") == 700 * MIB
    assert parse_size("fat32") == FAT32 == 4 * 1024**3 - 1
    with pytest.raises(Exception, match="a size such as"):
        parse_size("lots")


def test_parts_concatenate_to_the_bundle_and_read_as_one(
    run: Run, source: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "b.tar.zst").write_bytes(b"an older, unsplit bundle of that name")
    result = run("pack", source, "-o", out / "b.tar.zst", "--split-size", "1M", "--json")
    assert not (out / "b.tar.zst").exists()  # the parts replace it
    assert result.code == 0, result.err
    parts = _parts(out, "b.tar.zst")
    assert len(parts) == len(json.loads(result.out)["parts"]) >= 5
    assert all(p.stat().st_size == MIB for p in parts[:-1])
    whole = tmp_path / "whole.tar.zst"
    assert run("pack", source, "-o", whole).code == 0
    assert b"".join(p.read_bytes() for p in parts) == whole.read_bytes()
    manifest = json.loads((out / "b.tar.zst.parts.json").read_text())
    assert manifest["size"] == whole.stat().st_size
    for name in ("b.tar.zst", "b.tar.zst.001", "b.tar.zst.parts.json"):
        listed = json.loads(run("ls", "--json", out / name).out)
        assert {r["tag"] for r in listed} == {"1", "2"}
    assert run("verify", out / "b.tar.zst").code == 0
    unpacked = tmp_path / "u.tar"
    assert run("unpack", out / "b.tar.zst.001", "-o", unpacked, "--image", "big:2").code == 0


def test_a_damaged_missing_or_foreign_part_is_named_and_rewritten_alone(
    run: Run, source: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    target = out / "b.tar.zst"
    assert run("pack", source, "-o", target, "--split-size", "1M").code == 0
    third = out / "b.tar.zst.003"
    good = third.read_bytes()
    third.write_bytes(good[:100] + bytes([good[100] ^ 1]) + good[101:])
    damaged = run("verify", target)
    assert damaged.code == 3 and "part 3 is damaged" in damaged.err
    assert damaged.err.count("\n") == 1 and "b.tar.zst.003" in damaged.err

    again = run("pack", source, "-o", target, "--split-size", "1M", "--only-part", "3")
    assert again.code == 0, again.err
    assert third.read_bytes() == good
    assert run("verify", target).code == 0

    # other inputs cannot stand in for the part: checked before anything is replaced
    other = docker_save(tmp_path / "other.tar", [(["big:1"], [random_layer(4 * MIB, seed=9)])])
    refused = run("pack", other, "-o", target, "--split-size", "1M", "--only-part", "3")
    assert refused.code == 3 and "differs from the manifest" in refused.err
    assert third.read_bytes() == good
    assert sorted(p.name for p in out.iterdir() if p.name.startswith(".")) == []

    # a part from another bundle, and a missing one
    other_out = tmp_path / "other-out"
    other_out.mkdir()
    run("pack", other, "-o", other_out / "b.tar.zst", "--split-size", "1M")
    shutil.copy(other_out / "b.tar.zst.002", out / "b.tar.zst.002")
    foreign = run("verify", target)
    assert foreign.code == 3 and "part 2 is damaged or from another bundle" in foreign.err
    os.unlink(out / "b.tar.zst.002")
    missing = run("ls", target)
    assert missing.code == 4 and "part 2 of b.tar.zst is missing" in missing.err


def test_split_needs_a_bundle_file(run: Run, source: Path, tmp_path: Path) -> None:
    result = run("convert", source, tmp_path / "x.tar", "--split-size", "1M")
    assert result.code == 2 and "--split-size writes bundles" in result.err
    alone = run("pack", source, "-o", tmp_path / "y.tar.zst", "--only-part", "2")
    assert alone.code == 2 and "--only-part goes with --split-size" in alone.err
