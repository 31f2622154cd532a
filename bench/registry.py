#!/usr/bin/env python3
"""Benchmark: archiver push and pull against skopeo, on a real local registry, same run.

A corpus of real files (a base layer of --base-mb MB of /usr, three applications of 10, 20
and 30 MB on it, one unrelated image of 40 MB) as one docker-save tar; Debian's
docker-registry on 127.0.0.1 with its storage in a temp dir (emptied between runs).

  push all images, empty registry  vs skopeo copy docker-archive:... docker:// one by one
                                    (both gzip plain layers by default, as docker push
                                    does; skopeo is also timed with --dest-decompress)
                                                                               (<= 0.8)
  push of one more image on the same base, vs the first push                 (<= 0.2)
  pull all images into a bundle    vs skopeo copy docker://... oci-archive: one by one
  peak RSS of push and pull                                                   (<= 150 MB)

Usage: python bench/registry.py [--base-mb 1000]
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
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

from common import compile_package, report, running_registry, timed  # noqa: E402
from manage import _files, _layer, _sha256  # noqa: E402  (the same corpus helpers)

MB = 1024 * 1024


def build_corpus(work: Path, base_mb: int, release: int = 1) -> tuple[Path, list[str]]:
    """One docker-save tar: a base, three applications on it, one unrelated image. Another
    ``release`` keeps the base and the unrelated image, with new application layers."""
    files = _files()
    layers: dict[str, Path] = {}
    for name, size in (("base", base_mb), ("other", 40)):
        layers[name] = work / f"{name}.tar"
        _layer(layers[name], files, size * MB)
    if release > 1:  # other files for the applications
        _layer(work / "skipped.tar", files, 100 * MB * (release - 1))
        (work / "skipped.tar").unlink()
    for name, size in (("app0", 10), ("app1", 20), ("app2", 30)):
        layers[name] = work / f"{name}.tar"
        _layer(layers[name], files, size * MB)
    images = {
        f"bench/app0:{release}": ["base", "app0"],
        f"bench/app1:{release}": ["base", "app1"],
        f"bench/app2:{release}": ["base", "app2"],
        "bench/other:1": ["other"],
    }
    digests = {name: _sha256(path) for name, path in layers.items()}
    manifest = []
    out = work / "corpus.tar"
    with tarfile.open(out, "w") as tar:
        for name, path in layers.items():
            tar.add(str(path), arcname=f"{digests[name]}.tar")
        for tag, parts in images.items():
            config = json.dumps(
                {
                    "architecture": "amd64",
                    "os": "linux",
                    "rootfs": {
                        "type": "layers",
                        "diff_ids": [f"sha256:{digests[p]}" for p in parts],
                    },
                    "config": {"Labels": {"tag": tag}},
                }
            ).encode()
            config_name = hashlib.sha256(config).hexdigest() + ".json"
            info = tarfile.TarInfo(config_name)
            info.size = len(config)
            tar.addfile(info, io.BytesIO(config))
            manifest.append(
                {
                    "Config": config_name,
                    "RepoTags": [tag],
                    "Layers": [f"{digests[p]}.tar" for p in parts],
                }
            )
        raw = json.dumps(manifest).encode()
        info = tarfile.TarInfo("manifest.json")
        info.size = len(raw)
        tar.addfile(info, io.BytesIO(raw))
    for path in layers.values():
        path.unlink()
    return out, list(images)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--base-mb", type=int, default=1000)
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "registry.json"))
    args = parser.parse_args()
    compile_package()
    work = Path(tempfile.mkdtemp(prefix="arch-bench-registry-", dir="/tmp"))
    archiver = [sys.executable, "-m", "archiver"]
    os.environ["XDG_CACHE_HOME"] = str(work / "cache")
    try:
        corpus, tags = build_corpus(work, args.base_mb)
        size = corpus.stat().st_size

        def skopeo_push(extra: list[str]) -> float:
            with running_registry() as registry:
                start = time.perf_counter()
                for tag in tags:
                    source = f"docker-archive:{corpus}:{tag}"
                    target = f"docker://{registry.host}/{tag}"
                    skopeo = ["skopeo", "copy", "-q", "--dest-tls-verify=false", *extra]
                    subprocess.run([*skopeo, source, target], check=True)
                return time.perf_counter() - start

        skopeo_gzip_s = skopeo_push([])
        skopeo_plain_s = skopeo_push(["--dest-decompress"])

        with running_registry() as registry:
            push = [*archiver, "push", str(corpus), "--to", registry.host, "-q"]
            push_s, push_rss = timed(push)
            pulled = work / "pulled.tar.zst"
            refs = [f"{registry.host}/{tag}" for tag in tags]
            pull_s, pull_rss = timed([*archiver, "pull", *refs, "-o", str(pulled), "-q"])
            start = time.perf_counter()
            for i, ref in enumerate(refs):
                target = f"oci-archive:{work / f'sk{i}.tar'}"
                skopeo = ["skopeo", "copy", "-q", "--src-tls-verify=false"]
                subprocess.run([*skopeo, f"docker://{ref}", target], check=True)
            skopeo_pull_s = time.perf_counter() - start

        # the base alone, then one application on it
        with running_registry() as registry:
            push = [*archiver, "push", str(corpus), "--to", registry.host, "-q", "--image"]
            first_s, _ = timed([*push, tags[0]])
            second_s, _ = timed([*push, tags[1]])
        result = {
            "corpus_bytes": size,
            "push_s": push_s,
            "skopeo_push_gzip_s": skopeo_gzip_s,
            "skopeo_push_plain_s": skopeo_plain_s,
            "push_vs_skopeo_plain": push_s / skopeo_plain_s,
            "push_vs_skopeo_gzip": push_s / skopeo_gzip_s,
            "second_push_vs_first": second_s / first_s,
            "pull_s": pull_s,
            "skopeo_pull_s": skopeo_pull_s,
            "pull_vs_skopeo": pull_s / skopeo_pull_s,
            "push_rss_mb": push_rss,
            "pull_rss_mb": pull_rss,
        }
    finally:
        shutil.rmtree(work, ignore_errors=True)
    rows = [
        ("push / skopeo copy --dest-decompress", "push_vs_skopeo_plain", "<= 0.8"),
        ("push / skopeo copy (skopeo's default: gzip)", "push_vs_skopeo_gzip", ""),
        ("push of an app on a pushed base / first push", "second_push_vs_first", "<= 0.2"),
        ("pull to a bundle / skopeo copy to oci-archive", "pull_vs_skopeo", ""),
        ("push peak RSS (MB)", "push_rss_mb", "<= 150"),
        ("pull peak RSS (MB)", "pull_rss_mb", "<= 150"),
    ]
    headline = (
        f"corpus {result['corpus_bytes'] / 1e6:.0f} MB: push {result['push_s']:.1f}s, skopeo "
        f"{result['skopeo_push_plain_s']:.1f}s (plain) {result['skopeo_push_gzip_s']:.1f}s "
        f"(gzip); pull {result['pull_s']:.1f}s, skopeo {result['skopeo_pull_s']:.1f}s"
    )
    report(headline, rows, result, args.out)


if __name__ == "__main__":
    main()
