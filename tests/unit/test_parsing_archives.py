"""Hostile archives beyond bad JSON: parts manifests of the wrong shape, an inventory too
big to read or with duplicates, references with a newline or non-ASCII characters, unsafe
paths in manifest.json that nothing uses, and an index that fans out to the same child.
Each ends in one line naming the file, the right exit code, no traceback, memory bounded."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from archiver.engine import inventory
from tests import factory
from tests.unit.test_parsing_kit import (
    OCI_INDEX,
    OCI_MANIFEST,
    Result,
    archiver,
    assert_refused,
    blob_name,
    descriptor,
    dump,
    hybrid_image,
    index_json,
    oci_image,
    sha256,
    write_tar,
)

# --- parts manifests: the shape is checked before anything is read from it ---


@pytest.mark.parametrize("body", [b"[1, 2]", b'"parts"', b"7", b"null", b'{"format": 1}'])
def test_parts_manifest_of_the_wrong_shape(body: bytes, tmp_path: Path) -> None:
    manifest = tmp_path / "b.tar.zst.parts.json"
    manifest.write_bytes(body)
    result = archiver("ls", manifest)
    assert_refused(result, 2, str(manifest), "parts manifest")


# --- inventories: size before reading, duplicates in linear time ---


def _inventory(tmp_path: Path, digests: list[str], duplicate: str | None = None) -> Path:
    """A valid inventory of ``digests``; ``duplicate`` listed a second time in its blobs
    (before its checksum is checked: that would be the next refusal)."""
    held = inventory.Inventory("archive", "x", frozenset(digests), frozenset(), frozenset(), ())
    data = json.loads(held.to_json())
    if duplicate is not None:
        data["blobs"].append(duplicate)
    path = tmp_path / "base.json"
    path.write_text(json.dumps(data))
    return path


def _pack_with_base(tmp_path: Path, base: Path) -> tuple[Path, Result]:
    source = write_tar(tmp_path / "in.tar", oci_image())
    out = tmp_path / "out.tar.zst"
    return out, archiver("pack", source, "-o", out, "--base", base)


def test_a_sparse_inventory_is_refused_by_its_size(tmp_path: Path) -> None:
    huge = tmp_path / "base.json"
    with huge.open("wb") as file:
        file.write(b'{"format": "archiver-inventory", "blobs": ["')
        file.truncate(6 * 1024**3)  # 6 GiB, sparse: read whole it overruns the memory cap
    out, result = _pack_with_base(tmp_path, huge)
    assert_refused(result, 2, str(huge), "too large for an inventory")
    assert not out.exists()


def test_a_large_inventory_is_checked_in_linear_time(tmp_path: Path) -> None:
    """Items that do not sort (numbers and strings) made uniqueItems compare every pair:
    10k of them took 7 to 16 s; the schema now leaves uniqueness to a set."""
    held = inventory.Inventory("archive", "x", frozenset(), frozenset(), frozenset(), ())
    data = json.loads(held.to_json())
    data["blobs"] = [i if i % 2 else str(i) for i in range(20_000)]
    base = tmp_path / "base.json"
    base.write_text(json.dumps(data))
    started = time.monotonic()
    _, result = _pack_with_base(tmp_path, base)
    assert_refused(result, 2, str(base), "$.blobs", "is not of type 'string'")
    assert time.monotonic() - started < 15


def test_a_large_valid_inventory_is_read(tmp_path: Path) -> None:
    base = _inventory(tmp_path, [sha256(str(i).encode()) for i in range(20_000)])
    out, result = _pack_with_base(tmp_path, base)
    assert result.code == 0, result.err
    assert out.exists()


def test_duplicates_in_an_inventory_are_one_line(tmp_path: Path) -> None:
    digests = [sha256(str(i).encode()) for i in range(5_000)]
    base = _inventory(tmp_path, digests, duplicate=digests[42])
    out, result = _pack_with_base(tmp_path, base)
    assert_refused(result, 2, str(base), "$.blobs", "duplicate")
    assert not out.exists()


# --- references: ASCII and whole, as docker's grammar ---

BAD_TAGS = ["demo/a:1\n", "demo/a\n:1", "demo/a:tåg", "demo/a:v\u0661"]


@pytest.mark.parametrize("tag", BAD_TAGS)
@pytest.mark.parametrize("verb", ["ls", "verify"])
def test_repo_tags_refused(tag: str, verb: str, tmp_path: Path) -> None:
    archive = factory.docker_save(tmp_path / "save.tar", [([tag], [factory.layer({"a": b"a"})])])
    result = archiver(verb, archive)
    line = assert_refused(result, 2, str(archive), "manifest.json[0]: RepoTags", "invalid")
    assert repr(tag)[1:-1] in line  # shown escaped, on its one line
    assert result.out == ""


@pytest.mark.parametrize("name", ["docker.io/demo/a:1\n", "docker.io/demo/a:tåg"])
def test_layout_names_refused(name: str, tmp_path: Path) -> None:
    archive = write_tar(tmp_path / "layout.tar", oci_image(name=name))
    result = archiver("ls", archive)
    assert_refused(result, 2, str(archive), "index.json", "io.containerd.image.name")


# --- manifest.json paths: checked whether they are used or not ---

UNSAFE = [("../../../etc/passwd", "'..' component"), ("/etc/passwd", "absolute path")]


@pytest.mark.parametrize("path, why", UNSAFE)
@pytest.mark.parametrize("field", ["Layers", "Config"])
@pytest.mark.parametrize("verb", ["ls", "verify"])
def test_unsafe_paths_in_manifest_json(
    path: str, why: str, field: str, verb: str, tmp_path: Path
) -> None:
    files = hybrid_image()
    entries = json.loads(files["manifest.json"])
    entries[0][field] = [path] if field == "Layers" else path
    files["manifest.json"] = dump(entries)
    archive = write_tar(tmp_path / "hybrid.tar", files)
    result = archiver(verb, archive)
    assert_refused(result, 2, str(archive), f"manifest.json[0]: {field}", why)


def test_unsafe_path_in_a_directory_layout(tmp_path: Path) -> None:
    """A layer path that is a link out of the directory, named but not used."""
    files = hybrid_image()
    entries = json.loads(files["manifest.json"])
    entries[0]["Layers"] = ["blobs/sha256/escape"]
    files["manifest.json"] = dump(entries)
    root = tmp_path / "layout"
    for name, data in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    os.symlink("/etc/passwd", root / "blobs/sha256/escape")
    result = archiver("verify", root)
    assert_refused(result, 2, str(root), "leaves the directory")


# --- indexes: each child walked once, however many paths lead to it ---


def _fan_out(levels: int, width: int, files: dict[str, bytes]) -> bytes:
    """``levels`` indexes, each listing the one below ``width`` times: width**levels paths."""
    top = json.loads(files["index.json"])["manifests"][0]
    child = descriptor(OCI_MANIFEST, files[blob_name_of_digest(top["digest"])])
    for _ in range(levels):
        index = index_json(*[child] * width)
        files[blob_name(index)] = index
        child = descriptor(OCI_INDEX, index)
    return index


def blob_name_of_digest(digest: str) -> str:
    return "blobs/sha256/" + digest.removeprefix("sha256:")


@pytest.mark.parametrize("kind", ["oci", "hybrid"])
def test_fan_out_index_walks_each_child_once(kind: str, tmp_path: Path) -> None:
    files = oci_image() if kind == "oci" else hybrid_image()
    top = _fan_out(7, 16, files)  # 16**7 paths to one manifest
    files["index.json"] = index_json(descriptor(OCI_INDEX, top))
    archive = write_tar(tmp_path / f"{kind}.tar", files)
    assert len(archive.read_bytes()) < 100_000
    for verb in ("ls", "verify"):
        result = archiver(verb, archive, timeout=30)
        assert result.code == 0, result.err
        assert "Traceback" not in result.err


def test_a_manifest_reached_twice_is_one_image(tmp_path: Path) -> None:
    """Two indexes listing the same manifest: it is walked (and listed) once."""
    files = oci_image()
    manifest = json.loads(files["index.json"])["manifests"][0]
    inner = index_json(manifest)
    outer = index_json(descriptor(OCI_INDEX, inner), descriptor(OCI_INDEX, inner))
    files[blob_name(inner)] = inner
    files[blob_name(outer)] = outer
    files["index.json"] = index_json(descriptor(OCI_INDEX, outer))
    archive = write_tar(tmp_path / "twice.tar", files)
    result = archiver("ls", "--json", archive)
    assert result.code == 0, result.err
    listed = json.loads(result.out)
    assert len(listed) == 1, listed  # the manifest listed twice is one image


def test_too_many_documents_below_one_image(tmp_path: Path) -> None:
    from archiver.blobs import limits

    files = oci_image()
    manifest = json.loads(files["index.json"])["manifests"][0]
    children = []
    for i in range(limits.MAX_DOCUMENTS + 1):  # distinct indexes, each listing the manifest
        index = dump({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [manifest], "n": i})
        files[blob_name(index)] = index
        children.append(descriptor(OCI_INDEX, index))
    top = index_json(*children)
    files[blob_name(top)] = top
    files["index.json"] = index_json(descriptor(OCI_INDEX, top))
    archive = write_tar(tmp_path / "many.tar", files)
    result = archiver("ls", archive, timeout=120)
    assert_refused(result, 2, str(archive), f"more than {limits.MAX_DOCUMENTS} documents")
