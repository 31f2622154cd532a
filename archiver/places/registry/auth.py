"""Auth as the registry's challenge (``WWW-Authenticate`` on ``/v2/``) asks: Basic, or
Bearer tokens fetched from the challenge's realm for each scope and cached until they
expire; a token the registry refuses is fetched anew once.

Credentials never travel in a weaker scheme than the registry's: Basic credentials go to
a token realm over plain HTTP only when the registry itself is spoken to in plain HTTP
(loopback, or named insecure); an HTTPS registry whose realm is plain HTTP is refused.
"""

from __future__ import annotations

import base64
import re
import threading
import time
from dataclasses import dataclass, field
from typing import Protocol
from urllib.parse import urlencode, urlsplit

import httpx

from archiver.errors import PeerError
from archiver.places.registry.bodies import MAX_TOKEN, read_reply
from archiver.places.registry.credentials import Credentials
from archiver.places.registry.retry import Endpoint, send

_PARAM = re.compile(r'(\w+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,"]+))')


@dataclass(frozen=True)
class Challenge:
    """What ``WWW-Authenticate`` asks for: ``scheme`` (lower case) and its parameters."""

    scheme: str
    params: dict[str, str] = field(default_factory=dict)


def parse_challenge(header: str) -> Challenge | None:
    """``Bearer realm="...",service="...",scope="..."`` or ``Basic realm="..."``."""
    scheme, _, rest = header.strip().partition(" ")
    if not scheme:
        return None
    params = {
        name.lower(): re.sub(r"\\(.)", r"\1", quoted) if quoted or not bare else bare
        for name, quoted, bare in _PARAM.findall(rest)
    }
    return Challenge(scheme.lower(), params)


def basic_authorization(creds: Credentials) -> str:
    token = base64.b64encode(f"{creds.username}:{creds.password}".encode()).decode()
    return f"Basic {token}"


@dataclass
class Tokens:
    """Bearer tokens of one registry by scope, with when each is to be fetched anew."""

    cached: dict[str, tuple[str, float]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)


class Authenticating(Endpoint, Protocol):
    """What auth needs of the registry it speaks to (a ``Session`` is one)."""

    tokens: Tokens

    @property
    def credentials(self) -> Credentials | None: ...

    @property
    def challenge(self) -> Challenge | None: ...

    def base_url(self) -> str: ...


def authorization(
    session: Authenticating, scopes: tuple[str, ...], refused: str | None = None
) -> str | None:
    """The Authorization header for ``scopes``; a token the registry ``refused`` is
    fetched anew (unless another thread already did)."""
    challenge = session.challenge
    if challenge is None:
        return None
    creds = session.credentials
    if challenge.scheme == "basic":
        if creds is None:
            raise PeerError(f"{session.registry}: authentication required: run archiver login")
        return basic_authorization(creds)
    key = " ".join(sorted(scopes))
    tokens = session.tokens
    with tokens.lock:  # threads wanting the same token wait for one fetch
        cached = tokens.cached.get(key)
        usable = cached is not None and cached[1] > time.monotonic()
        if cached is not None and usable and f"Bearer {cached[0]}" != refused:
            return f"Bearer {cached[0]}"
        token, lifetime = fetch_token(session, challenge, scopes, creds)
        tokens.cached[key] = (token, time.monotonic() + max(lifetime - 10, 1))
    return f"Bearer {token}"


def token_url(
    session: Authenticating, challenge: Challenge, scopes: tuple[str, ...], account: str | None
) -> str:
    """Where to ask for a token of ``scopes``: the realm, with service, scopes, account."""
    realm = challenge.params.get("realm")
    if not realm:
        raise PeerError(f"{session.registry}: a Bearer challenge without a realm")
    if urlsplit(realm).scheme not in ("http", "https") or not urlsplit(realm).netloc:
        raise PeerError(f"{session.registry}: the token realm {realm!r} is not an http(s) URL")
    query: list[tuple[str, str]] = []
    if challenge.params.get("service"):
        query.append(("service", challenge.params["service"]))
    query += [("scope", scope) for scope in scopes]
    if account is not None:
        query.append(("account", account))
    return realm + ("&" if "?" in realm else "?") + urlencode(query)


def check_realm(session: Authenticating, realm: str) -> None:
    """Refuse to send credentials to ``realm`` in a weaker scheme than the registry's."""
    if urlsplit(realm).scheme == "https":
        return
    if urlsplit(session.base_url()).scheme == "https":
        raise PeerError(
            f"{session.registry}: the token realm {realm} is plain HTTP while the registry "
            "speaks HTTPS: credentials not sent"
        )


def fetch_token(
    session: Authenticating,
    challenge: Challenge,
    scopes: tuple[str, ...],
    creds: Credentials | None,
) -> tuple[str, float]:
    """A token for ``scopes`` and its lifetime in seconds, from the challenge's realm."""
    url = token_url(session, challenge, scopes, creds.username if creds else None)
    if creds is not None:
        check_realm(session, url)

    def build() -> httpx.Request:
        request = session.http.build_request("GET", url)
        if creds is not None:
            request.headers["Authorization"] = basic_authorization(creds)
        return request

    reply = send(session, build, lambda response: read_reply(response, MAX_TOKEN))
    if reply.status_code in (401, 403):
        raise PeerError(f"{session.registry}: the token service refused the credentials")
    if reply.status_code >= 400:
        raise PeerError(f"{session.registry}: token service answered {reply.status_code}")
    body = reply.json()
    if not isinstance(body, dict):
        raise PeerError(f"{session.registry}: the token service answered no JSON object")
    token = body.get("token") or body.get("access_token")
    try:
        lifetime = float(body.get("expires_in") or 60)
    except (TypeError, ValueError):
        raise PeerError(f"{reply.url}: the token's expires_in is not a number") from None
    if not token or not isinstance(token, str):
        raise PeerError(f"{session.registry}: the token service gave no token")
    return token, lifetime
