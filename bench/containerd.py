#!/usr/bin/env python3
"""Benchmark: archiver load --containerd against ``zstd -dc BUNDLE | ctr images import -``.

The registry bench's corpus (a base of --base-mb MB of /usr files, three applications of
10, 20 and 30 MB on it, one unrelated image of 40 MB), packed as a bundle; release 2 has the
same base and unrelated image and new application layers. Each measure runs against a
fresh private containerd (its own root, CRI off; content is shared between namespaces of
one containerd, so a second tool on the same one would find the first one's blobs), and
both tools unpack into the same snapshotter (overlayfs). Each measure is taken --repeat
times, the tools taking turns, and the fastest kept (other work on the machine adds noise).

  load of the corpus into an empty containerd          vs ctr import   (<= 1.0)
  load of release 2 with release 1 (the base) present  vs ctr import   (<= 0.3)
                                                        (ctr likewise finds release 1 there)
  and how much of release 2 is new (layer bytes release 1 lacks / all of release 2's):
  both tools must write and unpack that part; ctr reads all of the rest too

Usage: python bench/containerd.py [--base-mb 300]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from common import compile_package, report, timed  # noqa: E402
from registry import build_corpus  # noqa: E402  (the registry bench's corpus)

from tests.integration.peers import Containerd  # noqa: E402

NAMESPACE = "k8s.io"


def layer_sizes(bundle: Path) -> dict[str, int]:
    """Layer digest -> size, of every image in ``bundle``."""
    from archiver.engine.graph import resolve
    from archiver.places.archive import open_source

    with open_source(str(bundle)) as source:
        roots = [resolve(source, entry) for entry in source.images()]
    return {str(d.digest): d.size for r in roots for d, data in r.blobs() if data is None}


def ctr_import(containerd: Containerd, bundle: Path) -> float:
    start = time.perf_counter()
    subprocess.run(
        f"zstd -dc {bundle} | ctr -a {containerd.address} -n {NAMESPACE} images import -",
        shell=True,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return time.perf_counter() - start


def archiver_load(containerd: Containerd, bundle: Path) -> float:
    args = [sys.executable, "-m", "archiver", "load", str(bundle), "-q"]
    seconds, _ = timed([*args, "--containerd", containerd.address, "--namespace", NAMESPACE])
    return seconds


def fresh(work: Path, name: str) -> Containerd:
    folder = work / name
    folder.mkdir()
    containerd = Containerd(folder)
    containerd.start()
    return containerd


def measure(work: Path, name: str, tool: str, before: Path | None, bundle: Path) -> float:
    """Seconds of ``tool`` loading ``bundle`` into a fresh containerd (that ``tool`` has
    given ``before`` first, when given)."""
    load = ctr_import if tool == "ctr" else archiver_load
    containerd = fresh(work, name)
    try:
        if before is not None:
            load(containerd, before)
        return load(containerd, bundle)
    finally:
        containerd.stop()
        shutil.rmtree(work / name, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--base-mb", type=int, default=300)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "containerd.json"))
    args = parser.parse_args()
    compile_package()
    work = Path(tempfile.mkdtemp(prefix="arch-bench-ctr-", dir="/tmp"))
    archiver = [sys.executable, "-m", "archiver"]
    try:
        bundles = []
        for release in (1, 2):
            (work / f"r{release}").mkdir()
            corpus, _ = build_corpus(work / f"r{release}", args.base_mb, release=release)
            bundle = work / f"r{release}.tar.zst"
            subprocess.run([*archiver, "pack", str(corpus), "-o", str(bundle), "-q"], check=True)
            corpus.unlink()
            bundles.append(bundle)
        r1, r2 = bundles
        old, new = layer_sizes(r1), layer_sizes(r2)
        new_share = sum(s for d, s in new.items() if d not in old) / sum(new.values())
        times: dict[str, list[float]] = {"c1": [], "a1": [], "c2": [], "a2": []}
        for _ in range(args.repeat):
            times["c1"].append(measure(work, "c1", "ctr", None, r1))
            times["a1"].append(measure(work, "a1", "archiver", None, r1))
            times["c2"].append(measure(work, "c2", "ctr", r1, r2))
            times["a2"].append(measure(work, "a2", "archiver", r1, r2))
        ctr_s, load_s, ctr_base_s, load_base_s = (min(times[k]) for k in ("c1", "a1", "c2", "a2"))
        result = {
            "base_mb": args.base_mb,
            "ctr_import_s": round(ctr_s, 2),
            "load_s": round(load_s, 2),
            "load_vs_ctr": load_s / ctr_s,
            "ctr_import_base_present_s": round(ctr_base_s, 2),
            "load_base_present_s": round(load_base_s, 2),
            "load_base_present_vs_ctr": load_base_s / ctr_base_s,
            "release2_new_share": new_share,
        }
        report(
            f"containerd load, corpus with a {args.base_mb} MB base",
            [
                ("load vs zstd -dc | ctr images import", "load_vs_ctr", "<= 1.0"),
                ("the same, release 2 with the base present", "load_base_present_vs_ctr", "<= 0.3"),
                ("share of release 2's layer bytes that is new", "release2_new_share", ""),
                ("load (s)", "load_s", ""),
                ("ctr import (s)", "ctr_import_s", ""),
                ("load, base present (s)", "load_base_present_s", ""),
                ("ctr import, base present (s)", "ctr_import_base_present_s", ""),
            ],
            result,
            args.out,
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
