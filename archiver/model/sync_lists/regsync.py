"""regsync's configuration (regclient), the part that says which images:

    version: 1
    creds: [{registry, user, pass, tls: enabled|insecure|disabled}]
    defaults: {platform, platforms, ...}
    sync: [{source, target, type: image|repository, tags: {allow: [RE], deny: [RE]},
            platform, platforms}]

Tag patterns are anchored (``3`` does not match ``3.1``), as regsync reads them. A
password written ``{{env "NAME"}}`` is read from the environment. Running on a schedule
(``schedule``, ``interval``), hooks, backups and rate limits are regsync's own: they are
named in a warning and left out.
"""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any

from archiver.model.sync_lists.spec import (
    Credentials,
    ImageSpec,
    RegistrySettings,
    SyncList,
    TagFilter,
    fail,
    image_from,
    known_fields,
    mapping,
    platforms_of,
    repository_of,
    sequence,
    text,
)

_IGNORED = {
    "schedule",
    "interval",
    "hooks",
    "backup",
    "ratelimit",
    "parallel",
    "digestTags",
    "referrers",
    "fastCopy",
    "forceRecursive",
    "includeExternal",
    "mediaTypes",
    "maxTagsPerRepo",
}
_ENV = re.compile(r"\{\{\s*env\s+\"([A-Za-z_][A-Za-z0-9_]*)\"\s*\}\}")
_CRED_FIELDS = {"registry", "user", "pass", "tls", "hostname", "scheme"}
_CRED_UNSUPPORTED = frozenset(
    {
        "regcert",
        "clientCert",
        "clientKey",
        "credHelper",
        "token",
        "repoAuth",
        "mirrors",
        "pathPrefix",
    }
)


def looks_like(document: Any) -> bool:
    return (
        isinstance(document, dict)
        and "sync" in document
        and ("version" in document or "creds" in document or "defaults" in document)
    )


def read(document: dict[str, Any], origin: str) -> SyncList:
    found = SyncList(origin, "regsync")
    known_fields(document, origin, {"version", "creds", "defaults", "sync"})
    defaults = mapping(document.get("defaults"), f"{origin}: defaults")
    _warn_ignored(defaults, f"{origin}: defaults", found)
    known_fields(defaults, f"{origin}: defaults", {"platform", "platforms"} | _IGNORED)
    default_platforms = _platforms(defaults, f"{origin}: defaults")
    for i, item in enumerate(sequence(document.get("creds"), f"{origin}: creds")):
        found.registries.append(
            _creds(mapping(item, f"{origin}: creds[{i}]"), f"{origin}: creds[{i}]")
        )
    for i, item in enumerate(sequence(document.get("sync"), f"{origin}: sync")):
        where = f"{origin}: sync[{i}]"
        entry = mapping(item, where)
        _warn_ignored(entry, where, found)
        known_fields(
            entry, where, {"source", "target", "type", "tags", "platform", "platforms"} | _IGNORED
        )
        image = _image(entry, where, _platforms(entry, where))
        found.images.append(replace(image, default_platforms=default_platforms))
    return found


def _warn_ignored(data: dict[str, Any], where: str, found: SyncList) -> None:
    for key in sorted(set(data) & _IGNORED):
        found.warnings.append(f"{where}.{key}: not supported by archiver sync (left out)")


def _platforms(data: dict[str, Any], where: str) -> tuple[str, ...]:
    if "platforms" in data:
        return platforms_of(data["platforms"], f"{where}.platforms")
    if "platform" in data:
        return platforms_of(data["platform"], f"{where}.platform")
    return ()


def _image(entry: dict[str, Any], where: str, platforms: tuple[str, ...]) -> ImageSpec:
    if "source" not in entry:
        raise fail(where, "source is missing")
    source = text(entry["source"], f"{where}.source")
    kind = entry.get("type", "repository")
    tags = mapping(entry.get("tags"), f"{where}.tags")
    known_fields(tags, f"{where}.tags", {"allow", "deny"})
    if kind == "image":
        if tags:
            raise fail(f"{where}.tags", "goes with type: repository")
        return image_from(source, where, platforms=platforms)
    if kind != "repository":
        raise fail(f"{where}.type", f"{kind!r}: want image or repository")
    allow = tuple(
        text(t, f"{where}.tags.allow") for t in sequence(tags.get("allow"), f"{where}.tags.allow")
    )
    deny = tuple(
        text(t, f"{where}.tags.deny") for t in sequence(tags.get("deny"), f"{where}.tags.deny")
    )
    chosen = TagFilter(allow=allow, deny=deny, all_tags=True)
    return ImageSpec(repository_of(source, f"{where}.source"), chosen, where, platforms)


def _creds(entry: dict[str, Any], where: str) -> RegistrySettings:
    known_fields(
        entry,
        where,
        _CRED_FIELDS | {"blobChunk", "blobMax", "reqPerSec", "reqConcurrent", "priority"},
        _CRED_UNSUPPORTED,
    )
    if "registry" not in entry:
        raise fail(where, "registry is missing")
    registry = text(entry["registry"], f"{where}.registry")
    tls = entry.get("tls", "enabled")
    if tls not in ("enabled", "insecure", "disabled"):
        raise fail(f"{where}.tls", f"{tls!r}: want enabled, insecure or disabled")
    credentials = None
    if "user" in entry or "pass" in entry:
        user = _secret(entry.get("user", ""), f"{where}.user")
        password = _secret(entry.get("pass", ""), f"{where}.pass")
        credentials = Credentials(user[0], password[0], user[1], password[1])
    return RegistrySettings(registry, where, tls_verify=tls == "enabled", credentials=credentials)


def _secret(value: Any, where: str) -> tuple[str | None, str | None]:
    """A value as written, or the environment variable a ``{{env "NAME"}}`` names."""
    given = text(value, where)
    named = _ENV.fullmatch(given.strip())
    if named:
        return None, named.group(1)
    if "{{" in given:
        raise fail(where, 'only {{env "NAME"}} templates are read by archiver sync')
    return given, None
