"""A registry client of the test's own: docker config and caches (layer maps, blob
locations, upload state) under the test's directory, no proxy settings from the host."""

from __future__ import annotations

from pathlib import Path

import pytest

PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY")


def own_registry_client(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "docker-config"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
