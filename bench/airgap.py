#!/usr/bin/env python3
"""Benchmark: the air-gap numbers, with a real dockerd and a real registry, in one run.

Release 1 of the corpus (a base of --base-mb MB of /usr files, three applications of 10,
20, 30 MB on it, one unrelated image of 40 MB) goes into a private dockerd (docker load)
and a registry (archiver push); release 2 has the same base and new application layers.

  inventory of the daemon, of the registry            (seconds; no layer is read)
  release-2 delta (--base the daemon's inventory)     vs a full release-2 bundle
                                                      vs release 2 as docker-save | gzip
  verify of the full release-2 bundle in 64 MB parts  (seconds, and vs unsplit)

Usage: python bench/airgap.py [--base-mb 300]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from common import compile_package, report, running_registry, timed  # noqa: E402
from registry import build_corpus  # noqa: E402  (the registry bench's corpus)

from tests.integration.peers import Dockerd  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--base-mb", type=int, default=300)
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "airgap.json"))
    args = parser.parse_args()
    compile_package()
    work = Path(tempfile.mkdtemp(prefix="arch-bench-airgap-", dir="/tmp"))
    archiver = [sys.executable, "-m", "archiver"]
    os.environ["XDG_CACHE_HOME"] = str(work / "cache")
    (work / "d").mkdir()
    dockerd = Dockerd(work / "d")
    (work / "r1").mkdir()
    (work / "r2").mkdir()
    stack = contextlib.ExitStack()  # the registry, once it runs
    try:
        release1, _ = build_corpus(work / "r1", args.base_mb, release=1)
        release2, _ = build_corpus(work / "r2", args.base_mb, release=2)
        dockerd.start()
        os.environ["DOCKER_HOST"] = dockerd.host
        dockerd.docker("load", "-q", "-i", str(release1))
        registry = stack.enter_context(running_registry())
        subprocess.run([*archiver, "push", str(release1), "--to", registry.host, "-q"], check=True)

        daemon_inv, registry_inv = work / "daemon.json", work / "registry.json"
        inventory_daemon_s, _ = timed(
            [*archiver, "inventory", "docker-daemon:", "-o", str(daemon_inv)]
        )
        inventory_registry_s, _ = timed(
            [*archiver, "inventory", f"docker://{registry.host}", "-o", str(registry_inv)]
        )
        full, delta = work / "full.tar.zst", work / "delta.tar.zst"
        subprocess.run([*archiver, "pack", str(release2), "-o", str(full), "-q"], check=True)
        subprocess.run(
            [*archiver, "pack", str(release2), "--base", str(daemon_inv), "-o", str(delta), "-q"],
            check=True,
        )
        gzip_bytes = int(
            subprocess.run(
                f"gzip -c {release2} | wc -c",
                shell=True,
                capture_output=True,
                text=True,
                check=True,
            ).stdout
        )
        parts = work / "parts"
        parts.mkdir()
        split = ["--to", "bundle", "--split-size", "64M", "-q"]
        subprocess.run(
            [*archiver, "convert", str(full), str(parts / "r2.tar.zst"), *split], check=True
        )
        verify_split_s, _ = timed([*archiver, "verify", str(parts / "r2.tar.zst"), "-q"])
        verify_whole_s, _ = timed([*archiver, "verify", str(full), "-q"])
        result = {
            "release2_tar_bytes": release2.stat().st_size,
            "full_bundle_bytes": full.stat().st_size,
            "delta_bytes": delta.stat().st_size,
            "docker_save_gzip_bytes": gzip_bytes,
            "delta_vs_full": delta.stat().st_size / full.stat().st_size,
            "delta_vs_gzip": delta.stat().st_size / gzip_bytes,
            "inventory_daemon_s": inventory_daemon_s,
            "inventory_registry_s": inventory_registry_s,
            "verify_split_s": verify_split_s,
            "verify_whole_s": verify_whole_s,
        }
    finally:
        stack.close()
        dockerd.stop()
        shutil.rmtree(work, ignore_errors=True)
    headline = (
        f"release 2: tar {result['release2_tar_bytes'] / 1e6:.0f} MB, docker-save | gzip "
        f"{result['docker_save_gzip_bytes'] / 1e6:.0f} MB, full bundle "
        f"{result['full_bundle_bytes'] / 1e6:.0f} MB, delta {result['delta_bytes'] / 1e6:.1f} MB"
    )
    rows = [
        ("delta / full bundle", "delta_vs_full", ""),
        ("delta / docker-save | gzip", "delta_vs_gzip", ""),
        ("inventory of the daemon (s)", "inventory_daemon_s", ""),
        ("inventory of the registry (s)", "inventory_registry_s", ""),
        ("verify, bundle in 64 MB parts (s)", "verify_split_s", ""),
        ("verify, the same bundle whole (s)", "verify_whole_s", ""),
    ]
    report(headline, rows, result, args.out)


if __name__ == "__main__":
    main()
