"""Builders of hostile archives for the parsing tests, and the CLI run as a user runs it.

``archiver(...)`` starts ``python -m archiver`` in a child process with a cap on its address
space, so a refusal is checked as the user sees it (one line, exit code, no traceback) and an
unbounded read fails the test instead of the machine. The tests here check the builders:
what they write unchanged is a valid image.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import resource
import subprocess
import sys
import tarfile
from dataclasses import dataclass
from pathlib import Path

from tests import factory
from tests.conftest import ROOT

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
MEMORY_CAP = 1536 * 1024 * 1024
"""Address space of the child: reading a 6 GiB file whole fails under it."""

Files = dict[str, bytes]


@dataclass
class Result:
    code: int
    out: str
    err: str


def _cap_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_CAP, MEMORY_CAP))


def archiver(*args: object, timeout: float = 60) -> Result:
    """Run the CLI of this checkout in a child process (memory capped)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-m", "archiver", *(str(a) for a in args)],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,  # -m puts the working directory first on sys.path
        timeout=timeout,
        preexec_fn=_cap_memory,
        check=False,
    )
    return Result(done.returncode, done.stdout, done.stderr)


def assert_refused(result: Result, code: int, *needles: str) -> str:
    """One ``Error:`` line on stderr holding every needle, exit ``code``; the line."""
    assert "Traceback" not in result.err, result.err[-3000:]
    lines = result.err.splitlines()
    assert len(lines) == 1, result.err[-3000:]
    assert lines[0].startswith("Error: "), lines[0]
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    assert result.code == code, (result.code, lines[0])
    return lines[0]


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def blob_name(data: bytes) -> str:
    return "blobs/sha256/" + hashlib.sha256(data).hexdigest()


def descriptor(media_type: str, data: bytes, **extra: object) -> dict[str, object]:
    return {"mediaType": media_type, "digest": sha256(data), "size": len(data), **extra}


def dump(data: object) -> bytes:
    return json.dumps(data, sort_keys=True).encode()


def config_json(layer: bytes) -> bytes:
    return dump(
        {
            "architecture": "amd64",
            "os": "linux",
            "rootfs": {"type": "layers", "diff_ids": [sha256(layer)]},
        }
    )


def manifest_json(config: bytes, layer: bytes) -> bytes:
    return dump(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": descriptor(OCI_CONFIG, config),
            "layers": [descriptor(OCI_LAYER, layer)],
        }
    )


def index_json(*children: dict[str, object]) -> bytes:
    return dump({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": list(children)})


def oci_image(
    config: bytes | None = None, manifest: bytes | None = None, name: str = "demo/a:1"
) -> Files:
    """An OCI layout of one image; ``config`` or ``manifest`` replace the built ones."""
    layer = factory.layer({"hello.txt": b"hello\n"})
    config = config_json(layer) if config is None else config
    manifest = manifest_json(config, layer) if manifest is None else manifest
    top = descriptor(OCI_MANIFEST, manifest, annotations={"io.containerd.image.name": name})
    return {
        "oci-layout": b'{"imageLayoutVersion": "1.0.0"}',
        "index.json": index_json(top),
        blob_name(layer): layer,
        blob_name(config): config,
        blob_name(manifest): manifest,
    }


def hybrid_image(name: str = "docker.io/demo/a:1") -> Files:
    """``oci_image`` with docker's ``manifest.json`` beside it, as Docker ≥ 25 writes."""
    files = oci_image(name=name)
    index = json.loads(files["index.json"])
    manifest = json.loads(files[blob_name_of(index["manifests"][0])])
    entry = {
        "Config": blob_name_of(manifest["config"]),
        "RepoTags": [name.removeprefix("docker.io/")],
        "Layers": [blob_name_of(layer) for layer in manifest["layers"]],
    }
    files["manifest.json"] = dump([entry])
    return files


def blob_name_of(desc: dict[str, str]) -> str:
    return "blobs/sha256/" + desc["digest"].removeprefix("sha256:")


def write_tar(path: Path, files: Files) -> Path:
    with tarfile.open(path, "w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mtime = len(data), 0
            tar.addfile(info, io.BytesIO(data))
    return path


def test_the_built_layout_is_an_image(tmp_path: Path) -> None:
    archive = write_tar(tmp_path / "good.tar", oci_image())
    result = archiver("verify", archive)
    assert result.code == 0, result.err
    listed = archiver("ls", archive)
    assert listed.code == 0 and "demo/a" in listed.out, listed.err


def test_the_built_hybrid_is_an_image(tmp_path: Path) -> None:
    archive = write_tar(tmp_path / "good.tar", hybrid_image())
    result = archiver("verify", archive)
    assert result.code == 0, result.err


def test_a_refusal_is_one_line() -> None:
    result = archiver("ls", "/nonexistent/archive.tar")
    assert_refused(result, 4, "/nonexistent/archive.tar")
