"""Push compresses like docker, against the real registry, skopeo and dockerd: a docker
save archive arrives with gzip layers (or zstd ones), the image ID unchanged, and a second
push, from this cache or a fresh one (another machine), uploads nothing."""

from __future__ import annotations

import gzip
import hashlib
import json
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import Run
from tests.integration.conftest import _short_tmp
from tests.integration.peers import Dockerd, skopeo
from tests.integration.registry_peers import FaultProxy, Registry, Rule
from tests.integration.test_registry import (
    _ids,
    executable_layer,
    multi_platform_layout,
    runnable_archive,
)
from tests.isolation import own_registry_client

BUSYBOX = Path("/bin/busybox")
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    own_registry_client(tmp_path, monkeypatch)


@pytest.fixture
def registry() -> Iterator[Registry]:
    started = Registry(_short_tmp("arch-r-"), None, {})
    started.start()
    yield started
    started.stop()


@pytest.fixture
def proxy(registry: Registry) -> Iterator[FaultProxy]:
    started = FaultProxy(registry.host)
    yield started
    started.stop()


@pytest.fixture
def archive(tmp_path: Path) -> Path:
    base = executable_layer({"bin/busybox": BUSYBOX.read_bytes()})
    return runnable_archive(
        tmp_path / "apps.tar",
        {"reg/app:1": [base, executable_layer({"app.txt": b"app one\n" * 5000})]},
    )


def raw_manifest(ref: str) -> dict[str, object]:
    return json.loads(skopeo("inspect", "--tls-verify=false", "--raw", f"docker://{ref}"))  # type: ignore[no-any-return]


def blob(registry: Registry, repository: str, digest: str) -> bytes:
    import httpx

    url = f"http://{registry.host}/v2/{repository}/blobs/{digest}"
    return httpx.get(url, follow_redirects=True, timeout=60).content


def uploads(proxy: FaultProxy) -> int:
    """Upload requests the proxy saw (a rule that never fires counts them)."""
    return sum(1 for line in proxy.fired if "/blobs/uploads/" in line)


def counting(proxy: FaultProxy) -> None:
    for method in ("POST", "PATCH", "PUT"):
        proxy.add(Rule(method, r"/blobs/uploads/", "count", times=1_000_000))


def test_push_gzips_plain_layers_and_a_second_push_uploads_nothing(
    run: Run,
    registry: Registry,
    proxy: FaultProxy,
    archive: Path,
    dockerd: Dockerd,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ref = f"{proxy.host}/team/app:1"
    first = run("push", archive, "--tag", ref, "--json")
    assert first.code == 0, first.err
    summary = json.loads(first.out)
    assert summary["layers_compressed"] == 2
    manifest = raw_manifest(f"{registry.host}/team/app:1")
    layers = manifest["layers"]
    assert isinstance(layers, list)
    assert [layer["mediaType"] for layer in layers] == [
        "application/vnd.oci.image.layer.v1.tar+gzip"
    ] * 2
    config = json.loads(blob(registry, "team/app", manifest["config"]["digest"]))  # type: ignore[index]
    for layer, diff_id in zip(layers, config["rootfs"]["diff_ids"], strict=True):
        data = blob(registry, "team/app", layer["digest"])
        assert data[:4] == b"\x1f\x8b\x08\x00" and len(data) == layer["size"]
        assert "sha256:" + hashlib.sha256(gzip.decompress(data)).hexdigest() == diff_id
    assert summary["bytes_pushed"] < archive.stat().st_size  # compressed on the wire

    counting(proxy)
    again = run("push", archive, "--tag", ref, "--json")
    assert again.code == 0, again.err
    summary = json.loads(again.out)
    assert (summary["blobs_pushed"], summary["layers_compressed"], uploads(proxy)) == (0, 0, 0)

    # another machine (no cache): compresses, gets the same digests, finds them by HEAD
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "other-cache"))
    elsewhere = run("push", archive, "--tag", ref, "--json")
    assert elsewhere.code == 0, elsewhere.err
    summary = json.loads(elsewhere.out)
    assert (summary["blobs_pushed"], summary["layers_compressed"], uploads(proxy)) == (0, 2, 0)
    assert raw_manifest(f"{registry.host}/team/app:1") == manifest

    image = f"{registry.host}/team/app:1"
    dockerd.docker("pull", image)
    image_id = dockerd.docker("image", "inspect", "--format", "{{.Id}}", image).strip()
    assert image_id == _ids(run, archive)["reg/app:1"]
    assert dockerd.docker("run", "--rm", "--network", "none", image) == "app one\n" * 5000
    dockerd.docker("rmi", image)


def test_zstd_layers_skopeo_reads_and_the_pulled_bundle_loads_into_dockerd(
    run: Run,
    registry: Registry,
    archive: Path,
    dockerd: Dockerd,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ref = f"{registry.host}/z/app:1"
    pushed = run("push", archive, "--tag", ref, "--compress", "zstd")
    assert pushed.code == 0, pushed.err
    manifest = raw_manifest(ref)
    assert [layer["mediaType"] for layer in manifest["layers"]] == [  # type: ignore[attr-defined]
        "application/vnd.oci.image.layer.v1.tar+zstd"
    ] * 2
    inspected = json.loads(skopeo("inspect", "--tls-verify=false", f"docker://{ref}"))
    assert len(inspected["Layers"]) == 2

    bundle = tmp_path / "z.tar.zst"
    assert run("pull", ref, "-o", bundle).code == 0
    monkeypatch.setenv("DOCKER_HOST", dockerd.host)
    loaded = run("load", bundle)
    assert loaded.code == 0, loaded.err
    image_id = dockerd.docker("image", "inspect", "--format", "{{.Id}}", ref).strip()
    assert image_id == _ids(run, archive)["reg/app:1"]
    assert dockerd.docker("run", "--rm", "--network", "none", ref) == "app one\n" * 5000
    dockerd.docker("rmi", ref)


def test_a_registry_refusing_zstd_says_so_with_a_hint(
    run: Run, proxy: FaultProxy, archive: Path
) -> None:
    proxy.add(Rule("PUT", r"/manifests/", "status", status=400))
    refused = run("push", archive, "--tag", f"{proxy.host}/z/app:1", "--compress", "zstd")
    assert refused.code == 5
    lines = refused.err.strip().splitlines()
    assert len(lines) == 1 and "--compress gzip" in lines[0], refused.err


def test_an_index_names_its_rewritten_manifests(
    run: Run, registry: Registry, tmp_path: Path
) -> None:
    layout = multi_platform_layout(tmp_path / "multi")
    name = f"{registry.host}/multi/app:1"
    assert run("push", layout, "--tag", name, "--compress", "zstd").code == 0
    index = raw_manifest(name)
    assert index["mediaType"] == "application/vnd.oci.image.index.v1+json"
    for child in index["manifests"]:  # type: ignore[attr-defined]
        manifest = raw_manifest(f"{registry.host}/multi/app@{child['digest']}")
        (layer,) = manifest["layers"]  # type: ignore[misc]
        assert layer["mediaType"] == "application/vnd.oci.image.layer.v1.tar+zstd"
    every = tmp_path / "all.tar"
    assert run("pull", name, "-o", every, "--all-platforms", "--to", "oci").code == 0
    assert run("verify", every).code == 0


def docker_manifest_layout(folder: Path) -> tuple[Path, str]:
    """An OCI layout holding a Docker schema 2 manifest with one plain Docker layer."""
    blobs = folder / "blobs" / "sha256"
    blobs.mkdir(parents=True)

    def put(data: bytes) -> dict[str, object]:
        digest = hashlib.sha256(data).hexdigest()
        (blobs / digest).write_bytes(data)
        return {"digest": f"sha256:{digest}", "size": len(data)}

    layer = executable_layer({"bin/busybox": BUSYBOX.read_bytes()})
    config = json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "config": {"Cmd": ["/bin/busybox", "echo", "docker"]},
            "rootfs": {"type": "layers", "diff_ids": [put(layer)["digest"]]},
        }
    ).encode()
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
            "config": {
                "mediaType": "application/vnd.docker.container.image.v1+json",
                **put(config),
            },
            "layers": [{"mediaType": "application/vnd.docker.image.rootfs.diff.tar", **put(layer)}],
        }
    ).encode()
    top = {"mediaType": "application/vnd.docker.distribution.manifest.v2+json", **put(manifest)}
    top["annotations"] = {"org.opencontainers.image.ref.name": "1"}
    (folder / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [top]}))
    (folder / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    return folder, "sha256:" + hashlib.sha256(config).hexdigest()


def test_a_docker_manifest_keeps_its_type_with_gzip_and_becomes_oci_with_zstd(
    run: Run, registry: Registry, tmp_path: Path, dockerd: Dockerd
) -> None:
    layout, config = docker_manifest_layout(tmp_path / "docker")
    gzipped = f"{registry.host}/d/gzip:1"
    assert run("push", layout, "--tag", gzipped).code == 0
    manifest = raw_manifest(gzipped)
    assert manifest["mediaType"] == "application/vnd.docker.distribution.manifest.v2+json"
    assert manifest["config"]["digest"] == config  # type: ignore[index]
    (layer,) = manifest["layers"]  # type: ignore[misc]
    assert layer["mediaType"] == "application/vnd.docker.image.rootfs.diff.tar.gzip"

    zstd = f"{registry.host}/d/zstd:1"
    assert run("push", layout, "--tag", zstd, "--compress", "zstd").code == 0
    manifest = raw_manifest(zstd)
    assert manifest["mediaType"] == "application/vnd.oci.image.manifest.v1+json"
    assert manifest["config"] == {  # type: ignore[comparison-overlap]
        "mediaType": "application/vnd.oci.image.config.v1+json",
        "digest": config,
        "size": manifest["config"]["size"],  # type: ignore[index]
    }
    (layer,) = manifest["layers"]  # type: ignore[misc]
    assert layer["mediaType"] == "application/vnd.oci.image.layer.v1.tar+zstd"

    dockerd.docker("pull", gzipped)
    assert dockerd.docker("image", "inspect", "--format", "{{.Id}}", gzipped).strip() == config
    dockerd.docker("rmi", gzipped)


def test_copy_into_a_registry_compresses_as_push_does(
    run: Run, registry: Registry, archive: Path
) -> None:
    gzip_ref, plain_ref = f"{registry.host}/c/app:gz", f"{registry.host}/c/app:plain"
    assert run("copy", f"docker-archive:{archive}", f"docker://{gzip_ref}").code == 0
    kept = run("copy", f"docker-archive:{archive}", f"docker://{plain_ref}", "--compress", "none")
    assert kept.code == 0, kept.err
    types = {
        ref: {layer["mediaType"] for layer in raw_manifest(ref)["layers"]}
        for ref in (gzip_ref, plain_ref)
    }
    assert types[gzip_ref] == {"application/vnd.oci.image.layer.v1.tar+gzip"}
    assert types[plain_ref] <= {
        "application/vnd.oci.image.layer.v1.tar",
        "application/vnd.docker.image.rootfs.diff.tar",
    }


def test_repositories_share_layers_compressed_ahead_once_and_no_spool_is_left(
    run: Run, registry: Registry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Several repositories on one base: every plain layer is compressed once (ahead of the
    repository that needs it, or by it), the base is mounted into the later ones, every
    manifest names gzip layers that unpack to its diff_ids, and no temporary file is left."""
    from tests.factory import docker_save, random_layer

    spools = tmp_path / "spools"
    spools.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(spools))
    base = random_layer(3 * 1024 * 1024, seed=1)
    apps = [random_layer(200_000 * (i + 1), seed=10 + i) for i in range(3)]
    images = [([f"reg/app{i}:1"], [base, app]) for i, app in enumerate(apps)]
    images.append((["reg/other:1"], [random_layer(500_000, seed=20)]))
    archive = docker_save(tmp_path / "apps.tar", images)
    pushed = run("push", archive, "--to", f"{registry.host}/team", "--json")
    assert pushed.code == 0, pushed.err
    summary = json.loads(pushed.out)
    assert summary["layers_compressed"] == 5  # base, three apps, other: each once
    assert summary["blobs_mounted"] == 2  # the base, into app1 and app2
    for name in ("app0", "app1", "app2", "other"):
        manifest = raw_manifest(f"{registry.host}/team/reg/{name}:1")
        config = json.loads(blob(registry, f"team/reg/{name}", manifest["config"]["digest"]))  # type: ignore[index]
        for layer, diff_id in zip(manifest["layers"], config["rootfs"]["diff_ids"], strict=True):  # type: ignore[call-overload]
            assert layer["mediaType"] == "application/vnd.oci.image.layer.v1.tar+gzip"
            data = gzip.decompress(blob(registry, f"team/reg/{name}", layer["digest"]))
            assert "sha256:" + hashlib.sha256(data).hexdigest() == diff_id
    assert list(spools.iterdir()) == []
