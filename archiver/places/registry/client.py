"""A distribution-API client: ping, auth, manifests, blobs, uploads, tags, catalog.

Over httpx: one client shared by every thread of a push or pull (httpx.Client is
thread-safe, where a requests Session is not), streamed bodies both ways, per-phase
timeouts, and it drops the Authorization header on redirects to another host (blob
storage). Auth follows the registry's challenge: Basic, or Bearer tokens fetched from the
realm for each scope and cached until they expire.

TLS is verified (CA certificates for a registry are read from ``certs.d/HOST[:PORT]/``
as docker reads them). A registry named as insecure (``--insecure-registry``, or
``ARCHIVER_INSECURE_REGISTRIES``) may use plain HTTP or unverified TLS; a loopback
registry may use plain HTTP when it does not speak TLS at all, as docker allows.

Every call is retried on connection errors, 429 and 5xx, with exponential backoff and
jitter, honouring ``Retry-After``, within a bounded total time; the final error is one
line naming the registry and what failed.
"""

from __future__ import annotations

import base64
import ipaddress
import os
import random
import re
import ssl
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urljoin, urlsplit

import httpx

from archiver.errors import NotFound, PeerError
from archiver.places.registry.credentials import DOCKER_HUB, Credentials, lookup

DOCKER_HUB_API = "registry-1.docker.io"
PAGE_SIZE = 1000
"""Entries asked for per page of a tag list or the catalog (the rest follows Link)."""
CERTS_DIRS = ("/etc/docker/certs.d", "/etc/containers/certs.d")
RETRYABLE = {408, 429, 500, 502, 503, 504}
MANIFEST_ACCEPT = ", ".join(
    [
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.docker.distribution.manifest.v2+json",
    ]
)


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 8
    base: float = 0.5
    cap: float = 15.0
    total: float = 180.0
    """Seconds all retries of one call may take together."""

    @classmethod
    def from_env(cls) -> RetryPolicy:
        total = os.environ.get("ARCHIVER_RETRY_TOTAL")
        return cls(total=float(total)) if total else cls()

    def delay(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(retry_after, self.cap)
        return random.uniform(0, min(self.cap, self.base * 2**attempt))  # full jitter


_INSECURE: set[str] = set()
_CLIENTS: dict[str, RegistryClient] = {}
_CLIENTS_LOCK = threading.Lock()


def _timeout() -> float:
    """Seconds a read or write may stall before the call is retried
    (``ARCHIVER_REGISTRY_TIMEOUT``, default 60)."""
    return float(os.environ.get("ARCHIVER_REGISTRY_TIMEOUT") or 60)


def insecure_registries() -> set[str]:
    """Registries that may use plain HTTP or unverified TLS: ``--insecure-registry`` and
    ``ARCHIVER_INSECURE_REGISTRIES`` (comma-separated)."""
    named = os.environ.get("ARCHIVER_INSECURE_REGISTRIES", "").split(",")
    return {r.strip() for r in named if r.strip()} | _INSECURE


def allow_insecure(registries: Iterable[str]) -> None:
    _INSECURE.update(registries)


def close_clients() -> None:
    """At the end of a command: close every shared client, forget --insecure-registry."""
    with _CLIENTS_LOCK:
        for client in _CLIENTS.values():
            client.close()
        _CLIENTS.clear()
        _INSECURE.clear()


def client_for(registry: str) -> RegistryClient:
    """One client per registry in a process: its scheme, tokens and connections are shared."""
    with _CLIENTS_LOCK:
        client = _CLIENTS.get(registry)
        if client is None:
            client = _CLIENTS[registry] = RegistryClient(registry)
        return client


def is_loopback(registry: str) -> bool:
    host = registry.rsplit(":", 1)[0] if not registry.endswith("]") else registry
    host = host.strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class Retryable(Exception):
    """A response or error worth another try (internal)."""


class RegistryClient:
    """One registry. Methods raise PeerError (or NotFound) with one line."""

    def __init__(
        self,
        registry: str,
        insecure: bool | None = None,
        credentials: Credentials | None = None,
        retry: RetryPolicy | None = None,
        timeout: float | None = None,
    ) -> None:
        self.registry = registry
        self.host = DOCKER_HUB_API if registry == DOCKER_HUB else registry
        self.insecure = registry in insecure_registries() if insecure is None else insecure
        self.retry = retry or RetryPolicy.from_env()
        self._credentials = credentials
        self._credentials_read = credentials is not None
        self._http = httpx.Client(
            verify=False if self.insecure else self._tls_context(),
            timeout=httpx.Timeout(timeout or _timeout(), connect=15.0),
            follow_redirects=True,
        )
        self._lock = threading.Lock()
        self._token_lock = threading.Lock()
        self._base: str | None = None
        self._challenge: tuple[str, dict[str, str]] | None = None
        self._tokens: dict[str, tuple[str, float]] = {}

    def close(self) -> None:
        self._http.close()

    # -- connection and auth ---------------------------------------------------------------

    def _tls_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context()
        dirs = os.environ.get("ARCHIVER_CERTS_D")
        for root in dirs.split(":") if dirs else CERTS_DIRS:
            folder = Path(root) / self.host
            if not folder.is_dir():
                continue
            for cert in sorted(folder.glob("*.crt")):
                context.load_verify_locations(cafile=str(cert))
            for cert in sorted(folder.glob("*.cert")):
                key = cert.with_suffix(".key")
                if key.exists():
                    context.load_cert_chain(str(cert), str(key))
        return context

    @property
    def credentials(self) -> Credentials | None:
        if not self._credentials_read:
            self._credentials = lookup(self.registry)
            self._credentials_read = True
        return self._credentials

    def base_url(self) -> str:
        """``https://host`` (or ``http://`` where allowed), found by pinging ``/v2/``."""
        with self._lock:
            if self._base is None:
                self._base, self._challenge = self._ping()
            return self._base

    def _ping(self) -> tuple[str, tuple[str, dict[str, str]] | None]:
        schemes = ["https", "http"] if self.insecure or is_loopback(self.registry) else ["https"]
        for scheme in schemes:
            url = f"{scheme}://{self.host}/v2/"

            def build(url: str = url) -> httpx.Request:
                return self._http.build_request("GET", url)

            probing = scheme == "https" and len(schemes) > 1  # may not speak TLS at all
            try:
                response = self._send(build, retry=not probing)
            except PeerError as exc:
                cause = exc.__cause__
                if probing and not _is_cert_error(cause):
                    continue  # no TLS at all: plain HTTP is allowed here
                raise
            response.close()
            if response.status_code == 401:
                return f"{scheme}://{self.host}", _parse_challenge(
                    response.headers.get("WWW-Authenticate", "")
                )
            if response.status_code >= 400:
                raise PeerError(
                    f"{self.registry}: /v2/ answered {response.status_code}: not a registry?"
                )
            return f"{scheme}://{self.host}", None
        raise AssertionError("unreachable")

    def check_login(self) -> None:
        """Prove the credentials work (``archiver login``)."""
        self.base_url()
        if self._challenge is None:
            return
        response = self.request("GET", "/v2/", scopes=())
        response.close()
        if response.status_code in (401, 403):
            raise PeerError(f"{self.registry}: login refused: incorrect username or password")
        check(response, self.registry, "login")

    def _authorization(self, scopes: tuple[str, ...], refused: str | None = None) -> str | None:
        """The Authorization header for ``scopes``; a token the registry ``refused`` is
        fetched anew (unless another thread already did)."""
        challenge = self._challenge
        if challenge is None:
            return None
        kind, params = challenge
        creds = self.credentials
        if kind == "basic":
            if creds is None:
                raise PeerError(f"{self.registry}: authentication required: run archiver login")
            return basic_authorization(creds)
        key = " ".join(sorted(scopes))
        with self._token_lock:  # threads wanting the same token wait for one fetch
            cached = self._tokens.get(key)
            usable = cached is not None and cached[1] > time.monotonic()
            if cached is not None and usable and f"Bearer {cached[0]}" != refused:
                return f"Bearer {cached[0]}"
            token, lifetime = self._fetch_token(params, scopes, creds)
            self._tokens[key] = (token, time.monotonic() + max(lifetime - 10, 1))
        return f"Bearer {token}"

    def _fetch_token(
        self, params: dict[str, str], scopes: tuple[str, ...], creds: Credentials | None
    ) -> tuple[str, float]:
        realm = params.get("realm")
        if not realm:
            raise PeerError(f"{self.registry}: a Bearer challenge without a realm")
        query: list[tuple[str, str]] = []
        if params.get("service"):
            query.append(("service", params["service"]))
        query += [("scope", scope) for scope in scopes]
        if creds is not None:
            query.append(("account", creds.username))
        url = realm + ("&" if "?" in realm else "?") + urlencode(query)

        def build() -> httpx.Request:
            request = self._http.build_request("GET", url)
            if creds is not None:
                request.headers["Authorization"] = basic_authorization(creds)
            return request

        response = self._send(build)
        response.read()
        if response.status_code in (401, 403):
            raise PeerError(f"{self.registry}: the token service refused the credentials")
        if response.status_code >= 400:
            raise PeerError(f"{self.registry}: token service answered {response.status_code}")
        try:
            body = response.json()
            token = body.get("token") or body.get("access_token")
            lifetime = float(body.get("expires_in") or 60)
        except (ValueError, AttributeError):
            raise PeerError(f"{self.registry}: the token service answered no JSON") from None
        if not token:
            raise PeerError(f"{self.registry}: the token service gave no token")
        return str(token), lifetime

    # -- requests --------------------------------------------------------------------------

    def url(self, path: str) -> str:
        return urljoin(self.base_url(), path)

    def request(
        self,
        method: str,
        path: str,
        scopes: tuple[str, ...],
        headers: dict[str, str] | None = None,
        content: bytes | Iterator[bytes] | Callable[[], Iterable[bytes]] | None = None,
        stream: bool = False,
        retry: bool = True,
    ) -> httpx.Response:
        """Send with auth (a 401 fetches a fresh token once), retrying what may be retried.
        ``content`` as a callable makes a fresh body for each try."""
        url = self.url(path)
        # credentials go to the registry itself only, never to a host a Location names
        ours = urlsplit(url).netloc == urlsplit(self.base_url()).netloc
        refused: str | None = None
        for _ in range(2):
            authorization = self._authorization(scopes, refused) if ours else None

            def build(authorization: str | None = authorization) -> httpx.Request:
                body = content() if callable(content) else content
                request = self._http.build_request(method, url, headers=headers, content=body)
                if authorization is not None:
                    request.headers["Authorization"] = authorization
                return request

            response = self._send(build, stream=stream, retry=retry)
            if response.status_code != 401 or self._challenge is None or refused is not None:
                return response
            response.close()
            refused = authorization or ""
        raise PeerError(f"{self.registry}: {method} {path}: authentication failed")

    def _send(
        self, build: Callable[[], httpx.Request], stream: bool = True, retry: bool = True
    ) -> httpx.Response:
        deadline = time.monotonic() + self.retry.total
        attempt = 0
        while True:
            request = build()
            try:
                response = self._http.send(request, stream=True)
                if response.status_code in RETRYABLE and retry:
                    raise Retryable(response)
                if not stream:
                    response.read()
                return response
            except (httpx.TransportError, Retryable) as exc:
                wait = self.retry.delay(attempt, _retry_after(exc))
                attempt += 1
                if (
                    not retry
                    or attempt >= self.retry.attempts
                    or time.monotonic() + wait > deadline
                ):
                    raise self._failure(request, exc) from exc
                if isinstance(exc, Retryable):
                    exc.args[0].close()
                time.sleep(wait)

    def _failure(self, request: httpx.Request, exc: Exception) -> PeerError:
        what = f"{request.method} {request.url.path}"
        if isinstance(exc, Retryable):
            response: httpx.Response = exc.args[0]
            response.read()
            return PeerError(
                f"{self.registry}: {what} answered {response.status_code}"
                f"{_error_detail(response)} (gave up after retries)"
            )
        if _is_cert_error(exc):
            return PeerError(
                f"{self.registry}: TLS certificate not trusted ({_reason(exc)}); add its CA "
                f"to certs.d/{self.host}/ca.crt, or name it with --insecure-registry"
            )
        return PeerError(f"{self.registry}: {what} failed: {_reason(exc)}")

    # -- the API ---------------------------------------------------------------------------

    def get_manifest(self, repository: str, reference: str) -> tuple[bytes, str, str | None]:
        """(bytes, media type, Docker-Content-Digest) of a manifest or index."""
        response = self.request(
            "GET",
            f"/v2/{repository}/manifests/{reference}",
            scopes=(pull_scope(repository),),
            headers={"Accept": MANIFEST_ACCEPT},
        )
        if response.status_code == 404:
            raise NotFound(f"{self.registry}/{repository}: no manifest {reference}")
        check(response, self.registry, f"manifest {repository}:{reference}")
        media_type = response.headers.get("Content-Type", "").split(";")[0].strip()
        return response.content, media_type, response.headers.get("Docker-Content-Digest")

    def blob_exists(self, repository: str, digest: str, push: bool = False) -> int | None:
        """The blob's size when ``repository`` has it, else None (``push``: asked while
        pushing, with the push token, so one token serves the whole push)."""
        scope = push_scope(repository) if push else pull_scope(repository)
        response = self.request("HEAD", f"/v2/{repository}/blobs/{digest}", scopes=(scope,))
        if response.status_code == 404:
            return None
        check(response, self.registry, f"HEAD blob {digest}")
        return int(response.headers.get("Content-Length", -1))

    def open_blob(self, repository: str, digest: str) -> httpx.Response:
        response = self.request(
            "GET",
            f"/v2/{repository}/blobs/{digest}",
            scopes=(pull_scope(repository),),
            stream=True,
        )
        if response.status_code == 404:
            response.close()
            raise NotFound(f"{self.registry}/{repository}: no blob {digest}")
        if response.status_code >= 400:
            response.read()
            check(response, self.registry, f"blob {digest}")
        return response

    def put_manifest(self, repository: str, reference: str, data: bytes, media_type: str) -> str:
        response = self.request(
            "PUT",
            f"/v2/{repository}/manifests/{reference}",
            scopes=(push_scope(repository),),
            headers={"Content-Type": media_type},
            content=data,
        )
        check(response, self.registry, f"manifest {repository}:{reference}")
        return response.headers.get("Docker-Content-Digest", "")

    def tags(self, repository: str) -> list[str]:
        found: list[str] = []
        path = f"/v2/{repository}/tags/list?n={PAGE_SIZE}"
        for page in self._pages(path, (pull_scope(repository),)):
            found += page.get("tags") or []
        return found

    def catalog(self) -> list[str]:
        found: list[str] = []
        for page in self._pages(f"/v2/_catalog?n={PAGE_SIZE}", ("registry:catalog:*",)):
            found += page.get("repositories") or []
        return found

    def _pages(self, path: str, scopes: tuple[str, ...]) -> Iterator[dict[str, Any]]:
        seen = 0
        next_path: str | None = path
        while next_path is not None and seen < 100_000:
            response = self.request("GET", next_path, scopes=scopes)
            if response.status_code == 404:
                raise NotFound(f"{self.registry}: {path.split('?')[0]}: not found")
            check(response, self.registry, path.split("?")[0])
            try:
                yield response.json()
            except ValueError:
                raise PeerError(f"{self.registry}: {path}: not JSON") from None
            seen += 1
            link = re.search(r"<([^>]+)>\s*;\s*rel=\"?next\"?", response.headers.get("Link", ""))
            next_path = link.group(1) if link else None


def basic_authorization(creds: Credentials) -> str:
    token = base64.b64encode(f"{creds.username}:{creds.password}".encode()).decode()
    return f"Basic {token}"


def pull_scope(repository: str) -> str:
    return f"repository:{repository}:pull"


def push_scope(repository: str) -> str:
    return f"repository:{repository}:pull,push"


def check(response: httpx.Response, registry: str, what: str) -> None:
    if response.status_code < 400:
        return
    if response.status_code in (401, 403):
        raise PeerError(
            f"{registry}: {what}: access denied ({response.status_code}){_error_detail(response)}"
        )
    raise PeerError(f"{registry}: {what}: {response.status_code}{_error_detail(response)}")


def _error_detail(response: httpx.Response) -> str:
    try:
        errors = response.json().get("errors") or []
        first = errors[0]
        return f": {first.get('code', '')} {first.get('message', '')}".rstrip()
    except (ValueError, AttributeError, IndexError, TypeError, httpx.ResponseNotRead):
        return ""


def _parse_challenge(header: str) -> tuple[str, dict[str, str]] | None:
    kind, _, rest = header.strip().partition(" ")
    if not kind:
        return None
    params = dict(re.findall(r'(\w+)="([^"]*)"', rest))
    return kind.lower(), params


def _retry_after(exc: Exception) -> float | None:
    if not isinstance(exc, Retryable):
        return None
    value = exc.args[0].headers.get("Retry-After")
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


def _is_cert_error(exc: BaseException | None) -> bool:
    while exc is not None:
        if isinstance(exc, ssl.SSLCertVerificationError):
            return True
        if "CERTIFICATE_VERIFY_FAILED" in str(exc):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def _reason(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]
