#!/usr/bin/env python3
"""Benchmark: push compresses like docker, against skopeo, on a real local registry.

The registry bench's corpus (a base of --base-mb MB of /usr files, three applications of
10, 20 and 30 MB on it, one unrelated image of 40 MB) as one docker-save tar.

  push of the corpus, gzip (the default), empty registry
       vs skopeo copy docker-archive:... docker:// one by one (gzip too)      (<= 0.7)
       (--repeat times, the tools taking turns, each on a fresh registry: medians)
  bytes uploaded (every blob the registry holds, once) vs skopeo's          (<= 1.02)
  a second push of the same corpus: blobs uploaded, layers compressed           (0, 0)
  gzip of one --layer-mb MB layer on every core (blobs.block_compress)
       vs single-thread zlib at the same level                      (>= 1.6 on 2 cores)

Usage: python bench/push.py [--base-mb 300] [--layer-mb 500] [--repeat 3]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import zlib
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from common import compile_package, report, running_registry  # noqa: E402
from manage import _files, _layer  # noqa: E402  (the same corpus helpers)
from registry import build_corpus  # noqa: E402

from archiver.blobs.block_compress import GZIP, compress  # noqa: E402

MB = 1024 * 1024


def stored_bytes(host: str, refs: list[str]) -> int:
    """Bytes of every blob the images of ``refs`` name (configs and layers), each once."""
    sizes: dict[str, int] = {}
    for ref in refs:
        raw = subprocess.run(
            ["skopeo", "inspect", "--tls-verify=false", "--raw", f"docker://{host}/{ref}"],
            capture_output=True,
            check=True,
            text=True,
        ).stdout
        manifest = json.loads(raw)
        for blob in [manifest["config"], *manifest["layers"]]:
            sizes[blob["digest"]] = blob["size"]
    return sum(sizes.values())


class _Null:
    def write(self, data: bytes, /) -> int:
        return len(data)


def gzip_speed(layer: Path) -> tuple[float, float, int, int]:
    """Seconds of block_compress on every core and of one zlib stream, and their sizes."""
    with layer.open("rb") as stream:
        start = time.perf_counter()
        ours = compress(stream, _Null(), GZIP)
        parallel_s = time.perf_counter() - start
    packer = zlib.compressobj(GZIP.level, zlib.DEFLATED, 31)  # the same level
    size = 0
    with layer.open("rb") as stream:
        start = time.perf_counter()
        while chunk := stream.read(MB):
            size += len(packer.compress(chunk))
        size += len(packer.flush())
        single_s = time.perf_counter() - start
    return parallel_s, single_s, ours.size, size


def skopeo_copy(corpus: Path, tags: list[str]) -> tuple[float, int]:
    """Seconds of skopeo copying every image of ``corpus``, one by one, into an empty
    registry; the bytes the registry then holds."""
    with running_registry() as registry:
        start = time.perf_counter()
        for tag in tags:
            source = f"docker-archive:{corpus}:{tag}"
            target = f"docker://{registry.host}/{tag}"
            skopeo = ["skopeo", "copy", "-q", "--dest-tls-verify=false"]
            subprocess.run([*skopeo, source, target], check=True)
        seconds = time.perf_counter() - start
        return seconds, stored_bytes(registry.host, tags)


def push(archiver: list[str], corpus: Path, tags: list[str]) -> tuple[float, int, Any]:
    """Seconds of archiver pushing ``corpus`` into an empty registry; the bytes it then
    holds; the summary of a second push of the same."""
    with running_registry() as registry:
        command = [*archiver, "push", str(corpus), "--to", registry.host, "--json"]
        start = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True)
        seconds = time.perf_counter() - start
        again = json.loads(subprocess.run(command, check=True, capture_output=True).stdout)
        return seconds, stored_bytes(registry.host, tags), again


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--base-mb", type=int, default=300)
    parser.add_argument("--layer-mb", type=int, default=500)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "push.json"))
    args = parser.parse_args()
    compile_package()
    work = Path(tempfile.mkdtemp(prefix="arch-bench-push-", dir="/tmp"))
    archiver = [sys.executable, "-m", "archiver"]
    try:
        corpus, tags = build_corpus(work, args.base_mb)
        skopeo_runs: list[float] = []
        push_runs: list[float] = []
        for run in range(args.repeat):
            seconds, skopeo_bytes = skopeo_copy(corpus, tags)
            skopeo_runs.append(seconds)
            os.environ["XDG_CACHE_HOME"] = str(work / f"cache{run}")  # an empty layer map
            seconds, push_bytes, again = push(archiver, corpus, tags)
            push_runs.append(seconds)
        skopeo_s, push_s = statistics.median(skopeo_runs), statistics.median(push_runs)

        layer = work / "one-layer.tar"
        _layer(layer, _files(), args.layer_mb * MB, prefix="big/")
        parallel_s, single_s, ours, zlibs = gzip_speed(layer)
        one_thread = dataclasses.replace(GZIP, threads=1)
        with layer.open("rb") as stream:
            start = time.perf_counter()
            compress(stream, _Null(), one_thread)
            blocks_one_s = time.perf_counter() - start
        result = {
            "corpus_bytes": corpus.stat().st_size,
            "cores": os.cpu_count() or 1,
            "push_s": push_s,
            "skopeo_push_s": skopeo_s,
            "push_vs_skopeo": push_s / skopeo_s,
            "push_runs_s": [round(t, 2) for t in push_runs],
            "skopeo_runs_s": [round(t, 2) for t in skopeo_runs],
            "push_bytes": push_bytes,
            "skopeo_bytes": skopeo_bytes,
            "bytes_vs_skopeo": push_bytes / skopeo_bytes,
            "second_push_blobs_uploaded": again["blobs_pushed"],
            "second_push_layers_compressed": again["layers_compressed"],
            "layer_bytes": layer.stat().st_size,
            "gzip_parallel_s": parallel_s,
            "gzip_blocks_one_thread_s": blocks_one_s,
            "zlib_single_s": single_s,
            "gzip_speedup": single_s / parallel_s,
            "gzip_threads_speedup": blocks_one_s / parallel_s,
            "gzip_size_vs_zlib": ours / zlibs,
        }
    finally:
        shutil.rmtree(work, ignore_errors=True)
    rows = [
        ("push (gzip) / skopeo copy one by one", "push_vs_skopeo", "<= 0.7"),
        ("bytes uploaded / skopeo's", "bytes_vs_skopeo", "<= 1.02"),
        ("second push: blobs uploaded", "second_push_blobs_uploaded", "0"),
        ("second push: layers compressed", "second_push_layers_compressed", "0"),
        ("single-thread zlib / parallel gzip (speed-up)", "gzip_speedup", ">= 1.6"),
        ("the same blocks on one thread / on every core", "gzip_threads_speedup", ""),
        ("parallel gzip size / one zlib stream", "gzip_size_vs_zlib", ""),
    ]
    headline = (
        f"corpus {result['corpus_bytes'] / 1e6:.0f} MB (medians of {args.repeat}): push "
        f"{result['push_s']:.1f}s, skopeo "
        f"{result['skopeo_push_s']:.1f}s; {result['layer_bytes'] / 1e6:.0f} MB layer: "
        f"{result['gzip_parallel_s']:.1f}s on {result['cores']} cores, zlib "
        f"{result['zlib_single_s']:.1f}s"
    )
    report(headline, rows, result, args.out)


if __name__ == "__main__":
    main()
