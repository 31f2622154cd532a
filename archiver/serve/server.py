"""Listening: everything that can be wrong is found before the socket opens (the address,
a port in use, the TLS certificate and key), then uvicorn serves until SIGTERM or SIGINT,
after which the process ends with status 0.

Without TLS the default address is loopback (127.0.0.1:5000); another address is taken
only when ``--listen`` names it, and the start line says which it is."""

from __future__ import annotations

import contextlib
import ctypes
import ipaddress
import logging
import signal
import socket
import ssl
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from archiver.errors import InputError

DEFAULT_LISTEN = "127.0.0.1:5000"
_QUIET = (
    "ASGI callable returned without completing response.",  # the request's line says why
    "Invalid HTTP request received.",  # a client trying TLS first (docker, skopeo do)
)


@dataclass(frozen=True)
class Listen:
    host: str
    port: int

    @classmethod
    def parse(cls, text: str) -> Listen:
        host, sep, port = text.rpartition(":")
        if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
            raise InputError(f"--listen {text!r}: want HOST:PORT (PORT 0-65535)")
        host = host.strip("[]") or "0.0.0.0"
        return cls(host, int(port))

    @property
    def loopback(self) -> bool:
        if self.host == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False

    def url(self, tls: bool, port: int | None = None) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{'https' if tls else 'http'}://{host}:{self.port if port is None else port}"


def check_tls(cert: str | None, key: str | None) -> None:
    """Both or neither; a pair that does not load is refused here, in one line."""
    if (cert is None) != (key is None):
        raise InputError("--tls-cert and --tls-key go together: give both, or neither")
    if cert is None or key is None:
        return
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        context.load_cert_chain(cert, key)
    except FileNotFoundError as exc:
        raise InputError(f"{exc.filename or cert}: no such file (TLS certificate or key)") from None
    except (ssl.SSLError, OSError) as exc:
        raise InputError(
            f"{cert}, {key}: not a usable TLS certificate and key ({exc.strerror or exc})"
        ) from None


def bind(listen: Listen) -> socket.socket:
    """The listening socket, or one line saying why it cannot be had."""
    try:
        infos = socket.getaddrinfo(listen.host, listen.port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise InputError(f"--listen {listen.host}:{listen.port}: {exc.strerror}") from None
    family, _, _, _, address = infos[0]
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
        sock.listen(1024)
    except OSError as exc:
        sock.close()
        raise InputError(
            f"--listen {listen.host}:{listen.port}: cannot listen ({exc.strerror})"
        ) from None
    sock.set_inheritable(True)
    return sock


class _Quiet(logging.Filter):
    """uvicorn's lines that say again what a request's own line says, or that every
    client probing for TLS first would add."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.getMessage() not in _QUIET


_M_MMAP_THRESHOLD = -3
"""glibc's mallopt parameter: allocations from this size up are mapped, and unmapped when
freed."""


def return_freed_buffers() -> None:
    """Blob reads are frames of 4 MiB, freed on worker threads: glibc would keep them in
    per-thread arenas (its mmap threshold rises past their size after the first is freed),
    so the peak RSS grew with the number of clients. Mapping every allocation of 1 MiB or
    more returns each to the system when freed (20 clients on one bundle: about 240 MB
    peak before, 140 MB after). Other C libraries: nothing to do."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").mallopt(_M_MMAP_THRESHOLD, 1024 * 1024)


def setup_logging() -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    ours = logging.getLogger("archiver.serve")
    ours.handlers[:] = [handler]
    ours.setLevel(logging.INFO)
    ours.propagate = False
    theirs = logging.getLogger("uvicorn.error")
    theirs.handlers[:] = [handler]
    theirs.setLevel(logging.WARNING)
    theirs.propagate = False
    theirs.addFilter(_Quiet())


def serve(
    app: Any,
    sock: socket.socket,
    cert: str | None = None,
    key: str | None = None,
) -> None:
    """Serve on ``sock`` until SIGTERM or SIGINT; connections still open get a few
    seconds to finish."""
    import uvicorn

    return_freed_buffers()
    config = uvicorn.Config(
        app,
        log_config=None,
        access_log=False,
        lifespan="off",
        http="h11",
        loop="asyncio",
        ssl_certfile=cert,
        ssl_keyfile=key,
        timeout_graceful_shutdown=5,
        server_header=False,
    )

    class _Server(uvicorn.Server):
        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            """Stop on SIGTERM/SIGINT and return (uvicorn would raise them again
            afterwards, and the process would end by the signal, not with status 0)."""
            handled = (signal.SIGINT, signal.SIGTERM)
            before = {s: signal.signal(s, self.handle_exit) for s in handled}
            try:
                yield
            finally:
                for s, handler in before.items():
                    signal.signal(s, handler)

    _Server(config).run(sockets=[sock])
