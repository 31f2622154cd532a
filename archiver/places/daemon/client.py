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
from collections.abc import Iterable, Iterator
from typing import Any, BinaryIO
from urllib.parse import quote, urlencode, urlparse

from archiver.errors import PeerError

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
        body: Iterable[bytes] | None = None,
        headers: dict[str, str] | None = None,
    ) -> http.client.HTTPResponse:
        target = path + ("?" + urlencode(query, doseq=True) if query else "")
        connection = self._connection()
        try:
            connection.request(
                method, target, body=body, headers=headers or {}, encode_chunked=body is not None
            )
            response = connection.getresponse()
        except FileNotFoundError:
            raise PeerError(
                f"cannot reach the Docker daemon at {self.host}: no such socket "
                f"(is dockerd running? DOCKER_HOST)"
            ) from None
        except PermissionError:
            raise PeerError(f"permission denied on the Docker daemon socket {self.host}") from None
        except (TimeoutError, ConnectionError, OSError) as exc:
            raise PeerError(f"cannot reach the Docker daemon at {self.host}: {exc}") from None
        if response.status >= 400:
            detail = response.read(64 * 1024).decode(errors="replace")
            with contextlib.suppress(json.JSONDecodeError, AttributeError):
                detail = json.loads(detail).get("message", detail)
            raise PeerError(f"Docker daemon: {method} {path}: {response.status} {detail.strip()}")
        return response

    def json(self, path: str, query: dict[str, Any] | None = None) -> Any:
        with self._open("GET", path, query) as response:
            return json.loads(response.read())

    def version(self) -> dict[str, Any]:
        return self.json("/version")

    def images(self, all_images: bool = False) -> list[dict[str, Any]]:
        return self.json("/images/json", {"all": "1" if all_images else "0"})

    def inspect(self, name: str) -> dict[str, Any]:
        return self.json(f"/images/{quote(name, safe='')}/json")

    def get(self, names: list[str]) -> http.client.HTTPResponse:
        """``GET /images/get``: the tar as a response to read (and close)."""
        return self._open("GET", "/images/get", {"names": names})

    def save(self, names: list[str], out: BinaryIO, chunk: int = 1024 * 1024) -> int:
        """Stream ``GET /images/get`` into ``out``; return the bytes written."""
        total = 0
        with self._open("GET", "/images/get", {"names": names}) as response:
            while data := response.read(chunk):
                out.write(data)
                total += len(data)
        return total

    def load(self, body: Iterable[bytes], quiet: bool = True) -> Iterator[dict[str, Any]]:
        """``POST /images/load`` with a streamed tar body; yields the daemon's JSON messages."""
        headers = {"Content-Type": "application/x-tar"}
        with self._open(
            "POST", "/images/load", {"quiet": "1" if quiet else "0"}, body, headers
        ) as response:
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
                    buffer = buffer[end:]
                    yield message
