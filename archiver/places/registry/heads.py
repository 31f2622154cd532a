"""Manifest HEADs made light. ``sync`` asks the registry for the manifest of every tag it
lists on each run, and a run with nothing new does little else, so these HEADs go over
the standard library's ``http.client`` on kept-alive connections; httpx (~50 ms to
import, twice that where trio is installed: httpcore imports it) is not imported for them.

Only the plain case is answered here: no proxy set in the environment, a registry whose
``/v2/`` answers 200 (it asks for no auth), and a HEAD answered 200 with the digest and
size of the manifest, or 404. Anything else (an auth challenge, a redirect, 429 or 5xx,
a broken connection, TLS trouble, no digest stated) is asked again through the
registry's full session (``api.head_manifest``: auth, retries, a GET when no digest is
stated), which fails as it always does.

The scheme is found as the session finds it (``transport.schemes``): HTTPS first; a
loopback or insecure registry that does not speak TLS at all is spoken to in plain HTTP.
Whether it speaks TLS is learnt by a handshake that checks nothing (no CA store loaded,
~20 ms, and nothing sent over it); the connections that carry requests verify as the
session does (``tls_context``, unverified only for a registry named insecure).
"""

from __future__ import annotations

import http.client
import ssl
import threading
from dataclasses import dataclass
from types import TracebackType

from archiver.errors import NotFound
from archiver.places.registry.manifests import MANIFEST_ACCEPT, Head, stated_head
from archiver.places.registry.registries import Registries
from archiver.places.registry.transport import (
    CONNECT_TIMEOUT,
    api_host,
    proxied,
    read_timeout,
    schemes,
    speaks_tls,
    tls_context,
    unverified_context,
)

PING_BODY = 64 * 1024
"""What is read of ``/v2/``'s answer (a longer body: that connection is not kept)."""


@dataclass(frozen=True)
class _Way:
    """How a registry is spoken to on the plain path."""

    scheme: str
    host: str
    context: ssl.SSLContext | None


class ManifestHeads:
    """The manifest HEADs of one command (thread-safe): plain ones here, on connections
    kept for the next HEAD, the rest through ``registries``. Close it when done."""

    def __init__(self, registries: Registries) -> None:
        self._registries = registries
        self._lock = threading.Lock()
        self._ways: dict[str, _Way | None] = {}
        self._finding: dict[str, threading.Lock] = {}
        self._idle: dict[str, list[http.client.HTTPConnection]] = {}

    def __enter__(self) -> ManifestHeads:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.close()

    def head(self, registry: str, repository: str, reference: str) -> Head:
        """The manifest ``reference`` (a tag or digest) names in ``repository`` now;
        NotFound when it names none."""
        found = self._plain(registry, repository, reference)
        if found is not None:
            return found
        from archiver.places.registry import api  # httpx: past the plain path only

        session = self._registries.client(registry).session
        return api.head_manifest(session, repository, reference)

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, {}
        for connections in idle.values():
            for connection in connections:
                connection.close()

    def _plain(self, registry: str, repository: str, reference: str) -> Head | None:
        way = self._way(registry)
        if way is None:
            return None
        path = f"/v2/{repository}/manifests/{reference}"
        connection: http.client.HTTPConnection | None = None
        try:
            connection = self._take(registry, way)
            connection.request("HEAD", path, headers={"Accept": MANIFEST_ACCEPT})
            answer = connection.getresponse()
            answer.read()
        except (OSError, http.client.HTTPException):
            if connection is not None:
                connection.close()
            return None  # the full session asks again (and retries)
        self._give_back(registry, connection)
        if answer.status == 404:
            raise NotFound(f"{registry}/{repository}: no manifest {reference}")
        if answer.status != 200:
            return None
        digest, length, kind = (
            answer.headers.get(name) or ""
            for name in ("Docker-Content-Digest", "Content-Length", "Content-Type")
        )
        return stated_head(digest, length, kind)

    def _take(self, registry: str, way: _Way) -> http.client.HTTPConnection:
        with self._lock:
            idle = self._idle.get(registry)
            if idle:
                return idle.pop()
        return _connection(way)

    def _give_back(self, registry: str, connection: http.client.HTTPConnection) -> None:
        if connection.sock is None:  # the registry closed it
            return
        with self._lock:
            self._idle.setdefault(registry, []).append(connection)

    def _way(self, registry: str) -> _Way | None:
        """How ``registry`` is spoken to on the plain path; None: not at all (found once,
        while other threads wait for it)."""
        with self._lock:
            if registry in self._ways:
                return self._ways[registry]
            finding = self._finding.setdefault(registry, threading.Lock())
        with finding:
            with self._lock:
                if registry in self._ways:
                    return self._ways[registry]
            way = self._find_way(registry)
            with self._lock:
                self._ways[registry] = way
            return way

    def _find_way(self, registry: str) -> _Way | None:
        if proxied():
            return None  # httpx goes through the proxy: so does the full session
        insecure = registry in self._registries.insecure()
        host = api_host(registry)
        tried = schemes(registry, insecure)
        for scheme in tried:
            if scheme == "https" and len(tried) > 1:
                speaks = speaks_tls(host)
                if speaks is None:
                    return None
                if not speaks:
                    continue
            context = None
            if scheme == "https":
                context = unverified_context() if insecure else tls_context(host)
            way = _Way(scheme, host, context)
            try:
                connection = _connection(way)
                connection.request("GET", "/v2/")
                answer = connection.getresponse()
                answer.read(PING_BODY)
            except (OSError, http.client.HTTPException):
                return None
            if answer.status != 200:
                connection.close()
                return None
            if answer.isclosed():  # read to its end: the connection serves the next HEAD
                self._give_back(registry, connection)
            else:
                connection.close()
            return way
        return None


def _connection(way: _Way) -> http.client.HTTPConnection:
    """A connection to ``way.host``, connected, reads timed out as the session's are."""
    connection: http.client.HTTPConnection
    if way.scheme == "https":
        connection = http.client.HTTPSConnection(
            way.host, timeout=CONNECT_TIMEOUT, context=way.context
        )
    else:
        connection = http.client.HTTPConnection(way.host, timeout=CONNECT_TIMEOUT)
    connection.connect()
    connection.timeout = read_timeout()
    if connection.sock is not None:
        connection.sock.settimeout(connection.timeout)
    return connection
