"""The registry-keyed lists: skopeo sync's YAML and mindthegap's images file.

REGISTRY:
  images: {REPO: [TAG or DIGEST, ...]}     # an empty list: every tag
  images-by-tag-regex: {REPO: REGEX}       # skopeo; searched, as Go's MatchString
  images-by-semver: {REPO: RANGE}          # skopeo
  tls-verify: BOOL | cert-dir: DIR         # skopeo  (mindthegap: tlsVerify)
  credentials: {username, password}
"""

from __future__ import annotations

from typing import Any

from archiver.model.sync_lists.spec import (
    Credentials,
    ImageSpec,
    RegistrySettings,
    SyncList,
    TagFilter,
    fail,
    flag,
    known_fields,
    mapping,
    repository_of,
    sequence,
    text,
)

SKOPEO_ONLY = {"images-by-tag-regex", "images-by-semver", "tls-verify", "cert-dir"}
MINDTHEGAP_ONLY = {"tlsVerify"}
COMMON = {"images", "credentials"}


def looks_like(document: Any) -> bool:
    """A mapping of registries, each a mapping with some of the fields above."""
    if not isinstance(document, dict) or not document:
        return False
    fields = SKOPEO_ONLY | MINDTHEGAP_ONLY | COMMON
    return all(
        isinstance(value, dict) and value and set(value) & fields for value in document.values()
    )


def read(document: dict[str, Any], origin: str) -> SyncList:
    used = {key for value in document.values() for key in value}
    kind = "mindthegap" if used & MINDTHEGAP_ONLY else "skopeo sync"
    known = COMMON | (MINDTHEGAP_ONLY if kind == "mindthegap" else SKOPEO_ONLY)
    found = SyncList(origin, kind)
    for registry, body in document.items():
        where = f"{origin}: {registry}"
        known_fields(body, where, known)
        tls = body.get("tls-verify", body.get("tlsVerify"))
        tls_key = "tls-verify" if "tls-verify" in body else "tlsVerify"
        found.registries.append(
            RegistrySettings(
                registry,
                where,
                tls_verify=None if tls is None else flag(tls, f"{where}.{tls_key}"),
                cert_dir=text(body["cert-dir"], f"{where}.cert-dir")
                if "cert-dir" in body
                else None,
                credentials=_credentials(body.get("credentials"), f"{where}.credentials"),
            )
        )
        found.images += _images(registry, body, where)
    return found


def _credentials(value: Any, where: str) -> Credentials | None:
    if value is None:
        return None
    given = mapping(value, where)
    known_fields(given, where, {"username", "password"})
    if "username" not in given or "password" not in given:
        raise fail(where, "want both username and password")
    return Credentials(
        text(given["username"], f"{where}.username"), text(given["password"], f"{where}.password")
    )


def _images(registry: str, body: dict[str, Any], where: str) -> list[ImageSpec]:
    out = []
    for repo, tags in mapping(body.get("images"), f"{where}.images").items():
        here = f"{where}.images.{repo}"
        repository = repository_of(f"{registry}/{repo}", here)
        named = [text(t, f"{here}[{i}]") for i, t in enumerate(sequence(tags, here))]
        digests = tuple(t for t in named if t.startswith("sha256:"))
        plain = tuple(t for t in named if not t.startswith("sha256:"))
        chosen = TagFilter(tags=plain, digests=digests, all_tags=not named)
        out.append(ImageSpec(repository, chosen, here))
    for key in ("images-by-tag-regex", "images-by-semver"):
        for repo, value in mapping(body.get(key), f"{where}.{key}").items():
            here = f"{where}.{key}.{repo}"
            repository = repository_of(f"{registry}/{repo}", here)
            pattern = text(value, here)
            chosen = TagFilter(regex=pattern) if "regex" in key else TagFilter(semver=pattern)
            out.append(ImageSpec(repository, chosen, here))
    return out
