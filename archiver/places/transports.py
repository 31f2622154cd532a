"""Transport prefixes as skopeo names them: ``docker-archive:``, ``oci-archive:``, ``oci:``.

A prefix is only an address (no I/O): the path, an optional ``:ref`` after it, and the
format it implies for writing; ``docker-daemon:A,B`` and ``docker://A,B`` name images of a
daemon or a registry. Commands that know the place build a ``Place`` directly.
"""

from __future__ import annotations

from dataclasses import dataclass

from archiver.errors import InputError

_FORMATS = {"docker-archive": "docker", "oci-archive": "oci", "oci": "oci-dir", "bundle": "bundle"}
_UNSUPPORTED = ("containers-storage:", "dir:")
DAEMON = "docker-daemon"
REGISTRY = "registry"
"""The format of a ``docker://REF`` place: an image in a registry."""


@dataclass(frozen=True)
class Place:
    """Where images are: a file or directory (``path``, with an image ``ref`` after it), or
    a daemon or a registry with the images ``names`` there."""

    path: str
    ref: str | None = None
    format: str | None = None
    """"docker" (the hybrid tar), "oci", "oci-dir", "bundle", DAEMON or REGISTRY."""
    names: tuple[str, ...] = ()
    """Of a daemon: image names or IDs (none: the daemon itself); of a registry: image
    references (``HOST/REPO[:TAG]``), or one registry host."""

    @classmethod
    def daemon(cls, names: tuple[str, ...] = ()) -> Place:
        return cls("", None, DAEMON, names)

    @classmethod
    def registry(cls, names: tuple[str, ...] = ()) -> Place:
        return cls("", None, REGISTRY, names)

    def __str__(self) -> str:
        if self.format == DAEMON:
            return f"{DAEMON}:{','.join(self.names)}"
        if self.format == REGISTRY:
            return f"docker://{','.join(self.names)}"
        return self.path if self.ref is None else f"{self.path}:{self.ref}"


def parse_place(text: str) -> Place:
    """Split ``[transport:]path[:ref]``; a bare path stays as it is (it may contain ':')."""
    for prefix in _UNSUPPORTED:
        if text.startswith(prefix):
            raise InputError(f"{text}: the {prefix.rstrip(':/')} transport is not supported yet")
    if text.startswith("docker://"):
        rest = text[len("docker://") :]
        if not rest:
            raise InputError(f"{text}: an image reference is missing after docker://")
        return Place.registry(tuple(rest.split(",")))
    transport, sep, rest = text.partition(":")
    if transport == DAEMON and sep:  # docker-daemon:REF (REF may hold ':'); empty: the daemon
        return Place.daemon(tuple(name for name in rest.split(",") if name))
    if not sep or transport not in _FORMATS:
        return Place(text)
    if not rest:
        raise InputError(f"{text}: a path is missing after {transport}:")
    path, sep, ref = rest.partition(":")
    return Place(path, ref if sep and ref else None, _FORMATS[transport])
