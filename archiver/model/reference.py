"""Image references, parsed and normalised as docker does.

``nginx`` -> ``docker.io/library/nginx:latest``; the familiar form drops ``docker.io/``
and ``library/`` again for display. No I/O.
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass, replace

from archiver.errors import InputError
from archiver.model.digest import Digest

DEFAULT_REGISTRY = "docker.io"
DEFAULT_TAG = "latest"
_LEGACY_REGISTRY = "index.docker.io"
_OFFICIAL = "library/"
_MAX_NAME = 255

# docker's grammar (distribution/reference) is ASCII: no \w or \d (Unicode in Python), and
# whole-string matches only (``$`` would also match before a trailing newline).
_COMPONENT = re.compile(r"[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*")
_DOMAIN_PART = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN = re.compile(rf"(?:{_DOMAIN_PART}(?:\.{_DOMAIN_PART})*|\[[0-9a-fA-F:.]+\])(?::[0-9]+)?")
_TAG = re.compile(r"[a-zA-Z0-9_][a-zA-Z0-9_.-]{0,127}")
_HEX64 = re.compile(r"[a-f0-9]{64}")


def _invalid(text: str, why: str) -> InputError:
    return InputError(f"invalid reference {text!r}: {why}")


@dataclass(frozen=True, slots=True)
class Reference:
    registry: str
    repository: str
    tag: str | None = None
    digest: Digest | None = None

    @classmethod
    def parse(cls, text: str, *, default_tag: bool = True) -> Reference:
        """Parse and normalise ``[registry/]path[:tag][@digest]``."""
        if not text:
            raise _invalid(text, "empty")
        rest, digest = text, None
        if "@" in rest:
            rest, _, digest_text = rest.partition("@")
            try:
                digest = Digest.parse(digest_text)
            except InputError as exc:
                raise _invalid(text, str(exc)) from None
        name, tag = rest, None
        slash, colon = rest.rfind("/"), rest.rfind(":")
        if colon > slash:
            name, tag = rest[:colon], rest[colon + 1 :]
            if not _TAG.fullmatch(tag):
                raise _invalid(text, f"invalid tag {tag!r}")
        if not name:
            raise _invalid(text, "repository name is empty")
        registry, path = _split_domain(name)
        if registry is None:
            registry = DEFAULT_REGISTRY
            if _HEX64.fullmatch(path):
                raise _invalid(text, "cannot specify 64-byte hexadecimal strings")
        if registry == _LEGACY_REGISTRY:
            registry = DEFAULT_REGISTRY
        if not _DOMAIN.fullmatch(registry):
            raise _invalid(text, f"invalid registry {registry!r}")
        if registry == DEFAULT_REGISTRY and "/" not in path:
            path = _OFFICIAL + path
        if path != path.lower():
            raise _invalid(text, "repository name must be lowercase")
        for component in path.split("/"):
            if not _COMPONENT.fullmatch(component):
                raise _invalid(text, f"invalid repository path component {component!r}")
        if len(f"{registry}/{path}") > _MAX_NAME:
            raise _invalid(text, f"repository name is longer than {_MAX_NAME} characters")
        if tag is None and digest is None and default_tag:
            tag = DEFAULT_TAG
        return cls(registry, path, tag, digest)

    @property
    def name(self) -> str:
        return f"{self.registry}/{self.repository}"

    @property
    def familiar_name(self) -> str:
        if self.registry != DEFAULT_REGISTRY:
            return self.name
        return (
            self.repository.removeprefix(_OFFICIAL)
            if self.repository.count("/") == 1
            else self.repository
        )

    @property
    def is_tagged(self) -> bool:
        return self.tag is not None

    def _suffix(self) -> str:
        out = f":{self.tag}" if self.tag else ""
        return out + (f"@{self.digest}" if self.digest else "")

    def familiar(self) -> str:
        """The short form docker shows: ``nginx:1.25``, ``localhost:5000/a/b:1``."""
        return self.familiar_name + self._suffix()

    def with_tag(self, tag: str) -> Reference:
        if not _TAG.fullmatch(tag):
            raise _invalid(tag, f"invalid tag {tag!r}")
        return replace(self, tag=tag)

    def with_digest(self, digest: Digest | None) -> Reference:
        return replace(self, digest=digest)

    def __str__(self) -> str:
        return self.name + self._suffix()


def _split_domain(name: str) -> tuple[str | None, str]:
    first, sep, rest = name.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost" or first != first.lower()):
        if first != first.lower() and "." not in first and ":" not in first:
            return None, name  # an upper-case first component is a (bad) path, not a host
        return first, rest
    return None, name


def parse_reference(text: str) -> Reference:
    return Reference.parse(text)


def is_valid_tag(tag: str) -> bool:
    return bool(_TAG.fullmatch(tag))


def match_reference(pattern: str, ref: Reference) -> bool:
    """docker's ``-f reference=PATTERN``: a glob over the name, and the tag when given."""
    candidates = [ref.familiar_name, ref.name]
    if ":" in pattern.rsplit("/", 1)[-1]:
        candidates = [f"{c}:{ref.tag}" for c in candidates if ref.tag]
    return any(_glob(pattern, c) for c in candidates)


def _glob(pattern: str, text: str) -> bool:
    """Shell-style match where ``*`` does not cross ``/`` (path.Match semantics)."""
    if pattern.count("/") != text.count("/"):
        return False
    return all(
        fnmatch.fnmatchcase(t, p) for p, t in zip(pattern.split("/"), text.split("/"), strict=True)
    )
