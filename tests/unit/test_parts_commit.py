"""A split bundle written over another changes as one: a writer killed while it puts the
new parts in place leaves a change the next use completes, never old and new parts mixed
under one manifest."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from archiver.blobs.parts import parse_size
from tests.conftest import ROOT, Run
from tests.factory import docker_save, random_layer

MIB = 1024 * 1024

KILLED_AFTER_RENAMES = """
import os, sys
from archiver.cli.main import main
real, count, limit = os.replace, [0], int(sys.argv[1])
def replace(src, dst, *args, **kwargs):
    if str(dst).rsplit(".", 1)[-1].isdigit():  # a part put in place
        if count[0] == limit:
            os._exit(9)  # killed: nothing cleaned up
        count[0] += 1
    return real(src, dst, *args, **kwargs)
os.replace = replace
main(sys.argv[2:])
"""


def _manifest(target: Path) -> dict[str, object]:
    return json.loads(target.with_name(target.name + ".parts.json").read_text())


def _input(tmp_path: Path, name: str, seed: int) -> Path:
    layers = [random_layer(3 * MIB, seed=seed), random_layer(2 * MIB, seed=seed + 1)]
    return docker_save(tmp_path / f"{name}.tar", [([f"{name}:1"], layers)])


@pytest.mark.parametrize("renamed", [0, 1, 2])
def test_a_split_pack_killed_while_renaming_ends_old_or_new(
    tmp_path: Path, run: Run, renamed: int
) -> None:
    old, new = _input(tmp_path, "old", 1), _input(tmp_path, "new", 10)
    target = tmp_path / "b.tar.zst"
    assert run("pack", old, "-o", target, "--split-size", "1M").code == 0
    reference = tmp_path / "ref" / "b.tar.zst"
    reference.parent.mkdir()
    assert run("pack", new, "-o", reference, "--split-size", "1M").code == 0
    killed = subprocess.run(
        [
            sys.executable,
            "-c",
            KILLED_AFTER_RENAMES,
            str(renamed),
            "pack",
            str(new),
            "-o",
            str(target),
            "--split-size",
            "1M",
        ],
        cwd=ROOT,
        capture_output=True,
    )
    assert killed.returncode == 9, killed.stderr
    checked = run("verify", target)  # the next use finishes the change
    assert checked.code == 0, checked.err
    assert _manifest(target) == _manifest(reference)
    listing = run("ls", target).out
    assert "new" in listing and "old" not in listing
    leftovers = [p.name for p in tmp_path.iterdir() if p.name.startswith(".b.tar.zst")]
    assert leftovers == []


def test_a_journal_naming_files_outside_is_refused(tmp_path: Path, run: Run) -> None:
    source = _input(tmp_path, "one", 1)
    target = tmp_path / "b.tar.zst"
    assert run("pack", source, "-o", target, "--split-size", "1M").code == 0
    victim = tmp_path / "victim"
    victim.write_text("keep")
    journal = tmp_path / ".b.tar.zst.parts.commit"
    journal.write_text(
        json.dumps(
            {
                "format": "archiver-parts-commit",
                "manifest": _manifest(target),
                "mode": 0o644,
                "renames": [["../victim", ".b.tar.zst.001.1.x.tmp"]],
            }
        )
    )
    result = run("verify", target)
    assert result.code == 2 and len(result.err.strip().splitlines()) == 1
    assert victim.read_text() == "keep"


def test_sizes_are_ascii_digits() -> None:
    with pytest.raises(Exception, match="a size such as"):
        parse_size("\u0664M")  # an Arabic-Indic four
