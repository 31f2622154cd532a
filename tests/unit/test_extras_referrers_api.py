"""The referrers API path of a pull: a registry that has it (a small in-process server on
127.0.0.1 speaking the distribution API with OCI 1.1 referrers; the real distribution
registry of the integration tests has no such API) is asked, and its fallback tag is not."""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Iterator

import pytest

from archiver.engine.extras_registry import add_registry_extras
from archiver.model.extras import ExtrasFilter
from archiver.model.reference import Reference
from archiver.places.registry.client import RegistryClient
from archiver.places.registry.place import RegistrySource
from tests import cosign_format as cf
from tests.extras_layout import image


class _Registry(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        self.manifests: dict[str, bytes] = {}
        self.blobs: dict[str, bytes] = {}
        self.asked: list[str] = []
        registry = self

        class Serve(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                registry.asked.append(self.path)
                parts = self.path.split("/")
                if self.path == "/v2/":
                    return self._send(200, b"{}", "application/json")
                kind, ref = parts[-2], parts[-1]
                if kind == "manifests" and ref in registry.manifests:
                    return self._send(200, registry.manifests[ref], cf.OCI_MANIFEST)
                if kind == "blobs" and ref in registry.blobs:
                    return self._send(200, registry.blobs[ref], "application/octet-stream")
                if kind == "referrers":
                    listed = []
                    for data in set(registry.manifests.values()):
                        document = json.loads(data)
                        if (document.get("subject") or {}).get("digest") == ref:
                            listed.append(
                                {
                                    **cf.descriptor(cf.OCI_MANIFEST, data),
                                    "artifactType": document.get("artifactType"),
                                }
                            )
                    index = {"schemaVersion": 2, "manifests": listed}
                    body = json.dumps(index).encode()
                    return self._send(200, body, "application/vnd.oci.image.index.v1+json")
                return self._send(404, b'{"errors":[{"code":"NOT_FOUND"}]}', "application/json")

            do_HEAD = do_GET

            def _send(self, status: int, body: bytes, media_type: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", media_type)
                self.send_header("Content-Length", str(len(body)))
                if status == 200 and body.startswith(b"{") and "manifests" in self.path:
                    self.send_header("Docker-Content-Digest", cf.digest(body))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

        super().__init__(("127.0.0.1", 0), Serve)

    def put(self, artifact: cf.Artifact, tag: str | None = None) -> None:
        for blob in artifact.blobs:
            self.blobs[cf.digest(blob)] = blob
        self.manifests[artifact.digest] = artifact.manifest
        if tag:
            self.manifests[tag] = artifact.manifest


@pytest.fixture
def registry() -> Iterator[_Registry]:
    server = _Registry()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()


def test_referrers_api_is_asked_and_the_fallback_tag_is_not(registry: _Registry) -> None:
    app = image(b"app\n")
    registry.put(app, "1")
    subject = cf.descriptor(cf.OCI_MANIFEST, app.manifest)
    sbom = cf.referrer(subject, "application/spdx+json", b"{}", {})
    registry.put(sbom)
    signature_of_sbom = cf.referrer(
        cf.descriptor(cf.OCI_MANIFEST, sbom.manifest),
        "application/vnd.dev.sigstore.bundle.v0.3+json",
        b"bundle",
        {},
    )
    registry.put(signature_of_sbom)
    host = f"127.0.0.1:{registry.server_address[1]}"
    client = RegistryClient(host)
    try:
        source = RegistrySource(client, [Reference.parse(f"{host}/app:1")])
        added = add_registry_extras(source, None, ExtrasFilter())
        assert [e.descriptor.digest for e in added] == [
            source.images()[1].descriptor.digest,
            source.images()[2].descriptor.digest,
        ]
        assert {str(e.descriptor.digest) for e in added} == {
            sbom.digest,
            signature_of_sbom.digest,
        }
        assert not any(path.endswith(f"sha256-{app.digest[7:]}") for path in registry.asked)
        only = RegistrySource(client, [Reference.parse(f"{host}/app:1")])
        kept = add_registry_extras(only, None, ExtrasFilter(types=("sbom",)))
        assert [str(e.descriptor.digest) for e in kept] == [sbom.digest]
    finally:
        client.close()
