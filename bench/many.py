#!/usr/bin/env python3
"""Benchmark: many images in one bundle (issue #21). Cost must follow bytes, not images.

Generates the many-images corpus without a daemon: docker-save archives of K images each,
every image FROM-scratch style on one of four shared bases (one layer of real files from
/usr each), plus three small layers of its own (real files too, each image other files).
With the defaults, 200 images in 20 archives: 604 distinct layers, ~250 MiB unique. Then
prints, as medians of --runs runs measured interleaved:

  pack of the 200 images (20 archives)  vs zstd -T0 -3 of the same unique bytes (<= 1.2)
    and vs zstd then sync of its output (pack's output is on disk before its rename)
    and the floor of a verifying pack: the CPU of zstd and of openssl sha256, on all cores
  unpack of the whole bundle            vs zstd -d of it to a file             (<= 1.2)
    and vs zstd -d then sync of the file (unpack's promise: on disk, then renamed)
  ls of the bundle (s)                                                          (<= 0.3)
  ls of a bundle of 10x as many images (s; small layers: ls must not care)      linear
  (the bundles are packed by the archiver being measured, outside the timings)
  unpack --image of one image (s)                                               (<= 0.4)
  tag (a rewrite) of the bundle         vs its pack                             (<= 0.25)
  cp of the bundle (the floor of a rewrite) vs its pack                         (reference)
  peak RSS of every archiver command (MB)                                       (<= 150)
  pack, tag, prune, inspect of --images small images and of --ls-scale x as many:
  the time ratio (linear in the number of images: about --ls-scale, never its square)

and the machine's core count. Usage:
  python bench/many.py [--images 200] [--per-archive 10] [--runs 5] [--ls-scale 10]
  python bench/many.py --images 4 --per-archive 1 --bases 1 --base-mib 300 --app-kib 20480
      --ls-scale 0    (the issue's first rows: a few images on a base of a few hundred MB)
Times are wall-clock: compare ratios, not seconds.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

from common import compile_package, timed  # noqa: E402

SOURCES = [Path("/usr/lib"), Path("/usr/share"), Path("/usr/bin")]
BASES = 4
"""Shared bases of the corpus (--bases)."""
APP_LAYERS = 3
MIB = 1024 * 1024


def _files() -> Iterator[tuple[Path, int]]:
    """Real files of /usr (regular, under 8 MiB), in a fixed order, over and over."""
    while True:
        for top in SOURCES:
            for dirpath, dirs, names in os.walk(top):
                dirs.sort()
                for name in sorted(names):
                    path = Path(dirpath) / name
                    if path.is_symlink() or not path.is_file():
                        continue
                    size = path.stat().st_size
                    if 0 < size <= 8 * MIB and os.access(path, os.R_OK):
                        yield path, size


def _layer(files: Iterator[tuple[Path, int]], budget: int, prefix: str) -> bytes:
    """A layer tar of the next files of ``files``, about ``budget`` bytes, under ``prefix``
    (so a second pass over the same files still makes another layer)."""
    buffer = io.BytesIO()
    taken = 0
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        while taken < budget * 15 // 16:
            path, size = next(files)
            if taken + size > budget:
                continue  # a file that would overshoot is left: a layer is the size asked
            info = tarfile.TarInfo(prefix + str(path).lstrip("/"))
            info.size, info.mode, info.mtime = size, 0o644, 0
            with path.open("rb") as data:
                tar.addfile(info, data)
            taken += size
    return buffer.getvalue()


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def generate(
    work: Path,
    images: int,
    per_archive: int,
    base_bytes: int,
    app_bytes: int,
    bases_count: int = BASES,
) -> list[Path]:
    """``images`` images in docker-save archives of ``per_archive``; image i is on base
    ``i * BASES // images`` (so an archive holds one or two bases, as real saves of related
    images do) with APP_LAYERS layers of its own of ``app_bytes`` in all."""
    files = _files()
    bases = [_layer(files, base_bytes, f"base{b}/") for b in range(bases_count)]
    archives = []
    for first in range(0, images, per_archive):
        path = work / f"save{first // per_archive:04d}.tar"
        manifest = []
        written: set[str] = set()
        with tarfile.open(path, "w") as tar:

            def add(name: str, data: bytes, written: set[str] = written) -> None:
                if name not in written:
                    written.add(name)
                    info = tarfile.TarInfo(name)
                    info.size, info.mtime = len(data), 0
                    tar.addfile(info, io.BytesIO(data))

            for i in range(first, min(first + per_archive, images)):
                layers = [bases[i * bases_count // images]]
                layers += [
                    _layer(files, app_bytes // APP_LAYERS, f"app{i}/l{j}/")
                    for j in range(APP_LAYERS)
                ]
                diff_ids = [_sha(layer) for layer in layers]
                config = json.dumps(
                    {
                        "architecture": "amd64",
                        "os": "linux",
                        "created": "2025-01-01T00:00:00Z",
                        "config": {"Labels": {"image": str(i)}},
                        "rootfs": {"type": "layers", "diff_ids": [f"sha256:{d}" for d in diff_ids]},
                        "history": [{"created_by": f"layer {j}"} for j in range(len(layers))],
                    },
                    sort_keys=True,
                ).encode()
                add(_sha(config) + ".json", config)
                for digest, layer in zip(diff_ids, layers, strict=True):
                    add(f"{digest}/layer.tar", layer)
                manifest.append(
                    {
                        "Config": _sha(config) + ".json",
                        "RepoTags": [f"many/app{i}:1"],
                        "Layers": [f"{d}/layer.tar" for d in diff_ids],
                    }
                )
            add("manifest.json", json.dumps(manifest).encode())
        archives.append(path)
    return archives


def _generate(
    work: Path, images: int, per_archive: int, base: int, app: int, bases: int = BASES
) -> None:
    numbers = [str(n) for n in (images, per_archive, base, app, bases)]
    subprocess.run([sys.executable, __file__, "--generate", str(work), *numbers], check=True)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--images", type=int, default=200)
    parser.add_argument("--per-archive", type=int, default=10)
    parser.add_argument("--base-mib", type=float, default=25.0, help="size of each base layer")
    parser.add_argument("--app-kib", type=float, default=640.0, help="an image's own layers")
    parser.add_argument("--ls-scale", type=int, default=10, help="images x this for ls (0: no)")
    parser.add_argument("--runs", type=int, default=5, help="repetitions; the median is kept")
    parser.add_argument("--keep", help="a directory for the corpus, kept between runs")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "many.json"))
    parser.add_argument("--bases", type=int, default=BASES, help="shared base images")
    parser.add_argument("--generate", nargs=6, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.generate:  # in a process of its own: the layers it holds never count in an RSS
        where, *numbers = args.generate
        generate(Path(where), *(int(n) for n in numbers))
        return
    compile_package()
    work = Path(args.keep or tempfile.mkdtemp(prefix="arch-bench-many-", dir="/tmp"))
    work.mkdir(parents=True, exist_ok=True)
    archiver = [sys.executable, "-m", "archiver"]
    times: dict[str, list[float]] = {}
    rss: dict[str, int] = {}
    cpu: dict[str, list[float]] = {}

    def measure(key: str, command: list[str]) -> None:
        os.sync()  # the last measure's writes go to disk before, not during, this one
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        seconds, peak = timed(command)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        used = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        cpu.setdefault(key, []).append(used)  # user + sys: less disturbed by other work
        times.setdefault(key, []).append(seconds)
        rss[key] = max(rss.get(key, 0), peak)

    try:
        shape = (args.bases, args.base_mib, args.app_kib)
        suffix = "" if shape == (BASES, 25.0, 640.0) else "-{}x{:g}M-{:g}K".format(*shape)
        corpus = work / f"corpus-{args.images}{suffix}"
        if not corpus.exists():
            corpus.mkdir()
            _generate(
                corpus,
                args.images,
                args.per_archive,
                int(args.base_mib * MIB),
                int(args.app_kib * 1024),
                args.bases,
            )
        saves = sorted(str(p) for p in corpus.glob("save*.tar"))
        big_bundle = work / "big.tar.zst"
        scaled: dict[str, list[str]] = {}  # "small" and "big": the saves of each corpus
        if args.ls_scale:  # packed anew: a bundle as the archiver measured writes it
            for key, count in (("small", args.images), ("big", args.images * args.ls_scale)):
                where = work / f"corpus-{count}-small"
                if not where.exists():
                    where.mkdir()
                    _generate(where, count, args.per_archive, 64 * 1024, 12 * 1024)
                scaled[key] = sorted(str(p) for p in where.glob("save*.tar"))
            subprocess.run(
                [*archiver, "pack", *scaled["big"], "-o", str(big_bundle), "-q"], check=True
            )
        bundle, copy = work / "bundle.tar.zst", work / "copy.tar.zst"
        plain, ref = work / "plain.tar", work / "ref.zst"
        one = f"many/app{args.images // 2}:1"
        for run in range(args.runs):
            measure("pack", [*archiver, "pack", *saves, "-o", str(bundle), "-q"])
            if run == 0:
                subprocess.run(
                    ["zstd", "-q", "-d", "-f", str(bundle), "-o", str(plain)], check=True
                )
            measure("zstd", ["zstd", "-q", "-T0", "-3", "-f", str(plain), "-o", str(ref)])
            measure(
                "zstd_sync", ["sh", "-c", f'zstd -q -T0 -3 -f "{plain}" -o "{ref}" && sync "{ref}"']
            )
            measure("sha256", ["openssl", "dgst", "-sha256", str(plain)])
            measure("unpack", [*archiver, "unpack", str(bundle), "-o", str(work / "u.tar"), "-q"])
            measure("zstd_d", ["zstd", "-q", "-d", "-f", str(bundle), "-o", str(work / "r.tar")])
            restored = work / "r.tar"
            measure(
                "zstd_d_sync",
                ["sh", "-c", f'zstd -q -d -f "{bundle}" -o "{restored}" && sync "{restored}"'],
            )
            measure("ls", [*archiver, "ls", str(bundle)])
            if args.ls_scale:
                measure("ls_big", [*archiver, "ls", str(big_bundle)])
                for key, saves_of in scaled.items():  # the same verbs on 10x as many images
                    packed, changed = work / f"scaled-{key}.tar.zst", work / "changed.tar.zst"
                    measure(f"pack_{key}", [*archiver, "pack", *saves_of, "-o", str(packed), "-q"])
                    shutil.copyfile(packed, changed)
                    measure(f"tag_{key}", [*archiver, "tag", str(changed), one, "other/x:1"])
                    measure(f"prune_{key}", [*archiver, "prune", "-f", str(changed)])
                    measure(f"inspect_{key}", [*archiver, "inspect", str(packed), one])
            measure(
                "unpack_image",
                [
                    *archiver,
                    "unpack",
                    str(bundle),
                    "--image",
                    one,
                    "-o",
                    str(work / "one.tar"),
                    "-q",
                ],
            )
            measure("cp", ["cp", str(bundle), str(copy)])  # a rewrite's floor
            measure("tag", [*archiver, "tag", str(copy), one, f"other/name:{run}"])
    finally:
        for name in (
            "u.tar",
            "r.tar",
            "one.tar",
            "ref.zst",
            "copy.tar.zst",
            "changed.tar.zst",
            "scaled-small.tar.zst",
            "scaled-big.tar.zst",
        ):
            (work / name).unlink(missing_ok=True)
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    median = {key: statistics.median(values) for key, values in times.items()}
    result: dict[str, Any] = {
        "cores": os.cpu_count(),
        "images": args.images,
        "runs": args.runs,
        "unique_bytes": plain.stat().st_size if plain.exists() else None,
        "pack_vs_zstd": median["pack"] / median["zstd"],
        "pack_vs_zstd_sync": median["pack"] / median["zstd_sync"],
        "verifying_floor_vs_zstd": _verifying_floor(cpu, median) / median["zstd"],
        "unpack_vs_zstd_d": median["unpack"] / median["zstd_d"],
        "unpack_vs_zstd_d_sync": median["unpack"] / median["zstd_d_sync"],
        "ls_s": median["ls"],
        "ls_big_s": median.get("ls_big", float("nan")),
        "ls_per_1000_s": (median.get("ls_big", float("nan")) - median["ls"])
        * 1000
        / max(1, args.images * (args.ls_scale - 1)),
        "unpack_image_s": median["unpack_image"],
        "tag_vs_pack": median["tag"] / median["pack"],
        "cp_s": median["cp"],
        "cp_vs_pack": median["cp"] / median["pack"],
        "peak_rss_mb": max(rss.values()),
        "median_s": median,
        "rss_mb": rss,
        "times_s": times,
        "cpu_median_s": {key: statistics.median(values) for key, values in cpu.items()},
    }
    n = args.images
    rows = [
        (f"pack {n} images / zstd -T0 -3", "pack_vs_zstd", "<= 1.2"),
        ("  pack / (zstd -T0 -3, then sync)", "pack_vs_zstd_sync", "ref"),
        ("  floor of a verifying pack / zstd", "verifying_floor_vs_zstd", "ref"),
        ("unpack / zstd -d (to a file)", "unpack_vs_zstd_d", "<= 1.2"),
        ("  unpack / (zstd -d, then sync)", "unpack_vs_zstd_d_sync", "ref"),
        (f"ls, {n} images (s)", "ls_s", "<= 0.3"),
        (f"ls, {n * args.ls_scale} images (s)", "ls_big_s", "linear"),
        ("  ls: seconds per 1,000 more images", "ls_per_1000_s", "small"),
        ("unpack --image of one (s)", "unpack_image_s", "<= 0.4"),
        ("tag / pack", "tag_vs_pack", "<= 0.25"),
        ("  cp of the bundle / pack (floor)", "cp_vs_pack", "ref"),
        ("peak RSS, any command (MB)", "peak_rss_mb", "<= 150"),
    ]
    for verb in ("pack", "tag", "prune", "inspect"):
        if f"{verb}_big" in median:
            result[f"{verb}_scaling"] = median[f"{verb}_big"] / median[f"{verb}_small"]
            rows.append(
                (
                    f"{verb}: {n * args.ls_scale} / {n} small images",
                    f"{verb}_scaling",
                    f"~{args.ls_scale}",
                )
            )
    print(f"cores: {result['cores']}, runs: {args.runs} (medians)")
    print(f"{'measure':34}{'value':>10}{'target':>10}")
    for label, key, target in rows:
        print(f"{label:34}{result[key]:>10.3f}{target:>10}")
    print("medians (s): " + ", ".join(f"{k} {v:.3f}" for k, v in median.items()))
    print(
        "CPU user+sys medians (s): "
        + ", ".join(f"{k} {v:.3f}" for k, v in result["cpu_median_s"].items())
    )
    print("peak RSS (MB): " + ", ".join(f"{k} {v}" for k, v in rss.items()))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")


def _verifying_floor(cpu: dict[str, list[float]], median: dict[str, float]) -> float:
    """Seconds a pack could not beat on this machine: zstd's own compression plus a
    SHA-256 of every byte (openssl dgst: each layer is hashed as it is read), both spread
    perfectly over every core, and never less than zstd alone."""
    work = statistics.median(cpu["zstd"]) + statistics.median(cpu["sha256"])
    return max(median["zstd"], work / (os.cpu_count() or 1))


if __name__ == "__main__":
    main()
