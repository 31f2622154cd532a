#!/usr/bin/env python3
"""Benchmark: ``archiver sync`` of a list of 20 images, the first run against the next ones.

Twenty images (a shared base layer, and a layer of --mb MB of their own each: half random,
half text) pushed to Debian's docker-registry on 127.0.0.1; a skopeo sync file naming all
twenty. Measured, each as one command:

  first sync into a bundle (empty)                                      1.0
  second sync, nothing changed (HEADs only; the bundle is not written)   <= 0.1 x first
  third sync after one image changed (its tag moved): the other 19
  copied from the bundle as compressed frames, one image fetched        <= 0.2 x first

Each is run --repeat times (3 by default) and the medians are the ratios' (the first with
OUT removed before each run, the third with OUT put back as the second left it); the CPU
seconds (user+sys) of each are printed too, and the floor of any rewrite of OUT: a copy
of it, synced to disk (``cp`` then ``sync``), as a fraction of the first.

With --rate MB (each connection to the registry limited to MB per second, through a
throttling forwarder, as a distant registry is), the first sync is also run with
--jobs 1 and --jobs N (N: --jobs, 4 by default) and both times are reported.

With --dir, OUT (and the lists) are written there: on XFS or btrfs, a rewrite of OUT shares
the kept images' blocks with the old OUT instead of copying them.

Usage: python bench/sync.py [--mb 20] [--repeat 3] [--rate 20 [--jobs 4]] [--dir DIR]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

from common import compile_package, report, running_registry, timed  # noqa: E402
from throttle import throttled  # noqa: E402

from tests.factory import docker_save, layer  # noqa: E402  (the tests' image factory)

IMAGES = 20
MB = 1024 * 1024


def own_layer(seed: int, size: int) -> bytes:
    """``size`` bytes, half random, half text (layers compress unevenly)."""
    text = (f"line {seed} of a file that compresses well enough\n" * (size // 100 + 1)).encode()
    return layer({f"data-{seed}.bin": os.urandom(size // 2) + text[: size - size // 2]})


def push_image(work: Path, archiver: list[str], target: str, seed: int, size: int) -> None:
    archive = docker_save(
        work / f"image-{seed}.tar",
        [([target], [layer({"base": b"base\n" * 1000}), own_layer(seed, size)])],
    )
    subprocess.run([*archiver, "push", str(archive), "-q"], check=True)
    archive.unlink()


def timed_cpu(args: list[str]) -> tuple[float, float, int]:
    """Seconds, CPU seconds (user+sys) and peak RSS (MB) of one command."""
    start = time.perf_counter()
    process = subprocess.Popen(args, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(process.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"failed: {' '.join(args)}")
    cpu = usage.ru_utime + usage.ru_stime
    return time.perf_counter() - start, cpu, usage.ru_maxrss // 1024


def repeated(
    args: list[str], times: int, before: Callable[[], None]
) -> tuple[float, float, int, list[float]]:
    """Medians of ``times`` runs of ``args`` (seconds, CPU seconds), peak RSS, every time;
    ``before`` runs before each (untimed)."""
    runs = []
    for _ in range(times):
        before()
        runs.append(timed_cpu(args))
    wall = [r[0] for r in runs]
    cpu = statistics.median(r[1] for r in runs)
    return statistics.median(wall), cpu, max(r[2] for r in runs), wall


def copied(source: Path, target: Path) -> None:
    """``source`` copied to ``target`` and synced to disk (as a sync leaves its output)."""
    shutil.copyfile(source, target)
    fd = os.open(target, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--mb", type=int, default=20, help="MB of each image's own layer")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each; medians kept")
    parser.add_argument("--rate", type=float, help="MB/s each registry connection gets")
    parser.add_argument("--jobs", type=int, default=4, help="with --rate: --jobs of sync")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "sync.json"))
    parser.add_argument(
        "--dir", default="/tmp", help="where OUT is written (an XFS or btrfs mount: shared blocks)"
    )
    args = parser.parse_args()
    compile_package()
    work = Path(tempfile.mkdtemp(prefix="arch-bench-sync-", dir=args.dir))
    archiver = [sys.executable, "-m", "archiver"]
    os.environ["XDG_CACHE_HOME"] = str(work / "cache")
    os.environ["DOCKER_CONFIG"] = str(work / "docker-config")
    try:
        with running_registry() as registry:
            names = [f"bench/image{i:02}" for i in range(IMAGES)]
            for i, name in enumerate(names):
                push_image(work, archiver, f"{registry.host}/{name}:1", i, args.mb * MB)
            listed = work / "list.yaml"
            images = "".join(f"    {name}: ['1']\n" for name in names)
            listed.write_text(f"{registry.host}:\n  images:\n{images}")
            out = work / "out.tar.zst"
            kept = work / "kept.tar.zst"
            sync = [*archiver, "sync", str(listed), "-o", str(out), "-q"]
            first_s, first_cpu, first_rss, firsts = repeated(
                sync, args.repeat, lambda: out.unlink(missing_ok=True)
            )
            second_s, second_cpu, _, seconds = repeated(sync, args.repeat, lambda: None)
            copied(out, kept)
            push_image(work, archiver, f"{registry.host}/{names[0]}:1", 1000, args.mb * MB)
            third_s, third_cpu, third_rss, thirds = repeated(
                sync, args.repeat, lambda: copied(kept, out)
            )
            floors = []
            for _ in range(args.repeat):
                (work / "floor.tar.zst").unlink(missing_ok=True)
                start = time.perf_counter()
                copied(kept, work / "floor.tar.zst")
                floors.append(time.perf_counter() - start)
            floor_s = statistics.median(floors)
            result: dict[str, object] = {
                "images": IMAGES,
                "mb_each": args.mb,
                "runs": args.repeat,
                "first_s": first_s,
                "unchanged_s": second_s,
                "one_changed_s": third_s,
                "unchanged_ratio": second_s / first_s,
                "one_changed_ratio": third_s / first_s,
                "first_cpu_s": first_cpu,
                "unchanged_cpu_s": second_cpu,
                "one_changed_cpu_s": third_cpu,
                "copy_of_out_s": floor_s,
                "copy_of_out_ratio": floor_s / first_s,
                "every_run_s": {"first": firsts, "unchanged": seconds, "one_changed": thirds},
                "peak_rss_mb": max(first_rss, third_rss),
            }
            rows = [
                ("first sync (s)", "first_s", ""),
                ("second, unchanged (s)", "unchanged_s", ""),
                ("third, one changed (s)", "one_changed_s", ""),
                ("unchanged / first", "unchanged_ratio", "<= 0.1"),
                ("one changed / first", "one_changed_ratio", "<= 0.2"),
                ("first, CPU (s)", "first_cpu_s", ""),
                ("unchanged, CPU (s)", "unchanged_cpu_s", ""),
                ("one changed, CPU (s)", "one_changed_cpu_s", ""),
                ("cp of OUT + sync (s)", "copy_of_out_s", ""),
                ("cp of OUT / first", "copy_of_out_ratio", ""),
            ]
            if args.rate:
                with throttled(registry.host, args.rate * MB) as far:
                    far_list = work / "far.yaml"
                    far_list.write_text(listed.read_text().replace(registry.host, far))
                    for jobs in (1, args.jobs):
                        key = f"far_jobs_{jobs}_s"
                        target = work / f"far-{jobs}.tar.zst"
                        far_sync = [*archiver, "sync", str(far_list), "-o", str(target), "-q"]
                        result[key], _ = timed([*far_sync, "--jobs", str(jobs)])
                        rows.append((f"first, {args.rate:g} MB/s, --jobs {jobs} (s)", key, ""))
        headline = f"archiver sync, {IMAGES} images of {args.mb} MB each"
        report(f"{headline} (medians of {args.repeat})", rows, result, args.out)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
