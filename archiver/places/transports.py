"""Transport prefixes as skopeo names them: ``docker-archive:``, ``oci-archive:``, ``oci:``.

A prefix is only an address (no I/O): the path, an optional ``:ref`` after it, and the
format it implies for writing.
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
    path: str
    ref: str | None = None
    format: str | None = None
    """"docker" (the hybrid tar), "oci", "oci-dir", "bundle", DAEMON or REGISTRY (the path
    is then an image reference)."""


def parse_place(text: str) -> Place:
    """Split ``[transport:]path[:ref]``; a bare path stays as it is (it may contain ':')."""
    for prefix in _UNSUPPORTED:
        if text.startswith(prefix):
            raise InputError(f"{text}: the {prefix.rstrip(':/')} transport is not supported yet")
    if text.startswith("docker://"):
        rest = text[len("docker://") :]
        if not rest:
            raise InputError(f"{text}: an image reference is missing after docker://")
        return Place(rest, None, REGISTRY)
    transport, sep, rest = text.partition(":")
    if transport == DAEMON and sep:  # docker-daemon:REF (REF may hold ':'); empty: the daemon
        return Place(rest, None, DAEMON)
    if not sep or transport not in _FORMATS:
        return Place(text)
    if not rest:
        raise InputError(f"{text}: a path is missing after {transport}:")
    path, sep, ref = rest.partition(":")
    return Place(path, ref if sep and ref else None, _FORMATS[transport])
