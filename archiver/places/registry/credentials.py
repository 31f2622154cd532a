"""Registry credentials kept as the docker CLI keeps them, in ``$DOCKER_CONFIG/config.json``.

``auths`` entries (base64 ``user:password`` in ``auth``), a ``credsStore`` for every
registry and ``credHelpers`` per registry, each helper being ``docker-credential-NAME``
spoken to on stdin/stdout (``get``, ``store``, ``erase``) as docker does. Docker Hub's key
is ``https://index.docker.io/v1/``. Passwords never appear in a repr, a log or an error.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from archiver.blobs.atomic import replace_file
from archiver.blobs.regular_file import read_text_file
from archiver.errors import InputError, NotFound, PeerError

DOCKER_HUB_KEY = "https://index.docker.io/v1/"
DOCKER_HUB = "docker.io"
CONFIG_LIMIT = 1024 * 1024
"""The most a docker config file is read (docker's own are a few KB)."""


@dataclass(frozen=True)
class Credentials:
    username: str
    password: str = field(repr=False)


def config_path() -> Path:
    return Path(os.environ.get("DOCKER_CONFIG") or Path.home() / ".docker") / "config.json"


def config_key(registry: str) -> str:
    """The key docker files a registry's credentials under."""
    return DOCKER_HUB_KEY if registry in (DOCKER_HUB, "index.docker.io") else registry


def _read_config() -> dict[str, Any]:
    path = config_path()
    try:
        data = json.loads(read_text_file(str(path), CONFIG_LIMIT, "docker config"))
    except NotFound:
        return {}
    except ValueError as exc:
        raise InputError(f"{path}: not a readable docker config ({exc})") from None
    if not isinstance(data, dict):
        raise InputError(f"{path}: not a docker config (a JSON object is expected)")
    return data


def _write_config(data: dict[str, Any]) -> None:
    """Replace the config file atomically, readable by its owner only (mode 0600)."""
    path = config_path()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    replace_file(path, (json.dumps(data, indent="\t") + "\n").encode(), mode=0o600)


def _helper_name(data: dict[str, Any], key: str) -> str | None:
    helpers = data.get("credHelpers") or {}
    name = helpers.get(key) if isinstance(helpers, dict) else None
    return name or data.get("credsStore") or None


def _helper(name: str, action: str, payload: str) -> str:
    import subprocess  # only where docker's config names a helper

    program = f"docker-credential-{name}"
    try:
        done = subprocess.run(
            [program, action], input=payload, capture_output=True, text=True, timeout=60
        )
    except FileNotFoundError:
        raise PeerError(f"credential helper {program} is not installed") from None
    if done.returncode != 0:
        message = (done.stdout.strip() or done.stderr.strip()).splitlines()
        if action == "get" and message and "credentials not found" in message[0].lower():
            raise NotFound(message[0])
        raise PeerError(f"{program} {action} failed: {message[0] if message else done.returncode}")
    return done.stdout


def lookup(registry: str) -> Credentials | None:
    """The credentials docker would use for ``registry``, or None."""
    data = _read_config()
    key = config_key(registry)
    helper = _helper_name(data, key)
    if helper is not None:
        try:
            found = json.loads(_helper(helper, "get", key))
        except NotFound:
            found = None
        except ValueError:
            raise PeerError(f"docker-credential-{helper} get: not JSON") from None
        if found and found.get("Secret"):
            return Credentials(str(found.get("Username", "")), str(found["Secret"]))
    auths = data.get("auths") or {}
    entry = None
    for candidate in (key, f"https://{key}", f"http://{key}", f"https://{key}/v1/"):
        entry = auths.get(candidate)
        if entry:
            break
    if not entry:
        return None
    if entry.get("auth"):
        try:
            user, _, password = base64.b64decode(entry["auth"]).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            raise InputError(f"{config_path()}: the auth entry for {key} is not base64") from None
        return Credentials(user, password)
    if entry.get("username") and entry.get("password"):
        return Credentials(entry["username"], entry["password"])
    return None


def store(registry: str, credentials: Credentials) -> None:
    """Keep ``credentials`` as ``docker login`` does (in the helper, when one is set)."""
    data = _read_config()
    key = config_key(registry)
    auths = data.setdefault("auths", {})
    helper = _helper_name(data, key)
    if helper is not None:
        payload = {
            "ServerURL": key,
            "Username": credentials.username,
            "Secret": credentials.password,
        }
        _helper(helper, "store", json.dumps(payload))
        auths[key] = {}
    else:
        token = f"{credentials.username}:{credentials.password}".encode()
        auths[key] = {"auth": base64.b64encode(token).decode()}
    _write_config(data)


def erase(registry: str) -> bool:
    """Forget ``registry``'s credentials; False when there were none."""
    data = _read_config()
    key = config_key(registry)
    helper = _helper_name(data, key)
    found = False
    if helper is not None:
        with contextlib.suppress(NotFound, PeerError):
            _helper(helper, "erase", key)
            found = True
    auths = data.get("auths") or {}
    if key in auths:
        del auths[key]
        found = True
        _write_config(data)
    return found
