"""A registry that misbehaves on purpose (a tiny HTTP server on 127.0.0.1 in a thread):
endless bodies, compression bombs, bodies that are not their encoding, redirect and
Link loops, JSON too deep or with numbers too long. Each ends in one line of the right
class naming the URL, never in MemoryError or a traceback."""

from __future__ import annotations

import gzip
import http.server
import json
import threading
import tracemalloc
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import zstandard

from archiver.errors import InputError, PeerError
from archiver.places.registry import api
from archiver.places.registry.client import RegistryClient
from archiver.places.registry.retry import RetryPolicy
from tests.conftest import Run
from tests.isolation import own_registry_client

MIB = 1024 * 1024
BOMB = 256 * MIB
"""What a bomb would grow to (its compressed size is a few hundred KiB)."""


def bomb(encoding: str) -> bytes:
    """``BOMB`` zero bytes compressed, made a MiB at a time."""
    zeros = b"\0" * MIB
    if encoding == "gzip":
        packer = zlib.compressobj(1, zlib.DEFLATED, zlib.MAX_WBITS | 16)
        return b"".join(packer.compress(zeros) for _ in range(BOMB // MIB)) + packer.flush()
    writer = zstandard.ZstdCompressor(level=1).compressobj(size=BOMB)
    return b"".join(writer.compress(zeros) for _ in range(BOMB // MIB)) + writer.flush()


Handler = Callable[[http.server.BaseHTTPRequestHandler], None]


class Hostile:
    """Answers each path with the handler given for it; ``/v2/`` answers 200."""

    def __init__(self) -> None:
        self.routes: dict[str, Handler] = {}
        self.requests: list[str] = []
        hostile = self

        class Serve(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                hostile.requests.append(self.path)
                route = hostile.routes.get(self.path.split("?")[0])
                if self.path == "/v2/":
                    send(self, 200, b"{}")
                elif route is None:
                    send(self, 404, b'{"errors": [{"code": "NOT_FOUND"}]}')
                else:
                    route(self)

            do_HEAD = do_GET

        self._httpd = _Quiet(("127.0.0.1", 0), Serve)
        self._httpd.daemon_threads = True
        self.host = f"127.0.0.1:{self._httpd.server_address[1]}"
        threading.Thread(target=self._httpd.serve_forever, args=(0.05,), daemon=True).start()

    def url(self, path: str) -> str:
        return f"http://{self.host}{path}"

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


class _Quiet(http.server.ThreadingHTTPServer):
    def handle_error(self, request: object, client_address: object) -> None:
        pass  # a client hanging up on an endless body, or probing with TLS: expected


def send(
    handler: http.server.BaseHTTPRequestHandler,
    status: int,
    body: bytes,
    headers: dict[str, str] | None = None,
) -> None:
    handler.send_response(status)
    for key, value in (headers or {}).items():
        handler.send_header(key, value)
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    handler.wfile.write(body)


def endless(status: int = 200) -> Handler:
    """A chunked body that never ends (until the client hangs up, or 256 MiB)."""

    def serve(handler: http.server.BaseHTTPRequestHandler) -> None:
        handler.send_response(status)
        handler.send_header("Transfer-Encoding", "chunked")
        handler.end_headers()
        chunk = b"x" * 65536
        try:
            for _ in range(4096):
                handler.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        except OSError:
            pass  # the client stopped reading
        handler.close_connection = True

    return serve


def fixed(
    status: int, body: bytes, headers: dict[str, str] | None = None
) -> Callable[[http.server.BaseHTTPRequestHandler], None]:
    return lambda handler: send(handler, status, body, headers)


@pytest.fixture
def hostile(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Hostile]:
    own_registry_client(tmp_path, monkeypatch)
    monkeypatch.setenv("ARCHIVER_RETRY_TOTAL", "1")
    server = Hostile()
    yield server
    server.stop()


@pytest.fixture
def client(hostile: Hostile) -> Iterator[RegistryClient]:
    made = RegistryClient(hostile.host, retry=RetryPolicy(attempts=2, base=0.01, total=2))
    yield made
    made.close()


def one_line(error: pytest.ExceptionInfo[Exception], url: str) -> str:
    message = str(error.value)
    assert "\n" not in message and url in message, message
    return message


def test_an_endless_manifest_stops_at_the_cap(hostile: Hostile, client: RegistryClient) -> None:
    hostile.routes["/v2/a/manifests/1"] = endless()
    with pytest.raises(InputError) as caught:
        client.get_manifest("a", "1")
    message = one_line(caught, hostile.url("/v2/a/manifests/1"))
    assert "larger than the 4194304-byte limit" in message


def test_an_endless_error_body_or_tag_list_is_cut_short(
    hostile: Hostile, client: RegistryClient
) -> None:
    hostile.routes["/v2/a/tags/list"] = endless(400)
    with pytest.raises(PeerError, match=r"/v2/a/tags/list: 400$"):
        client.tags("a")
    hostile.routes["/v2/a/tags/list"] = endless(200)
    with pytest.raises(InputError) as caught:
        client.tags("a")
    one_line(caught, hostile.url("/v2/a/tags/list"))


@pytest.mark.parametrize("encoding", ["gzip", "zstd"])
def test_compression_bombs_are_counted_as_they_are_decoded(
    hostile: Hostile, client: RegistryClient, encoding: str
) -> None:
    body = bomb(encoding)
    assert len(body) < 2 * MIB
    hostile.routes["/v2/a/manifests/1"] = fixed(200, body, {"Content-Encoding": encoding})
    tracemalloc.start()
    try:
        with pytest.raises(InputError) as caught:
            client.get_manifest("a", "1")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert "larger than the 4194304-byte limit" in one_line(
        caught, hostile.url("/v2/a/manifests/1")
    )
    assert peak < 32 * MIB, peak  # 256 MiB were never held


def test_bodies_that_are_not_their_encoding_are_one_line(
    hostile: Hostile, client: RegistryClient
) -> None:
    for encoding in ("gzip", "zstd", "deflate"):
        hostile.routes["/v2/a/manifests/1"] = fixed(
            200, b"this is no compressed stream at all", {"Content-Encoding": encoding}
        )
        with pytest.raises(PeerError) as caught:
            client.get_manifest("a", "1")
        assert f"is not the {encoding} it is said to be" in one_line(
            caught, hostile.url("/v2/a/manifests/1")
        )
    cut = gzip.compress(b'{"schemaVersion": 2}')[:-12]
    hostile.routes["/v2/a/manifests/1"] = fixed(200, cut, {"Content-Encoding": "gzip"})
    with pytest.raises(PeerError, match="ends inside its gzip stream"):
        client.get_manifest("a", "1")
    hostile.routes["/v2/a/manifests/1"] = fixed(200, b"{}", {"Content-Encoding": "br"})
    with pytest.raises(PeerError, match="Content-Encoding 'br' is not supported"):
        client.get_manifest("a", "1")


def test_compressed_bodies_that_are_right_are_read(
    hostile: Hostile, client: RegistryClient
) -> None:
    document = b'{"schemaVersion": 2, "tags": ["1", "2"]}'
    hostile.routes["/v2/a/tags/list"] = fixed(
        200, gzip.compress(document), {"Content-Encoding": "gzip"}
    )
    assert client.tags("a") == ["1", "2"]
    hostile.routes["/v2/a/tags/list"] = fixed(
        200, zstandard.ZstdCompressor().compress(document), {"Content-Encoding": "zstd"}
    )
    assert client.tags("a") == ["1", "2"]


def test_a_manifest_that_redirects_to_itself_is_one_line(
    hostile: Hostile, client: RegistryClient
) -> None:
    url = hostile.url("/v2/a/manifests/1")
    hostile.routes["/v2/a/manifests/1"] = fixed(302, b"", {"Location": url})
    with pytest.raises(PeerError) as caught:
        client.get_manifest("a", "1")
    assert "redirected too many times" in one_line(caught, url)


def test_pages_that_loop_or_never_end_stop(
    hostile: Hostile, client: RegistryClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    body = json.dumps({"repositories": ["a"]}).encode()
    first = f"/v2/_catalog?n={api.PAGE_SIZE}"
    hostile.routes["/v2/_catalog"] = fixed(200, body, {"Link": f'<{first}>; rel="next"'})
    with pytest.raises(PeerError) as caught:
        client.catalog()
    assert "a Link loop" in one_line(caught, hostile.url(first))
    assert hostile.requests.count(first) == 1

    def onwards(handler: http.server.BaseHTTPRequestHandler) -> None:
        following = f"/v2/a/tags/list?last={len(hostile.requests)}"
        send(handler, 200, b'{"tags": ["t"]}', {"Link": f'<{following}>; rel="next"'})

    hostile.routes["/v2/_catalog"] = fixed(200, body, {"Link": '<http://[bad/x>; rel="next"'})
    with pytest.raises(PeerError, match=r"'http://\[bad/x' is not a URL to ask \(.*\)$"):
        client.catalog()

    monkeypatch.setattr(api, "MAX_PAGES", 5)
    hostile.routes["/v2/a/tags/list"] = onwards
    with pytest.raises(PeerError, match=r"/v2/a/tags/list\?last=\d+: the list goes on past 5"):
        client.tags("a")


@pytest.mark.parametrize(
    "body",
    [
        b'{"tags": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
        b'{"tags": [], "n": ' + b"7" * 5000 + b"}",
        b"\xff\xfe not JSON",
        b'["a list"]',
    ],
    ids=["deep", "huge-int", "not-json", "not-an-object"],
)
def test_tag_lists_that_are_not_json_we_read(
    hostile: Hostile, client: RegistryClient, body: bytes
) -> None:
    hostile.routes["/v2/a/tags/list"] = fixed(200, body)
    with pytest.raises((InputError, PeerError)) as caught:
        client.tags("a")
    one_line(caught, hostile.url("/v2/a/tags/list"))
    wanted = PeerError if body.startswith(b"[") else InputError
    assert type(caught.value) is wanted


@pytest.mark.parametrize(
    "body",
    [b"[" * 100_000 + b"]" * 100_000, b'{"schemaVersion": ' + b"9" * 5000 + b"}"],
    ids=["deep", "huge-int"],
)
def test_a_pulled_manifest_that_is_not_json_we_read_is_one_line(
    hostile: Hostile, run: Run, tmp_path: Path, body: bytes
) -> None:
    hostile.routes["/v2/a/manifests/1"] = fixed(
        200, body, {"Content-Type": "application/vnd.oci.image.manifest.v1+json"}
    )
    result = run("pull", f"{hostile.host}/a:1", "-o", tmp_path / "out.tar.zst")
    assert result.code == 2, result.err
    assert result.err.count("\n") == 1 and hostile.url("/v2/a/manifests/1") in result.err
    assert "invalid JSON" in result.err


def test_a_blob_size_that_is_not_a_number_is_one_line(
    hostile: Hostile, client: RegistryClient
) -> None:
    def head(handler: http.server.BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Length", "9" * 5000)
        handler.end_headers()

    hostile.routes["/v2/a/blobs/sha256:00"] = head
    with pytest.raises(PeerError, match=r"HEAD /v2/a/blobs/sha256:00 failed: bad Content-Length$"):
        client.blob_exists("a", "sha256:00")
