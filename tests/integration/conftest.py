from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest

from tests.integration.peers import Containerd, Dockerd
from tests.integration.registry_peers import FaultProxy, Registry, TokenServer

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


@pytest.fixture
def proxy_to() -> Iterator[Callable[[Registry], FaultProxy]]:
    """A fault proxy in front of a registry, stopped with the test."""
    proxies: list[FaultProxy] = []

    def make(registry: Registry) -> FaultProxy:
        proxies.append(FaultProxy(registry.host))
        return proxies[-1]

    yield make
    for proxy in proxies:
        proxy.stop()


@pytest.fixture
def start() -> Iterator[Callable[..., Registry]]:
    """Start registries that stop with the test."""
    started: list[Registry] = []

    def make(
        auth: str | TokenServer | None = None, users: dict[str, str] | None = None
    ) -> Registry:
        registry = Registry(_short_tmp("arch-r-"), auth, users or {})
        registry.start()
        started.append(registry)
        return registry

    yield make
    for peer in reversed(started):
        peer.stop()
