#!/usr/bin/env python3
"""Benchmark: ``archiver serve`` against the distribution registry, same images, same run.

The corpus of bench/registry.py (a base layer of --base-mb MB of /usr, three applications
of 10, 20 and 30 MB on it, one unrelated image of 40 MB), packed as a bundle; the same
images pushed (digests kept) into Debian's docker-registry on loopback. The issue's rows:

  docker pull of every image from serve  vs  from the registry        (target <= 1.1)
                (a private dockerd; the images removed between pulls; interleaved runs,
                medians of --runs)
  20 skopeo copy clients at once from serve: how many verify (all: 20); peak RSS of the
                serve process through the whole run                    (<= 200 MB)
  blob throughput vs zstd -d of the same frames (the base layer's frames, decompressed
                to /dev/null; decompressed bytes/s both)               (>= 0.7)
                - 20 clients at once that only receive (curl -o /dev/null): the row with
                  the target; the server decompresses and hashes for every answer
                - the 20 skopeo copies (all bytes they got, per second; copies written
                  to /dev/shm): each client hashes and writes its copy too, on the
                  same two cores (the same 20 copies from the
                  distribution registry are timed too: serve / registry)
                - one curl client
  serve start to first answer (GET /v2/) on the 200-image corpus of bench/many.py (<= 0.5)

Server CPU (user+sys) per GB served is printed too: less disturbed by other load.
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
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT))

from common import compile_package, report, running_registry  # noqa: E402
from registry import build_corpus  # noqa: E402

from archiver.blobs.path_tree import open_tree  # noqa: E402
from archiver.blobs.tar_tree import TarTree  # noqa: E402
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

    def cpu_s(self) -> float:
        """User + system seconds of the serve process so far."""
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

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


def _many_skopeo(host: str, tag: str, work: Path) -> tuple[float, int]:
    """Seconds for CLIENTS skopeo copies at once, and how many verified (skopeo checks
    every blob's digest; a copy that does not verify fails). The copies are written to
    memory (/dev/shm where there is one), as zstd -d's reference writes to /dev/null: 20
    copies written to disk measure the disk."""
    shm = Path("/dev/shm")
    if shm.is_dir() and os.access(shm, os.W_OK):
        work = Path(tempfile.mkdtemp(prefix="arch-bench-skopeo-", dir=shm))
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
                f"docker://{host}/{tag}",
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
        print(f"{len(failures)} skopeo copies failed: {failures[0]}", file=sys.stderr)
    for i in range(CLIENTS):
        shutil.rmtree(work / f"copy-{i}", ignore_errors=True)
    if work.parent == shm:
        shutil.rmtree(work, ignore_errors=True)
    return took, CLIENTS - len(failures)


def _manifest(server: Server, tag: str) -> dict[str, Any]:
    raw = subprocess.run(
        ["skopeo", "inspect", "--raw", "--tls-verify=false", f"docker://{server.host}/{tag}"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    manifest: dict[str, Any] = json.loads(raw)
    return manifest


def _image_bytes(server: Server, tag: str) -> int:
    """The bytes of an image's blobs (config and layers) as served."""
    manifest = _manifest(server, tag)
    return int(manifest["config"]["size"]) + sum(int(d["size"]) for d in manifest["layers"])


def _curls(url: str, clients: int) -> float:
    """Seconds for ``clients`` curl clients at once to get ``url`` to /dev/null (a client
    cut short fails)."""
    start = time.perf_counter()
    running = [subprocess.Popen(["curl", "-sfS", "-o", "/dev/null", url]) for _ in range(clients)]
    if any(process.wait() != 0 for process in running):
        raise SystemExit(f"a curl client of {url} failed")
    return time.perf_counter() - start


def _zstd_d_rate(bundle: Path, digest: str, work: Path, runs: int) -> float:
    """Decompressed bytes per second of ``zstd -d`` of the frames that hold the blob."""
    with open_tree(str(bundle)) as tree:
        assert isinstance(tree, TarTree)
        frames = tree.frames_of("blobs/" + digest.replace(":", "/"))  # a bundle is OCI
    if not frames:
        raise SystemExit(f"{digest}: no frames of its own in {bundle}")
    frames_file = work / "frames.zst"
    with open(bundle, "rb") as source, open(frames_file, "wb") as out:
        source.seek(frames[0].compressed_offset)
        last = frames[-1]
        left = last.compressed_offset + last.compressed_size - frames[0].compressed_offset
        while left:
            data = source.read(min(left, 1 << 20))
            out.write(data)
            left -= len(data)
    size = sum(frame.size for frame in frames)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        with open(os.devnull, "wb") as null:
            subprocess.run(["zstd", "-d", "-c", "-q", str(frames_file)], stdout=null, check=True)
        times.append(time.perf_counter() - start)
    frames_file.unlink()
    return size / statistics.median(times)


def _throughput(server: Server, tag: str, runs: int) -> dict[str, float]:
    """The base layer (the largest blob) read by one curl client, then by CLIENTS at once:
    decompressed bytes per second, medians of ``runs``; and server CPU per GB served."""
    big = max(_manifest(server, tag)["layers"], key=lambda d: d["size"])
    repository = tag.split(":")[0]
    url = f"http://{server.host}/v2/{repository}/blobs/{big['digest']}"
    one, many = [], []
    cpu, served = 0.0, 0
    for _ in range(runs):
        before = server.cpu_s()
        one.append(_curls(url, 1))
        many.append(_curls(url, CLIENTS))
        cpu += server.cpu_s() - before
        served += (1 + CLIENTS) * int(big["size"])
    return {
        "digest": big["digest"],
        "one_rate": big["size"] / statistics.median(one),
        "many_rate": CLIENTS * big["size"] / statistics.median(many),
        "cpu_s_per_gb": cpu / (served / 1e9),
    }


def _start_time(work: Path, runs: int) -> float:
    """Serve start to first answer on the 200-image corpus of bench/many.py (its
    generator and sizes), packed as one bundle."""
    scale = work / "scale"
    scale.mkdir()
    sizes = ["200", "10", str(25 * 1024 * 1024), str(640 * 1024), "4"]
    many = str(ROOT / "bench" / "many.py")
    subprocess.run([sys.executable, many, "--generate", str(scale), *sizes], check=True)
    bundle = work / "scale.tar.zst"
    saves = sorted(str(path) for path in scale.glob("save*.tar"))
    subprocess.run([*ARCHIVER, "pack", *saves, "-o", str(bundle), "-q"], check=True)
    shutil.rmtree(scale)
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
            # the same images, digests and bytes as served (push would gzip plain layers)
            subprocess.run(
                [*ARCHIVER, "push", str(bundle), "--to", registry.host, "-q", "--compress", "none"],
                check=True,
            )
            server = Server(bundle)
            serve_s, registry_s = [], []
            for _ in range(args.runs):  # interleaved: the same noise for both
                serve_s.append(_pulls(dockerd, server.host, repos))
                registry_s.append(_pulls(dockerd, registry.host, repos))
            before = server.cpu_s()
            skopeo_s, verified = _many_skopeo(server.host, repos[2], work)
            skopeo_cpu = server.cpu_s() - before
            # the same clients against the distribution registry: what they can take
            skopeo_registry_s, _ = _many_skopeo(registry.host, repos[2], work)
            image_bytes = _image_bytes(server, repos[2])
            rates = _throughput(server, repos[0], args.runs)
            rss = server.peak_rss_mb()
            server.stop()
            zstd_rate = _zstd_d_rate(bundle, str(rates["digest"]), work, args.runs)
        start_s = _start_time(work, args.runs)
        skopeo_rate = CLIENTS * image_bytes / skopeo_s
        result = {
            "bundle_bytes": bundle.stat().st_size,
            "docker_pull_serve_s": statistics.median(serve_s),
            "docker_pull_registry_s": statistics.median(registry_s),
            "pull_serve_vs_registry": statistics.median(serve_s) / statistics.median(registry_s),
            "skopeo_20_clients_s": skopeo_s,
            "skopeo_20_verified": verified,
            "skopeo_20_serve_cpu_s": skopeo_cpu,
            "skopeo_20_registry_s": skopeo_registry_s,
            "skopeo_20_serve_vs_registry": skopeo_s / skopeo_registry_s,
            "serve_peak_rss_mb": rss,
            "zstd_d_mb_s": zstd_rate / 1e6,
            "curl_20_mb_s": rates["many_rate"] / 1e6,
            "curl_20_vs_zstd_d": rates["many_rate"] / zstd_rate,
            "skopeo_20_mb_s": skopeo_rate / 1e6,
            "skopeo_20_vs_zstd_d": skopeo_rate / zstd_rate,
            "curl_1_mb_s": rates["one_rate"] / 1e6,
            "curl_1_vs_zstd_d": rates["one_rate"] / zstd_rate,
            "serve_cpu_s_per_gb": rates["cpu_s_per_gb"],
            "start_to_first_answer_s": start_s,
        }
    finally:
        dockerd.stop()
        shutil.rmtree(work, ignore_errors=True)
    rows = [
        ("docker pull of every image, serve / registry", "pull_serve_vs_registry", "<= 1.1"),
        ("20 skopeo copies at once: verified", "skopeo_20_verified", "20"),
        ("serve peak RSS (MB), through all of it", "serve_peak_rss_mb", "<= 200"),
        ("blob throughput, 20 clients / zstd -d", "curl_20_vs_zstd_d", ">= 0.7"),
        ("  the same, 20 skopeo copies (client-bound)", "skopeo_20_vs_zstd_d", ""),
        ("  20 skopeo copies, time from serve / from registry", "skopeo_20_serve_vs_registry", ""),
        ("  the same, one client", "curl_1_vs_zstd_d", ""),
        ("start to first answer, 200 images (s)", "start_to_first_answer_s", "<= 0.5"),
    ]
    headline = (
        f"bundle {result['bundle_bytes'] / 1e6:.0f} MB: docker pull "
        f"{result['docker_pull_serve_s']:.1f}s from serve, "
        f"{result['docker_pull_registry_s']:.1f}s from the registry; base layer: zstd -d "
        f"{result['zstd_d_mb_s']:.0f} MB/s, 20 clients {result['curl_20_mb_s']:.0f} MB/s, "
        f"one {result['curl_1_mb_s']:.0f} MB/s; 20 skopeo {result['skopeo_20_mb_s']:.0f} MB/s "
        f"({result['skopeo_20_clients_s']:.1f}s, serve CPU {skopeo_cpu:.1f}s of it); serve CPU "
        f"{result['serve_cpu_s_per_gb']:.2f}s per GB served"
    )
    report(headline, rows, result, args.out)
    if verified != CLIENTS:
        raise SystemExit(f"only {verified} of {CLIENTS} skopeo copies verified")


if __name__ == "__main__":
    main()
