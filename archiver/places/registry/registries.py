"""``Registries``: what one command knows of registries: the names given as insecure
(besides ``ARCHIVER_INSECURE_REGISTRIES``), credentials a sync list gives, and one shared
client per registry, made when first asked for.

This module imports no HTTP client: a command that only asks for manifest HEADs on the
plain path (``heads``) never imports httpx; ``client`` (and httpx) is imported with the
first client.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

from archiver.places.registry.credentials import Credentials
from archiver.places.registry.transport import named_insecure

if TYPE_CHECKING:
    from archiver.places.registry.client import RegistryClient


class Registries:
    """One client per registry, so its scheme, tokens and connections are shared by every
    thread and every place of the command."""

    def __init__(self, insecure: Iterable[str] = ()) -> None:
        self._insecure = set(insecure)
        self._clients: dict[str, RegistryClient] = {}
        self._given: dict[str, Credentials] = {}
        self._lock = threading.Lock()

    def allow_insecure(self, registries: Iterable[str]) -> None:
        with self._lock:
            self._insecure.update(registries)

    def insecure(self) -> set[str]:
        """``--insecure-registry`` and ``ARCHIVER_INSECURE_REGISTRIES`` (comma-separated)."""
        named = named_insecure()
        with self._lock:
            return named | self._insecure

    def use_credentials(self, registry: str, credentials: Credentials) -> None:
        """Use ``credentials`` for ``registry`` in this command (a sync list names them),
        instead of docker's config."""
        with self._lock:
            previous = self._clients.pop(registry, None)
            self._given[registry] = credentials
        if previous is not None:
            previous.close()

    def given_credentials(self, registry: str) -> Credentials | None:
        """What ``use_credentials`` gave for ``registry`` (None: docker's config holds them)."""
        with self._lock:
            return self._given.get(registry)

    def client(self, registry: str) -> RegistryClient:
        from archiver.places.registry.client import RegistryClient  # httpx, when first needed

        insecure = registry in self.insecure()
        with self._lock:
            client = self._clients.get(registry)
            if client is None:
                given = self._given.get(registry)
                client = self._clients[registry] = RegistryClient(registry, insecure, given)
            return client

    def close(self) -> None:
        """Close every client; forget the names given as insecure."""
        with self._lock:
            clients, self._clients = list(self._clients.values()), {}
            self._insecure.clear()
        for client in clients:
            client.close()


@contextlib.contextmanager
def given_or_own(registries: Registries | None) -> Iterator[Registries]:
    """``registries`` (a command's, closed by it), or clients of one's own, closed after."""
    if registries is not None:
        yield registries
        return
    own = Registries()
    try:
        yield own
    finally:
        own.close()
