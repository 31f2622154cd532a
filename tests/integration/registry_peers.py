"""The real distribution registry in the set-ups the registry tests need, and what stands
around it: a token server that signs JWTs the registry verifies, and a fault proxy.

- ``Registry``: Debian's docker-registry on 127.0.0.1, storage in a temp dir; anonymous,
  htpasswd (bcrypt) behind TLS with a CA the tests make, or Bearer tokens.
- ``TokenServer``: issues RS256 JWTs with the signing certificate in ``x5c``; the
  registry trusts the CA that signed it (``rootcertbundle``). Users and what they may do
  are given by the test; every request is counted.
- ``FaultProxy``: a loopback HTTP proxy in front of a registry that answers with an error
  status, cuts a connection in the middle of a request body, or stalls, on the requests a
  rule matches, a given number of times; it counts the body bytes it forwards.
"""

from __future__ import annotations

import base64
import http.client
import http.server
import json
import re
import shutil
import socket
import subprocess
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest

from tests.integration.peers import (
    _free_port,
    _stop,
    certificate_authority,
    require,
    signed_certificate,
)


@dataclass
class TokenServer:
    """Issues registry tokens: ``users`` maps user -> (password, allowed actions); the
    anonymous user is ``""``."""

    root: Path
    users: dict[str, tuple[str, tuple[str, ...]]]
    expired: int = 0
    """How many of the first tokens are issued already expired (the registry refuses them)."""
    service: str = "archiver-test-registry"
    issuer: str = "archiver-test-tokens"
    port: int = field(default_factory=_free_port)
    requests: list[dict[str, Any]] = field(default_factory=list)

    @property
    def realm(self) -> str:
        return f"http://127.0.0.1:{self.port}/token"

    def start(self) -> None:
        self._ca, _ = certificate_authority(self.root, "archiver-test-token-ca")
        cert, key = signed_certificate(
            self.root, "signer", "token-signer", "keyUsage=digitalSignature\n"
        )
        self._key = key.read_bytes()
        der = subprocess.run(
            [require("openssl"), "x509", "-in", str(cert), "-outform", "DER"],
            capture_output=True,
            check=True,
        ).stdout
        self._x5c = [base64.b64encode(der).decode()]
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                server._answer(self)

        self._httpd = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self._httpd.serve_forever, daemon=True).start()

    @property
    def ca(self) -> Path:
        return self._ca

    def _answer(self, handler: http.server.BaseHTTPRequestHandler) -> None:
        import jwt

        query = parse_qs(urlparse(handler.path).query)
        user, password = "", ""
        header = handler.headers.get("Authorization", "")
        if header.startswith("Basic "):
            user, _, password = base64.b64decode(header[6:]).decode().partition(":")
        self.requests.append({"user": user, "scope": query.get("scope", [])})
        known = self.users.get(user)
        if known is None or known[0] != password:
            handler.send_response(401)
            handler.end_headers()
            return
        access = []
        for scope in query.get("scope", []):
            kind, name, actions = scope.split(":", 2) if scope.count(":") >= 2 else ("", "", "")
            granted = [a for a in actions.split(",") if a in known[1] or "*" in known[1]]
            access.append({"type": kind, "name": name, "actions": granted})
        now = int(time.time())
        if self.expired > 0:
            self.expired -= 1
            now -= 3600
        claims = {
            "iss": self.issuer,
            "sub": user,
            "aud": self.service,
            "exp": now + 300,
            "nbf": now - 10,
            "iat": now,
            "jti": uuid.uuid4().hex,
            "access": access,
        }
        token = jwt.encode(claims, self._key, algorithm="RS256", headers={"x5c": self._x5c})
        body = json.dumps({"token": token, "access_token": token, "expires_in": 300}).encode()
        handler.send_response(200)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)

    def stop(self) -> None:
        self._httpd.shutdown()
        shutil.rmtree(self.root, ignore_errors=True)


@dataclass
class Registry:
    """docker-registry serving ``root/data`` on 127.0.0.1; ``auth``: None, "htpasswd" (with
    TLS) or a TokenServer."""

    root: Path
    auth: str | TokenServer | None = None
    users: dict[str, str] = field(default_factory=dict)
    port: int = field(default_factory=_free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def tls(self) -> bool:
        return self.auth == "htpasswd"

    def start(self) -> None:
        config: dict[str, Any] = {
            "version": 0.1,
            "log": {"level": "warn", "accesslog": {"disabled": True}},
            "storage": {
                "filesystem": {"rootdirectory": str(self.root / "data")},
                "delete": {"enabled": True},
            },
            "http": {"addr": self.host, "secret": "archiver-tests-upload-state"},
        }
        if self.auth == "htpasswd":
            import bcrypt

            lines = [
                f"{user}:{bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=5)).decode()}"
                for user, password in self.users.items()
            ]
            (self.root / "htpasswd").write_text("\n".join(lines) + "\n")
            config["auth"] = {
                "htpasswd": {"realm": "archiver", "path": str(self.root / "htpasswd")}
            }
            certificate_authority(self.root / "certs", "archiver-test-registry-ca")
            cert, key = signed_certificate(
                self.root / "certs",
                "server",
                "127.0.0.1",
                "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n",
            )
            config["http"]["tls"] = {"certificate": str(cert), "key": str(key)}
        elif isinstance(self.auth, TokenServer):
            config["auth"] = {
                "token": {
                    "realm": self.auth.realm,
                    "service": self.auth.service,
                    "issuer": self.auth.issuer,
                    "rootcertbundle": str(self.auth.ca),
                }
            }
        # YAML is a superset of JSON
        (self.root / "config.yml").write_text(json.dumps(config))
        log = self.root / "registry.log"
        self.process = subprocess.Popen(
            [require("docker-registry"), "serve", str(self.root / "config.yml")],
            stdout=log.open("wb"),
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"docker-registry did not start:\n{log.read_text()[-3000:]}")
                time.sleep(0.1)

    def certs_d(self) -> Path:
        """A certs.d tree trusting this registry's CA (for ARCHIVER_CERTS_D)."""
        folder = self.root / "certs.d" / self.host
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "ca.crt").write_bytes((self.root / "certs" / "ca.pem").read_bytes())
        return self.root / "certs.d"

    def stop(self) -> None:
        if self.process is not None:
            _stop(self.process)
        shutil.rmtree(self.root, ignore_errors=True)


@dataclass
class Rule:
    method: str
    path: str  # a regular expression searched in the request path
    action: str  # "status", "cut", "stall", "corrupt" (flip a byte of the response body)
    times: int = 1
    status: int = 500
    headers: dict[str, str] = field(default_factory=dict)
    after: int = 0  # "cut": body bytes forwarded before the connection is dropped
    seconds: float = 0.0  # "stall": hold the request that long, then drop it unanswered
    when_sent: int = 0  # fire only once this many body bytes went through


class FaultProxy:
    """An HTTP/1.1 proxy to ``upstream`` (host:port, plain HTTP) that breaks on purpose."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.port = _free_port()
        self.rules: list[Rule] = []
        self.body_bytes = 0  # request body bytes forwarded upstream
        self.fired: list[str] = []
        self._lock = threading.Lock()
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def __getattr__(self, name: str) -> Any:
                if name.startswith("do_"):
                    return lambda: proxy._handle(self)
                raise AttributeError(name)

        self._httpd = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._httpd.daemon_threads = True
        threading.Thread(target=self._httpd.serve_forever, daemon=True).start()

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def add(self, rule: Rule) -> None:
        with self._lock:
            self.rules.append(rule)

    def _take(self, method: str, path: str) -> Rule | None:
        with self._lock:
            for rule in self.rules:
                if (
                    rule.times > 0
                    and rule.method == method
                    and re.search(rule.path, path)
                    and self.body_bytes >= rule.when_sent
                ):
                    rule.times -= 1
                    self.fired.append(f"{rule.action} {method} {path}")
                    return rule
        return None

    def _handle(self, handler: http.server.BaseHTTPRequestHandler) -> None:
        method, path = handler.command, handler.path
        rule = self._take(method, path)
        length = int(handler.headers.get("Content-Length") or 0)
        if rule is not None and rule.action == "status":
            self._drain(handler, length)
            handler.send_response(rule.status)
            for key, value in rule.headers.items():
                handler.send_header(key, value)
            handler.send_header("Content-Length", "0")
            handler.send_header("Connection", "close")
            handler.end_headers()
            handler.close_connection = True
            return
        if rule is not None and rule.action == "stall":
            time.sleep(rule.seconds)
            handler.close_connection = True
            return
        upstream = http.client.HTTPConnection(self.upstream, timeout=60)
        headers = {k: v for k, v in handler.headers.items() if k.lower() != "connection"}
        upstream.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
        for key, value in headers.items():
            upstream.putheader(key, value)
        upstream.endheaders()
        left = length
        cut = rule is not None and rule.action == "cut"
        while left:
            step = min(65536, left)
            if cut and rule is not None:
                step = min(step, max(rule.after, 1))
            piece = handler.rfile.read(step)
            if not piece:
                break
            upstream.send(piece)
            left -= len(piece)
            with self._lock:
                self.body_bytes += len(piece)
            if cut and rule is not None:
                rule.after -= len(piece)
                if rule.after <= 0:
                    # drop both sides in the middle of the body
                    upstream.close()
                    handler.connection.shutdown(socket.SHUT_RDWR)
                    handler.close_connection = True
                    return
        response = upstream.getresponse()
        handler.send_response(response.status)
        for key, value in response.getheaders():
            if key.lower() not in ("connection", "transfer-encoding"):
                handler.send_header(key, value)
        body = response.read()
        if rule is not None and rule.action == "corrupt" and body:
            body = bytes([body[0] ^ 0xFF]) + body[1:]
        if response.getheader("Content-Length") is None:
            handler.send_header("Content-Length", str(len(body)))
        handler.send_header("Connection", "close")
        handler.end_headers()
        if method != "HEAD":
            handler.wfile.write(body)
        handler.close_connection = True
        upstream.close()

    @staticmethod
    def _drain(handler: http.server.BaseHTTPRequestHandler, length: int) -> None:
        while length > 0:
            piece = handler.rfile.read(min(65536, length))
            if not piece:
                return
            length -= len(piece)

    def stop(self) -> None:
        self._httpd.shutdown()
