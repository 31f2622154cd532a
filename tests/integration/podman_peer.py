"""A private podman API service (``podman system service``): its own storage (vfs), run
and tmp directories and a unix socket in a temp dir; the podman CLI on the same storage."""

from __future__ import annotations

import os
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.integration.peers import _stop, _wait_for, require, run


@dataclass
class Podman:
    root: Path
    process: subprocess.Popen[bytes] | None = None
    binary: str = field(default_factory=lambda: require("podman"))

    @property
    def host(self) -> str:
        """What DOCKER_HOST is set to for archiver: podman's Docker-compatible API."""
        return f"unix://{self.root}/podman.sock"

    def _global(self) -> list[str]:
        return [
            self.binary,
            f"--root={self.root}/storage",
            f"--runroot={self.root}/run",
            f"--tmpdir={self.root}/tmp",
            "--storage-driver=vfs",
            "--cgroup-manager=cgroupfs",
            "--events-backend=file",
        ]

    def _env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("DOCKER_", "CONTAINER"))}
        env["XDG_RUNTIME_DIR"] = str(self.root / "xdg")
        return env

    def start(self) -> None:
        (self.root / "xdg").mkdir(parents=True, exist_ok=True)
        log = self.root / "podman.log"
        self.process = subprocess.Popen(
            [*self._global(), "system", "service", "--time=0", self.host],
            stdout=log.open("wb"),
            stderr=subprocess.STDOUT,
            env=self._env(),
        )
        _wait_for(self.root / "podman.sock", self.process, log, "podman system service")
        deadline = time.monotonic() + 60
        while subprocess.run(self._cmd("version"), capture_output=True).returncode != 0:
            if time.monotonic() > deadline:
                pytest.fail(f"podman does not answer:\n{log.read_text(errors='replace')[-3000:]}")
            time.sleep(0.3)

    def _cmd(self, *args: str) -> list[str]:
        return [*self._global(), *args]

    def podman(self, *args: str) -> str:
        return run(self._cmd(*args), env=self._env()).stdout

    def images(self) -> list[dict[str, str]]:
        """``podman images`` as (names, ID) dicts, dangling included."""
        out = self.podman("images", "--no-trunc", "--format", "{{.Repository}}:{{.Tag}}\t{{.ID}}")
        rows = []
        for line in out.splitlines():
            name, image_id = line.split("\t")
            rows.append({"name": name, "id": image_id})
        return rows

    def stop(self) -> None:
        if self.process is not None:
            _stop(self.process)
