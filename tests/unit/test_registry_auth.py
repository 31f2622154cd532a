"""Registry auth over httpx.MockTransport (allowed for auth and retry logic): challenge
parsing, tokens fetched for their scopes and cached, a refused token fetched anew, and
credentials kept from a token realm weaker than the registry."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from archiver.errors import InputError, PeerError
from archiver.places.registry import api
from archiver.places.registry.auth import Challenge, parse_challenge
from archiver.places.registry.credentials import Credentials
from archiver.places.registry.retry import RetryPolicy
from archiver.places.registry.session import Session

ALICE = Credentials("alice", "wonder-land")
FAST = RetryPolicy(attempts=3, base=0.001, cap=0.01, total=5)


@pytest.fixture(autouse=True)
def no_docker_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "docker-config"))


class Registry:
    """A registry asking for Bearer tokens from ``realm``; the token service grants
    ``token-N`` for the scopes asked; ``refuse`` lists tokens the registry rejects."""

    def __init__(self, realm: str = "https://auth.example/token", base: str = "https") -> None:
        self.realm = realm
        self.base = base
        self.token_requests: list[httpx.Request] = []
        self.calls: list[httpx.Request] = []
        self.refuse: set[str] = set()
        self.token_body: Callable[[int], bytes] | None = None

    def __call__(self, request: httpx.Request) -> httpx.Response:
        url = str(request.url)
        if url.startswith(self.realm.split("?")[0]):
            self.token_requests.append(request)
            number = len(self.token_requests)
            if self.token_body is not None:
                return fresh(200, self.token_body(number))
            return fresh(200, {"token": f"token-{number}", "expires_in": 300})
        self.calls.append(request)
        given = request.headers.get("Authorization", "")
        if not given.startswith("Bearer ") or given[7:] in self.refuse:
            challenge = f'Bearer realm="{self.realm}",service="reg.example"'
            return fresh(401, headers={"WWW-Authenticate": challenge})
        if request.url.path == "/v2/":
            return fresh(200)
        return fresh(200, {"name": "a", "tags": ["1", given[7:]]})


def fresh(status: int, body: object = b"", headers: dict[str, str] | None = None) -> httpx.Response:
    """An unread answer, as a real connection gives."""
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    return httpx.Response(status, headers=headers, stream=httpx.ByteStream(data))


def session(
    handler: Callable[[httpx.Request], httpx.Response],
    registry: str = "reg.example",
    insecure: bool = False,
    credentials: Credentials | None = ALICE,
) -> Session:
    return Session(registry, insecure, credentials, FAST, transport=httpx.MockTransport(handler))


def test_challenges_are_parsed() -> None:
    bearer = parse_challenge(
        'Bearer realm="https://auth.example/token",service="reg.example",'
        'scope="repository:a/b:pull,push"'
    )
    assert bearer == Challenge(
        "bearer",
        {
            "realm": "https://auth.example/token",
            "service": "reg.example",
            "scope": "repository:a/b:pull,push",
        },
    )
    assert parse_challenge('Basic realm="Registry Realm"') == Challenge(
        "basic", {"realm": "Registry Realm"}
    )
    unquoted = parse_challenge('bearer Realm=https://a.example/t, service="s \\"x\\""')
    assert unquoted == Challenge("bearer", {"realm": "https://a.example/t", "service": 's "x"'})
    assert parse_challenge("") is None and parse_challenge("   ") is None


def test_a_token_is_fetched_for_the_scope_with_the_credentials_and_cached() -> None:
    registry = Registry()
    peer = session(registry)
    assert api.tags(peer, "team/app") == ["1", "token-1"]
    assert api.tags(peer, "team/app") == ["1", "token-1"]  # the cached token
    (asked,) = registry.token_requests
    query = parse_qs(urlsplit(str(asked.url)).query)
    assert query == {
        "service": ["reg.example"],
        "scope": ["repository:team/app:pull"],
        "account": ["alice"],
    }
    basic = base64.b64encode(b"alice:wonder-land").decode()
    assert asked.headers["Authorization"] == f"Basic {basic}"
    # another scope is another token
    assert api.tags(peer, "team/other") == ["1", "token-2"]
    assert parse_qs(urlsplit(str(registry.token_requests[1].url)).query)["scope"] == [
        "repository:team/other:pull"
    ]


def test_a_refused_token_is_fetched_anew_once_then_the_call_is_retried() -> None:
    registry = Registry()
    peer = session(registry)
    assert api.tags(peer, "a") == ["1", "token-1"]
    registry.refuse.add("token-1")  # e.g. expired early at the registry
    assert api.tags(peer, "a") == ["1", "token-2"]
    assert len(registry.token_requests) == 2
    # a registry that refuses every token: one line, not a loop
    registry.refuse.update({"token-3", "token-4"})
    peer.tokens.cached.clear()
    with pytest.raises(PeerError, match=r"^reg\.example: /v2/a/tags/list: access denied \(401\)$"):
        api.tags(peer, "a")
    assert len(registry.token_requests) == 4


def test_basic_challenges_send_the_credentials_or_ask_for_a_login() -> None:
    seen: list[str] = []

    def basic(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers.get("Authorization", ""))
        if not request.headers.get("Authorization", "").startswith("Basic "):
            return fresh(401, headers={"WWW-Authenticate": 'Basic realm="r"'})
        return fresh(200, {"tags": ["x"]})

    assert api.tags(session(basic), "a") == ["x"]
    assert seen[-1] == "Basic " + base64.b64encode(b"alice:wonder-land").decode()
    with pytest.raises(PeerError, match="authentication required: run archiver login"):
        api.tags(session(basic, credentials=None), "a")


def test_credentials_never_go_to_a_plain_http_realm_of_an_https_registry() -> None:
    registry = Registry(realm="http://auth.example/token")
    with pytest.raises(PeerError) as caught:
        api.tags(session(registry), "a")
    message = str(caught.value)
    assert "\n" not in message and "http://auth.example/token" in message
    assert "credentials not sent" in message
    assert registry.token_requests == []  # nothing was sent there
    # without credentials there is nothing to keep: an anonymous token is fetched
    anonymous = session(registry, credentials=None)
    assert api.tags(anonymous, "a") == ["1", "token-1"]
    assert "Authorization" not in registry.token_requests[0].headers


def test_a_plain_http_registry_may_use_a_plain_http_realm() -> None:
    """Loopback or --insecure: the registry itself is plain HTTP, so is its realm."""
    for name, insecure in (("127.0.0.1:5000", False), ("reg.example", True)):
        registry = Registry(realm="http://auth.example/token")

        def plain(request: httpx.Request, registry: Registry = registry) -> httpx.Response:
            if request.url.scheme == "https" and request.url.host != "auth.example":
                raise httpx.ConnectError("[SSL: WRONG_VERSION_NUMBER] wrong version number")
            return registry(request)

        peer = session(plain, registry=name, insecure=insecure)
        assert api.tags(peer, "a") == ["1", "token-1"]
        assert peer.base_url().startswith("http://")
        assert registry.token_requests[0].headers["Authorization"].startswith("Basic ")


def test_a_realm_that_is_not_an_http_url_is_one_line() -> None:
    registry = Registry(realm="ftp://auth.example/token")
    with pytest.raises(PeerError, match="is not an http\\(s\\) URL"):
        api.tags(session(registry), "a")


def test_token_answers_that_are_not_tokens_are_one_line() -> None:
    registry = Registry()
    registry.token_body = lambda n: b'{"token": ' + b"[" * 100_000 + b"}"
    with pytest.raises(InputError) as deep:
        api.tags(session(registry), "a")
    assert str(deep.value).startswith("https://auth.example/token?") and "\n" not in str(deep.value)
    registry.token_body = lambda n: b'{"expires_in": 300}'
    with pytest.raises(PeerError, match="gave no token"):
        api.tags(session(registry), "a")
    registry.token_body = lambda n: b'{"token": "t", "expires_in": "soon"}'
    with pytest.raises(PeerError, match="expires_in is not a number"):
        api.tags(session(registry), "a")
    registry.token_body = lambda n: b"x" * (2 * 1024 * 1024)  # past the 1 MiB cap
    with pytest.raises(InputError, match="larger than the 1048576-byte limit"):
        api.tags(session(registry), "a")


def test_a_docker_config_is_read_capped_and_never_waited_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import os

    from archiver.places.registry import credentials

    folder = tmp_path / "docker-config"
    folder.mkdir()
    monkeypatch.setenv("DOCKER_CONFIG", str(folder))
    assert credentials.lookup("r.example") is None  # no config: no credentials
    config = folder / "config.json"
    config.write_text('{"auths": {}, "x": "' + "a" * credentials.CONFIG_LIMIT + '"}')
    with pytest.raises(InputError, match=f"{config}: over"):
        credentials.lookup("r.example")
    config.unlink()
    os.mkfifo(config)  # a FIFO would block a plain read forever
    with pytest.raises(InputError, match=str(config)):
        credentials.lookup("r.example")
