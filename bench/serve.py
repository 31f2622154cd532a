#!/usr/bin/env python3
"""Benchmark: ``archiver serve`` against the distribution registry, same images, same run.

The corpus of bench/registry.py (a base layer of --base-mb MB of /usr, three applications
of 10, 20 and 30 MB on it, one unrelated image of 40 MB), packed as a bundle; the same
images pushed (digests kept) into Debian's docker-registry on loopback.

  docker pull of every image from serve  vs  from the registry        (target <= 1.1)
                (a private dockerd; the images removed between pulls; median of --runs)
  20 skopeo copies at once from serve: all verify; peak RSS of serve   (<= 200 MB)
  blob throughput: one client reading the base layer from serve, vs zstd -d of the
                bundle's frames to /dev/null (both decompressed bytes/s)  (>= 0.7);
                and all bytes the 20 skopeo clients got, per second, vs the same
                (each client's bytes are decompressed and hashed for it: every answer
                is verified; skopeo writes them to disk too)
  serve start to first answer on a 200-image bundle (seconds)          (<= 0.5)

Usage: python bench/serve.py [--base-mb 300] [--runs 3]
Needs docker.io, docker-registry, skopeo, zstd, curl. Times are wall-clock: compare ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT))

from common import compile_package, report, running_registry  # noqa: E402
from registry import build_corpus  # noqa: E402

from tests.factory import docker_save, layer  # noqa: E402
from tests.integration.peers import Dockerd  # noqa: E402

ARCHIVER = [sys.executable, "-m", "archiver"]
CLIENTS = 20


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Server:
    """``archiver serve`` on a free loopback port; ``started_s``: from exec to the first
    answer of GET /v2/."""

    def __init__(self, *paths: Path) -> None:
        self.port = _free_port()
        self.host = f"127.0.0.1:{self.port}"
        start = time.perf_counter()
        self.process = subprocess.Popen(
            [*ARCHIVER, "serve", *map(str, paths), "--listen", self.host],
            stderr=subprocess.DEVNULL,
        )
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as sock:
                    sock.sendall(b"GET /v2/ HTTP/1.0\r\n\r\n")
                    if sock.recv(64).startswith(b"HTTP/1.1 200"):
                        break
            except OSError:
                if self.process.poll() is not None:
                    raise SystemExit("archiver serve did not start") from None
                time.sleep(0.005)
        self.started_s = time.perf_counter() - start

    def peak_rss_mb(self) -> float:
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
        return 0.0

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        if self.process.wait(timeout=30) != 0:
            raise SystemExit("archiver serve did not end with 0 on SIGTERM")


def _pulls(dockerd: Dockerd, host: str, tags: list[str]) -> float:
    start = time.perf_counter()
    for tag in tags:
        dockerd.docker("pull", "-q", f"{host}/{tag}")
    took = time.perf_counter() - start
    dockerd.docker("rmi", *[f"{host}/{tag}" for tag in tags])
    dockerd.docker("image", "prune", "-af")
    return took


def _many_skopeo(server: Server, tag: str, work: Path) -> float:
    failures: list[str] = []

    def one(i: int) -> None:
        done = subprocess.run(
            [
                "skopeo",
                "--insecure-policy",
                "copy",
                "-q",
                "--preserve-digests",
                "--src-tls-verify=false",
                f"docker://{server.host}/{tag}",
                f"dir:{work / f'copy-{i}'}",
            ],
            capture_output=True,
            text=True,
        )
        if done.returncode != 0:
            failures.append(done.stderr)

    start = time.perf_counter()
    threads = [threading.Thread(target=one, args=(i,)) for i in range(CLIENTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    took = time.perf_counter() - start
    if failures:
        raise SystemExit(f"{len(failures)} skopeo copies failed: {failures[0]}")
    for i in range(CLIENTS):
        shutil.rmtree(work / f"copy-{i}")
    return took


def _image_bytes(server: Server, tag: str) -> int:
    """The bytes of an image's blobs (config and layers) as served."""
    raw = subprocess.run(
        ["skopeo", "inspect", "--raw", "--tls-verify=false", f"docker://{server.host}/{tag}"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    manifest = json.loads(raw)
    return int(manifest["config"]["size"]) + sum(int(d["size"]) for d in manifest["layers"])


def _throughput(server: Server, bundle: Path, work: Path, name: str) -> tuple[float, float]:
    """(serve, zstd -d) decompressed bytes per second: the largest blob over one
    connection, and the whole bundle's frames."""
    manifest = json.loads(
        subprocess.run(
            ["skopeo", "inspect", "--raw", "--tls-verify=false", f"docker://{server.host}/{name}"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )
    big = max(manifest["layers"], key=lambda d: d["size"])
    repository = name.split(":")[0]
    url = f"http://{server.host}/v2/{repository}/blobs/{big['digest']}"
    start = time.perf_counter()
    subprocess.run(["curl", "-sfS", "-o", "/dev/null", url], check=True)
    serve_rate = big["size"] / (time.perf_counter() - start)
    start = time.perf_counter()
    with open(os.devnull, "wb") as null:
        subprocess.run(["zstd", "-d", "-c", "-q", str(bundle)], stdout=null, check=True)
    took = time.perf_counter() - start
    counted = subprocess.run(
        f"zstd -d -c -q {bundle} | wc -c", shell=True, capture_output=True, text=True, check=True
    )
    total = int(counted.stdout.strip())
    return serve_rate, total / took


def _start_time(work: Path, runs: int) -> float:
    """Serve start to first answer on a bundle of 200 small images on one base."""
    base = layer({"base.bin": os.urandom(64 * 1024)})
    images = [
        ([f"scale/app{i}:1"], [base, layer({f"app{i}": os.urandom(4096)})]) for i in range(200)
    ]
    tar = docker_save(work / "scale.tar", images)
    bundle = work / "scale.tar.zst"
    subprocess.run([*ARCHIVER, "pack", str(tar), "-o", str(bundle), "-q"], check=True)
    times = []
    for _ in range(runs):
        server = Server(bundle)
        times.append(server.started_s)
        server.stop()
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--base-mb", type=int, default=300)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "serve.json"))
    args = parser.parse_args()
    compile_package()
    work = Path(tempfile.mkdtemp(prefix="arch-bench-serve-", dir="/tmp"))
    os.environ["XDG_CACHE_HOME"] = str(work / "cache")
    dockerd = Dockerd(work / "d")
    (work / "d").mkdir()
    try:
        corpus, tags = build_corpus(work, args.base_mb)
        bundle = work / "corpus.tar.zst"
        subprocess.run([*ARCHIVER, "pack", str(corpus), "-o", str(bundle), "-q"], check=True)
        corpus.unlink()
        repos = [f"library/{tag}" if "/" not in tag else tag for tag in tags]
        dockerd.start()
        with running_registry() as registry:
            subprocess.run(
                [*ARCHIVER, "push", str(bundle), "--to", registry.host, "-q"], check=True
            )
            server = Server(bundle)
            serve_s, registry_s = [], []
            for _ in range(args.runs):  # interleaved: the same noise for both
                serve_s.append(_pulls(dockerd, server.host, repos))
                registry_s.append(_pulls(dockerd, registry.host, repos))
            skopeo_s = _many_skopeo(server, repos[2], work)
            image_bytes = _image_bytes(server, repos[2])
            rss = server.peak_rss_mb()
            serve_rate, zstd_rate = _throughput(server, bundle, work, repos[0])
            server.stop()
        start_s = _start_time(work, args.runs)
        result = {
            "bundle_bytes": bundle.stat().st_size,
            "docker_pull_serve_s": statistics.median(serve_s),
            "docker_pull_registry_s": statistics.median(registry_s),
            "pull_serve_vs_registry": statistics.median(serve_s) / statistics.median(registry_s),
            "skopeo_20_clients_s": skopeo_s,
            "serve_peak_rss_mb": rss,
            "serve_blob_mb_s": serve_rate / 1e6,
            "zstd_d_mb_s": zstd_rate / 1e6,
            "throughput_vs_zstd_d": serve_rate / zstd_rate,
            "skopeo_20_mb_s": CLIENTS * image_bytes / skopeo_s / 1e6,
            "skopeo_20_vs_zstd_d": CLIENTS * image_bytes / skopeo_s / zstd_rate,
            "start_to_first_answer_s": start_s,
        }
    finally:
        dockerd.stop()
        shutil.rmtree(work, ignore_errors=True)
    rows = [
        ("docker pull from serve / from the registry", "pull_serve_vs_registry", "<= 1.1"),
        ("20 skopeo copies at once (s, all verified)", "skopeo_20_clients_s", ""),
        ("serve peak RSS (MB), through all of it", "serve_peak_rss_mb", "<= 200"),
        ("blob throughput, one client / zstd -d", "throughput_vs_zstd_d", ">= 0.7"),
        ("blob throughput, 20 skopeo (all bytes) / zstd -d", "skopeo_20_vs_zstd_d", ""),
        ("start to first answer, 200 images (s)", "start_to_first_answer_s", "<= 0.5"),
    ]
    headline = (
        f"bundle {result['bundle_bytes'] / 1e6:.0f} MB: docker pull "
        f"{result['docker_pull_serve_s']:.1f}s "
        f"from serve, {result['docker_pull_registry_s']:.1f}s from the registry; blobs "
        f"{result['serve_blob_mb_s']:.0f} MB/s, zstd -d {result['zstd_d_mb_s']:.0f} MB/s"
    )
    report(headline, rows, result, args.out)


if __name__ == "__main__":
    main()
