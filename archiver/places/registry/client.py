"""The registry client the rest of archiver holds: ``RegistryClient`` (one registry's
session and the API calls on it). ``registries.Registries`` (what one command knows of
registries: the names given as insecure and one shared client per registry) makes them.

How it is built: ``transport`` (TLS, certs.d, plain-HTTP rules, the httpx client),
``session`` (ping, credentials, requests with auth), ``auth`` (Basic and Bearer tokens),
``retry`` (backoff on 429/5xx and broken connections), ``bodies`` (capped, decoded
reads and their JSON), ``api`` (the distribution API calls).

A command makes one ``Registries`` (it imports this module, and httpx, only when a
client is first needed) and passes it to whatever reaches a registry; it is closed when
the command ends. Nothing is kept between commands in the process.
"""

from __future__ import annotations

from typing import Any

import httpx

from archiver.places.registry import api
from archiver.places.registry.api import pull_scope, push_scope
from archiver.places.registry.bodies import ERROR_BODY, Reply, check
from archiver.places.registry.credentials import Credentials
from archiver.places.registry.retry import RetryPolicy
from archiver.places.registry.session import Content, Session
from archiver.places.registry.transport import named_insecure

__all__ = [
    "RegistryClient",
    "RetryPolicy",
    "check",
    "pull_scope",
    "push_scope",
]


class RegistryClient:
    """One registry. Methods raise PeerError (or NotFound) with one line."""

    def __init__(
        self,
        registry: str,
        insecure: bool | None = None,
        credentials: Credentials | None = None,
        retry: RetryPolicy | None = None,
        timeout: float | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        if insecure is None:
            insecure = registry in named_insecure()
        self.session = Session(registry, insecure, credentials, retry, timeout, transport)
        self.registry = registry

    @property
    def retry(self) -> RetryPolicy:
        return self.session.retry

    def close(self) -> None:
        self.session.close()

    def base_url(self) -> str:
        return self.session.base_url()

    def url(self, path: str) -> str:
        return self.session.url(path)

    def request(
        self,
        method: str,
        path: str,
        scopes: tuple[str, ...],
        headers: dict[str, str] | None = None,
        content: Content = None,
        retry: bool = True,
        limit: int = ERROR_BODY,
    ) -> Reply:
        return self.session.request(method, path, scopes, headers, content, retry, limit)

    def check_login(self) -> None:
        api.check_login(self.session)

    def get_manifest(self, repository: str, reference: str) -> api.Fetched:
        return api.get_manifest(self.session, repository, reference)

    def blob_exists(self, repository: str, digest: str, push: bool = False) -> int | None:
        return api.blob_exists(self.session, repository, digest, push)

    def open_blob(self, repository: str, digest: str) -> httpx.Response:
        return api.open_blob(self.session, repository, digest)

    def put_manifest(self, repository: str, reference: str, data: bytes, media_type: str) -> str:
        return api.put_manifest(self.session, repository, reference, data, media_type)

    def referrers(self, repository: str, digest: str) -> list[dict[str, Any]] | None:
        return api.referrers(self.session, repository, digest)

    def tags(self, repository: str) -> list[str]:
        return api.tags(self.session, repository)

    def catalog(self) -> list[str]:
        return api.catalog(self.session)
