"""How a registry is reached: its host, TLS (CA certificates from ``certs.d``), which
schemes it may be spoken to in, timeouts, and the httpx client that carries it all.

TLS is verified; CA certificates (``*.crt``) and client certificates (``*.cert`` with
their ``*.key``) for a registry are read from ``certs.d/HOST[:PORT]/`` as docker reads
them. A registry named as insecure may use plain HTTP or unverified TLS; a loopback
registry may use plain HTTP when it does not speak TLS at all, as docker allows.
"""

from __future__ import annotations

import http.client
import ipaddress
import os
import socket
import ssl
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from archiver.places.registry.credentials import DOCKER_HUB

if TYPE_CHECKING:
    import httpx

DOCKER_HUB_API = "registry-1.docker.io"
CERTS_DIRS = ("/etc/docker/certs.d", "/etc/containers/certs.d")
CONNECT_TIMEOUT = 15.0


def api_host(registry: str) -> str:
    """The host the API of ``registry`` answers on (Docker Hub's is not its name)."""
    return DOCKER_HUB_API if registry == DOCKER_HUB else registry


def named_insecure() -> set[str]:
    """The registries ``ARCHIVER_INSECURE_REGISTRIES`` names (comma-separated)."""
    named = os.environ.get("ARCHIVER_INSECURE_REGISTRIES", "").split(",")
    return {r.strip() for r in named if r.strip()}


def read_timeout() -> float:
    """Seconds a read or write may stall before the call is retried
    (``ARCHIVER_REGISTRY_TIMEOUT``, default 60)."""
    return float(os.environ.get("ARCHIVER_REGISTRY_TIMEOUT") or 60)


def is_loopback(registry: str) -> bool:
    host = registry.rsplit(":", 1)[0] if not registry.endswith("]") else registry
    host = host.strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def plain_http_allowed(registry: str, insecure: bool) -> bool:
    """Whether ``registry`` may be spoken to without TLS: named insecure, or loopback."""
    return insecure or is_loopback(registry)


def schemes(registry: str, insecure: bool) -> list[str]:
    """The schemes to try, in order, when first reaching ``registry``."""
    return ["https", "http"] if plain_http_allowed(registry, insecure) else ["https"]


class _SystemCAsWhenUsed(ssl.SSLContext):
    """A client context that verifies as ``ssl.create_default_context()`` makes it, but
    reads the system's CA store (~20 ms) at its first TLS handshake: a command that only
    speaks plain HTTP to a (loopback or insecure) registry never reads it."""

    _lock = threading.Lock()

    def wrap_socket(self, *args: Any, **kwargs: Any) -> ssl.SSLSocket:
        self._read_system_cas()
        return super().wrap_socket(*args, **kwargs)

    def wrap_bio(self, *args: Any, **kwargs: Any) -> ssl.SSLObject:
        self._read_system_cas()
        return super().wrap_bio(*args, **kwargs)

    def _read_system_cas(self) -> None:
        with self._lock:
            if not getattr(self, "_system_cas", False):
                self.load_default_certs(ssl.Purpose.SERVER_AUTH)
                self._system_cas = True


def tls_context(host: str) -> ssl.SSLContext:
    """The system's CAs (read at the first handshake), and what ``certs.d/HOST`` adds
    (``ARCHIVER_CERTS_D``: other roots, colon-separated)."""
    context = _SystemCAsWhenUsed(ssl.PROTOCOL_TLS_CLIENT)  # verifies certificate and name
    keylog = os.environ.get("SSLKEYLOGFILE")  # as ssl.create_default_context() does
    if keylog and not sys.flags.ignore_environment:
        context.keylog_filename = keylog
    dirs = os.environ.get("ARCHIVER_CERTS_D")
    for root in dirs.split(":") if dirs else CERTS_DIRS:
        folder = Path(root) / host
        if not folder.is_dir():
            continue
        for cert in sorted(folder.glob("*.crt")):
            context.load_verify_locations(cafile=str(cert))
        for cert in sorted(folder.glob("*.cert")):
            key = cert.with_suffix(".key")
            if key.exists():
                context.load_cert_chain(str(cert), str(key))
    return context


def new_http(
    host: str,
    insecure: bool,
    timeout: float | None = None,
    transport: httpx.BaseTransport | None = None,
) -> httpx.Client:
    """One client for every thread that speaks to ``host`` (httpx.Client is thread-safe):
    redirects followed (the Authorization header is dropped on a redirect to another
    host), per-phase timeouts. ``transport`` replaces the network (tests)."""
    import httpx  # here: the plain manifest HEADs (``heads``) do without it

    return httpx.Client(
        verify=False if insecure else tls_context(host),
        timeout=httpx.Timeout(timeout or read_timeout(), connect=CONNECT_TIMEOUT),
        follow_redirects=True,
        transport=transport,
    )


def proxied() -> bool:
    """Whether the environment names a proxy (httpx, as curl, then goes through it)."""
    names = ("http_proxy", "https_proxy", "all_proxy")
    return any(os.environ.get(name) or os.environ.get(name.upper()) for name in names)


def speaks_tls(host: str) -> bool | None:
    """Whether ``host`` (``name[:port]``, 443 by default) answers a TLS handshake; None
    when it cannot be reached. Nothing is verified and nothing is sent over it: this only
    tells a registry that speaks plain HTTP (loopback, or named insecure) from one that
    does not, without reading the CA store."""
    context = unverified_context()
    probe = http.client.HTTPSConnection(host, context=context)  # splits host and port
    try:
        sock = socket.create_connection((probe.host, probe.port), timeout=CONNECT_TIMEOUT)
    except OSError:
        return None
    try:
        with context.wrap_socket(sock, server_hostname=probe.host):
            return True
    except (ssl.SSLError, OSError):
        return False
    finally:
        sock.close()


def unverified_context() -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def is_cert_error(exc: BaseException | None) -> bool:
    while exc is not None:
        if isinstance(exc, ssl.SSLCertVerificationError):
            return True
        if "CERTIFICATE_VERIFY_FAILED" in str(exc):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def reason(exc: BaseException) -> str:
    """The first line of what went wrong."""
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]
