"""The interpreter's own start: a verb that reads an archive imports only what it needs.

``python -X importtime`` names every module a run imports; ``ls``, ``inspect`` and ``df``
of a bundle must not pull in the registry client (httpx and archiver.places.registry),
the daemon client, or jsonschema (the reference validator: only an invalid document needs
it; valid ones go through the compiled one).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import SAMPLES

ROOT = Path(__file__).resolve().parents[2]
FORBIDDEN = ("httpx", "httpcore", "archiver.places.registry", "jsonschema", "referencing")


def imported(*args: str) -> set[str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT))  # run from ROOT: -m puts the cwd first
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "archiver", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        check=True,
    )
    names = set()
    for line in done.stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            names.add(line.rsplit("|", 1)[1].strip())
    assert "archiver.cli.main" in names, done.stderr[-2000:]
    return names


@pytest.mark.parametrize(
    "verb", [["ls"], ["inspect", "--format", "{{.Id}}"], ["df"]], ids=["ls", "inspect", "df"]
)
def test_reading_verbs_import_no_network_client_nor_jsonschema(verb: list[str]) -> None:
    bundle = str(SAMPLES / "bundle.tar.zst")
    args = [verb[0], bundle, *verb[1:]]
    if verb[0] == "inspect":
        listed = subprocess.run(
            [sys.executable, "-m", "archiver", "ls", "-q", bundle],
            capture_output=True,
            text=True,
            env=dict(os.environ, PYTHONPATH=str(ROOT)),
            cwd=ROOT,
            check=True,
        )
        args.insert(2, listed.stdout.split()[0])
    names = imported(*args)
    pulled = sorted(
        name
        for name in names
        if any(name == bad or name.startswith(bad + ".") for bad in FORBIDDEN)
    )
    assert pulled == [], f"{verb[0]} imports {pulled}"
