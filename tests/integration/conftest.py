from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TypeVar

import pytest

from tests.integration.peers import Containerd, Dockerd

Daemon = TypeVar("Daemon", Dockerd, Containerd)


def _running(daemon: Daemon) -> Iterator[Daemon]:
    daemon.start()
    try:
        yield daemon
    finally:
        daemon.stop()
        shutil.rmtree(daemon.root, ignore_errors=True)


def _short_tmp(prefix: str) -> Path:
    # unix socket paths must stay under ~100 bytes: use a short directory in /tmp
    return Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))


@pytest.fixture(scope="session")
def dockerd() -> Iterator[Dockerd]:
    yield from _running(Dockerd(_short_tmp("arch-d-")))


@pytest.fixture(scope="session")
def containerd() -> Iterator[Containerd]:
    yield from _running(Containerd(_short_tmp("arch-c-")))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "integration" in str(item.fspath):
            item.add_marker(pytest.mark.integration)
