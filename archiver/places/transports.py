"""Transport prefixes as skopeo names them: ``docker-archive:``, ``oci-archive:``, ``oci:``.

A prefix is only an address (no I/O): the path, an optional ``:ref`` after it, and the
format it implies for writing; ``docker-daemon:A,B`` and ``docker://A,B`` name images of a
daemon or a registry, ``containerd:[NS/]REF`` of containerd (see ``parse_containerd``).
Commands that know the place build a ``Place`` directly.
"""

from __future__ import annotations

from dataclasses import dataclass

from archiver.errors import InputError

_FORMATS = {"docker-archive": "docker", "oci-archive": "oci", "oci": "oci-dir", "bundle": "bundle"}
_UNSUPPORTED = ("containers-storage:", "dir:")
DAEMON = "docker-daemon"
REGISTRY = "registry"
"""The format of a ``docker://REF`` place: an image in a registry."""
CONTAINERD = "containerd"
"""The format of a ``containerd:[NS/]REF`` place: images of containerd's namespace NS."""


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
    references (``HOST/REPO[:TAG]``), or one registry host; of containerd: image names."""
    namespace: str | None = None
    """Of containerd: the namespace (None: the default); its socket is ``path`` ("": the
    default)."""

    @classmethod
    def daemon(cls, names: tuple[str, ...] = ()) -> Place:
        return cls("", None, DAEMON, names)

    @classmethod
    def registry(cls, names: tuple[str, ...] = ()) -> Place:
        return cls("", None, REGISTRY, names)

    @classmethod
    def containerd(
        cls, socket: str = "", namespace: str | None = None, names: tuple[str, ...] = ()
    ) -> Place:
        return cls(socket, None, CONTAINERD, names, namespace)

    def __str__(self) -> str:
        if self.format == CONTAINERD:
            space = f"{self.namespace}/" if self.namespace else ""
            return f"{CONTAINERD}:{space}{','.join(self.names)}"
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
    if transport == CONTAINERD and sep:
        return parse_containerd(rest)
    if transport == DAEMON and sep:  # docker-daemon:REF (REF may hold ':'); empty: the daemon
        return Place.daemon(tuple(name for name in rest.split(",") if name))
    if not sep or transport not in _FORMATS:
        return Place(text)
    if not rest:
        raise InputError(f"{text}: a path is missing after {transport}:")
    path, sep, ref = rest.partition(":")
    return Place(path, ref if sep and ref else None, _FORMATS[transport])


def parse_containerd(text: str) -> Place:
    """``[NS/]REF`` after ``containerd:``. containerd names images in full
    (``docker.io/library/nginx:1.25``), so NS is the first part only when what follows it
    begins with a registry host (``k8s.io/docker.io/library/nginx:1.25``) or is empty
    (``k8s.io/``: every image of k8s.io); otherwise it is all REF, in the default namespace.
    The socket is containerd's default, or $CONTAINERD_ADDRESS (see engine/opening.py)."""
    head, sep, tail = text.partition("/")
    if sep and (not tail or ("/" in tail and _is_host(tail.partition("/")[0]))):
        return Place.containerd("", head, tuple(n for n in tail.split(",") if n))
    return Place.containerd("", None, tuple(n for n in text.split(",") if n))


def _is_host(part: str) -> bool:
    return "." in part or ":" in part or part == "localhost"
