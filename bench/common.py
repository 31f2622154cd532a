"""What the benchmark scripts share: timing a command, a fresh registry, the report."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.integration.registry_peers import Registry  # noqa: E402  (the tests' own peer)


def compile_package() -> None:
    """Byte-compile archiver first, as an installed package is: with PYTHONDONTWRITEBYTECODE
    set (as on some machines) every run would otherwise compile it again (~0.3 s)."""
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(ROOT / "archiver")], check=True)


def timed(args: list[str]) -> tuple[float, int]:
    """Seconds and peak RSS (MB) of one command."""
    start = time.perf_counter()
    process = subprocess.Popen(args, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(process.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"failed: {' '.join(args)}")
    return time.perf_counter() - start, usage.ru_maxrss // 1024


@contextlib.contextmanager
def running_registry() -> Iterator[Registry]:
    """Debian's docker-registry on loopback with empty storage, removed afterwards."""
    registry = Registry(Path(tempfile.mkdtemp(prefix="arch-bench-r-", dir="/tmp")))
    registry.start()
    try:
        yield registry
    finally:
        registry.stop()


def report(
    headline: str, rows: list[tuple[str, str, str]], result: dict[str, Any], out: str
) -> None:
    """Print ``rows`` (label, key of ``result``, target) under ``headline``; save as JSON."""
    width = max(len(label) for label, _, _ in rows) + 2
    print(headline)
    print(f"{'measure':{width}}{'value':>10}{'target':>10}")
    for label, key, target in rows:
        print(f"{label:{width}}{result[key]:>10.3f}{target:>10}")
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    Path(out).write_text(json.dumps(result, indent=2) + "\n")
