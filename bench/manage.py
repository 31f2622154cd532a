#!/usr/bin/env python3
"""Benchmark: changing a multi-GB bundle (tag, rmi, prune) against repacking it.

Writes a docker-save tar of real system files (compressible as real images are: layers of
256 MB from /usr), packs it into a bundle, then times, in the same run:

  tag   vs archiver pack of the same input   (target: a small fraction, <= 0.25)
  tag   vs zstd -T0 -3 of the same tar       (what any repack costs at least)
  tag   vs cp + sync of the bundle           (the floor of a rewrite that is atomic and
                                             durable, where extents cannot be shared)
  rmi   of one small image, vs pack
  df    (seconds)
  peak RSS of tag and rmi                    (target <= 150 MB)

A rewrite copies the bundle's layer frames as they are (copy_file_range: in the kernel, and
a shared extent on XFS or Btrfs), so it costs about a file copy and its fsync;
recompressing would cost what pack costs.

Usage: python bench/manage.py [--gb 3] [--keep DIR]
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

from common import compile_package, timed  # noqa: E402

SOURCES = [Path("/usr/lib"), Path("/usr/share"), Path("/usr/bin")]
LAYER = 256 * 1024 * 1024


def _files() -> Iterator[Path]:
    for top in SOURCES:
        for dirpath, _dirs, names in os.walk(top):
            for name in sorted(names):
                path = Path(dirpath) / name
                if path.is_file() and not path.is_symlink():
                    yield path


def _layer(path: Path, files: Iterator[Path], budget: int, prefix: str = "") -> int:
    """A layer tar of the next files of ``files``, about ``budget`` bytes (under ``prefix``,
    so that a second pass over the same files makes other layers)."""
    written = 0
    with tarfile.open(path, "w") as tar:
        for source in files:
            try:
                info = tar.gettarinfo(str(source), arcname=prefix + str(source).lstrip("/"))
                info.mtime, info.uid, info.gid, info.uname, info.gname = 0, 0, 0, "", ""
                with source.open("rb") as data:
                    tar.addfile(info, data)
            except OSError:
                continue
            written += info.size
            if written >= budget:
                break
    return written


def build_input(work: Path, total: int) -> tuple[Path, list[str]]:
    """A docker-save tar: one big image of ``total`` bytes of layers, and two small ones."""
    layers = []
    files = _files()
    while sum(p.stat().st_size for p in layers) < total:
        path = work / f"layer{len(layers)}.tar"
        if _layer(path, files, LAYER, prefix=f"layer{len(layers)}/") == 0:
            files = _files()  # all of /usr used: start again (other layer, same bytes)
            continue
        layers.append(path)
    small = work / "small.tar"
    with tarfile.open(small, "w") as tar:
        info = tarfile.TarInfo("small.txt")
        info.size = 4
        tar.addfile(info, io.BytesIO(b"tiny"))
    images = [("big/image:1", layers), ("small/a:1", [small]), ("small/b:1", [layers[0], small])]
    out = work / "input.tar"
    manifest = []
    digests = {p: _sha256(p) for p in {*layers, small}}
    with tarfile.open(out, "w") as tar:
        for path, digest in digests.items():
            tar.add(str(path), arcname=f"{digest}.tar")
        for tag, parts in images:
            config = json.dumps(
                {
                    "architecture": "amd64",
                    "os": "linux",
                    "rootfs": {
                        "type": "layers",
                        "diff_ids": [f"sha256:{digests[p]}" for p in parts],
                    },
                }
            ).encode()
            name = hashlib.sha256(config).hexdigest() + ".json"
            info = tarfile.TarInfo(name)
            info.size = len(config)
            tar.addfile(info, io.BytesIO(config))
            manifest.append(
                {"Config": name, "RepoTags": [tag], "Layers": [f"{digests[p]}.tar" for p in parts]}
            )
        raw = json.dumps(manifest).encode()
        info = tarfile.TarInfo("manifest.json")
        info.size = len(raw)
        tar.addfile(info, io.BytesIO(raw))
    for path in digests:
        path.unlink()
    return out, [tag for tag, _ in images]


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        while chunk := file.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _copy_and_sync(source: Path, target: Path) -> float:
    """The floor of any atomic rewrite on a file system without shared extents: a copy,
    made durable."""
    start = time.perf_counter()
    subprocess.run(["cp", str(source), str(target)], check=True)
    subprocess.run(["sync", str(target)], check=True)
    seconds = time.perf_counter() - start
    target.unlink()
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--gb", type=float, default=3.0, help="size of the big image's layers")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "manage.json"))
    args = parser.parse_args()
    compile_package()
    work = Path(tempfile.mkdtemp(prefix="arch-bench-manage-", dir="/tmp"))
    archiver = [sys.executable, "-m", "archiver"]
    try:
        source, _tags = build_input(work, int(args.gb * 1e9))
        bundle = work / "bundle.tar.zst"
        pack_s, pack_rss = timed([*archiver, "pack", str(source), "-o", str(bundle), "-q"])
        plain = work / "plain.tar"
        subprocess.run(["zstd", "-q", "-d", "-f", str(bundle), "-o", str(plain)], check=True)
        zstd_s, _ = timed(
            ["zstd", "-q", "-T0", "-3", "-f", str(plain), "-o", str(work / "ref.zst")]
        )
        for path in (plain, work / "ref.zst", source):
            path.unlink()
        copy_s = _copy_and_sync(bundle, work / "copy.tar.zst")
        tag_s, tag_rss = timed(
            [*archiver, "tag", str(bundle), "big/image:1", "registry.local:5000/big:1"]
        )
        rmi_s, rmi_rss = timed([*archiver, "rmi", str(bundle), "small/a:1"])
        df_s, _ = timed([*archiver, "df", str(bundle)])
        verify_s, _ = timed([*archiver, "verify", str(bundle)])
        result = {
            "bundle_bytes": bundle.stat().st_size,
            "pack_s": pack_s,
            "zstd_T0_3_s": zstd_s,
            "tag_s": tag_s,
            "rmi_s": rmi_s,
            "df_s": df_s,
            "verify_s": verify_s,
            "tag_vs_pack": tag_s / pack_s,
            "tag_vs_zstd": tag_s / zstd_s,
            "copy_s": copy_s,
            "tag_vs_copy": tag_s / copy_s,
            "rmi_vs_pack": rmi_s / pack_s,
            "pack_rss_mb": pack_rss,
            "tag_rss_mb": tag_rss,
            "rmi_rss_mb": rmi_rss,
        }
    finally:
        shutil.rmtree(work, ignore_errors=True)
    rows = [
        ("tag / pack (same input)", "tag_vs_pack", "<= 0.25"),
        ("tag / zstd -T0 -3 (same tar)", "tag_vs_zstd", ""),
        ("tag / cp + sync of the bundle", "tag_vs_copy", "<= 2"),
        ("rmi / pack", "rmi_vs_pack", "<= 0.25"),
        ("df (s)", "df_s", "< 1"),
        ("tag peak RSS (MB)", "tag_rss_mb", "<= 150"),
        ("rmi peak RSS (MB)", "rmi_rss_mb", "<= 150"),
    ]
    print(
        f"bundle {result['bundle_bytes'] / 1e9:.2f} GB: pack {pack_s:.1f}s, zstd {zstd_s:.1f}s, "
        f"tag {tag_s:.2f}s, rmi {rmi_s:.2f}s, verify {result['verify_s']:.1f}s"
    )
    print(f"{'measure':36}{'value':>10}{'target':>10}")
    for label, key, target in rows:
        print(f"{label:36}{result[key]:>10.3f}{target:>10}")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
