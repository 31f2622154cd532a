#!/usr/bin/env python3
"""Benchmark: archiver load --containerd against ``zstd -dc BUNDLE | ctr images import -``.

The registry bench's corpus (a base of --base-mb MB of /usr files, three applications of
10, 20 and 30 MB on it, one unrelated image of 40 MB), packed as a bundle; and the base
alone, as an image of its own (bench/base:1, the base layer only), packed as another. Each
measure runs against a fresh private containerd (its own root, CRI off; content is shared
between namespaces of one containerd, so a second tool on the same one would find the first
one's blobs), and both tools unpack into the same snapshotter (overlayfs). Each measure is
taken --repeat times, the tools taking turns; the median is the ratio's (other work on the
machine adds noise; the fastest are printed too).

  load of the corpus into an empty containerd               vs ctr import   (<= 1.0)
  load of the corpus into one holding the base image        vs ctr import   (<= 0.3)
                                            (the same tool loaded the base image first)
  and how much of the corpus is new then (layer bytes the base image lacks / all of the
  corpus's): both tools must write and unpack that part; ctr reads all of the rest too

Usage: python bench/containerd.py [--base-mb 300]
"""

from __future__ import annotations

import argparse
import io
import json
import shutil
import statistics
import subprocess
import sys
import tarfile
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


def base_only(corpus: Path, out: Path) -> Path:
    """A docker-save tar of the corpus's base layer alone, as the image bench/base:1."""
    with tarfile.open(corpus) as tar:
        manifest = json.loads(_member(tar, "manifest.json"))
        first = manifest[0]
        config = json.loads(_member(tar, first["Config"]))
        base_layer = first["Layers"][0]
        config["rootfs"]["diff_ids"] = config["rootfs"]["diff_ids"][:1]
        config["config"] = {"Labels": {"tag": "bench/base:1"}}
        raw = json.dumps(config).encode()
        with tarfile.open(out, "w") as tar_out:
            layer = tar.getmember(base_layer)
            tar_out.addfile(layer, tar.extractfile(layer))
            _add(tar_out, "base.json", raw)
            entry = {"Config": "base.json", "RepoTags": ["bench/base:1"], "Layers": [base_layer]}
            _add(tar_out, "manifest.json", json.dumps([entry]).encode())
    return out


def _member(tar: tarfile.TarFile, name: str) -> bytes:
    found = tar.extractfile(name)
    assert found is not None
    return found.read()


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


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
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "containerd.json"))
    args = parser.parse_args()
    compile_package()
    work = Path(tempfile.mkdtemp(prefix="arch-bench-ctr-", dir="/tmp"))
    archiver = [sys.executable, "-m", "archiver"]
    try:
        corpus, _ = build_corpus(work, args.base_mb)
        base_tar = base_only(corpus, work / "base.tar")
        bundles = []
        for name, tar in (("corpus", corpus), ("base", base_tar)):
            bundle = work / f"{name}.tar.zst"
            subprocess.run([*archiver, "pack", str(tar), "-o", str(bundle), "-q"], check=True)
            tar.unlink()
            bundles.append(bundle)
        full, base = bundles
        old, new = layer_sizes(base), layer_sizes(full)
        new_share = sum(s for d, s in new.items() if d not in old) / sum(new.values())
        times: dict[str, list[float]] = {"c1": [], "a1": [], "c2": [], "a2": []}
        for _ in range(args.repeat):
            times["c1"].append(measure(work, "c1", "ctr", None, full))
            times["a1"].append(measure(work, "a1", "archiver", None, full))
            times["c2"].append(measure(work, "c2", "ctr", base, full))
            times["a2"].append(measure(work, "a2", "archiver", base, full))
        keys = ("c1", "a1", "c2", "a2")
        ctr_s, load_s, ctr_base_s, load_base_s = (statistics.median(times[k]) for k in keys)
        result = {
            "base_mb": args.base_mb,
            "runs": args.repeat,
            "ctr_import_s": round(ctr_s, 2),
            "load_s": round(load_s, 2),
            "load_vs_ctr": load_s / ctr_s,
            "ctr_import_base_present_s": round(ctr_base_s, 2),
            "load_base_present_s": round(load_base_s, 2),
            "load_base_present_vs_ctr": load_base_s / ctr_base_s,
            "new_share_base_present": new_share,
            "fastest_s": {k: round(min(times[k]), 2) for k in keys},
        }
        report(
            f"containerd load, corpus with a {args.base_mb} MB base (medians of {args.repeat})",
            [
                ("load vs zstd -dc | ctr images import", "load_vs_ctr", "<= 1.0"),
                ("the same, the base image present", "load_base_present_vs_ctr", "<= 0.3"),
                ("share of the corpus's layer bytes new then", "new_share_base_present", ""),
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
