"""archiver's own sync list (docs/SYNC.md, schemas/sync-list.schema.json):

    archiver-sync: 1
    platforms: [linux/amd64]                   # the default of every image
    registries:
      HOST:
        tls: verify | insecure
        credentials: docker-config | {env: {username: VAR, password: VAR}}
    images:
      - image: HOST/REPO[:TAG|@DIGEST]         # one image
      - image: HOST/REPO                        # a repository, with tags chosen by
        tags: [TAG...] | all-tags: true | tag-regex: RE | semver: RANGE
        platforms: [...]
        exclude-extras: true

Secrets are never written in it: credentials come from docker's config (and its helpers)
or from environment variables the list names.
"""

from __future__ import annotations

from typing import Any

from archiver import schema
from archiver.model.sync_lists.spec import (
    Credentials,
    ImageSpec,
    RegistrySettings,
    SyncList,
    TagFilter,
    fail,
    image_from,
    repository_of,
    text,
)

KEY = "archiver-sync"
_FILTERS = ("tags", "all-tags", "tag-regex", "semver")


def looks_like(document: Any) -> bool:
    return isinstance(document, dict) and KEY in document


def read(document: dict[str, Any], origin: str) -> SyncList:
    schema.validate("sync-list", document, origin)
    found = SyncList(origin, "archiver")
    defaults = tuple(document.get("platforms", ()))
    for host, settings in (document.get("registries") or {}).items():
        where = f"{origin}: registries.{host}"
        given = settings.get("credentials")
        credentials = None
        if isinstance(given, dict):
            env = given["env"]
            credentials = Credentials(username_env=env["username"], password_env=env["password"])
        tls = settings.get("tls")
        found.registries.append(
            RegistrySettings(
                host,
                where,
                tls_verify=None if tls is None else tls == "verify",
                credentials=credentials,
            )
        )
    for i, item in enumerate(document["images"]):
        found.images.append(_image(item, f"{origin}: images[{i}]", defaults))
    return found


def _image(item: dict[str, Any], where: str, defaults: tuple[str, ...]) -> ImageSpec:
    platforms = tuple(item.get("platforms", ()))
    extras = bool(item.get("exclude-extras", False))
    if not any(key in item for key in _FILTERS):
        return image_from(
            item["image"],
            where,
            platforms=platforms,
            exclude_extras=extras,
            default_platforms=defaults,
        )
    repository = repository_of(item["image"], f"{where}.image")
    if "tags" in item and len(item) and any(k in item for k in _FILTERS if k != "tags"):
        raise fail(where, "tags names the tags: not with all-tags, tag-regex or semver")
    tags = tuple(text(t, f"{where}.tags") for t in item.get("tags", ()))
    chosen = TagFilter(
        tags=tuple(t for t in tags if not t.startswith("sha256:")),
        digests=tuple(t for t in tags if t.startswith("sha256:")),
        regex=item.get("tag-regex"),
        semver=item.get("semver"),
        all_tags=bool(item.get("all-tags", False)),
    )
    return ImageSpec(
        repository, chosen, where, platforms, exclude_extras=extras, default_platforms=defaults
    )
