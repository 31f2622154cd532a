"""The serve face over loopback (uvicorn serving the real app from real archives, on a thread
of the test): names, negotiation, ranges, pages, referrers, the spec's errors, auth."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import bcrypt
import httpx
import pytest
import uvicorn

from archiver.errors import Conflict, InputError
from archiver.model import media
from archiver.model.platform import Platform
from archiver.serve import catalog as catalogs
from archiver.serve import chains, frames, registry, streaming
from archiver.serve.app import make_app
from archiver.serve.auth import Htpasswd
from archiver.serve.inputs import open_inputs
from archiver.serve.ranges import ByteRange, RangeError, parse_range
from archiver.serve.server import Listen, bind, check_tls
from tests.conftest import SAMPLES, Run
from tests.factory import docker_save, layer, random_layer


def _sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def oci_with_referrer(
    folder: Path, name: str = "registry.example:5000/team/app:1"
) -> dict[str, str]:
    """An OCI dir: one image named ``name`` and an SBOM artifact whose subject is it (an
    entry of index.json without a name, as the shared decision for extras says)."""
    blobs = folder / "blobs" / "sha256"
    blobs.mkdir(parents=True)

    def put(data: bytes) -> dict[str, Any]:
        (blobs / _sha(data)[7:]).write_bytes(data)
        return {"digest": _sha(data), "size": len(data)}

    one = layer({"hello.txt": b"hello\n"})
    config = json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "created": "2025-01-01T00:00:00Z",
            "rootfs": {"type": "layers", "diff_ids": [_sha(one)]},
            "history": [{"created_by": "COPY hello.txt /"}],
        }
    ).encode()
    image = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": media.OCI_MANIFEST,
            "config": {"mediaType": media.OCI_CONFIG, **put(config)},
            "layers": [{"mediaType": media.OCI_LAYER_TAR, **put(one)}],
        }
    ).encode()
    image_desc = {"mediaType": media.OCI_MANIFEST, **put(image)}
    sbom = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": media.OCI_MANIFEST,
            "artifactType": "application/spdx+json",
            "config": {"mediaType": media.OCI_EMPTY, **put(b"{}")},
            "layers": [{"mediaType": "application/spdx+json", **put(b'{"spdx": 1}')}],
            "subject": image_desc,
            "annotations": {"org.example.kind": "sbom"},
        }
    ).encode()
    sbom_desc = {"mediaType": media.OCI_MANIFEST, **put(sbom)}
    multi = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": media.OCI_INDEX,
            "manifests": [{**image_desc, "platform": Platform.host().to_json()}],
        }
    ).encode()
    multi_desc = {"mediaType": media.OCI_INDEX, **put(multi)}
    (folder / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    index = {
        "schemaVersion": 2,
        "manifests": [
            {**image_desc, "annotations": {"io.containerd.image.name": name}},
            {**multi_desc, "annotations": {"io.containerd.image.name": "multi.example/m:1"}},
            {
                **sbom_desc,
                "artifactType": "application/spdx+json",
                "annotations": {"dev.archiver.subject": image_desc["digest"]},
            },
        ],
    }
    (folder / "index.json").write_text(json.dumps(index))
    return {
        "image": image_desc["digest"],
        "sbom": sbom_desc["digest"],
        "layer": _sha(one),
        "index": multi_desc["digest"],
    }


@contextlib.contextmanager
def served(
    *paths: Path, htpasswd: Htpasswd | None = None, **options: Any
) -> Iterator[httpx.Client]:
    """The app over ``paths`` served on a loopback port; a client of it."""
    with open_inputs([str(p) for p in paths]) as inputs:
        catalog = catalogs.build(inputs, **options)
        listening = bind(Listen("127.0.0.1", 0))
        config = uvicorn.Config(make_app(catalog, htpasswd), log_level="warning", lifespan="off")
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, kwargs={"sockets": [listening]})
        thread.start()
        try:
            while not server.started and thread.is_alive():
                time.sleep(0.005)
            port = listening.getsockname()[1]
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
                yield client
        finally:
            server.should_exit = True
            thread.join()
            listening.close()


def _received(client: httpx.Client, url: str) -> int:
    """The bytes of an answer the server cuts short (as any client sees it: the body ends
    before its Content-Length)."""
    got = 0
    with pytest.raises(httpx.RemoteProtocolError), client.stream("GET", url) as answer:
        for chunk in answer.iter_bytes():
            got += len(chunk)
    return got


def test_names_lose_their_host_and_take_a_prefix(tmp_path: Path) -> None:
    oci_with_referrer(tmp_path / "oci")
    with served(tmp_path / "oci", SAMPLES / "bundle.tar.zst") as client:
        names = client.get("/v2/_catalog").json()["repositories"]
        assert names == ["demo/app", "demo/base", "m", "team/app", "tools/probe"]
        assert client.get("/v2/team/app/tags/list").json() == {"name": "team/app", "tags": ["1"]}
    with served(tmp_path / "oci", prefix="mirror/") as client:
        assert client.get("/v2/_catalog").json()["repositories"] == ["mirror/m", "mirror/team/app"]
        assert client.get("/v2/mirror/team/app/manifests/1").status_code == 200


def test_pages_of_catalog_and_tags(tmp_path: Path) -> None:
    with served(SAMPLES / "bundle.tar.zst") as client:
        first = client.get("/v2/_catalog?n=2")
        assert first.json()["repositories"] == ["demo/app", "demo/base"]
        assert first.headers["link"] == '</v2/_catalog?n=2&last=demo/base>; rel="next"'
        rest = client.get("/v2/_catalog?n=2&last=demo/base")
        assert rest.json()["repositories"] == ["tools/probe"] and "link" not in rest.headers
        tags = client.get("/v2/demo/base/tags/list?n=1")
        assert tags.json()["tags"] == ["1.0"] and "last=1.0" in tags.headers["link"]
        assert client.get("/v2/demo/base/tags/list?n=1&last=1.0").json()["tags"] == ["latest"]
        bad = client.get("/v2/_catalog?n=x")
        assert bad.status_code == 400
        assert bad.json()["errors"][0]["code"] == "PAGINATION_NUMBER_INVALID"


def test_manifests_by_tag_and_digest_with_their_headers(tmp_path: Path) -> None:
    digests = oci_with_referrer(tmp_path / "oci")
    raw = (tmp_path / "oci/blobs/sha256" / digests["image"][7:]).read_bytes()
    with served(tmp_path / "oci") as client:
        for ref in ("1", digests["image"]):
            got = client.get(f"/v2/team/app/manifests/{ref}")
            assert got.status_code == 200 and got.content == raw
            assert got.headers["docker-content-digest"] == digests["image"]
            assert got.headers["content-type"] == media.OCI_MANIFEST
            assert got.headers["etag"] == f'"{digests["image"]}"'
            head = client.head(f"/v2/team/app/manifests/{ref}")
            assert head.status_code == 200 and head.content == b""
            assert head.headers["content-length"] == str(len(raw))
        etag = {"If-None-Match": got.headers["etag"]}
        assert client.get("/v2/team/app/manifests/1", headers=etag).status_code == 304


def test_an_index_to_a_client_that_takes_no_index(tmp_path: Path) -> None:
    digests = oci_with_referrer(tmp_path / "oci")
    with served(tmp_path / "oci") as client:
        index = client.get("/v2/m/manifests/1")
        assert index.headers["content-type"] == media.OCI_INDEX
        assert index.headers["docker-content-digest"] == digests["index"]
        both = f"{media.OCI_INDEX}, {media.OCI_MANIFEST}"
        assert client.get("/v2/m/manifests/1", headers={"Accept": both}).json()["manifests"]
        only = client.get("/v2/m/manifests/1", headers={"Accept": media.OCI_MANIFEST})
        assert only.headers["content-type"] == media.OCI_MANIFEST
        assert only.headers["docker-content-digest"] == digests["image"]


def test_blobs_whole_and_in_ranges(tmp_path: Path) -> None:
    digests = oci_with_referrer(tmp_path / "oci")
    data = (tmp_path / "oci/blobs/sha256" / digests["layer"][7:]).read_bytes()
    url = f"/v2/team/app/blobs/{digests['layer']}"
    with served(tmp_path / "oci") as client:
        whole = client.get(url)
        assert whole.status_code == 200 and whole.content == data
        assert whole.headers["docker-content-digest"] == digests["layer"]
        part = client.get(url, headers={"Range": "bytes=100-199"})
        assert part.status_code == 206 and part.content == data[100:200]
        assert part.headers["content-range"] == f"bytes 100-199/{len(data)}"
        tail = client.get(url, headers={"Range": "bytes=-10"})
        assert tail.content == data[-10:]
        for bad in ("bytes=9-2", f"bytes={len(data)}-", "bytes=0-1,5-6", "pages=1-2"):
            refused = client.get(url, headers={"Range": bad})
            assert refused.status_code == 416, bad
            assert refused.json()["errors"][0]["code"] == "RANGE_INVALID"
            assert refused.headers["content-range"] == f"bytes */{len(data)}"
        head = client.head(url)
        assert head.headers["content-length"] == str(len(data)) and head.content == b""


def test_a_blob_damaged_on_disk_is_never_sent_whole(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    digests = oci_with_referrer(tmp_path / "oci")
    path = tmp_path / "oci/blobs/sha256" / digests["layer"][7:]
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))
    with served(tmp_path / "oci") as client:
        got = _received(client, f"/v2/team/app/blobs/{digests['layer']}")
        assert got < len(data)  # cut short: the last chunk is held back
        (line,) = [r.getMessage() for r in caplog.records if "cut short" in r.getMessage()]
        assert digests["layer"] in line and "digest mismatch" in line
        assert client.get("/v2/").status_code == 200  # the server goes on


def test_referrers_with_the_artifact_type_filter(tmp_path: Path) -> None:
    digests = oci_with_referrer(tmp_path / "oci")
    with served(tmp_path / "oci") as client:
        got = client.get(f"/v2/team/app/referrers/{digests['image']}")
        assert got.status_code == 200 and got.headers["content-type"] == media.OCI_INDEX
        (only,) = got.json()["manifests"]
        assert only["digest"] == digests["sbom"]
        assert only["artifactType"] == "application/spdx+json"
        assert only["annotations"] == {"org.example.kind": "sbom"}
        kept = client.get(
            f"/v2/team/app/referrers/{digests['image']}?artifactType=application/spdx%2Bjson"
        )
        assert kept.json()["manifests"] and kept.headers["oci-filters-applied"] == "artifactType"
        other = client.get(f"/v2/team/app/referrers/{digests['image']}?artifactType=x/y")
        assert other.json()["manifests"] == []
        assert client.get(f"/v2/team/app/manifests/{digests['sbom']}").status_code == 200
        none = client.get(f"/v2/team/app/referrers/{digests['sbom']}")
        assert none.status_code == 200 and none.json()["manifests"] == []


@pytest.mark.parametrize(
    ("method", "path", "status", "code"),
    [
        ("GET", "/v2/nobody/manifests/1", 404, "NAME_UNKNOWN"),
        ("GET", "/v2/Team/App/manifests/1", 400, "NAME_INVALID"),
        ("GET", "/v2/team/app/manifests/2", 404, "MANIFEST_UNKNOWN"),
        ("GET", "/v2/team/app/manifests/sha256:" + "0" * 64, 404, "MANIFEST_UNKNOWN"),
        ("GET", "/v2/team/app/blobs/sha256:" + "0" * 64, 404, "BLOB_UNKNOWN"),
        ("GET", "/v2/team/app/blobs/md5:" + "0" * 32, 400, "DIGEST_INVALID"),
        ("GET", "/v2/team/app/blobs/sha256:abc", 400, "DIGEST_INVALID"),
        ("POST", "/v2/team/app/blobs/uploads/", 405, "UNSUPPORTED"),
        ("PUT", "/v2/team/app/manifests/2", 405, "UNSUPPORTED"),
        ("DELETE", "/v2/team/app/manifests/1", 405, "UNSUPPORTED"),
        ("PATCH", "/v2/team/app/blobs/uploads/x", 405, "UNSUPPORTED"),
    ],
)
def test_the_spec_errors(tmp_path: Path, method: str, path: str, status: int, code: str) -> None:
    oci_with_referrer(tmp_path / "oci")
    with served(tmp_path / "oci") as client:
        got = client.request(method, path, content=b"x" if method != "GET" else None)
        assert got.status_code == status
        assert got.json()["errors"][0]["code"] == code
        assert got.headers["docker-distribution-api-version"] == "registry/2.0"


def test_two_images_taking_one_name_are_refused_or_one_is_preferred(tmp_path: Path) -> None:
    oci_with_referrer(tmp_path / "a", "one.example/team/app:1")
    other = docker_save(tmp_path / "b.tar", [(["two.example:5000/team/app:1"], [layer({})])])
    with pytest.raises(Conflict) as refused, served(tmp_path / "a", other):
        pass
    message = str(refused.value)
    assert "team/app:1" in message and "one.example" in message and "two.example" in message
    assert str(tmp_path / "a") in message and str(other) in message
    with served(tmp_path / "a", other, prefer="last") as client:
        got = client.get("/v2/team/app/manifests/1")
        assert got.headers["content-type"] == media.OCI_MANIFEST
        assert "hello" not in client.get("/").text
    with pytest.raises(InputError), served(tmp_path / "a", prefix="Bad Prefix"):
        pass


def test_a_delta_is_served_over_its_base_and_refused_without(run: Run, tmp_path: Path) -> None:
    base_layer = layer({"base.bin": b"b" * 5000})
    one = docker_save(tmp_path / "r1.tar", [(["app:1"], [base_layer])])
    two = docker_save(tmp_path / "r2.tar", [(["app:2"], [base_layer, layer({"x": b"2"})])])
    base, delta = tmp_path / "base.tar.zst", tmp_path / "delta.tar.zst"
    assert run("pack", one, "-o", base).code == 0
    assert run("pack", two, "--base", base, "-o", delta).code == 0
    with pytest.raises(InputError) as alone, served(delta):
        pass
    assert "base" in str(alone.value) and str(delta) in str(alone.value)
    with served(delta, base) as client:
        assert client.get("/v2/library/app/tags/list").json()["tags"] == ["1", "2"]
        manifest = client.get("/v2/library/app/manifests/2").json()
        for blob in [manifest["config"], *manifest["layers"]]:
            got = client.get(f"/v2/library/app/blobs/{blob['digest']}")
            assert got.status_code == 200 and _sha(got.content) == blob["digest"]


def test_basic_auth_from_an_htpasswd_file(tmp_path: Path) -> None:
    oci_with_referrer(tmp_path / "oci")
    hashed = bcrypt.hashpw(b"secret", bcrypt.gensalt(rounds=4)).decode().replace("$2b$", "$2y$")
    (tmp_path / "htpasswd").write_text(f"# users\nalice:{hashed}\n")
    users = Htpasswd.read(str(tmp_path / "htpasswd"))
    with served(tmp_path / "oci", htpasswd=users) as client:
        refused = client.get("/v2/")
        assert refused.status_code == 401
        assert refused.headers["www-authenticate"] == 'Basic realm="archiver"'
        assert refused.json()["errors"][0]["code"] == "UNAUTHORIZED"
        assert client.get("/").status_code == 401
        wrong = base64.b64encode(b"alice:nope").decode()
        assert client.get("/v2/", headers={"Authorization": f"Basic {wrong}"}).status_code == 401
        right = {"Authorization": "Basic " + base64.b64encode(b"alice:secret").decode()}
        for _ in range(2):  # the second time from memory
            assert client.get("/v2/team/app/manifests/1", headers=right).status_code == 200
    (tmp_path / "plain").write_text("bob:{SHA}abc\n")
    with pytest.raises(InputError, match="line 1: not user:bcrypt-hash"):
        Htpasswd.read(str(tmp_path / "plain"))


def test_the_pages_list_search_and_show_an_image(tmp_path: Path) -> None:
    digests = oci_with_referrer(tmp_path / "oci")
    with served(tmp_path / "oci", SAMPLES / "bundle.tar.zst") as client:
        page = client.get("/").text
        assert "team/app" in page and "demo/base" in page and "1 referrer" in page
        found = client.get("/?q=team").text
        assert "team/app" in found and "demo/base" not in found and "1 of 5 images" in found
        shown = client.get(f"/image/team/app@{digests['image']}").text
        assert digests["layer"] in shown and "COPY hello.txt /" in shown
        assert client.get("/image/team/app@sha256:nope").status_code == 404


def test_ranges_parsed() -> None:
    assert parse_range(None, 10) is None
    assert parse_range("bytes=0-", 10) == ByteRange(0, 9)
    assert parse_range("bytes=2-100", 10) == ByteRange(2, 9)
    assert parse_range("bytes=-3", 10) == ByteRange(7, 9)
    for bad in ("bytes=", "bytes=-0", "bytes=10-", "bytes=a-b", "bytes=1-2,3-4"):
        with pytest.raises(RangeError):
            parse_range(bad, 10)


def test_where_it_listens_and_tls_files_checked_first(tmp_path: Path) -> None:
    assert Listen.parse("127.0.0.1:5000").loopback
    assert Listen.parse("[::1]:5000").loopback and Listen.parse("localhost:1").loopback
    assert not Listen.parse("0.0.0.0:5000").loopback
    assert not Listen.parse(":5000").loopback  # every address
    for bad in ("nowhere", "host:http", "host:70000"):
        with pytest.raises(InputError, match="HOST:PORT"):
            Listen.parse(bad)
    with pytest.raises(InputError, match="go together"):
        check_tls(str(tmp_path / "cert.pem"), None)
    (tmp_path / "cert.pem").write_text("not a certificate")
    with pytest.raises(InputError, match="not a usable TLS certificate"):
        check_tls(str(tmp_path / "cert.pem"), str(tmp_path / "cert.pem"))


@pytest.mark.parametrize("spare", [streaming.AHEAD, 0])
def test_a_blob_of_many_reads_is_sent_while_read_and_still_verified(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    spare: int,
) -> None:
    """Blocks are read ahead while the one before is sent (when there is room for one more
    block, else one after the other): the bytes are the same, a damaged blob is still cut
    short, and the room is given back."""
    monkeypatch.setattr(streaming, "READ", 1000)
    monkeypatch.setattr(streaming, "SEND", 300)
    ahead = threading.Semaphore(spare)
    monkeypatch.setattr(streaming, "_ahead", ahead)
    digests = oci_with_referrer(tmp_path / "oci")
    path = tmp_path / "oci/blobs/sha256" / digests["layer"][7:]
    data = path.read_bytes()
    assert len(data) > 5 * 1000
    url = f"/v2/team/app/blobs/{digests['layer']}"
    with served(tmp_path / "oci") as client:
        assert client.get(url).content == data
        assert client.get(url, headers={"Range": "bytes=1500-4321"}).content == data[1500:4322]
        path.write_bytes(data[:2000] + bytes([data[2000] ^ 0xFF]) + data[2001:])
        assert _received(client, url) < len(data)
        assert any("digest mismatch" in r.getMessage() for r in caplog.records)
    assert all(ahead.acquire(blocking=False) for _ in range(spare))
    assert not ahead.acquire(blocking=False)


def test_a_bundles_layer_is_read_from_its_frames_decoded_once_for_all_readers(
    run: Run,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A layer with frames of its own is read through the shared frame cache: whole and in
    ranges the same bytes, each frame decoded once while it is kept, several readers at
    once; a frame damaged on disk cuts the answer short and the server goes on."""
    big = random_layer(600 * 1024)
    save = docker_save(tmp_path / "s.tar", [(["app:1"], [big])])
    bundle = tmp_path / "b.tar.zst"
    assert run("pack", save, "-o", bundle, "--frame-size", "65536").code == 0
    decoded: list[int] = []
    real = frames.decode

    def counted(fd: int, frame: Any, origin: str) -> bytes:
        decoded.append(frame.compressed_offset)
        return real(fd, frame, origin)

    monkeypatch.setattr(frames, "decode", counted)
    made: list[chains.Chains] = []

    class Recorded(chains.Chains):
        def __init__(self) -> None:
            super().__init__()
            made.append(self)

    monkeypatch.setattr(registry, "Chains", Recorded)
    url = f"/v2/library/app/blobs/{_sha(big)}"
    with served(bundle) as client:
        part = client.get(url, headers={"Range": "bytes=70000-300000"})  # all read, to verify
        assert part.status_code == 206 and part.content == big[70000:300001]
        first = len(decoded)
        assert first >= 9 and len(set(decoded)) == first  # its frames, each once
        assert client.get(url).content == big
        part = client.get(url, headers={"Range": "bytes=5-65540"})  # proved: read alone
        assert part.status_code == 206 and part.content == big[5:65541]
        with ThreadPoolExecutor(4) as pool:
            answers = list(pool.map(lambda _: client.get(url).content, range(4)))
        assert answers == [big] * 4
        assert len(decoded) < first * 4  # the cache keeps 512 KiB here and shares it
        assert made[0].hashed == len(big)  # hashed once: the same frames, the same states
        offsets = sorted(set(decoded))
        with open(bundle, "r+b") as file:  # a byte inside a frame of the layer
            file.seek(offsets[len(offsets) // 2] + 100)
            byte = file.read(1)
            file.seek(-1, 1)
            file.write(bytes([byte[0] ^ 0xFF]))
    with served(bundle) as client:  # a new server: nothing of it decoded yet
        assert _received(client, url) < len(big)
        assert any("cut short" in r.getMessage() for r in caplog.records)
        assert client.get("/v2/").status_code == 200
