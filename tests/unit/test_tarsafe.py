import hashlib
import io
import os
import subprocess
import tarfile
from pathlib import Path

import pytest

from archiver.blobs import compression
from archiver.blobs.dir_tree import DirTree
from archiver.blobs.seek_table import FileAccess
from archiver.blobs.tar_tree import TarTree
from archiver.blobs.tree import normalise_name
from archiver.errors import InputError, NotFound
from tests.conftest import fixture_path


def make_tar(path: Path, members: list[tuple[str, bytes | None, str | None]]) -> Path:
    """members: (name, data or None, symlink target or None)."""
    with tarfile.open(path, "w") as tar:
        for name, data, link in members:
            info = tarfile.TarInfo(name)
            if link is not None:
                info.type, info.linkname = tarfile.SYMTYPE, link
                tar.addfile(info)
            else:
                info.size = len(data or b"")
                tar.addfile(info, io.BytesIO(data or b""))
    return path


def open_tree(path: Path) -> TarTree:
    return TarTree(FileAccess(os.open(path, os.O_RDONLY)), str(path))


def test_reads_members_and_follows_inside_links(tmp_path: Path) -> None:
    tree = open_tree(
        make_tar(
            tmp_path / "a.tar",
            [("a/layer.tar", b"data", None), ("./b/layer.tar", None, "../a/layer.tar")],
        )
    )
    assert tree.open("b/layer.tar").read() == b"data"
    assert tree.size("b/layer.tar") == 4
    assert tree.exists("a/layer.tar") and not tree.exists("c")
    with pytest.raises(NotFound):
        tree.open("c")


@pytest.mark.parametrize(
    "members, message",
    [
        ([("../evil", b"x", None)], "'..'"),
        ([("/etc/passwd", b"x", None)], "absolute"),
        ([("a", b"x", None), ("a", b"y", None)], "duplicate"),
        ([("link", None, "../../etc/passwd")], "leaves the archive"),
        ([("link", None, "/etc/passwd")], "absolute target"),
    ],
)
def test_refuses_unsafe_members(tmp_path: Path, members: list, message: str) -> None:
    path = make_tar(tmp_path / "bad.tar", members)
    with pytest.raises(InputError, match=message) as err:
        open_tree(path)
    assert str(path) in str(err.value)


def test_truncated_tar_is_an_input_error(tmp_path: Path) -> None:
    path = make_tar(tmp_path / "t.tar", [("big", b"x" * 5000, None)])
    path.write_bytes(path.read_bytes()[:2048])
    with pytest.raises(InputError, match="truncated"):
        open_tree(path)


def test_normalise_name() -> None:
    assert normalise_name("./a//b/./c", "x") == "a/b/c"


def test_dir_tree_refuses_links_out(tmp_path: Path) -> None:
    (tmp_path / "root").mkdir()
    (tmp_path / "secret").write_text("s")
    (tmp_path / "root" / "link").symlink_to(tmp_path / "secret")
    tree = DirTree(tmp_path / "root", "root")
    with pytest.raises(InputError, match="leaves"):
        tree.open("link")


@pytest.mark.parametrize(
    "suffix, kind",
    [("gz", "gzip"), ("bz2", "bzip2"), ("xz", "xz"), ("zst", "zstd"), ("uncompressed", None)],
)
def test_compression_sniffed_from_magic(suffix: str, kind: str | None) -> None:
    path = fixture_path(f"containers-image/pkg/compression/fixtures/Hello.{suffix}")
    data = path.read_bytes()
    assert compression.sniff(data[:6]) == kind
    if kind:
        assert compression.open_decompressed(io.BytesIO(data), kind).read() == b"Hello"


def test_dir_tree_symlink_loop_is_an_input_error(tmp_path: Path) -> None:
    (tmp_path / "a").symlink_to(tmp_path / "b")
    (tmp_path / "b").symlink_to(tmp_path / "a")
    with pytest.raises(InputError, match="cannot resolve"):
        DirTree(tmp_path, "root").open("a")


class _Trickle(io.RawIOBase):
    """A non-seekable stream that hands out at most ``step`` bytes per read (as a socket)."""

    def __init__(self, data: bytes, step: int = 7000) -> None:
        self._data = io.BytesIO(data)
        self._step = step

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        chunk = self._data.read(min(len(buffer), self._step))
        buffer[: len(chunk)] = chunk
        return len(chunk)


def _streamed_tar(members: list[tuple[str, bytes]], fmt: int = tarfile.PAX_FORMAT) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=fmt) as archive:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return out.getvalue()


_SPOOLS: list[io.BufferedRandom] = []


def _spool(data: bytes, tmp_path: Path) -> TarTree:
    from archiver.blobs.zstd_writer import ZstdOptions

    spool = (tmp_path / "spool").open("w+b")
    _SPOOLS.append(spool)  # the tree reads from it: keep it open for the test
    options = ZstdOptions(threads=2, frame_size=64 * 1024)
    return TarTree.from_stream(_Trickle(data), "daemon", spool, options)  # type: ignore[arg-type]


STREAM_MEMBERS = [
    ("empty", b""),
    ("a" * 150 + "/long-name-in-a-pax-record", b"x" * 511),
    ("block", bytes(range(256)) * 2),
    ("block-and-one", b"y" * 513),
    ("frame", b"z" * (64 * 1024)),
    ("frames-and-a-bit", os.urandom(3 * 64 * 1024 + 1)),
]


@pytest.mark.parametrize("fmt", [tarfile.PAX_FORMAT, tarfile.GNU_FORMAT])
def test_a_streamed_tar_is_spooled_member_by_member(tmp_path: Path, fmt: int) -> None:
    tree = _spool(_streamed_tar(STREAM_MEMBERS, fmt), tmp_path)
    for name, data in STREAM_MEMBERS:
        assert tree.size(name) == len(data)
        assert tree.open(name).read() == data
        assert tree.sha256_of(name) == hashlib.sha256(data).hexdigest()
        if data:  # each member's bytes are frames of their own
            assert sum(f.size for f in tree.frames_of(name) or []) == len(data)


@pytest.mark.parametrize("into", [0, 1, 300, 64 * 1024 + 5])
def test_a_stream_cut_inside_a_member_is_refused(tmp_path: Path, into: int) -> None:
    data = _streamed_tar(STREAM_MEMBERS)
    last = len(STREAM_MEMBERS[-1][1])
    start = data.index(STREAM_MEMBERS[-1][1][:64])  # where the last member's bytes begin
    with pytest.raises(
        InputError, match=f"truncated tar: member frames-and-a-bit ends after {into} of {last}"
    ):
        _spool(data[: start + into], tmp_path)


def test_a_stream_cut_inside_a_header_is_refused(tmp_path: Path) -> None:
    data = _streamed_tar([("a", b"a" * 600), ("b", b"b")])
    with pytest.raises(InputError, match="truncated"):
        _spool(data[: 1536 + 100], tmp_path)


def test_a_stream_without_its_end_blocks_is_refused(tmp_path: Path) -> None:
    data = _streamed_tar([("a", b"a" * 600)])
    end = 512 + 1024  # header and padded bytes: the end-of-archive blocks follow
    with pytest.raises(InputError, match="end-of-archive"):
        _spool(data[:end], tmp_path)


def test_garbage_instead_of_a_header_is_refused(tmp_path: Path) -> None:
    data = bytearray(_streamed_tar([("a", b"a" * 600), ("b", b"b")]))
    data[1536:2048] = b"\x01" * 512  # the second header
    with pytest.raises(InputError, match="end-of-archive"):
        _spool(bytes(data), tmp_path)


def test_a_huge_pax_record_is_refused_not_buffered(tmp_path: Path) -> None:
    info = tarfile.TarInfo("a")
    info.pax_headers = {"comment": "c" * (2 * 1024 * 1024)}
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as archive:
        archive.addfile(info, io.BytesIO(b""))
    with pytest.raises(InputError, match=r"tar header of \d+ bytes: refused"):
        _spool(out.getvalue(), tmp_path)


def test_a_sparse_member_in_a_stream_is_refused(tmp_path: Path) -> None:
    holes = tmp_path / "holes"
    with holes.open("wb") as out:
        out.truncate(1024 * 1024)
        out.seek(512 * 1024)
        out.write(b"data")
    sparse = tmp_path / "sparse.tar"
    subprocess.run(
        ["tar", "--sparse", "--format=gnu", "-cf", str(sparse), "-C", str(tmp_path), "holes"],
        check=True,
    )
    with pytest.raises(InputError, match="sparse tar member 'holes': refused"):
        _spool(sparse.read_bytes(), tmp_path)
