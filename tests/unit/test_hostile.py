"""Hostile and broken archives: one clear line naming the file (and blob), non-zero exit,
no traceback, nothing written at the target."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import SAMPLES, Run, fixture_path

Members = list[tuple[tarfile.TarInfo, bytes]]


def read_members(path: Path) -> Members:
    with tarfile.open(path) as tar:
        return [(m, tar.extractfile(m).read() if m.isreg() else b"") for m in tar.getmembers()]  # type: ignore[union-attr]


def write_members(path: Path, members: Members) -> Path:
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tar:
        for info, data in members:
            if info.isreg():
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
            else:
                tar.addfile(info)
    return path


def member(name: str, data: bytes = b"", link: str | None = None) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    if link is not None:
        info.type, info.linkname = tarfile.SYMTYPE, link
    info.size = len(data)
    return info, data


def hybrid() -> Members:
    return read_members(SAMPLES / "hybrid.tar")


def largest_blob(members: Members) -> int:
    return max(range(len(members)), key=lambda i: len(members[i][1]))


def flip_layer(m: Members) -> Members:
    i = largest_blob(m)
    data = bytearray(m[i][1])
    data[600] ^= 0xFF
    m[i] = (m[i][0], bytes(data))
    return m


def drop_layer(m: Members) -> Members:
    del m[largest_blob(m)]
    return m


def replace(name: str, data: bytes) -> Callable[[Members], Members]:
    def change(m: Members) -> Members:
        return [(info, data if info.name == name else body) for info, body in m]

    return change


def shrink_declared_size(m: Members) -> Members:
    """A manifest says a layer is 10 bytes; the archive carries thousands (the bomb guard).

    The manifest is rewritten consistently (new digest, index.json updated), so the only
    lie left is the layer's declared size.
    """
    layer = m[largest_blob(m)][0].name.rsplit("/", 1)[-1]
    renamed: dict[str, tuple[str, int]] = {}
    out = []
    for info, body in m:
        doc = json.loads(body) if body.startswith(b"{") else None
        if isinstance(doc, dict) and "layers" in doc and layer in body.decode():
            for item in doc["layers"]:
                if item["digest"].endswith(layer):
                    item["size"] = 10
            new_body = json.dumps(doc).encode()
            new_hex = hashlib.sha256(new_body).hexdigest()
            renamed[info.name.rsplit("/", 1)[-1]] = (new_hex, len(new_body))
            info, body = tarfile.TarInfo(f"blobs/sha256/{new_hex}"), new_body
        out.append((info, body))
    for i, (info, body) in enumerate(out):
        if info.name == "index.json":
            index = json.loads(body)
            for item in index["manifests"]:
                old = item["digest"].removeprefix("sha256:")
                if old in renamed:
                    item["digest"], item["size"] = f"sha256:{renamed[old][0]}", renamed[old][1]
            out[i] = (info, json.dumps(index).encode())
    return out


def add(*extra: tuple[tarfile.TarInfo, bytes]) -> Callable[[Members], Members]:
    return lambda m: [*m, *extra]


CASES: dict[str, tuple[Callable[[Members], Members], str]] = {
    "layer-digest-mismatch": (flip_layer, "digest mismatch"),
    "missing-blob": (drop_layer, "missing"),
    "invalid-json": (replace("manifest.json", b"{not json"), "invalid JSON"),
    "index-invalid-json": (replace("index.json", b"[1, 2"), "invalid JSON"),
    "manifest-null": (replace("manifest.json", b"null"), "manifest.json"),
    "schema-invalid": (replace("manifest.json", b'[{"Config": 5, "Layers": []}]'), "Config"),
    "duplicate-member": (add(member("index.json", b"{}")), "duplicate"),
    "dotdot-member": (add(member("../escape", b"x")), "'..'"),
    "absolute-member": (add(member("/etc/evil", b"x")), "absolute"),
    "link-out-of-tree": (
        add(member("blobs/evil", link="../../../etc/passwd")),
        "leaves the archive",
    ),
    "declared-size-smaller": (shrink_declared_size, "blob"),
}


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("verb", ["ls", "verify", "convert"])
def test_hostile_archive(case: str, verb: str, tmp_path: Path, run: Run) -> None:
    change, expected = CASES[case]
    bad = write_members(tmp_path / f"{case}.tar", change(hybrid()))
    before = bad.read_bytes()
    out = tmp_path / "out" / "converted.tar"
    out.parent.mkdir()
    args = {"ls": ["ls", bad], "verify": ["verify", bad], "convert": ["convert", bad, out]}[verb]
    result = run(*args)
    if verb == "ls" and case in ("layer-digest-mismatch", "missing-blob", "declared-size-smaller"):
        # listing reads only documents; the broken layer is found by verify and convert
        assert result.code == 0, result.err
        return
    assert result.code != 0
    lines = [line for line in result.err.splitlines() if line.strip()]
    assert lines, "an error line is expected"
    assert all(line.startswith("Error: ") for line in lines), result.err
    assert "Traceback" not in result.err
    assert str(bad) in result.err
    assert expected in result.err
    if case in ("layer-digest-mismatch", "declared-size-smaller"):
        assert "sha256:" in result.err  # the blob is named
    assert bad.read_bytes() == before, "the input must not change"
    assert list(out.parent.iterdir()) == [], "nothing may be left at the target"


def test_truncated_archive(tmp_path: Path, run: Run) -> None:
    data = (SAMPLES / "hybrid.tar").read_bytes()
    bad = tmp_path / "truncated.tar"
    bad.write_bytes(data[: len(data) // 2])
    result = run("ls", bad)
    assert result.code != 0 and "Traceback" not in result.err
    assert str(bad) in result.err and "truncated" in result.err


@pytest.mark.parametrize("content", [b"", b"\x00" * 100, b"hello, I am not a tar"])
def test_not_an_archive(content: bytes, tmp_path: Path, run: Run) -> None:
    bad = tmp_path / "junk.tar"
    bad.write_bytes(content)
    result = run("ls", bad)
    assert result.code != 0 and "Traceback" not in result.err
    assert result.err.startswith("Error: ") and str(bad) in result.err


def test_corrupt_gzip_wrapper(tmp_path: Path, run: Run) -> None:
    data = gzip.compress((SAMPLES / "hybrid.tar").read_bytes())
    bad = tmp_path / "cut.tar.gz"
    bad.write_bytes(data[: len(data) // 2])
    result = run("ls", bad)
    assert result.code != 0 and "Traceback" not in result.err
    assert str(bad) in result.err


def test_missing_file(tmp_path: Path, run: Run) -> None:
    result = run("ls", tmp_path / "nope.tar")
    assert result.code == 4 and "nope.tar" in result.err


@pytest.mark.parametrize(
    "relative, message",
    [
        ("moby/integration-cli/testdata/emptyLayer.tar", "pre-1.10"),
        ("go-containerregistry/pkg/v1/tarball/testdata/no_manifest.tar", "pre-1.10"),
        ("go-containerregistry/pkg/v1/tarball/testdata/null_manifest.tar", "manifest.json"),
        ("go-containerregistry/pkg/v1/tarball/testdata/content.tar", "not an image archive"),
    ],
)
def test_public_fixtures_that_must_be_refused(relative: str, message: str, run: Run) -> None:
    path = fixture_path(relative)
    result = run("ls", path)
    assert result.code != 0 and "Traceback" not in result.err
    assert message in result.err and str(path) in result.err
