"""A minimal distribution client for the tests, as oras or cosign talk to a registry
(plain HTTP on loopback): blobs uploaded whole, manifests put by tag or digest."""

from __future__ import annotations

import httpx

from tests.cosign_format import Artifact, digest


class Client:
    def __init__(self, host: str) -> None:
        self.base = f"http://{host}/v2"

    def put_blob(self, repository: str, data: bytes) -> None:
        started = httpx.post(f"{self.base}/{repository}/blobs/uploads/")
        assert started.status_code == 202, started.text
        location = started.headers["Location"]
        url = str(started.url.join(location))
        separator = "&" if "?" in url else "?"
        done = httpx.put(f"{url}{separator}digest={digest(data)}", content=data)
        assert done.status_code == 201, done.text

    def put_manifest(self, repository: str, reference: str, data: bytes, media_type: str) -> None:
        reply = httpx.put(
            f"{self.base}/{repository}/manifests/{reference}",
            content=data,
            headers={"Content-Type": media_type},
        )
        assert reply.status_code == 201, reply.text

    def push(self, repository: str, artifact: Artifact, reference: str | None = None) -> str:
        for blob in artifact.blobs:
            self.put_blob(repository, blob)
        media_type = "application/vnd.oci.image.manifest.v1+json"
        self.put_manifest(repository, reference or artifact.digest, artifact.manifest, media_type)
        return artifact.digest

    def manifest(self, repository: str, reference: str) -> httpx.Response:
        return httpx.get(
            f"{self.base}/{repository}/manifests/{reference}",
            headers={
                "Accept": "application/vnd.oci.image.manifest.v1+json, "
                "application/vnd.oci.image.index.v1+json, "
                "application/vnd.docker.distribution.manifest.v2+json, "
                "application/vnd.docker.distribution.manifest.list.v2+json"
            },
        )

    def referrers_api(self, repository: str, subject: str) -> int:
        return httpx.get(f"{self.base}/{repository}/referrers/{subject}").status_code
