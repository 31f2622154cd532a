"""A bundle's member index cannot hide a tar member from archiver that tools scanning the
tar in order (docker load, skopeo, GNU tar) see: a member read is refused when anything but
its own headers sits between it and the member before it, an index followed by anything
before its own header is not used, and ``verify`` scans every header against the index."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from archiver.blobs import limits, tar_members
from archiver.blobs.path_tree import open_tree
from archiver.blobs.tar_tree import TarTree
from archiver.blobs.tarwriter import TarWriter, ustar_header
from archiver.blobs.zstd_writer import SeekableWriter, ZstdOptions
from archiver.errors import InputError
from tests.conftest import Run
from tests.factory import docker_save, random_layer

REPO = Path(__file__).resolve().parents[2]
BLOCK = tarfile.BLOCKSIZE
IMAGES = [
    ([f"t/app{i}:1"], [random_layer(40 * 1024, seed=i * 10 + j) for j in range(2)])
    for i in range(3)
]


def _padded(size: int) -> int:
    return -(-size // BLOCK) * BLOCK


def _member(name: str, data: bytes) -> bytes:
    """A whole tar member as Python's tarfile writes it: header(s), data, padding."""
    info = tarfile.TarInfo(name)
    info.size = len(data)
    return info.tobuf(tarfile.PAX_FORMAT) + data + bytes(_padded(len(data)) - len(data))


def _bundle(path: Path, body: bytes, entries: list[tar_members.Entry]) -> Path:
    """``body`` (members, no end) then a member index listing ``entries``, as a seekable
    bundle written by archiver's own writer: the index's header starts the last frame."""
    raw = tar_members.encode(entries)
    header = ustar_header(tar_members.MEMBERS_FILE, len(raw), tarfile.REGTYPE, 0o644)
    assert header is not None
    tail = header + raw + bytes(_padded(len(raw)) - len(raw)) + bytes(2 * BLOCK)
    with path.open("wb") as out:
        frames = SeekableWriter(out, ZstdOptions(threads=1))
        frames.write(body)
        frames.end_frame()
        frames.write(tail + bytes(-len(tail) % tarfile.RECORDSIZE))
        frames.close()
    return path


class Packed:
    """A bundle packed by archiver with a member index: its tar, and the tar cut open."""

    def __init__(self, bundle: Path) -> None:
        self.tar = subprocess.run(
            ["zstd", "-dc", str(bundle)], capture_output=True, check=True
        ).stdout
        with tarfile.open(fileobj=io.BytesIO(self.tar)) as archive:
            last = archive.getmembers()[-1]
        assert last.name == tar_members.MEMBERS_FILE
        self.index_at = last.offset
        found = tar_members.decode(self.tar[last.offset_data : last.offset_data + last.size])
        assert found is not None
        self.entries = found
        self.manifest = json.loads(self._data("manifest.json"))

    def _data(self, name: str) -> bytes:
        entry = self.entry(name)
        return self.tar[entry.offset : entry.offset + entry.size]

    def entry(self, name: str) -> tar_members.Entry:
        return next(e for e in self.entries if e.name == name)

    def layer_of(self, tag: str) -> tar_members.Entry:
        item = next(i for i in self.manifest if tag in i["RepoTags"])
        return self.entry(item["Layers"][-1])

    def hidden_manifest(self) -> bytes:
        """A second manifest.json: docker load, reading the tar in order, takes its tags."""
        items = [dict(item, RepoTags=["evil/hidden:1"]) for item in self.manifest[:1]]
        return _member("manifest.json", json.dumps(items).encode())

    def crafted(self, path: Path, at: int, hidden: bytes) -> Path:
        """This bundle with ``hidden`` inserted at tar offset ``at`` (where a member's
        headers start), its member index listing the members it had, moved to match."""
        body = self.tar[: self.index_at]
        moved = [
            tar_members.Entry(e.name, e.kind, e.offset + len(hidden) * (e.offset > at), e.size)
            for e in self.entries
        ]
        return _bundle(path, body[:at] + hidden + body[at:], moved)


@pytest.fixture
def packed(run: Run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Packed]:
    monkeypatch.setattr(tar_members, "INDEX_FROM", 1)  # small bundles get one too
    source = docker_save(tmp_path / "in.tar", IMAGES)
    bundle = tmp_path / "good.tar.zst"
    result = run("pack", source, "-o", bundle)
    assert result.code == 0, result.err
    return bundle, Packed(bundle)


def _one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


def _at(good: Packed, where: str) -> int:
    """Where a hidden member goes: right before the headers of a layer, of a document, or
    of the member index."""
    first_blob = next(e for e in good.entries if e.name.startswith("blobs/sha256/"))
    return {
        "before a layer": good.layer_of("t/app1:1").offset - BLOCK,
        "before a document": first_blob.offset - BLOCK,
        "before the index": good.index_at,
    }[where]


WHERE = ["before a layer", "before a document", "before the index"]


@pytest.mark.parametrize("where", WHERE)
def test_a_member_hidden_in_a_gap_means_a_scan_that_sees_it(
    packed: tuple[Path, Packed], run: Run, tmp_path: Path, where: str
) -> None:
    """Gaps other than the headers the writer writes: the index is not used; the scan sees
    the second manifest.json (docker load would take its tags) and refuses the bundle."""
    _, good = packed
    crafted = good.crafted(tmp_path / "c.tar.zst", _at(good, where), good.hidden_manifest())
    plain = subprocess.run(["zstd", "-dc", str(crafted)], capture_output=True, check=True).stdout
    listed = subprocess.run(["tar", "-t"], input=plain, capture_output=True, check=True).stdout
    assert listed.split().count(b"manifest.json") == 2  # what GNU tar sees
    for args in (["ls"], ["unpack", "--image", "t/app1:1", "-o", tmp_path / "one.tar"]):
        result = run(*args[:1], crafted, *args[1:])
        assert result.code == 2, result.out
        line = _one_line(result.err)
        assert str(crafted) in line and "duplicate tar member 'manifest.json'" in line
    assert not (tmp_path / "one.tar").exists()


def _renamed_header(good: Packed, path: Path) -> tuple[Path, tar_members.Entry]:
    """The header of a layer of t/app1:1 says ``index.json``: a second one for a tool
    reading the tar in order; the index still lists the layer, the gap's size is right."""
    layer = good.layer_of("t/app1:1")
    header = ustar_header("index.json", layer.size, tarfile.REGTYPE, 0o644)
    assert header is not None
    at = layer.offset - BLOCK
    tar = good.tar[:at] + header + good.tar[layer.offset : good.index_at]
    return _bundle(path, tar, good.entries), layer


def test_a_header_not_the_members_fails_the_read(
    packed: tuple[Path, Packed], run: Run, tmp_path: Path
) -> None:
    bundle, good = packed
    crafted, layer = _renamed_header(good, tmp_path / "c.tar.zst")
    assert _listing(run, crafted) == _listing(run, bundle)  # ls reads no layer
    result = run("unpack", crafted, "--image", "t/app1:1", "-o", tmp_path / "one.tar")
    assert result.code == 2, result.out
    line = _one_line(result.err)
    assert str(crafted) in line and "member index places" in line
    assert layer.name in line and "'index.json'" in line
    assert not (tmp_path / "one.tar").exists()
    # the images whose members hold nothing else before them still read
    assert run("unpack", crafted, "--image", "t/app0:1", "-o", tmp_path / "zero.tar").code == 0


def _listing(run: Run, bundle: Path) -> list[dict]:
    result = run("ls", "--json", bundle)
    assert result.code == 0, result.err
    return json.loads(result.out)


@pytest.mark.parametrize("where", WHERE)
def test_verify_finds_any_hidden_member(
    packed: tuple[Path, Packed], run: Run, tmp_path: Path, where: str
) -> None:
    """A member of a name of its own: the scan shows it as any tool does; verify says the
    index does not list it."""
    bundle, good = packed
    hidden = _member("blobs/sha256/" + "e" * 64, b"not listed")
    crafted = good.crafted(tmp_path / "c.tar.zst", _at(good, where), hidden)
    assert _listing(run, crafted) == _listing(run, bundle)
    result = run("verify", crafted)
    assert result.code == 3, result.out
    line = _one_line(result.err)
    assert str(crafted) in line and "blobs/sha256/" + "e" * 64 in line
    assert "does not list" in line


def test_verify_finds_a_member_the_index_names_otherwise(
    packed: tuple[Path, Packed], run: Run, tmp_path: Path
) -> None:
    """An index that calls a layer by another name: no read of the layer checks it, the
    scan does."""
    bundle, good = packed
    layer = good.layer_of("t/app2:1")
    renamed = [
        tar_members.Entry("blobs/sha256/" + "d" * 64, e.kind, e.offset, e.size) if e == layer else e
        for e in good.entries
    ]
    crafted = _bundle(tmp_path / "c.tar.zst", good.tar[: good.index_at], renamed)
    assert run("ls", crafted).code == 0  # the listing reads no layer
    result = run("verify", crafted)
    assert result.code != 0
    assert layer.name in _one_line(result.err)
    assert run("verify", bundle).code == 0


def test_the_cli_verify_of_a_crafted_bundle_is_one_line(
    packed: tuple[Path, Packed], tmp_path: Path
) -> None:
    _, good = packed
    crafted, _ = _renamed_header(good, tmp_path / "c.tar.zst")
    env = dict(os.environ, PYTHONPATH=str(REPO))
    done = subprocess.run(
        [sys.executable, "-m", "archiver", "verify", "-q", str(crafted)],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
    )
    assert done.returncode == 3, done.stdout
    line = _one_line(done.stderr)
    assert "duplicate tar member 'index.json'" in line and str(crafted) in line


def _long_bundle(path: Path, count: int) -> tuple[Path, bytes, list[tar_members.Entry]]:
    """A bundle of ``count`` files written by archiver's tar writer, every third with a
    name that needs a pax header, plus directories, and its member index."""
    out = io.BytesIO()
    tar = TarWriter(out)
    tar.add_bytes("oci-layout", b"{}")
    tar.add_dir("blobs")
    tar.add_dir("blobs/" + "dir-" * 40)
    for i in range(count):
        name = f"blobs/{'dir-' * 40}/{i:04d}-" + "n" * 120 if i % 3 == 0 else f"f{i}"
        tar.add_bytes(name, str(i).encode() * (i % 700))
    body = out.getvalue()
    return _bundle(path, body, tar.entries), body, tar.entries


def test_a_good_bundle_of_long_names_and_many_members_reads_and_verifies(
    tmp_path: Path,
) -> None:
    bundle, _, entries = _long_bundle(tmp_path / "long.tar.zst", 400)
    with open_tree(str(bundle)) as tree:
        assert isinstance(tree, TarTree)
        assert tree._unchecked is not None  # read through its index, not scanned
        assert tree.member_index_problem() is None
        for entry in entries:
            if entry.kind == "file":
                with tree.open(entry.name) as member:
                    assert len(member.read()) == entry.size
        assert tree.member_index_problem() is None


def test_a_member_in_place_of_a_pax_header_fails_the_read(tmp_path: Path) -> None:
    """Same gap, other bytes: the pax header of a long name (two blocks) swapped for a
    whole member of one block of data."""
    _, body, entries = _long_bundle(tmp_path / "long.tar.zst", 4)
    long = next(e for e in entries if e.kind == "file" and len(e.name) > 100)
    start = long.offset - 3 * BLOCK  # pax header, its record, the ustar header
    assert body[start + 156 : start + 157] == tarfile.XHDTYPE
    hidden = _member("index.json", b'{"manifests": []}')
    assert len(hidden) == 2 * BLOCK
    crafted = body[:start] + hidden + body[start + 2 * BLOCK :]
    bundle = _bundle(tmp_path / "swapped.tar.zst", crafted, entries)
    with open_tree(str(bundle)) as tree:
        assert isinstance(tree, TarTree)
        with pytest.raises(InputError, match="member index places") as caught:
            tree.open(long.name)
        assert "\n" not in str(caught.value) and str(bundle) in str(caught.value)
        assert "index.json" in (tree.member_index_problem() or "")


def test_headers_over_the_limit_are_refused_unread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bundle, _, entries = _long_bundle(tmp_path / "long.tar.zst", 4)
    long = next(e for e in entries if e.kind == "file" and len(e.name) > 100)
    monkeypatch.setattr(limits, "MAX_MEMBER_HEADERS", 2 * BLOCK)
    with open_tree(str(bundle)) as tree:
        assert isinstance(tree, TarTree)
        with pytest.raises(InputError, match="over the 1024-byte limit"):
            tree.open(long.name)
        with tree.open("f1") as member:
            assert member.read() == b"1"
