"""What a command knows of registries (``Registries``): one shared client per registry,
the names given as insecure, and nothing left over once closed."""

from __future__ import annotations

import pytest

from archiver.places.registry.registries import Registries
from archiver.places.registry.transport import is_loopback, plain_http_allowed, schemes


def test_one_client_per_registry_until_closed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ARCHIVER_INSECURE_REGISTRIES", raising=False)
    registries = Registries()
    first = registries.client("reg.example")
    assert registries.client("reg.example") is first
    assert registries.client("other.example") is not first
    assert not first.session.insecure
    registries.close()
    assert registries.client("reg.example") is not first
    registries.close()


def test_insecure_names_from_the_command_and_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ARCHIVER_INSECURE_REGISTRIES", " env.example , ,")
    registries = Registries()
    registries.allow_insecure(["flag.example:5000"])
    assert registries.insecure() == {"env.example", "flag.example:5000"}
    assert registries.client("flag.example:5000").session.insecure
    assert registries.client("env.example").session.insecure
    assert not registries.client("safe.example").session.insecure
    registries.close()  # forgets --insecure-registry, not the environment
    assert registries.insecure() == {"env.example"}
    # each Registries is its own: nothing is shared through the process
    assert Registries().insecure() == {"env.example"}


def test_plain_http_only_where_allowed() -> None:
    assert is_loopback("127.0.0.1:5000") and is_loopback("localhost") and is_loopback("[::1]:80")
    assert not is_loopback("reg.example") and not is_loopback("10.0.0.1:5000")
    assert schemes("reg.example", insecure=False) == ["https"]
    assert schemes("reg.example", insecure=True) == ["https", "http"]
    assert schemes("127.0.0.1:5000", insecure=False) == ["https", "http"]
    assert plain_http_allowed("localhost:5000", False)
