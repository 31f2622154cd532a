"""The plain manifest HEADs of ``sync`` (``places.registry.heads``) against the real
distribution registry: they say what the full session says, anything past the plain case
goes through the session (retries, auth), and a sync with nothing new imports no httpx."""

from __future__ import annotations

import os
import socket
import ssl
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from archiver.errors import NotFound, PeerError
from archiver.places.registry import api, transport
from archiver.places.registry.credentials import Credentials
from archiver.places.registry.heads import ManifestHeads
from archiver.places.registry.registries import Registries
from archiver.places.registry.retry import RetryPolicy
from tests.integration.registry_peers import FaultProxy, Registry, Rule
from tests.integration.test_sync import put
from tests.isolation import own_registry_client

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    own_registry_client(tmp_path, monkeypatch)


@pytest.fixture
def registry(tmp_path: Path, start: Callable[..., Registry]) -> Registry:
    peer = start()
    images = tmp_path / "images"
    images.mkdir()
    for ref in ("team/app:1", "team/app:2", "team/web:1"):
        put(images, f"{peer.host}/{ref}", ref)
    return peer


def test_plain_heads_say_what_the_session_says(registry: Registry) -> None:
    registries = Registries()
    session = registries.client(registry.host).session
    with ManifestHeads(Registries()) as heads:
        for repository, tag in (("team/app", "1"), ("team/app", "2"), ("team/web", "1")):
            plain = heads.head(registry.host, repository, tag)
            assert plain == api.head_manifest(session, repository, tag)
            assert heads.head(registry.host, repository, plain.digest) == plain
        with pytest.raises(NotFound) as missing:
            heads.head(registry.host, "team/app", "9")
        assert str(missing.value) == f"{registry.host}/team/app: no manifest 9"
    registries.close()


def test_what_the_plain_path_cannot_answer_goes_through_the_session(
    registry: Registry, proxy_to: Callable[[Registry], FaultProxy]
) -> None:
    proxy = proxy_to(registry)
    registries = Registries()
    expected = api.head_manifest(registries.client(registry.host).session, "team/app", "1")
    registries.close()
    # a 503 on the plain path: the session asks again, and retries
    proxy.add(Rule("HEAD", "/manifests/1$", "status", times=2, status=503))
    registries = Registries()
    registries.client(proxy.host).session.retry = RetryPolicy(base=0.01, cap=0.05)
    with ManifestHeads(registries) as heads:
        assert heads.head(proxy.host, "team/app", "1") == expected
    assert len(proxy.fired) == 2  # one on the plain path, one retried by the session
    # HEADs that state no digest: the session GETs the manifest and hashes it
    proxy.add(Rule("HEAD", "/manifests/2$", "status", times=2, status=200))
    with ManifestHeads(registries) as heads:
        found = heads.head(proxy.host, "team/app", "2")
    assert len(proxy.fired) == 4
    session = registries.client(registry.host).session
    assert found.digest == api.head_manifest(session, "team/app", "2").digest
    registries.close()


def test_a_sync_with_nothing_new_imports_no_http_client(registry: Registry, tmp_path: Path) -> None:
    listed = tmp_path / "list.yaml"
    listed.write_text(f"{registry.host}:\n  images:\n    team/app: ['1', '2']\n")
    out = tmp_path / "out.tar.zst"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    sync = [sys.executable, "-X", "importtime", "-m", "archiver", "sync", str(listed), "-o"]
    first = subprocess.run([*sync, str(out)], capture_output=True, text=True, env=env, cwd=ROOT)
    assert first.returncode == 0, first.stderr[-2000:]
    before = out.read_bytes()
    again = subprocess.run([*sync, str(out)], capture_output=True, text=True, env=env, cwd=ROOT)
    assert again.returncode == 0, again.stderr[-2000:]
    assert "Nothing new" in again.stdout and out.read_bytes() == before
    imported = {
        line.rsplit("|", 1)[1].strip()
        for line in again.stderr.splitlines()
        if line.startswith("import time:") and "|" in line
    }
    assert "archiver.places.registry.heads" in imported
    assert not {"httpx", "httpcore", "archiver.places.registry.session"} & imported
    # nor what only some lists, some configs or some outputs need
    assert not {"subprocess", "archiver.model.semver", "archiver.cli.template"} & imported


def test_a_registry_that_is_not_there_fails_as_the_session_fails() -> None:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        host = f"127.0.0.1:{unused.getsockname()[1]}"  # nothing listens there
    registries = Registries()
    registries.client(host).session.retry = RetryPolicy(attempts=1)
    with ManifestHeads(registries) as heads, pytest.raises(PeerError) as failed:
        heads.head(host, "team/app", "1")
    assert str(failed.value).startswith(f"{host}: ")
    registries.close()


def test_the_ca_store_is_read_for_tls_only(
    registry: Registry,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    start: Callable[..., Registry],
) -> None:
    reads: list[str] = []
    read = transport._SystemCAsWhenUsed.load_default_certs

    def counted(self: ssl.SSLContext, purpose: ssl.Purpose = ssl.Purpose.SERVER_AUTH) -> None:
        reads.append(str(purpose))
        read(self, purpose)

    monkeypatch.setattr(transport._SystemCAsWhenUsed, "load_default_certs", counted)
    registries = Registries()
    client = registries.client(registry.host)  # loopback, plain HTTP
    with ManifestHeads(registries) as heads:
        heads.head(registry.host, "team/app", "1")
    assert client.base_url() == f"http://{registry.host}"
    assert client.get_manifest("team/app", "1").data and reads == []
    registries.close()
    secure = start("htpasswd", {"alice": "wonder-land"})
    monkeypatch.setenv("ARCHIVER_CERTS_D", str(secure.certs_d()))
    registries = Registries()
    registries.use_credentials(secure.host, Credentials("alice", "wonder-land"))
    with ManifestHeads(registries) as heads, pytest.raises(NotFound):
        heads.head(secure.host, "team/app", "1")  # TLS, verified, through the session
    assert registries.client(secure.host).base_url() == f"https://{secure.host}"
    # once by the plain path's connection (answered 401), once by the session's
    assert reads == ["Purpose.SERVER_AUTH"] * 2
    registries.close()


def test_with_a_proxy_named_heads_go_through_the_session(
    registry: Registry, proxy_to: Callable[[Registry], FaultProxy], monkeypatch: pytest.MonkeyPatch
) -> None:
    proxy = proxy_to(registry)  # a forward proxy here: it passes requests on to the registry
    proxy.add(Rule("HEAD", "/manifests/1$", "status", status=503))
    monkeypatch.setenv("HTTP_PROXY", f"http://{proxy.host}")
    monkeypatch.setenv("NO_PROXY", "")
    registries = Registries()
    registries.client(registry.host).session.retry = RetryPolicy(base=0.01, cap=0.05)
    with ManifestHeads(registries) as heads:
        found = heads.head(registry.host, "team/app", "1")
    assert found.digest.startswith("sha256:")
    assert proxy.fired == [f"status HEAD http://{registry.host}/v2/team/app/manifests/1"]
    registries.close()
