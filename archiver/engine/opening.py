"""Opening a place named by a ``Place``: an archive, a daemon's images, a registry's,
containerd's."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import TYPE_CHECKING

from archiver.blobs.path_tree import open_tree
from archiver.blobs.zstd_writer import ZstdOptions
from archiver.errors import InputError
from archiver.model.reference import Reference
from archiver.places.archive import ArchiveSource, open_source
from archiver.places.base import Source
from archiver.places.transports import CONTAINERD, DAEMON, REGISTRY, Place

if TYPE_CHECKING:
    from archiver.places.containerd.client import ContainerdClient
    from archiver.places.registry.registries import Registries


@contextlib.contextmanager
def open_place(
    place: Place,
    zstd: ZstdOptions | None = None,
    registries: Registries | None = None,
    reuse_frames: bool = False,
) -> Iterator[Source]:
    """The images of ``place`` as a source (a daemon's saved as they stream, with ``zstd``
    frames a bundle then copies as they are; a registry's through the command's
    ``registries``, or clients of its own); ``reuse_frames``: a bundle's layers are handed
    out as the frames they are stored in, for a bundle writer to copy unread (sync)."""
    if place.format == REGISTRY:
        from archiver.places.registry.place import RegistrySource
        from archiver.places.registry.registries import given_or_own

        refs = [Reference.parse(text) for text in place.names]
        if len({ref.registry for ref in refs}) != 1:
            raise InputError(f"{place}: one registry per docker:// input")
        with given_or_own(registries) as clients:
            yield RegistrySource(clients.client(refs[0].registry), refs)
        return
    if place.format == CONTAINERD:
        from archiver.places.containerd.source import ContainerdSource  # grpc: containerd only

        with containerd_client(place) as client:
            yield ContainerdSource(client, place.names)
        return
    if place.format == DAEMON:
        if not place.names:
            raise InputError("docker-daemon: name the image to read, docker-daemon:REF")
        from archiver.engine.save import open_daemon_source  # http.client: daemon verbs only
        from archiver.places.daemon.client import DaemonClient

        with open_daemon_source(DaemonClient(), list(place.names), zstd) as daemon:
            yield daemon
        return
    if reuse_frames:
        with open_tree(place.path) as tree:
            yield ArchiveSource(tree, reuse_frames=True)
        return
    with open_source(place.path) as source:
        yield source


@contextlib.contextmanager
def containerd_client(place: Place) -> Iterator[ContainerdClient]:
    """A connection to the containerd ``place`` names: its socket (or $CONTAINERD_ADDRESS,
    else containerd's default) and namespace (or $CONTAINERD_NAMESPACE, else k8s.io)."""
    from archiver.places.containerd import DEFAULT_NAMESPACE, DEFAULT_SOCKET
    from archiver.places.containerd.client import ContainerdClient

    socket = place.path or os.environ.get("CONTAINERD_ADDRESS") or DEFAULT_SOCKET
    namespace = place.namespace or os.environ.get("CONTAINERD_NAMESPACE")
    opened = ContainerdClient(socket, namespace or DEFAULT_NAMESPACE)
    try:
        yield opened
    finally:
        opened.close()
