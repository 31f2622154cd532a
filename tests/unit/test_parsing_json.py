"""JSON that json.loads alone turns into a traceback or lets through: nested 30k deep,
integers of 5,000 digits, UTF-16/UTF-32 text, a byte-order mark. Each is one line naming the
file (and blob), exit 2, wherever the document sits: manifest.json, index.json, a manifest,
a config, a parts manifest, an inventory."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from archiver.errors import InputError, PeerError
from archiver.model.json_decode import MAX_DEPTH, MAX_INT_DIGITS, load_json
from tests import factory
from tests.unit.test_parsing_kit import (
    OCI_MANIFEST,
    archiver,
    assert_refused,
    blob_name,
    descriptor,
    index_json,
    oci_image,
    sha256,
    write_tar,
)

DEEP = b'{"a": ' + b"[" * 30_000 + b"]" * 30_000 + b"}"
BIG_INT = b'{"schemaVersion": ' + b"7" * 5_000 + b"}"
UTF16 = json.dumps({"schemaVersion": 2, "manifests": []}).encode("utf-16")  # with its BOM
UTF16_LE = json.dumps({"schemaVersion": 2, "manifests": []}).encode("utf-16-le")
UTF32 = json.dumps({"schemaVersion": 2, "manifests": []}).encode("utf-32-be")
UTF8_BOM = b"\xef\xbb\xbf" + json.dumps({"schemaVersion": 2, "manifests": []}).encode()

BAD: dict[str, tuple[bytes, str]] = {
    "deep": (DEEP, f"nested deeper than {MAX_DEPTH} levels"),
    "big-int": (BIG_INT, "an integer of 5000 digits"),
    "utf-16": (UTF16, "UTF-16"),
    "utf-16-no-bom": (UTF16_LE, "UTF-16"),
    "utf-32": (UTF32, "UTF-32"),
    "utf-8-bom": (UTF8_BOM, "byte-order mark"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_loader_refuses_in_one_line(case: str) -> None:
    raw, why = BAD[case]
    with pytest.raises(InputError) as caught:
        load_json(raw, "x.json")
    message = str(caught.value)
    assert message.startswith("x.json: invalid JSON: ") and why in message
    assert "\n" not in message and len(message) < 200


@pytest.mark.parametrize(
    "raw, why",
    [
        (b"[NaN]", "NaN is not a JSON value"),
        (b'{"a": -Infinity}', "-Infinity is not a JSON value"),
        (b"[1, 2", "Expecting"),
        (b"{\xfd}", "not UTF-8: invalid start byte at byte 1"),
        (b'{"a": "\xc3"}', "not UTF-8"),
        (b"", "Expecting value"),
    ],
)
def test_loader_refuses_what_is_not_json(raw: bytes, why: str) -> None:
    with pytest.raises(InputError, match=why):
        load_json(raw, "x.json")


def test_loader_takes_what_a_peer_sent_as_a_peer_error() -> None:
    with pytest.raises(PeerError, match="daemon: invalid JSON: nested deeper"):
        load_json(b"[" * 5000, "daemon", PeerError)


def test_loader_keeps_what_is_valid() -> None:
    nested: object = 1
    for _ in range(MAX_DEPTH):  # MAX_DEPTH arrays, one inside the other
        nested = [nested]
    assert load_json(json.dumps(nested).encode(), "x") == nested
    too_deep = [nested]
    with pytest.raises(InputError, match="nested deeper"):
        load_json(json.dumps(too_deep).encode(), "x")
    size = int("9" * MAX_INT_DIGITS)
    assert load_json(json.dumps({"size": size, "f": 1.5e300}).encode(), "x") == {
        "size": size,
        "f": 1.5e300,
    }
    with pytest.raises(InputError, match="digits"):
        load_json(json.dumps({"size": size * 10}).encode(), "x")
    assert load_json('{"é": "ü\\u00e9"}'.encode(), "x") == {"é": "üé"}


# --- the same documents, sitting where archiver reads them, through the CLI ---


def _docker_save_with_manifest(raw: bytes, tmp: Path) -> tuple[Path, list[str]]:
    path = factory.docker_save(tmp / "save.tar", [(["demo/a:1"], [factory.layer({"a": b"a"})])])
    files = _read_tar(path)
    files["manifest.json"] = raw
    return write_tar(path, files), ["manifest.json"]


def _layout_with_index(raw: bytes, tmp: Path) -> tuple[Path, list[str]]:
    files = oci_image()
    files["index.json"] = raw
    return write_tar(tmp / "layout.tar", files), ["index.json"]


def _layout_with_manifest(raw: bytes, tmp: Path) -> tuple[Path, list[str]]:
    files = oci_image(manifest=raw)
    return write_tar(tmp / "layout.tar", files), [sha256(raw)]


def _layout_with_config(raw: bytes, tmp: Path) -> tuple[Path, list[str]]:
    files = oci_image(config=raw)
    return write_tar(tmp / "layout.tar", files), [sha256(raw)]


def _layout_with_child_index(raw: bytes, tmp: Path) -> tuple[Path, list[str]]:
    """index.json -> a good index -> the hostile document as a child manifest."""
    files = oci_image()
    files[blob_name(raw)] = raw
    child = index_json(descriptor(OCI_MANIFEST, raw))
    files[blob_name(child)] = child
    files["index.json"] = index_json(descriptor("application/vnd.oci.image.index.v1+json", child))
    return write_tar(tmp / "layout.tar", files), [sha256(raw)]


def _read_tar(path: Path) -> dict[str, bytes]:
    import tarfile

    with tarfile.open(path) as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isreg()}  # type: ignore[union-attr]


WHERE: dict[str, Callable[[bytes, Path], tuple[Path, list[str]]]] = {
    "manifest.json": _docker_save_with_manifest,
    "index.json": _layout_with_index,
    "manifest": _layout_with_manifest,
    "config": _layout_with_config,
    "child": _layout_with_child_index,
}


@pytest.mark.parametrize("case", ["deep", "big-int", "utf-16", "utf-8-bom"])
@pytest.mark.parametrize("where", sorted(WHERE))
def test_archive_documents_refused_in_one_line(case: str, where: str, tmp_path: Path) -> None:
    raw, why = BAD[case]
    archive, names = WHERE[where](raw, tmp_path)
    result = archiver("ls", archive)
    assert_refused(result, 2, str(archive), *names, why)


@pytest.mark.parametrize("case", ["deep", "big-int", "utf-16", "utf-32"])
def test_parts_manifest_refused_in_one_line(case: str, tmp_path: Path) -> None:
    raw, why = BAD[case]
    manifest = tmp_path / "b.tar.zst.parts.json"
    manifest.write_bytes(raw)
    result = archiver("ls", manifest)
    assert_refused(result, 2, str(manifest), why)


@pytest.mark.parametrize("case", ["deep", "big-int"])
def test_inventory_refused_in_one_line(case: str, tmp_path: Path) -> None:
    raw, why = BAD[case]
    inventory = tmp_path / "base.json"
    inventory.write_bytes(raw)  # starts with "{": read as an inventory, not an archive
    source = write_tar(tmp_path / "in.tar", oci_image())
    out = tmp_path / "out.tar.zst"
    result = archiver("pack", source, "-o", out, "--base", inventory)
    assert_refused(result, 2, str(inventory), why)
    assert not out.exists()
