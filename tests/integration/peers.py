"""The real peers, started on loopback in temporary directories: dockerd, containerd, skopeo.

A missing peer is a failure, never a skip: the README's test command installs them, and CI
(CI=true) must prove every integration test ran.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest


def require(binary: str) -> str:
    """The path of a peer's binary, or a failed test saying how to install it."""
    for candidate in (f"/usr/bin/{binary}", f"/usr/sbin/{binary}"):
        if os.access(candidate, os.X_OK):
            return candidate
    found = shutil.which(binary)
    if found:
        return found
    pytest.fail(f"{binary} is not installed: run the README's test command (it installs the peers)")


def run(args: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(args, capture_output=True, text=True, timeout=300, **kwargs)  # type: ignore[call-overload]
    if result.returncode != 0:
        raise AssertionError(f"{' '.join(args)} failed ({result.returncode}):\n{result.stderr}")
    return result  # type: ignore[no-any-return]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _wait_for(path: Path, process: subprocess.Popen[bytes], log: Path, what: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if path.exists():
            return
        if process.poll() is not None:
            break
        time.sleep(0.2)
    pytest.fail(f"{what} did not start:\n{log.read_text(errors='replace')[-3000:]}")


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _openssl(folder: Path, *args: str) -> None:
    run([require("openssl"), *args], cwd=folder)


def certificate_authority(folder: Path, subject: str) -> tuple[Path, Path]:
    """(ca.pem, ca-key.pem): a fresh CA."""
    folder.mkdir(parents=True, exist_ok=True)
    _openssl(
        folder,
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca-key.pem",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        f"/CN={subject}",
    )
    return folder / "ca.pem", folder / "ca-key.pem"


def signed_certificate(folder: Path, name: str, subject: str, extensions: str) -> tuple[Path, Path]:
    """(NAME.pem, NAME-key.pem) signed by the CA in ``folder``."""
    (folder / f"{name}.ext").write_text(extensions)
    _openssl(
        folder,
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        f"{name}-key.pem",
        "-out",
        f"{name}.csr",
        "-subj",
        f"/CN={subject}",
    )
    _openssl(
        folder,
        "x509",
        "-req",
        "-in",
        f"{name}.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca-key.pem",
        "-CAcreateserial",
        "-out",
        f"{name}.pem",
        "-days",
        "2",
        "-extfile",
        f"{name}.ext",
    )
    return folder / f"{name}.pem", folder / f"{name}-key.pem"


@dataclass
class Dockerd:
    """A private dockerd: vfs storage, no iptables, no bridge, a unix socket in a temp dir."""

    root: Path
    process: subprocess.Popen[bytes] | None = None
    client: str = field(default_factory=lambda: require("docker"))
    tcp_port: int = field(default_factory=lambda: _free_port())
    storage_driver: str = "vfs"
    """vfs works everywhere (tests); the benchmark takes overlay2 where the kernel has it."""
    flags: tuple[str, ...] = ()
    """More daemon flags (``--registry-mirror=URL``, say)."""

    @property
    def host(self) -> str:
        return f"unix://{self.root}/docker.sock"

    @property
    def tcp_host(self) -> str:
        """The same daemon on loopback TCP, TLS-verified both ways (certs in ``cert_path``)."""
        return f"tcp://127.0.0.1:{self.tcp_port}"

    @property
    def cert_path(self) -> Path:
        """ca.pem, cert.pem, key.pem for a client, as DOCKER_CERT_PATH expects them."""
        return self.root / "certs"

    def _make_certs(self) -> None:
        certs = self.cert_path
        certificate_authority(certs, "archiver-test-ca")
        server = "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n"
        signed_certificate(certs, "server", "127.0.0.1", server)
        cert, key = signed_certificate(certs, "client", "client", "extendedKeyUsage=clientAuth\n")
        cert.rename(certs / "cert.pem")  # the names DOCKER_CERT_PATH expects
        key.rename(certs / "key.pem")

    def start(self) -> None:
        dockerd = require("dockerd")
        self._make_certs()
        log = self.root / "dockerd.log"
        self.process = subprocess.Popen(
            [
                dockerd,
                f"--data-root={self.root}/data",
                f"--exec-root={self.root}/exec",
                f"--pidfile={self.root}/dockerd.pid",
                f"--host={self.host}",
                f"--host={self.tcp_host}",
                "--tlsverify",
                f"--tlscacert={self.cert_path / 'ca.pem'}",
                f"--tlscert={self.cert_path / 'server.pem'}",
                f"--tlskey={self.cert_path / 'server-key.pem'}",
                f"--storage-driver={self.storage_driver}",
                "--iptables=false",
                "--ip-masq=false",
                "--bridge=none",
                "--userland-proxy=false",
                f"--containerd-namespace=archiver-test-{os.getpid()}",
                *self.flags,
            ],
            stdout=log.open("wb"),
            stderr=subprocess.STDOUT,
        )
        _wait_for(self.root / "docker.sock", self.process, log, "dockerd")
        deadline = time.monotonic() + 60
        while subprocess.run(self._cmd("version"), capture_output=True).returncode != 0:
            if time.monotonic() > deadline:
                pytest.fail(f"dockerd does not answer:\n{log.read_text(errors='replace')[-3000:]}")
            time.sleep(0.3)

    def _cmd(self, *args: str) -> list[str]:
        return [self.client, "--host", self.host, *args]

    def docker(self, *args: str, cwd: Path | None = None) -> str:
        # the CLI talks to our socket only, whatever DOCKER_* a test has set for archiver
        env = {k: v for k, v in os.environ.items() if not k.startswith("DOCKER_")}
        env["DOCKER_BUILDKIT"] = "0"
        return run(self._cmd(*args), cwd=cwd, env=env).stdout

    def images(self) -> list[dict[str, str]]:
        """``docker images --no-trunc`` as (Repository, Tag, ID) dicts, dangling included."""
        out = self.docker("images", "--no-trunc", "--format", "{{.Repository}}\t{{.Tag}}\t{{.ID}}")
        rows = []
        for line in out.splitlines():
            repository, tag, image_id = line.split("\t")
            rows.append({"repository": repository, "tag": tag, "id": image_id})
        return rows

    def build(
        self, tag: str, files: dict[str, bytes], base: str = "scratch", extra: str = ""
    ) -> str:
        """Build ``FROM base`` + one COPY of generated files; return the image ID."""
        context = Path(tempfile.mkdtemp(dir=self.root, prefix="ctx-"))
        for name, data in files.items():
            (context / name).write_bytes(data)
            (context / name).chmod(0o755)  # so a binary among them can run
        (context / "Dockerfile").write_text(f"FROM {base}\nCOPY . /data/\n{extra}\n")
        (context / ".dockerignore").write_text("Dockerfile\n.dockerignore\n")
        self.docker("build", "-q", "-t", tag, str(context))
        return self.docker("image", "inspect", "--format", "{{.Id}}", tag).strip()

    def stop(self) -> None:
        if self.process is not None:
            _stop(self.process)


@dataclass
class Containerd:
    """A private containerd with its own root, state and socket."""

    root: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        return str(self.root / "containerd.sock")

    def start(self) -> None:
        binary = require("containerd")
        config = self.root / "config.toml"
        config.write_text(
            "version = 2\n"
            f'root = "{self.root}/root"\n'
            f'state = "{self.root}/state"\n'
            'disabled_plugins = ["io.containerd.grpc.v1.cri"]\n'  # its CRI plugin off
            f'[grpc]\n  address = "{self.address}"\n'
            f'[ttrpc]\n  address = "{self.address}.ttrpc"\n'
            '[debug]\n  level = "warn"\n'
        )
        log = self.root / "containerd.log"
        self.process = subprocess.Popen(
            [binary, "--config", str(config)], stdout=log.open("wb"), stderr=subprocess.STDOUT
        )
        _wait_for(Path(self.address), self.process, log, "containerd")

    def ctr(self, *args: str) -> str:
        return run(
            [require("ctr"), "--address", self.address, "--namespace", "archiver", *args]
        ).stdout

    def stop(self) -> None:
        if self.process is not None:
            _stop(self.process)


def skopeo(*args: str) -> str:
    return run([require("skopeo"), "--insecure-policy", *args]).stdout
