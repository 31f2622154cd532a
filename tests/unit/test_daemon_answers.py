"""A daemon's streamed answer is read a message at a time: a message without end (a
hostile or broken peer on DOCKER_HOST) is one line, not memory without bound."""

from __future__ import annotations

import socket
import threading
from pathlib import Path

import pytest

from archiver.errors import PeerError
from archiver.places.daemon.client import MAX_MESSAGE, DaemonClient


def _endless_answer(path: Path) -> threading.Thread:
    """A unix-socket server answering one request with a JSON string that never closes
    (three times the cap, then the connection ends)."""
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(path))
    server.listen(1)

    def serve() -> None:
        connection, _ = server.accept()
        with connection, server:
            connection.recv(65536)
            connection.sendall(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n"
            )
            connection.sendall(b'{"stream": "')
            for _ in range(3 * MAX_MESSAGE // 65536):
                try:
                    connection.sendall(b"a" * 65536)
                except OSError:
                    return  # the client stopped reading: as it should

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return thread


def test_a_message_without_end_is_refused(tmp_path: Path) -> None:
    socket_path = tmp_path / "docker.sock"
    thread = _endless_answer(socket_path)
    upload = DaemonClient(f"unix://{socket_path}", timeout=10).load()
    upload.close()
    with pytest.raises(PeerError, match="a message of more than"):
        list(upload.messages())
    thread.join(timeout=10)
