"""The real peers, started on loopback in temporary directories: dockerd, containerd, skopeo.

A missing peer is a failure, never a skip: the README's test command installs them, and CI
(CI=true) must prove every integration test ran.
"""

from __future__ import annotations

import os
import shutil
import signal
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


@dataclass
class Dockerd:
    """A private dockerd: vfs storage, no iptables, no bridge, a unix socket in a temp dir."""

    root: Path
    process: subprocess.Popen[bytes] | None = None
    client: str = field(default_factory=lambda: require("docker"))

    @property
    def host(self) -> str:
        return f"unix://{self.root}/docker.sock"

    def start(self) -> None:
        dockerd = require("dockerd")
        log = self.root / "dockerd.log"
        self.process = subprocess.Popen(
            [
                dockerd,
                f"--data-root={self.root}/data",
                f"--exec-root={self.root}/exec",
                f"--pidfile={self.root}/dockerd.pid",
                f"--host={self.host}",
                "--storage-driver=vfs",
                "--iptables=false",
                "--ip-masq=false",
                "--bridge=none",
                "--userland-proxy=false",
                f"--containerd-namespace=archiver-test-{os.getpid()}",
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
        env = {**os.environ, "DOCKER_BUILDKIT": "0"}
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
            f'[grpc]\n  address = "{self.address}"\n'
            f'[ttrpc]\n  address = "{self.address}.ttrpc"\n'
            '[plugins."io.containerd.grpc.v1.cri"]\n  disable_apparmor = true\n'
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
