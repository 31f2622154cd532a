"""What a sync list says of single images, against the real distribution registry: the
platforms each item names, ``exclude-extras``, Hauler's ``rewrite``, and ``--no-extras`` /
``--extras`` as pull takes them; into a bundle and into a second registry."""

from __future__ import annotations

import io
import json
import subprocess
import tarfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from archiver.blobs.zstd_reader import SeekableReader
from tests import cosign_format as cf
from tests.conftest import Run
from tests.extras_layout import image_of
from tests.factory import layer
from tests.integration.oci_client import Client
from tests.integration.peers import require
from tests.integration.registry_peers import Registry
from tests.isolation import own_registry_client

INDEX = "application/vnd.oci.image.index.v1+json"


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    own_registry_client(tmp_path, monkeypatch)


class Signed:
    """A two-platform image (amd64, arm64) in ``repository``, each platform image and the
    index signed with cosign's tags."""

    def __init__(self, client: Client, host: str, repository: str) -> None:
        key = cf.new_key("ecdsa")
        self.children: dict[str, str] = {}
        self.signatures: dict[str, str] = {}
        entries = []
        for architecture in ("amd64", "arm64"):
            image = image_of(
                layer({"seed.txt": f"{repository} {architecture}".encode()}),
                architecture,
                gzipped=True,
            )
            client.push(repository, image)
            self.children[architecture] = image.digest
            entries.append(
                {
                    **cf.descriptor(cf.OCI_MANIFEST, image.manifest),
                    "platform": {"os": "linux", "architecture": architecture},
                }
            )
            signature = cf.signature(key, f"{host}/{repository}", image.digest)
            client.push(repository, signature, f"sha256-{image.digest[7:]}.sig")
            self.signatures[architecture] = signature.digest
        index = cf.dumps({"schemaVersion": 2, "mediaType": INDEX, "manifests": entries})
        client.put_manifest(repository, "1", index, INDEX)
        self.digest = cf.digest(index)
        signature = cf.signature(key, f"{host}/{repository}", self.digest)
        client.push(repository, signature, f"sha256-{self.digest[7:]}.sig")
        self.signatures["index"] = signature.digest


def _contents(bundle: Path) -> tuple[dict[str, str], set[str]]:
    """The names in a bundle's index.json (name: digest) and the digests of its blobs."""
    raw = subprocess.run(
        [require("zstd"), "-dc", str(bundle)], check=True, capture_output=True
    ).stdout
    with tarfile.open(fileobj=io.BytesIO(raw)) as tar:
        index = json.loads(tar.extractfile("index.json").read())  # type: ignore[union-attr]
        blobs = {
            "sha256:" + name.rsplit("/", 1)[1]
            for name in tar.getnames()
            if name.startswith("blobs/sha256/")
        }
    names = {
        e["annotations"].get("io.containerd.image.name", e["digest"]): e["digest"]
        for e in index["manifests"]
    }
    return names, blobs


@pytest.fixture
def published(start: Callable[..., Registry], tmp_path: Path) -> tuple[str, Signed, Signed]:
    origin = start()
    client = Client(origin.host)
    return origin.host, Signed(client, origin.host, "multi"), Signed(client, origin.host, "other")


def _hauler(tmp_path: Path, host: str) -> Path:
    path = tmp_path / "hauler.yaml"
    path.write_text(f"""\
apiVersion: content.hauler.cattle.io/v1
kind: Images
metadata:
  name: per-image
  annotations:
    hauler.dev/registry: {host}
    hauler.dev/platform: linux/arm64
spec:
  images:
    - name: multi:1
      platform: linux/arm64
    - name: other:1
      rewrite: /renamed/other
      exclude-extras: true
""")
    return path


def test_each_item_keeps_its_platforms_extras_and_name_in_a_bundle(
    run: Run, published: tuple[str, Signed, Signed], tmp_path: Path
) -> None:
    host, multi, other = published
    listed = _hauler(tmp_path, host)
    out = tmp_path / "out.tar.zst"
    first = run("sync", listed, "-o", out, "--platform", "linux/amd64")
    assert first.code == 0, first.err
    names, blobs = _contents(out)
    # the rewritten name, the digest the registry gives the image
    assert names[f"{host}/renamed/other:1"] == other.digest
    assert f"{host}/other:1" not in names
    assert names[f"{host}/multi:1"] == multi.digest
    # multi keeps what its item names (arm64), other what the command says (amd64: it
    # wins over the list's hauler.dev/platform annotation, as in Hauler)
    assert multi.children["arm64"] in blobs and multi.children["amd64"] not in blobs
    assert other.children["amd64"] in blobs and other.children["arm64"] not in blobs
    # multi's extras for what it keeps come along; other's (exclude-extras) stay behind
    digests = set(names.values())
    assert {multi.signatures["arm64"], multi.signatures["index"]} <= digests
    assert multi.signatures["amd64"] not in digests
    assert not set(other.signatures.values()) & digests
    assert run("verify", out).code == 0
    # the same list again: nothing new, the bundle left byte-identical
    before = out.read_bytes()
    again = run("sync", listed, "-o", out, "--platform", "linux/amd64")
    assert again.code == 0, again.err
    assert again.out.splitlines()[-1].startswith(f"Nothing new: {out} left as it was")
    assert out.read_bytes() == before
    # --no-extras leaves every extra behind; --extras TYPE only those of that kind
    bare = tmp_path / "bare.tar.zst"
    assert run("sync", listed, "-o", bare, "--no-extras").code == 0
    names, blobs = _contents(bare)
    assert set(names) == {f"{host}/multi:1", f"{host}/renamed/other:1"}
    # without --platform, other keeps the annotation's platform
    assert other.children["arm64"] in blobs and other.children["amd64"] not in blobs
    both = run("sync", listed, "-o", bare, "--no-extras", "--extras", "sig")
    assert both.code == 2 and "--no-extras and --extras TYPE contradict" in both.err


def test_a_list_asking_for_more_platforms_than_the_bundle_has_fetches_them(
    run: Run,
    published: tuple[str, Signed, Signed],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    host, multi, _ = published
    listed = tmp_path / "list.yaml"
    listed.write_text(f"{host}:\n  images:\n    multi: ['1']\n")
    out = tmp_path / "out.tar.zst"
    first = run("sync", listed, "-o", out, "--platform", "linux/amd64")
    assert first.code == 0, first.err
    _, blobs = _contents(out)
    assert multi.children["amd64"] in blobs and multi.children["arm64"] not in blobs
    # the same index digest, but the bundle lacks arm64: not "nothing new"
    wider = run("sync", listed, "-o", out, "--platform", "linux/amd64,linux/arm64")
    assert wider.code == 0, wider.err
    assert f"Updating {host}/multi:1" in wider.out
    names, blobs = _contents(out)
    assert names[f"{host}/multi:1"] == multi.digest
    assert {multi.children["amd64"], multi.children["arm64"]} <= blobs
    # the signatures came along with the images they sign, the new platform's too
    assert set(multi.signatures.values()) <= set(names.values())
    assert run("verify", out).code == 0
    # and now it has both, the same again changes nothing, and reads the bundle once
    before = out.read_bytes()
    opened: list[str] = []
    reader = SeekableReader.__init__

    def opening(self: SeekableReader, source: Any, frames: Any, origin: str) -> None:
        opened.append(origin)
        reader(self, source, frames, origin)

    monkeypatch.setattr(SeekableReader, "__init__", opening)
    again = run("sync", listed, "-o", out, "--platform", "linux/amd64,linux/arm64")
    assert again.code == 0 and out.read_bytes() == before
    assert opened.count(str(out)) == 1  # its names and its index's platforms: one open


def test_each_item_keeps_its_platforms_extras_and_name_in_a_mirror(
    run: Run,
    published: tuple[str, Signed, Signed],
    start: Callable[..., Registry],
    tmp_path: Path,
) -> None:
    host, multi, other = published
    listed = _hauler(tmp_path, host)
    mirror = start()
    target = Client(mirror.host)
    done = run("sync", listed, "--to", f"{mirror.host}/copy", "--platform", "linux/amd64")
    assert done.code == 0, done.err

    def status(repository: str, reference: str) -> int:
        return target.manifest(f"copy/{repository}", reference).status_code

    # one platform kept: the tag names its manifest (as docker pushes it), digest unchanged
    assert (
        target.manifest("copy/renamed/other", "1").headers["Docker-Content-Digest"]
        == (other.children["amd64"])
    )
    assert status("other", "1") == 404
    assert status("multi", multi.children["arm64"]) == 200
    assert status("multi", multi.children["amd64"]) == 404
    assert status("renamed/other", other.children["amd64"]) == 200
    assert status("renamed/other", other.children["arm64"]) == 404
    assert status("multi", f"sha256-{multi.children['arm64'][7:]}.sig") == 200
    assert status("multi", f"sha256-{multi.children['amd64'][7:]}.sig") == 404
    assert status("renamed/other", f"sha256-{other.digest[7:]}.sig") == 404
    again = run(
        "sync", listed, "--to", f"{mirror.host}/copy", "--platform", "linux/amd64", "--json"
    )
    assert again.code == 0, again.err
    summary = json.loads(again.out)
    assert (summary["added"], len(summary["kept"])) == ([], 2)
