"""The README, run: its set-up is two one-line commands, and its tour runs end to end.

The tour is every ``console`` block of "A short tour": each ``$ `` line is run in order by
bash, in a clean folder holding a copy of samples/ only (as a fresh clone has them), against
a fresh private dockerd (``DOCKER_HOST``; one daemon of its own, so `save --all` counts what
the tour loaded and nothing else) and a fresh registry; what each prints (stdout and
stderr) is compared with the lines under it, sizes, digests, IDs and times matched loosely.
Paths under /tmp/ are moved to a temporary folder, the registry's 127.0.0.1:5000 to its real
port. Nothing may be left in the folder the tour ran in.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.integration.peers import Dockerd
from tests.integration.registry_peers import Registry

README = ROOT / "README.md"
REGISTRY = "127.0.0.1:5000"


def _section(text: str, heading: str) -> str:
    found = re.search(rf"^## {re.escape(heading)}\n(.*?)(?=^## |\Z)", text, re.M | re.S)
    assert found, f"README.md has no '## {heading}' section"
    return found.group(1)


def setup_commands(text: str) -> list[str]:
    """scripts/readme_setup.py's answer: what .ci/run runs."""
    out = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "readme_setup.py")],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return out.splitlines()


@dataclass
class Step:
    command: str
    expected: list[str] = field(default_factory=list)


def tour_steps(text: str) -> list[Step]:
    """The ``$ `` commands of the tour's console blocks, each with the lines under it."""
    steps: list[Step] = []
    for block in re.findall(r"^```console\n(.*?)^```", _section(text, "A short tour"), re.M | re.S):
        for line in block.splitlines():
            if line.startswith("$ "):
                steps.append(Step(line[2:]))
            else:
                assert steps, f"output before any command: {line!r}"
                steps[-1].expected.append(line)
    for step in steps:
        while step.expected and not step.expected[-1].strip():
            step.expected.pop()
    return steps


_LOOSE = [  # what may differ in a printed line, and the pattern that stands for it
    (re.compile(r"sha256:[0-9a-f]{64}"), r"sha256:[0-9a-f]{64}"),
    (re.compile(r"\b[0-9a-f]{12}\b"), r"[0-9a-f]{12}"),
    (re.compile(r"\b\d+(?:\.\d+)?(?:B|kB|MB|GB)\b"), r"\d+(?:\.\d+)?(?:B|kB|MB|GB)"),
    (re.compile(r"\(\d+%\)"), r"\(\d+%\)"),
    (
        re.compile(r"\b(?:\d+|About an?|Less than a) \w+ ago\b"),
        r"(?:\d+|About an?|Less than a) \w+ ago",
    ),
    (re.compile(r"\bsize: \d+\b"), r"size: \d+"),
]


def loose(line: str) -> re.Pattern[str]:
    """A pattern for one printed line: sizes, digests, IDs and times may differ, and so may
    the runs of spaces that align columns; everything else is literal."""
    line = line.rstrip()
    pieces: list[tuple[int, int, str]] = []
    for pattern, replacement in _LOOSE:
        for found in pattern.finditer(line):
            if not any(s < found.end() and found.start() < e for s, e, _ in pieces):
                pieces.append((found.start(), found.end(), replacement))
    out, at = [], 0
    for start, end, replacement in sorted(pieces):
        out += [_literal(line[at:start]), replacement]
        at = end
    out.append(_literal(line[at:]))
    return re.compile("".join(out))


def _literal(text: str) -> str:
    return r"\s+".join(re.escape(word) for word in re.split(r"\s{2,}", text))


def differences(expected: list[str], printed: list[str]) -> list[str]:
    if len(expected) != len(printed):
        return [f"{len(printed)} lines printed, the README shows {len(expected)}"]
    return [
        f"README: {want!r}\nprinted: {got!r}"
        for want, got in zip(expected, printed, strict=True)
        if not loose(want).fullmatch(got.rstrip())
    ]


@pytest.fixture(scope="module")
def peers() -> Iterator[tuple[Dockerd, Registry]]:
    # unix socket paths must stay short: a directory right in /tmp
    daemon = Dockerd(Path(tempfile.mkdtemp(prefix="arch-readme-", dir="/tmp")))
    registry = Registry(Path(tempfile.mkdtemp(prefix="arch-readme-reg-", dir="/tmp")))
    try:
        daemon.start()
        registry.start()
        yield daemon, registry
    finally:
        registry.stop()
        daemon.stop()
        shutil.rmtree(daemon.root, ignore_errors=True)
        shutil.rmtree(registry.root, ignore_errors=True)


def _environment(tmp_path: Path, daemon: Dockerd) -> dict[str, str]:
    """`archiver` runs this checkout's code; `docker` and archiver talk to ``daemon``."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    shim = bin_dir / "archiver"
    shim.write_text(f'#!/bin/sh\nexec {sys.executable} -m archiver "$@"\n')
    shim.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOCKER_")}
    env.update(
        PATH=f"{bin_dir}:{env.get('PATH', '/usr/bin:/bin')}",
        PYTHONPATH=str(ROOT),
        DOCKER_HOST=daemon.host,
        DOCKER_CONFIG=str(tmp_path / "docker-config"),
        COLUMNS="200",
    )
    return env


def test_setup_is_two_one_line_commands_a_newcomer_pastes() -> None:
    first, second = setup_commands(README.read_text())
    assert first.startswith("apt-get update && apt-get install -y python3 python3-venv && ")
    assert "python3 -m venv .venv && .venv/bin/pip install -e . && " in first
    assert first.endswith(
        "archiver pack samples/legacy.tar samples/oci -o /tmp/samples.tar.zst"
        " && archiver ls /tmp/samples.tar.zst"
    )
    assert ".venv/bin/pip install -e '.[test]'" in second
    assert second.endswith("&& bash scripts/test.sh")
    packages = (
        "docker.io docker-registry skopeo containerd podman chromium libatomic1 curl zstd"
        " busybox-static openssl xfsprogs btrfs-progs"
    )
    assert f"apt-get install -y {packages} && " in second


def test_the_tour_needs_nothing_but_the_clone() -> None:
    steps = tour_steps(README.read_text())
    assert len(steps) > 20
    for step in steps:
        assert "../shared" not in step.command, step.command
        # files go to /tmp, not into the checkout (a path with a slash, or a -o NAME)
        for name in re.findall(r"(?:-o|--output|>)\s+([^\s|;&]+)", step.command):
            assert name == "-" or name.startswith("/tmp/"), step.command


def test_loose_matching_still_catches_a_changed_word() -> None:
    line = "Wrote 3 images, 9 blobs (33.9kB read, 7.42kB written) to /tmp/x (bundle)"
    assert loose(line).fullmatch(line.replace("33.9kB", "1.2MB").replace("7.42kB", "804B"))
    assert not loose(line).fullmatch(line.replace("3 images", "5 images"))
    assert not loose(line).fullmatch(line.replace("(bundle)", "(docker)"))
    row = "demo/base    1.0       8c736fea7b59   2 years ago   10.2kB"
    assert loose(row).fullmatch("demo/base  1.0  0123456789ab  About an hour ago  9B")
    assert not loose(row).fullmatch("demo/base  latest  0123456789ab  2 years ago  9B")


@pytest.mark.integration
def test_the_readme_tour_runs_as_printed(peers: tuple[Dockerd, Registry], tmp_path: Path) -> None:
    daemon, registry = peers
    steps = tour_steps(README.read_text())
    clone = tmp_path / "clone"  # a fresh clone as far as the tour goes: samples/ only
    clone.mkdir()
    shutil.copytree(ROOT / "samples", clone / "samples")
    before = [p.relative_to(clone) for p in clone.rglob("*")]
    scratch = tmp_path / "tmp"  # stands for /tmp
    scratch.mkdir()
    env = _environment(tmp_path, daemon)
    failures = []
    for step in steps:
        command = step.command.replace("/tmp/", f"{scratch}/").replace(REGISTRY, registry.host)
        result = subprocess.run(
            ["bash", "-c", command],
            cwd=clone,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=300,
        )
        printed = [
            line.replace(f"{scratch}/", "/tmp/").replace(registry.host, REGISTRY)
            for line in result.stdout.rstrip("\n").split("\n")
            if result.stdout.strip()
        ]
        wrong = differences(step.expected, printed)
        fails = bool(step.expected) and step.expected[0].startswith("Error: ")
        if result.returncode != 0 and not fails:
            wrong.append(f"exit {result.returncode}")
        if wrong:
            shown = "\n".join(printed)
            failures.append(f"$ {step.command}\n" + "\n".join(wrong) + f"\n--- printed:\n{shown}")
    assert not failures, "\n\n".join(failures)
    left = sorted({p.relative_to(clone) for p in clone.rglob("*")} - set(before))
    assert not left, f"the tour left files in the checkout: {[str(p) for p in left]}"
