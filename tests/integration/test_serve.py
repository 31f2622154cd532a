"""``archiver serve`` as a subprocess on a free loopback port, pulled by independent
clients: dockerd (directly and as its registry mirror), skopeo, podman, containerd's ctr,
curl; a base with its delta, a split bundle, TLS with htpasswd, a resumed transfer, an
upload refused, a damaged blob cut short, bad input refused before listening."""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import bcrypt
import pytest

from tests.conftest import ROOT, Run
from tests.factory import docker_save, layer, random_layer
from tests.integration.conftest import _short_tmp
from tests.integration.peers import (
    Containerd,
    Dockerd,
    _free_port,
    certificate_authority,
    require,
    signed_certificate,
    skopeo,
)
from tests.integration.peers import run as command

MIB = 1024 * 1024


class Serving:
    """``archiver serve ARGS --listen 127.0.0.1:PORT``, answering once started."""

    def __init__(self, log: Path, *args: str, tls: bool = False) -> None:
        self.port = _free_port()
        self.host = f"127.0.0.1:{self.port}"
        self.log = log
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "archiver", "serve", *args, "--listen", self.host],
            stdout=subprocess.DEVNULL,
            stderr=log.open("wb"),
            env=env,
        )
        deadline = time.monotonic() + 60
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    self.process.kill()
                    pytest.fail(f"archiver serve did not start:\n{log.read_text()[-3000:]}")
                time.sleep(0.05)

    def lines(self) -> list[str]:
        return self.log.read_text().splitlines()

    def stop(self, how: signal.Signals = signal.SIGTERM) -> int:
        if self.process.poll() is None:
            self.process.send_signal(how)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[type[Serving]]:
    """Start servers that stop with the test; each must end with status 0 on SIGTERM."""
    started: list[Serving] = []

    class Started(Serving):
        def __init__(self, *args: str, tls: bool = False) -> None:
            super().__init__(tmp_path / f"serve-{len(started)}.log", *args, tls=tls)
            started.append(self)

    yield Started
    for server in started:
        code = server.stop()
        assert code == 0, f"serve ended with {code}:\n{server.log.read_text()[-2000:]}"


def _images(run: Run, archive: Path) -> dict[str, dict[str, str]]:
    rows = json.loads(run("ls", "--json", archive).out)
    return {f"{r['repository']}:{r['tag']}": r for r in rows}


@pytest.fixture
def bundle(run: Run, tmp_path: Path) -> Path:
    """Two images sharing a 3 MiB base layer (several frames, several chunks)."""
    base = random_layer(3 * MIB, seed=7)
    tar = docker_save(
        tmp_path / "images.tar",
        [
            (["registry.example:5000/team/app:1"], [base, layer({"app.txt": b"app\n"})]),
            (["docker.io/library/tool:2"], [base, layer({"tool.txt": b"tool\n"})]),
        ],
    )
    out = tmp_path / "images.tar.zst"
    assert run("pack", tar, "-o", out, "--frame-size", str(1024 * 1024)).code == 0
    return out


def _sha_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_docker_skopeo_podman_and_containerd_pull_what_was_packed(
    run: Run,
    bundle: Path,
    serve: type[Serving],
    dockerd: Dockerd,
    containerd: Containerd,
    tmp_path: Path,
) -> None:
    images = _images(run, bundle)
    app, tool = images["registry.example:5000/team/app:1"], images["tool:2"]
    before = _sha_file(bundle)
    server = serve(str(bundle))

    # skopeo: inspect and copy
    ref = f"docker://{server.host}/team/app:1"
    found = json.loads(skopeo("inspect", "--tls-verify=false", ref))
    assert found["Digest"] == app["digest"]
    skopeo(
        "copy", "--preserve-digests", "--src-tls-verify=false", ref, f"oci:{tmp_path / 'copy'}:app"
    )
    copied = json.loads((tmp_path / "copy" / "index.json").read_text())
    assert copied["manifests"][0]["digest"] == app["digest"]

    # dockerd: loopback registries are insecure (plain HTTP) for it by default
    dockerd.docker("pull", f"{server.host}/library/tool:2")
    got = dockerd.docker("image", "inspect", "--format", "{{.Id}}", f"{server.host}/library/tool:2")
    assert got.strip() == tool["id"]
    digests = dockerd.docker(
        "image", "inspect", "--format", "{{json .RepoDigests}}", f"{server.host}/library/tool:2"
    )
    assert f"{server.host}/library/tool@{tool['digest']}" in json.loads(digests)

    # podman, with a store of its own
    runroot = _short_tmp("arch-p-")
    podman = [
        require("podman"),
        "--root",
        str(tmp_path / "podman-root"),
        "--runroot",
        str(runroot),
        "--storage-driver",
        "vfs",
    ]
    command([*podman, "pull", "--tls-verify=false", f"{server.host}/team/app:1"])
    podman_id = command(
        [*podman, "image", "inspect", "--format", "{{.Id}}", f"{server.host}/team/app:1"]
    )
    assert "sha256:" + podman_id.stdout.strip() == app["id"]
    shutil.rmtree(runroot, ignore_errors=True)

    # containerd's own client, plain HTTP
    containerd.ctr("images", "pull", "--plain-http", f"{server.host}/team/app:1")
    listed = containerd.ctr("images", "ls")
    assert app["digest"] in listed

    # an upload is refused and the file is left as it was
    refused = subprocess.run(
        [
            require("skopeo"),
            "--insecure-policy",
            "copy",
            "--src-tls-verify=false",
            "--dest-tls-verify=false",
            ref,
            f"docker://{server.host}/team/other:1",
        ],
        capture_output=True,
        text=True,
    )
    assert refused.returncode != 0 and "UNSUPPORTED" in refused.stderr.upper() + str(server.lines())
    assert any(
        '"POST /v2/team/other/blobs/uploads/' in line and " 405 " in line for line in server.lines()
    )
    assert _sha_file(bundle) == before
    started = server.lines()[0]
    assert "loopback only" in started and server.host in started


def test_dockerd_pulls_docker_io_names_through_it_as_a_mirror(
    run: Run, bundle: Path, serve: type[Serving]
) -> None:
    tool = _images(run, bundle)["tool:2"]
    server = serve(str(bundle))
    mirrored = Dockerd(_short_tmp("arch-m-"), flags=(f"--registry-mirror=http://{server.host}",))
    mirrored.start()
    try:
        mirrored.docker("pull", "docker.io/library/tool:2")
        got = mirrored.docker("image", "inspect", "--format", "{{.Id}}", "tool:2")
        assert got.strip() == tool["id"]
    finally:
        mirrored.stop()
        shutil.rmtree(mirrored.root, ignore_errors=True)
    assert any("/v2/library/tool/manifests/2" in line for line in server.lines())


def test_a_delta_over_its_base_and_a_split_bundle_from_its_parts(
    run: Run, serve: type[Serving], tmp_path: Path
) -> None:
    base_layer = random_layer(2 * MIB, seed=3)
    one = docker_save(tmp_path / "r1.tar", [(["app:1"], [base_layer])])
    two = docker_save(tmp_path / "r2.tar", [(["app:2"], [base_layer, layer({"v": b"2"})])])
    base, delta = tmp_path / "base.tar.zst", tmp_path / "delta.tar.zst"
    assert run("pack", one, "-o", base).code == 0
    assert run("pack", two, "--base", base, "-o", delta).code == 0
    split = tmp_path / "split" / "all.tar.zst"
    split.parent.mkdir()
    packed = run("pack", two, "-o", split, "--split-size", "1M", "--frame-size", "65536")
    assert packed.code == 0, packed.err
    parts = sorted(p.name for p in split.parent.iterdir())
    assert len([p for p in parts if p[-3:].isdigit()]) >= 2, parts
    want = _images(run, split)["app:2"]["digest"]

    together = serve(str(delta), str(base))
    assert _digest(together.host, "library/app:2") == want
    skopeo(
        "copy",
        "--src-tls-verify=false",
        f"docker://{together.host}/library/app:2",
        f"oci:{tmp_path / 'from-delta'}:x",
    )
    assert run("verify", tmp_path / "from-delta").code == 0

    first_part = next(p for p in parts if p.endswith("001"))
    from_parts = serve(str(split.parent / first_part))
    assert _digest(from_parts.host, "library/app:2") == want
    skopeo(
        "copy",
        "--src-tls-verify=false",
        f"docker://{from_parts.host}/library/app:2",
        f"oci:{tmp_path / 'from-parts'}:x",
    )
    assert run("verify", tmp_path / "from-parts").code == 0


def _digest(host: str, name: str, *flags: str) -> str:
    out = skopeo(
        "inspect",
        "--tls-verify=false",
        *flags,
        "--format",
        "{{.Digest}}",
        f"docker://{host}/{name}",
    )
    return out.strip()


def test_tls_and_htpasswd_with_a_ca_the_test_makes(
    run: Run, bundle: Path, serve: type[Serving], tmp_path: Path
) -> None:
    certs = tmp_path / "certs"
    ca, _ = certificate_authority(certs, "archiver-serve-test-ca")
    cert, key = signed_certificate(
        certs, "server", "127.0.0.1", "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n"
    )
    hashed = bcrypt.hashpw(b"s3cret", bcrypt.gensalt(rounds=5)).decode()
    (tmp_path / "htpasswd").write_text(f"alice:{hashed}\n")
    server = serve(
        str(bundle),
        "--tls-cert",
        str(cert),
        "--tls-key",
        str(key),
        "--htpasswd",
        str(tmp_path / "htpasswd"),
    )
    trust = tmp_path / "trust"
    trust.mkdir()
    (trust / "ca.crt").write_bytes(ca.read_bytes())
    ref = f"docker://{server.host}/team/app:1"
    found = skopeo(
        "inspect",
        "--cert-dir",
        str(trust),
        "--creds",
        "alice:s3cret",
        "--format",
        "{{.Digest}}",
        ref,
    )
    assert found.strip() == _images(run, bundle)["registry.example:5000/team/app:1"]["digest"]
    for creds in ([], ["--creds", "alice:wrong"]):
        denied = subprocess.run(
            [require("skopeo"), "inspect", "--cert-dir", str(trust), *creds, ref],
            capture_output=True,
            text=True,
        )
        assert denied.returncode != 0 and "unauthorized" in denied.stderr.lower()
    untrusted = subprocess.run(
        [require("skopeo"), "inspect", "--creds", "alice:s3cret", ref],
        capture_output=True,
        text=True,
    )
    assert untrusted.returncode != 0 and "certificate" in untrusted.stderr
    assert "https://" in server.lines()[0]


class _CuttingProxy:
    """A TCP proxy to ``upstream`` that drops the connection once, ``after`` bytes into
    the answer to the first request whose first line contains ``marker``."""

    def __init__(self, upstream: int, marker: bytes, after: int) -> None:
        self.upstream, self.marker, self.after = upstream, marker, after
        self.cut = False
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._pipe, args=(client,), daemon=True).start()

    def _pipe(self, client: socket.socket) -> None:
        upstream = socket.create_connection(("127.0.0.1", self.upstream))
        armed = threading.Event()

        def forward() -> None:
            while data := client.recv(65536):
                if (
                    not self.cut
                    and self.marker in data.split(b"\r\n", 1)[0]
                    and b"Range" not in data
                ):
                    armed.set()
                upstream.sendall(data)

        threading.Thread(target=forward, daemon=True).start()
        sent = 0
        try:
            while data := upstream.recv(65536):
                if armed.is_set() and not self.cut:
                    sent += len(data)
                    if sent > self.after:
                        self.cut = True
                        client.sendall(data[: len(data) // 2])
                        break
                client.sendall(data)
        except OSError:
            pass
        for end in (client, upstream):
            with contextlib.suppress(OSError):
                end.shutdown(socket.SHUT_RDWR)
            end.close()

    def stop(self) -> None:
        self.listener.close()


def test_a_transfer_cut_in_the_middle_resumes_with_a_range(
    run: Run, bundle: Path, serve: type[Serving], tmp_path: Path
) -> None:
    server = serve(str(bundle))
    manifest = json.loads(
        skopeo("inspect", "--raw", "--tls-verify=false", f"docker://{server.host}/team/app:1")
    )
    big = max(manifest["layers"], key=lambda d: d["size"])
    url = f"http://{server.host}/v2/team/app/blobs/{big['digest']}"
    proxy = _CuttingProxy(server.port, big["digest"].encode(), after=int(1.5 * MIB))
    partial = tmp_path / "partial"
    try:
        cut = subprocess.run(
            [
                require("curl"),
                "-sS",
                "-o",
                str(partial),
                url.replace(server.host, f"127.0.0.1:{proxy.port}"),
            ],
            capture_output=True,
            text=True,
        )
    finally:
        proxy.stop()
    assert proxy.cut and cut.returncode != 0
    assert MIB < partial.stat().st_size < big["size"]
    command([require("curl"), "-sfS", "-C", "-", "-o", str(partial), url])
    assert "sha256:" + hashlib.sha256(partial.read_bytes()).hexdigest() == big["digest"]
    lines = [line for line in server.lines() if big["digest"] in line and '"GET ' in line]
    assert any(" 206 " in line for line in lines), lines

    # several clients resuming at once, each from its own offset (curl -C)

    def resume(i: int) -> str:
        out = tmp_path / f"part-{i}"
        out.write_bytes(_get(server.port, url, f"bytes=0-{i * 100_000 + 99_999}"))
        command([require("curl"), "-sfS", "-C", "-", "-o", str(out), url])
        return "sha256:" + hashlib.sha256(out.read_bytes()).hexdigest()

    threads: list[str] = []
    workers = [threading.Thread(target=lambda i=i: threads.append(resume(i))) for i in range(6)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert threads == [big["digest"]] * 6


def _get(port: int, url: str, ranges: str | None = None) -> bytes:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    connection.request(
        "GET", url.split(str(port), 1)[1], headers={"Range": ranges} if ranges else {}
    )
    answer = connection.getresponse()
    return answer.read()


def test_a_damaged_blob_is_cut_short_and_logged(
    run: Run, serve: type[Serving], tmp_path: Path
) -> None:
    tar = docker_save(tmp_path / "one.tar", [(["bad:1"], [random_layer(2 * MIB, seed=9)])])
    folder = tmp_path / "oci"
    assert run("convert", tar, f"oci:{folder}").code == 0, "convert"
    manifest_digest = json.loads((folder / "index.json").read_text())["manifests"][0]["digest"]
    manifest = json.loads((folder / "blobs/sha256" / manifest_digest[7:]).read_bytes())
    digest = manifest["layers"][0]["digest"]
    blob = folder / "blobs/sha256" / digest[7:]
    data = bytearray(blob.read_bytes())
    data[MIB] ^= 0x01
    blob.write_bytes(bytes(data))
    server = serve(str(folder))
    with pytest.raises(http.client.IncompleteRead):
        _get(server.port, f"http://{server.host}/v2/library/bad/blobs/{digest}")
    (line,) = [x for x in server.lines() if "cut short" in x]
    assert digest in line and "digest mismatch" in line
    assert _get(server.port, f"http://{server.host}/v2/") == b"{}"
    assert server.stop(signal.SIGINT) == 0  # Ctrl-C ends it as SIGTERM does


def test_bad_input_is_one_line_before_listening(run: Run, bundle: Path, tmp_path: Path) -> None:
    busy = socket.create_server(("127.0.0.1", 0))
    truncated = tmp_path / "truncated.tar.zst"
    truncated.write_bytes(bundle.read_bytes()[:-100])
    split = tmp_path / "split" / "b.tar.zst"
    split.parent.mkdir()
    assert run("pack", bundle, "-o", split, "--split-size", "1M", "--frame-size", "65536").code == 0
    (split.parent / "b.tar.zst.002").unlink()
    (tmp_path / "bad-htpasswd").write_text("alice:plaintext\n")
    (tmp_path / "bad.pem").write_text("not a certificate\n")
    delta_base = tmp_path / "base.tar.zst"
    delta = tmp_path / "delta.tar.zst"
    one = docker_save(tmp_path / "one.tar", [(["x:1"], [layer({"a": b"a"})])])
    two = docker_save(tmp_path / "two.tar", [(["x:2"], [layer({"a": b"a"}), layer({"b": b"b"})])])
    assert run("pack", one, "-o", delta_base).code == 0
    assert run("pack", two, "--base", delta_base, "-o", delta).code == 0
    cases = {
        "port in use": [str(bundle), "--listen", f"127.0.0.1:{busy.getsockname()[1]}"],
        "head check": [str(truncated)],
        "missing part": [str(split.parent / "b.tar.zst.001")],
        "delta alone": [str(delta)],
        "bad htpasswd": [str(bundle), "--htpasswd", str(tmp_path / "bad-htpasswd")],
        "bad certificate": [
            str(bundle),
            "--tls-cert",
            str(tmp_path / "bad.pem"),
            "--tls-key",
            str(tmp_path / "bad.pem"),
        ],
        "no such file": [str(tmp_path / "nothing.tar")],
        "bad listen": [str(bundle), "--listen", "nowhere"],
    }
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    for what, args in cases.items():
        if "--listen" not in args:
            args = [*args, "--listen", f"127.0.0.1:{_free_port()}"]
        done = subprocess.run(
            [sys.executable, "-m", "archiver", "serve", *args],
            capture_output=True,
            text=True,
            timeout=60,
            env=env,
        )
        assert done.returncode not in (0, None), what
        assert done.stderr.count("\n") == 1 and done.stderr.startswith("Error: "), (
            what,
            done.stderr,
        )
    busy.close()
