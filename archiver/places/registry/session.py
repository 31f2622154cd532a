"""A session with one registry: how it is reached (scheme found by pinging ``/v2/``, the
httpx client), who we are to it (credentials, its challenge, tokens by scope) and how
calls are retried. Every thread of a push or pull shares one; the API calls (``api``),
auth (``auth``) and retries (``retry``) are functions of it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Protocol, TypeVar
from urllib.parse import urljoin, urlsplit

import httpx

from archiver.errors import PeerError
from archiver.places.registry import auth
from archiver.places.registry.auth import Challenge, Tokens, parse_challenge
from archiver.places.registry.bodies import ERROR_BODY, Reply, read_reply
from archiver.places.registry.credentials import Credentials, lookup
from archiver.places.registry.retry import RetryPolicy, send
from archiver.places.registry.transport import (
    api_host,
    is_cert_error,
    new_http,
    proxied,
    reason,
    schemes,
    speaks_tls,
)

Content = bytes | Iterator[bytes] | Callable[[], Iterable[bytes]] | None


class _Answer(Protocol):
    @property
    def status_code(self) -> int: ...

    def close(self) -> None: ...


A = TypeVar("A", bound=_Answer)


class Session:
    """One registry. ``insecure``: plain HTTP or unverified TLS allowed. ``credentials``:
    None reads docker's config when first needed. ``transport`` replaces the network."""

    def __init__(
        self,
        registry: str,
        insecure: bool = False,
        credentials: Credentials | None = None,
        retry: RetryPolicy | None = None,
        timeout: float | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.registry = registry
        self.host = api_host(registry)
        self.insecure = insecure
        self.retry = retry or RetryPolicy.from_env()
        self.http = new_http(self.host, insecure, timeout, transport)
        self._network = transport is None
        self.tokens = Tokens()
        self._credentials = credentials
        self._credentials_read = credentials is not None
        self._lock = threading.Lock()
        self._base: str | None = None
        self._challenge: Challenge | None = None

    def close(self) -> None:
        self.http.close()

    @property
    def credentials(self) -> Credentials | None:
        if not self._credentials_read:
            self._credentials = lookup(self.registry)
            self._credentials_read = True
        return self._credentials

    @property
    def challenge(self) -> Challenge | None:
        """What the registry asked of us on ``/v2/`` (None: nothing)."""
        self.base_url()
        return self._challenge

    def base_url(self) -> str:
        """``https://host`` (or ``http://`` where allowed), found by pinging ``/v2/``."""
        with self._lock:
            if self._base is None:
                self._base, self._challenge = self._ping()
            return self._base

    def _ping(self) -> tuple[str, Challenge | None]:
        tried = schemes(self.registry, self.insecure)
        probe = len(tried) > 1 and self._network and not proxied()
        if probe and speaks_tls(self.host) is False:
            tried = tried[1:]  # no TLS at all (found without reading the CA store): plain HTTP
        for scheme in tried:
            url = f"{scheme}://{self.host}/v2/"

            def build(url: str = url) -> httpx.Request:
                return self.http.build_request("GET", url)

            probing = scheme == "https" and len(tried) > 1  # may not speak TLS at all
            try:
                response = send(self, build, lambda response: response, retry=not probing)
            except PeerError as exc:
                if probing and not is_cert_error(exc.__cause__):
                    continue  # no TLS at all: plain HTTP is allowed here
                raise
            response.close()
            if response.status_code == 401:
                header = response.headers.get("WWW-Authenticate", "")
                return f"{scheme}://{self.host}", parse_challenge(header)
            if response.status_code >= 400:
                raise PeerError(
                    f"{self.registry}: /v2/ answered {response.status_code}: not a registry?"
                )
            return f"{scheme}://{self.host}", None
        raise AssertionError("unreachable")

    def url(self, path: str, relative_to: str | None = None) -> str:
        """``path`` (a path, or a URL the registry named) as a URL to ask."""
        try:
            found = urljoin(relative_to or self.base_url(), path)
            httpx.URL(found)
        except (ValueError, httpx.InvalidURL) as exc:
            raise PeerError(
                f"{self.registry}: {path[:200]!r} is not a URL to ask ({reason(exc)})"
            ) from None
        return found

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
        """Send with auth, retrying what may be retried; the answer's body is read, at
        most ``limit`` bytes of it. ``content`` as a callable makes a fresh body per try."""
        return self._authorized(
            method, path, scopes, headers, content, retry, lambda r: read_reply(r, limit)
        )

    def open(
        self, method: str, path: str, scopes: tuple[str, ...], headers: dict[str, str] | None = None
    ) -> httpx.Response:
        """As ``request``, but the answer's body is left to stream (close it)."""
        return self._authorized(method, path, scopes, headers, None, True, _streamed)

    def _authorized(
        self,
        method: str,
        path: str,
        scopes: tuple[str, ...],
        headers: dict[str, str] | None,
        content: Content,
        retry: bool,
        finish: Callable[[httpx.Response], A],
    ) -> A:
        url = self.url(path)
        # credentials go to the registry itself only, never to a host a Location names
        ours = urlsplit(url).netloc == urlsplit(self.base_url()).netloc
        refused: str | None = None
        for _ in range(2):
            authorization = auth.authorization(self, scopes, refused) if ours else None

            def build(authorization: str | None = authorization) -> httpx.Request:
                body = content() if callable(content) else content
                request = self.http.build_request(method, url, headers=headers, content=body)
                if authorization is not None:
                    request.headers["Authorization"] = authorization
                return request

            answer = send(self, build, finish, retry=retry)
            if answer.status_code != 401 or self._challenge is None or refused is not None:
                return answer
            answer.close()
            refused = authorization or ""
        raise PeerError(f"{self.registry}: {method} {path}: authentication failed")


def _streamed(response: httpx.Response) -> httpx.Response:
    return response
