"""A narrow Docker Engine API client: the handful of calls archiver needs, streamed.

Our own, over ``http.client`` (standard library): it must stream request bodies of
gigabytes (chunked) and responses to disk, speak unix sockets and tcp+TLS, and nothing
more — docker-py would add requests and urllib3 for six calls.
``DOCKER_HOST`` (``unix://``, ``tcp://``), ``DOCKER_TLS_VERIFY`` and ``DOCKER_CERT_PATH``
are honoured as the docker CLI does; the default is ``unix:///var/run/docker.sock``.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import socket
import ssl
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote, urlencode, urlparse

from archiver.errors import NotFound, PeerError
from archiver.model.json_decode import load_json

DEFAULT_HOST = "unix:///var/run/docker.sock"


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float | None) -> None:
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        if self.timeout is not None:
            sock.settimeout(self.timeout)
        sock.connect(self._path)
        self.sock = sock


class DaemonClient:
    """The calls we make to a Docker daemon; each raises PeerError with one clear line."""

    def __init__(self, host: str | None = None, timeout: float | None = 600) -> None:
        self.host = host or os.environ.get("DOCKER_HOST") or DEFAULT_HOST
        self._timeout = timeout
        url = urlparse(self.host)
        if url.scheme == "unix":
            self._socket_path = url.path
        elif url.scheme in ("tcp", "http", "https"):
            self._socket_path = ""
            self._netloc = url.netloc
            tls = url.scheme == "https" or bool(os.environ.get("DOCKER_TLS_VERIFY"))
            self._tls = self._tls_context() if tls or os.environ.get("DOCKER_CERT_PATH") else None
        else:
            raise PeerError(f"DOCKER_HOST {self.host!r}: unsupported scheme (unix:// or tcp://)")

    @staticmethod
    def _tls_context() -> ssl.SSLContext:
        context = ssl.create_default_context()
        cert_path = os.environ.get("DOCKER_CERT_PATH")
        if cert_path:
            ca = os.path.join(cert_path, "ca.pem")
            if os.path.exists(ca):
                context.load_verify_locations(ca)
            context.load_cert_chain(
                os.path.join(cert_path, "cert.pem"), os.path.join(cert_path, "key.pem")
            )
        if not os.environ.get("DOCKER_TLS_VERIFY"):
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        return context

    def _connection(self) -> http.client.HTTPConnection:
        if self._socket_path:
            return _UnixConnection(self._socket_path, self._timeout)
        if self._tls is not None:
            return http.client.HTTPSConnection(
                self._netloc, timeout=self._timeout, context=self._tls
            )
        return http.client.HTTPConnection(self._netloc, timeout=self._timeout)

    def _open(
        self,
        method: str,
        path: str,
        query: dict[str, Any] | None = None,
        missing: str | None = None,
    ) -> http.client.HTTPResponse:
        """The response; a 404 is NotFound(``missing``) when given, else as any error."""
        connection = self._connection()
        with self._reaching():
            connection.request(method, _target(path, query))
            response = connection.getresponse()
        if response.status == 404 and missing is not None:
            response.close()
            raise NotFound(f"docker-daemon ({self.host}): {missing}")
        return _checked(response, method, path)

    @contextlib.contextmanager
    def _reaching(self) -> Iterator[None]:
        """Connection failures as one line each."""
        try:
            yield
        except FileNotFoundError:
            raise PeerError(
                f"cannot reach the Docker daemon at {self.host}: no such socket "
                f"(is dockerd running? DOCKER_HOST)"
            ) from None
        except PermissionError:
            raise PeerError(f"permission denied on the Docker daemon socket {self.host}") from None
        except (TimeoutError, ConnectionError, OSError) as exc:
            raise PeerError(f"cannot reach the Docker daemon at {self.host}: {exc}") from None

    def json(
        self, path: str, query: dict[str, Any] | None = None, missing: str | None = None
    ) -> Any:
        with self._open("GET", path, query, missing) as response:
            return load_json(response.read(), f"Docker daemon: GET {path}", PeerError)

    def version(self) -> dict[str, Any]:
        return self.json("/version")

    def info(self) -> dict[str, Any]:
        return self.json("/info")

    def images(self, all_images: bool = False) -> list[dict[str, Any]]:
        return self.json("/images/json", {"all": "1" if all_images else "0"})

    def inspect(self, name: str) -> dict[str, Any]:
        """An image by reference or ID; one the daemon does not hold is NotFound."""
        return self.json(f"/images/{quote(name, safe='')}/json", missing=f"no such image: {name}")

    def get(self, names: list[str]) -> http.client.HTTPResponse:
        """``GET /images/get``: the tar as a response to read (and close)."""
        return self._open("GET", "/images/get", {"names": names})

    def load(self, quiet: bool = True) -> Upload:
        """``POST /images/load``: the tar is written into the returned upload as it is made
        (then ``close()``), and ``messages()`` yields the daemon's JSON lines."""
        connection = self._connection()
        with self._reaching():
            connection.putrequest("POST", _target("/images/load", {"quiet": "1" if quiet else "0"}))
            connection.putheader("Content-Type", "application/x-tar")
            connection.putheader("Transfer-Encoding", "chunked")
            connection.endheaders()
        return Upload(connection, "POST", "/images/load")


class Upload:
    """A request body sent as it is written, in HTTP/1.1 chunks put straight on the socket:
    a layer's bytes are gathered with their chunk framing by ``sendmsg`` rather than copied
    into it, and small writes (tar headers, padding) are batched into one chunk. Another
    thread may wait in ``messages()`` for the response while this one writes. Written
    bytes objects are kept, not copied, until sent: they must not change."""

    _BATCH = 256 * 1024
    _MAX_PARTS = 256

    def __init__(self, connection: http.client.HTTPConnection, method: str, path: str) -> None:
        self._connection = connection
        self._method, self._path = method, path
        self._sock: socket.socket = connection.sock
        self._gather = hasattr(self._sock, "sendmsg") and not isinstance(self._sock, ssl.SSLSocket)
        self._pending: list[bytes] = []
        self._pending_size = 0

    def write(self, data: bytes, /) -> int:
        if data:
            self._pending.append(data)
            self._pending_size += len(data)
            if self._pending_size >= self._BATCH or len(self._pending) >= self._MAX_PARTS:
                self.flush()
        return len(data)

    def flush(self) -> None:
        if self._pending_size:
            parts = [b"%X\r\n" % self._pending_size, *self._pending, b"\r\n"]
            self._pending, self._pending_size = [], 0
            self._send(parts)

    def close(self) -> None:
        """End the body (the last, empty chunk)."""
        self.flush()
        self._send([b"0\r\n\r\n"])

    def abort(self) -> None:
        """Cut the connection: the daemon sees a body that never ended."""
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_RDWR)

    def _send(self, parts: list[bytes]) -> None:
        if not self._gather:
            self._sock.sendall(b"".join(parts))
            return
        views = [memoryview(part) for part in parts]
        while views:
            sent = self._sock.sendmsg(views)  # may send less (a socket with a timeout)
            while views and sent >= len(views[0]):
                sent -= len(views.pop(0))
            if sent:
                views[0] = views[0][sent:]

    def messages(self) -> Iterator[dict[str, Any]]:
        """The daemon's response: its JSON messages, as they come."""
        with _checked(self._connection.getresponse(), self._method, self._path) as response:
            decoder = json.JSONDecoder()
            buffer = ""
            while data := response.read1(64 * 1024):
                buffer += data.decode(errors="replace")
                while buffer.strip():
                    buffer = buffer.lstrip()
                    try:
                        message, end = decoder.raw_decode(buffer)
                    except json.JSONDecodeError:
                        break
                    except RecursionError:
                        raise PeerError(
                            f"Docker daemon: {self._path}: a message nested too deep"
                        ) from None
                    buffer = buffer[end:]
                    yield message
                if len(buffer) > MAX_MESSAGE:  # a message without end: not the daemon's way
                    raise PeerError(
                        f"Docker daemon: {self._path}: a message of more than {MAX_MESSAGE} bytes"
                    )


MAX_MESSAGE = 1024 * 1024
"""A JSON message of the daemon's streamed answer is read whole: at most this many bytes."""


def _target(path: str, query: dict[str, Any] | None) -> str:
    return path + ("?" + urlencode(query, doseq=True) if query else "")


def _checked(
    response: http.client.HTTPResponse, method: str, path: str
) -> http.client.HTTPResponse:
    """The response, or its error status as one PeerError line."""
    if response.status >= 400:
        detail = response.read(64 * 1024).decode(errors="replace")
        with contextlib.suppress(PeerError, AttributeError):
            detail = load_json(detail.encode(), path, PeerError).get("message", detail)
        response.close()
        raise PeerError(f"Docker daemon: {method} {path}: {response.status} {detail.strip()}")
    return response
