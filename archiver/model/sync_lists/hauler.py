"""Hauler's ``content.hauler.cattle.io`` manifests, ``kind: Images``:

    apiVersion: content.hauler.cattle.io/v1
    kind: Images
    metadata:
      annotations: {hauler.dev/platform: linux/amd64, hauler.dev/registry: REGISTRY}
    spec:
      images: [{name: REF, platform: P, rewrite: REF, exclude-extras: BOOL}]

The annotations are defaults: the platform of each image that names none, the registry of
each name without one. ``kind: Charts`` and ``kind: Files`` are named as not supported.

``rewrite`` is the name the image is stored under, as Hauler reads it: a leading ``/`` is
dropped; without a registry the image's own is kept (and no ``library/`` is added);
without a tag the image's own tag is kept (an image named by digest needs one).
"""

from __future__ import annotations

from typing import Any

from archiver.errors import InputError
from archiver.model.reference import Reference
from archiver.model.sync_lists.spec import (
    SyncList,
    fail,
    flag,
    has_registry,
    image_from,
    known_fields,
    mapping,
    platforms_of,
    sequence,
    text,
)

API_GROUP = "content.hauler.cattle.io/"
_SIGNING = frozenset(
    {
        "key",
        "certificate-identity",
        "certificate-identity-regexp",
        "certificate-oidc-issuer",
        "certificate-oidc-issuer-regexp",
        "certificate-github-workflow-repository",
        "use-tlog-verify",
        "tlog-upload",
    }
)


def looks_like(document: Any) -> bool:
    return isinstance(document, dict) and str(document.get("apiVersion", "")).startswith(API_GROUP)


def read(documents: list[Any], origin: str) -> SyncList:
    found = SyncList(origin, "hauler")
    for number, document in enumerate(documents, 1):
        where = f"{origin}: document {number}"
        if not looks_like(document):
            raise fail(where, f"not a Hauler manifest (apiVersion {API_GROUP}...)")
        known_fields(document, where, {"apiVersion", "kind", "metadata", "spec"})
        kind = document.get("kind")
        if kind in ("Charts", "Files", "ThickCharts"):
            raise fail(f"{where}.kind", f"{kind}: not supported by archiver sync (only Images)")
        if kind != "Images":
            raise fail(f"{where}.kind", f"unknown kind {kind!r} (archiver sync reads Images)")
        _images(document, where, found)
    return found


def _images(document: dict[str, Any], where: str, found: SyncList) -> None:
    metadata = mapping(document.get("metadata"), f"{where}.metadata")
    annotations = mapping(metadata.get("annotations"), f"{where}.metadata.annotations")
    platform = annotations.get("hauler.dev/platform")
    registry = annotations.get("hauler.dev/registry")
    spec = mapping(document.get("spec"), f"{where}.spec")
    known_fields(spec, f"{where}.spec", {"images"})
    for i, item in enumerate(sequence(spec.get("images"), f"{where}.spec.images")):
        here = f"{where}.spec.images[{i}]"
        image = mapping(item, here)
        known_fields(image, here, {"name", "platform", "rewrite", "exclude-extras"}, _SIGNING)
        if "name" not in image:
            raise fail(here, "name is missing")
        name = text(image["name"], f"{here}.name")
        if registry is not None and not has_registry(name):
            name = f"{text(registry, f'{where}.metadata.annotations')}/{name}"
        chosen = image.get("platform")
        rewrite = image.get("rewrite")
        found.images.append(
            image_from(
                name,
                here,
                platforms=platforms_of(chosen, f"{here}.platform") if chosen else (),
                default_platforms=platforms_of(platform, f"{where}.metadata.annotations")
                if platform
                else (),
                rewrite=None
                if rewrite is None
                else rewritten(name, text(rewrite, f"{here}.rewrite"), f"{here}.rewrite"),
                exclude_extras=flag(image.get("exclude-extras", False), f"{here}.exclude-extras"),
            )
        )


def rewritten(name: str, rewrite: str, where: str) -> str:
    """The full reference ``rewrite`` gives the image ``name`` (see the module's doc)."""
    try:
        source = Reference.parse(name)
        given = rewrite.lstrip("/")
        if not has_registry(given):
            given = f"{source.registry}/{given}"
        out = Reference.parse(given, default_tag=False)
    except InputError as exc:
        raise fail(where, str(exc)) from None
    if out.digest is not None:
        raise fail(where, f"{rewrite!r}: a name and tag, not a digest")
    if out.tag is None:
        if source.tag is None:
            raise fail(where, f"{rewrite!r}: {name} is named by digest: give the rewrite a tag")
        out = out.with_tag(source.tag)
    return str(out)
