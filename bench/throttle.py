"""A TCP forwarder that gives each connection a limited rate towards the client, as a
registry behind a CDN or a long link does (the local registry has no such limit)."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator


@contextlib.contextmanager
def throttled(upstream: str, rate: float) -> Iterator[str]:
    """``host:port`` forwarding to ``upstream``, each connection at most ``rate`` bytes/s."""
    host, port = upstream.rsplit(":", 1)
    server = socket.create_server(("127.0.0.1", 0))
    server.listen(64)
    stop = threading.Event()

    def pipe(source: socket.socket, sink: socket.socket, limit: float) -> None:
        try:
            while data := source.recv(64 * 1024):
                sink.sendall(data)
                if limit:
                    time.sleep(len(data) / limit)
        except OSError:
            pass
        finally:
            for end in (source, sink):
                with contextlib.suppress(OSError):
                    end.shutdown(socket.SHUT_RDWR)

    def serve() -> None:
        while not stop.is_set():
            try:
                client, _ = server.accept()
            except OSError:
                return
            remote = socket.create_connection((host, int(port)))
            threading.Thread(target=pipe, args=(client, remote, 0), daemon=True).start()
            threading.Thread(target=pipe, args=(remote, client, rate), daemon=True).start()

    threading.Thread(target=serve, daemon=True).start()
    try:
        yield f"127.0.0.1:{server.getsockname()[1]}"
    finally:
        stop.set()
        server.close()
