"""The Docker daemon as a source: ``GET /images/get`` read into a temporary file as it
streams, every member hashed and compressed into zstd frames of its own while the daemon is
still writing (docker writes manifest.json last, so nothing can be written out before the
end), then read as any archive; a bundle made with the same options copies those frames
as they are.
"""

from __future__ import annotations

import http.client
from typing import BinaryIO

from archiver.blobs.tar_tree import TarTree
from archiver.blobs.zstd_writer import ZstdOptions
from archiver.errors import PeerError
from archiver.places.archive import ArchiveSource
from archiver.places.daemon.client import DaemonClient


def saved(
    client: DaemonClient, names: list[str], spool: BinaryIO, options: ZstdOptions
) -> ArchiveSource:
    """The images ``names`` as the daemon saves them, spooled into ``spool``."""
    origin = f"docker-daemon:{','.join(names)}"
    try:
        with client.get(names) as stream:
            tree = TarTree.from_stream(stream, origin, spool, options)
    except (http.client.HTTPException, ConnectionError, TimeoutError) as exc:
        raise PeerError(f"{origin}: the daemon's stream broke off ({exc!r})") from None
    return ArchiveSource(tree, spool_options=options)
