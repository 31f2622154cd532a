"""What a sync list asks for, whatever file it came from: images (a repository and which of
its tags), the settings of the registries they are on, and warnings found while reading.

Pure values: the format readers (``hauler``, ``skopeo``, ``regsync``, ``own``, ``plain``)
build them from text; the engine resolves them against registries.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from archiver.errors import InputError


@dataclass(frozen=True)
class TagFilter:
    """Which tags of a repository: named ones, digests, or all tags the registry lists that
    pass the filters (``regex`` searched, ``allow``/``deny`` anchored, ``semver`` a range)."""

    tags: tuple[str, ...] = ()
    digests: tuple[str, ...] = ()
    regex: str | None = None
    semver: str | None = None
    allow: tuple[str, ...] = ()
    deny: tuple[str, ...] = ()
    all_tags: bool = False

    @property
    def needs_tag_list(self) -> bool:
        """Whether the registry's tag list must be read to know the tags."""
        return bool(self.all_tags or self.regex or self.semver or self.allow or self.deny)


@dataclass(frozen=True)
class ImageSpec:
    """One repository and which of its images a list names."""

    repository: str
    """``REGISTRY/PATH`` as written (normalised later by ``Reference.parse``)."""
    filter: TagFilter
    where: str
    """Where the list says it, for messages: ``FILE: field path``."""
    platforms: tuple[str, ...] = ()
    """The platforms the item names itself (they win over ``--platform``)."""
    rewrite: str | None = None
    """The full reference the image is written under (Hauler's ``rewrite``)."""
    exclude_extras: bool = False
    default_platforms: tuple[str, ...] = ()
    """The list's default (Hauler's annotation, regsync's ``defaults``, archiver's
    ``platforms``): kept when the item names none and ``--platform`` is not given."""


@dataclass(frozen=True)
class Credentials:
    """Where a registry's credentials come from: given in the file (``username`` and
    ``password``), or environment variables named by the file; neither: docker's config."""

    username: str | None = None
    password: str | None = None
    username_env: str | None = None
    password_env: str | None = None


@dataclass(frozen=True)
class RegistrySettings:
    host: str
    where: str
    tls_verify: bool | None = None
    cert_dir: str | None = None
    credentials: Credentials | None = None


@dataclass
class SyncList:
    origin: str
    format: str
    images: list[ImageSpec] = field(default_factory=list)
    registries: list[RegistrySettings] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def fail(where: str, what: str) -> InputError:
    return InputError(f"{where}: {what}")


def mapping(value: Any, where: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
        raise fail(where, "want a mapping of names")
    return value


def sequence(value: Any, where: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise fail(where, "want a list")
    return value


def text(value: Any, where: str) -> str:
    """A scalar as text (YAML reads ``7`` as a number; a tag ``7`` is text)."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise fail(where, "want a string")
    return str(value)


def flag(value: Any, where: str) -> bool:
    if not isinstance(value, bool):
        raise fail(where, "want true or false")
    return value


def known_fields(
    data: dict[str, Any], where: str, known: set[str], unsupported: frozenset[str] = frozenset()
) -> None:
    """Refuse a field nobody reads, and name those archiver does not do."""
    for key in data:
        if key in unsupported:
            raise fail(f"{where}.{key}", "not supported by archiver sync")
        if key not in known:
            raise fail(f"{where}.{key}", "unknown field")


def has_registry(name: str) -> bool:
    """Whether an image name starts with a registry host (docker's rule)."""
    first, sep, _ = name.partition("/")
    return bool(sep) and ("." in first or ":" in first or first == "localhost")


def image_from(text: str, where: str, **extra: Any) -> ImageSpec:
    """The image one reference names: its tag, its digest, or ``latest``."""
    from archiver.model.reference import Reference

    try:
        ref = Reference.parse(text)
    except InputError as exc:
        raise fail(where, str(exc)) from None
    if ref.digest is not None:
        chosen = TagFilter(digests=(str(ref.digest),))
    else:
        chosen = TagFilter(tags=(ref.tag or "latest",))
    return ImageSpec(ref.name, chosen, where, **extra)


def repository_of(text: str, where: str) -> str:
    """``REGISTRY/PATH`` of a repository named without tag or digest."""
    from archiver.model.reference import Reference

    try:
        ref = Reference.parse(text, default_tag=False)
    except InputError as exc:
        raise fail(where, str(exc)) from None
    if ref.tag is not None or ref.digest is not None:
        raise fail(where, f"{text!r}: a repository here, without tag or digest")
    return ref.name


def platforms_of(value: Any, where: str) -> tuple[str, ...]:
    """One platform or a list of them, each ``os/arch[/variant]``."""
    from archiver.model.platform import Platform

    items = [value] if isinstance(value, str) else sequence(value, where)
    out = []
    for i, item in enumerate(items):
        here = where if isinstance(value, str) else f"{where}[{i}]"
        try:
            out.append(str(Platform.parse(text(item, here))))
        except InputError as exc:
            raise fail(here, str(exc)) from None
    return tuple(out)
