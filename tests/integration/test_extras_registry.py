"""Signatures, attestations, SBOMs, referrers and other OCI artifacts travel with their
images: the real distribution registry (no referrers API: the fallback tag is real),
skopeo, the real dockerd."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from tests import cosign_format as cf
from tests.conftest import Run
from tests.extras_layout import image_of
from tests.factory import docker_save, layer
from tests.integration.oci_client import Client
from tests.integration.peers import Dockerd, require, skopeo
from tests.integration.registry_peers import Registry
from tests.isolation import own_registry_client


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    own_registry_client(tmp_path, monkeypatch)


class Published:
    """An image and everything beside it in one registry."""

    def __init__(self, registry: Registry, tmp_path: Path) -> None:
        self.host = registry.host
        self.client = Client(self.host)
        archive = docker_save(
            tmp_path / "app.tar",
            [(["app:1"], [layer({"app.txt": b"signed app\n"})])],
        )
        skopeo(
            "copy",
            "--dest-tls-verify=false",
            "--format=oci",
            f"docker-archive:{archive}:app:1",
            f"docker://{self.host}/app:1",
        )
        reply = self.client.manifest("app", "1")
        self.image = reply.headers["Docker-Content-Digest"]
        subject = {
            "mediaType": reply.headers["Content-Type"],
            "digest": self.image,
            "size": len(reply.content),
        }
        hexdigest = self.image[7:]
        self.key = cf.new_key("ecdsa")
        self.signature = cf.signature(self.key, f"{self.host}/app", self.image)
        self.client.push("app", self.signature, f"sha256-{hexdigest}.sig")
        self.attestation = cf.attestation(self.image)
        self.client.push("app", self.attestation, f"sha256-{hexdigest}.att")
        self.sbom = cf.referrer(
            subject, "application/spdx+json", b'{"spdxVersion":"SPDX-2.3"}', {"kind": "sbom"}
        )
        self.client.push("app", self.sbom)
        # no referrers API in this registry: a client like oras keeps the fallback tag
        assert self.client.referrers_api("app", self.image) == 404
        listed = {
            **cf.descriptor(cf.OCI_MANIFEST, self.sbom.manifest),
            "artifactType": "application/spdx+json",
            "annotations": {"kind": "sbom"},
        }
        index = cf.dumps(
            {
                "schemaVersion": 2,
                "mediaType": "application/vnd.oci.image.index.v1+json",
                "manifests": [listed],
            }
        )
        self.client.put_manifest(
            "app", f"sha256-{hexdigest}", index, "application/vnd.oci.image.index.v1+json"
        )
        # a signature on the SBOM: an extra of an extra
        self.sbom_signature = cf.signature(self.key, f"{self.host}/app", self.sbom.digest)
        self.client.push("app", self.sbom_signature, f"sha256-{self.sbom.digest[7:]}.sig")
        self.chart = cf.helm_chart("mychart")
        self.client.push("charts/mychart", self.chart, "0.1.0")
        self.notes = cf.oras_file("notes.txt", b"read me\n")
        self.client.push("files/notes", self.notes, "1")

    def tags(self) -> dict[str, str]:
        hexdigest = self.image[7:]
        return {
            "app:1": self.image,
            f"app:sha256-{hexdigest}.sig": self.signature.digest,
            f"app:sha256-{hexdigest}.att": self.attestation.digest,
            f"app:sha256-{self.sbom.digest[7:]}.sig": self.sbom_signature.digest,
            "charts/mychart:0.1.0": self.chart.digest,
            "files/notes:1": self.notes.digest,
        }


def _digest_of(client: Client, repository: str, reference: str) -> str:
    reply = client.manifest(repository, reference)
    assert reply.status_code == 200, f"{repository}:{reference}: {reply.status_code}"
    return str(reply.headers["Docker-Content-Digest"])


def _index_entries(bundle: Path) -> list[dict[str, object]]:
    raw = subprocess.run(
        [require("zstd"), "-dc", str(bundle)], check=True, capture_output=True
    ).stdout
    import io
    import tarfile

    with tarfile.open(fileobj=io.BytesIO(raw)) as tar:
        index = json.loads(tar.extractfile("index.json").read())
        docker = json.loads(tar.extractfile("manifest.json").read())
    assert len(docker) == 1, docker  # extras and the chart are never in docker's list
    return list(index["manifests"])


def test_extras_travel_from_registry_to_registry(
    run: Run, start: Callable[..., Registry], tmp_path: Path, dockerd: Dockerd
) -> None:
    origin = start()
    published = Published(origin, tmp_path)
    bundle = tmp_path / "b.tar.zst"
    chart, notes = f"{origin.host}/charts/mychart:0.1.0", f"{origin.host}/files/notes:1"
    got = run("pull", f"{origin.host}/app:1", chart, notes, "-o", bundle)
    assert got.code == 0, got.err
    entries = _index_entries(bundle)
    by_digest = {e["digest"]: e for e in entries}
    for digest in (
        published.signature.digest,
        published.attestation.digest,
        published.sbom.digest,
        published.sbom_signature.digest,
    ):
        assert digest in by_digest, digest
    sbom_entry = by_digest[published.sbom.digest]
    assert sbom_entry["annotations"] == {"dev.archiver.subject": published.image}
    assert sbom_entry["artifactType"] == "application/spdx+json"
    sig_entry = by_digest[published.signature.digest]
    assert sig_entry["annotations"]["org.opencontainers.image.ref.name"] == (
        f"sha256-{published.image[7:]}.sig"
    )
    nested = by_digest[published.sbom_signature.digest]
    assert nested["annotations"]["dev.archiver.subject"] == published.sbom.digest

    listed = json.loads(run("ls", bundle, "--json").out)
    assert [row["repository"] for row in listed] == [f"{origin.host}/app"]
    kinds = sorted(e["kind"] for e in listed[0]["extras"])
    assert kinds == ["att", "sbom", "sig", "sig"]
    table = run("ls", bundle).out
    assert "EXTRAS" in table and "2 sig, 1 att, 1 sbom" in table
    shown = json.loads(run("inspect", bundle, f"{origin.host}/app:1").out)[0]
    assert {e["digest"] for e in shown["Extras"]} == {
        published.signature.digest,
        published.attestation.digest,
        published.sbom.digest,
        published.sbom_signature.digest,
    }

    # into another registry, under another namespace: every digest unchanged
    target = start()
    pushed = run("push", bundle, "--to", f"{target.host}/copy")
    assert pushed.code == 0, pushed.err
    there = Client(target.host)
    for name, digest in published.tags().items():
        repository, _, tag = name.partition(":")
        assert _digest_of(there, f"copy/{repository}", tag) == digest, name
    assert _digest_of(there, "copy/app", published.sbom.digest) == published.sbom.digest
    fallback = there.manifest("copy/app", f"sha256-{published.image[7:]}").json()
    assert [m["digest"] for m in fallback["manifests"]] == [published.sbom.digest]
    raw = skopeo(
        "inspect",
        "--raw",
        "--tls-verify=false",
        f"docker://{target.host}/copy/app:sha256-{published.image[7:]}.sig",
    )
    assert cf.digest(raw.encode()) == published.signature.digest

    # a push again merges into the fallback tag, never drops what another client put there
    other = cf.referrer(
        {"mediaType": cf.OCI_MANIFEST, "digest": published.image, "size": 1},
        "application/vnd.example+json",
        b"other",
        {},
    )
    there.push("copy/app", other)
    kept = cf.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": [cf.descriptor(cf.OCI_MANIFEST, other.manifest)],
        }
    )
    there.put_manifest(
        "copy/app",
        f"sha256-{published.image[7:]}",
        kept,
        "application/vnd.oci.image.index.v1+json",
    )
    assert run("push", bundle, "--to", f"{target.host}/copy").code == 0
    fallback = there.manifest("copy/app", f"sha256-{published.image[7:]}").json()
    assert [m["digest"] for m in fallback["manifests"]] == [other.digest, published.sbom.digest]

    # the bundle still loads into docker as it is, extras and all
    # the signatures verify offline, and archiver's own load leaves the extras out
    pub = tmp_path / "cosign.pub"
    pub.write_bytes(cf.public_pem(published.key))
    checked = run("verify", bundle, "--key", pub, "--image", f"{origin.host}/app:1")
    assert checked.code == 0, checked.err
    assert f"{origin.host}/app:1: signed by {pub}" in checked.out
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DOCKER_HOST", dockerd.host)
        into_daemon = run("load", bundle)
    assert into_daemon.code == 0, into_daemon.err
    assert "4 signatures, attestations, SBOMs or referrers are not loaded" in into_daemon.err
    plain_tar = tmp_path / "b.tar"
    subprocess.run([require("zstd"), "-dcq", str(bundle), "-o", str(plain_tar)], check=True)
    loaded = dockerd.docker("load", "-i", str(plain_tar))
    assert f"{origin.host}/app:1" in loaded


def test_no_extras_and_type_filter(
    run: Run, start: Callable[..., Registry], tmp_path: Path
) -> None:
    origin = start()
    published = Published(origin, tmp_path)
    plain = tmp_path / "plain.tar.zst"
    assert run("pull", f"{origin.host}/app:1", "-o", plain, "--no-extras").code == 0
    assert [e["digest"] for e in _index_entries(plain)] == [published.image]
    only = tmp_path / "sbom.tar.zst"
    got = run("pull", f"{origin.host}/app:1", "-o", only, "--extras", "application/spdx+json")
    assert got.code == 0, got.err
    assert {e["digest"] for e in _index_entries(only)} == {published.image, published.sbom.digest}


def test_copy_between_registries_takes_extras(
    run: Run, start: Callable[..., Registry], tmp_path: Path
) -> None:
    origin, target = start(), start()
    published = Published(origin, tmp_path)
    got = run("copy", f"docker://{origin.host}/app:1", f"docker://{target.host}/mirror/app:1")
    assert got.code == 0, got.err
    there = Client(target.host)
    hexdigest = published.image[7:]
    assert _digest_of(there, "mirror/app", f"sha256-{hexdigest}.sig") == published.signature.digest
    assert (
        _digest_of(there, "mirror/app", f"sha256-{hexdigest}.att") == published.attestation.digest
    )
    assert _digest_of(there, "mirror/app", published.sbom.digest) == published.sbom.digest


def test_platform_selection_keeps_only_the_kept_platforms_extras(
    run: Run, start: Callable[..., Registry], tmp_path: Path
) -> None:
    origin = start()
    client = Client(origin.host)
    key = cf.new_key("rsa")
    children, signatures = [], {}
    for architecture in ("amd64", "arm64"):
        platform_image = image_of(layer({"arch.txt": architecture.encode()}), architecture)
        client.push("multi", platform_image)
        children.append(
            {
                **cf.descriptor(cf.OCI_MANIFEST, platform_image.manifest),
                "platform": {"os": "linux", "architecture": architecture},
            }
        )
        signature = cf.signature(key, f"{origin.host}/multi", platform_image.digest)
        client.push("multi", signature, f"sha256-{platform_image.digest[7:]}.sig")
        signatures[architecture] = signature.digest
    index = cf.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": children,
        }
    )
    client.put_manifest("multi", "1", index, "application/vnd.oci.image.index.v1+json")
    index_signature = cf.signature(key, f"{origin.host}/multi", cf.digest(index))
    client.push("multi", index_signature, f"sha256-{cf.digest(index)[7:]}.sig")
    bundle = tmp_path / "arm.tar.zst"
    got = run("pull", f"{origin.host}/multi:1", "--platform", "linux/arm64", "-o", bundle)
    assert got.code == 0, got.err
    digests = {e["digest"] for e in _index_entries(bundle)}
    assert signatures["arm64"] in digests and index_signature.digest in digests
    assert signatures["amd64"] not in digests


def test_bad_referrers_are_named_in_one_line(
    run: Run, start: Callable[..., Registry], tmp_path: Path
) -> None:
    origin = start()
    published = Published(origin, tmp_path)
    hexdigest = published.image[7:]
    missing = cf.referrer(
        {"mediaType": cf.OCI_MANIFEST, "digest": published.image, "size": 1},
        "application/vnd.example+json",
        b"never pushed",
        {},
    )
    fallback = cf.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": [cf.descriptor(cf.OCI_MANIFEST, missing.manifest)],
        }
    )
    # the registry checks an index's children: put the fallback tag of an image that is
    # there, naming a manifest pushed under its digest and then deleted
    published.client.push("app", missing)
    published.client.put_manifest(
        "app", f"sha256-{hexdigest}", fallback, "application/vnd.oci.image.index.v1+json"
    )
    import httpx

    deleted = httpx.delete(f"http://{origin.host}/v2/app/manifests/{missing.digest}")
    assert deleted.status_code == 202, deleted.text
    got = run("pull", f"{origin.host}/app:1", "-o", tmp_path / "x.tar.zst")
    assert got.code == 4
    assert f"names manifest {missing.digest}, which is not there" in got.err
    assert got.err.count("\n") == 1

    # a referrer listed for an image whose subject is another
    stranger = cf.referrer(
        {"mediaType": cf.OCI_MANIFEST, "digest": published.signature.digest, "size": 1},
        "application/vnd.example+json",
        b"about the signature",
        {},
    )
    published.client.push("app", stranger)
    wrong = cf.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": [cf.descriptor(cf.OCI_MANIFEST, stranger.manifest)],
        }
    )
    published.client.put_manifest(
        "app", f"sha256-{hexdigest}", wrong, "application/vnd.oci.image.index.v1+json"
    )
    got = run("pull", f"{origin.host}/app:1", "-o", tmp_path / "y.tar.zst")
    assert got.code == 2
    assert f"but its subject is {published.signature.digest}" in got.err


def test_push_compresses_only_images_nothing_names(
    run: Run, start: Callable[..., Registry], tmp_path: Path
) -> None:
    """A signed image with plain layers keeps its digest (its signature and SBOM name it);
    an unsigned one beside it is compressed as push compresses."""
    from tests.extras_layout import signed_layout

    archive, app, signature = signed_layout(tmp_path / "oci", cf.new_key("ecdsa"), other=True)
    target = start()
    pushed = run("push", archive, "--to", f"{target.host}/team")
    assert pushed.code == 0, pushed.err
    there = Client(target.host)
    assert _digest_of(there, "team/app", "1") == app.digest
    assert _digest_of(there, "team/app", f"sha256-{app.digest[7:]}.sig") == signature.digest
    tool = json.loads(there.manifest("team/tool", "1").content)
    assert [layer["mediaType"] for layer in tool["layers"]] == [
        "application/vnd.oci.image.layer.v1.tar+gzip"
    ]


def test_serve_answers_the_extras_of_a_pulled_bundle(
    run: Run, start: Callable[..., Registry], tmp_path: Path
) -> None:
    """The referrers API of ``archiver serve`` lists the SBOM; skopeo reads the .sig tag."""
    import httpx

    from tests.integration.test_serve import Serving

    origin = start()
    published = Published(origin, tmp_path)
    bundle = tmp_path / "app.tar.zst"
    assert run("pull", f"{origin.host}/app:1", "-o", bundle).code == 0
    server = Serving(tmp_path / "serve.log", str(bundle))
    try:
        url = f"http://{server.host}/v2/app/referrers/{published.image}"
        listed = httpx.get(url).json()["manifests"]
        assert published.sbom.digest in [m["digest"] for m in listed]
        only = httpx.get(url, params={"artifactType": "application/spdx+json"}).json()
        assert [m["digest"] for m in only["manifests"]] == [published.sbom.digest]
        tag = f"sha256-{published.image[7:]}.sig"
        raw = skopeo("inspect", "--tls-verify=false", "--raw", f"docker://{server.host}/app:{tag}")
        assert cf.digest(raw.encode()) == published.signature.digest
    finally:
        assert server.stop() == 0
