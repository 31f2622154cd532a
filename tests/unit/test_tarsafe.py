import io
import os
import tarfile
from pathlib import Path

import pytest

from archiver.blobs import compression
from archiver.blobs.seekable import FileAccess
from archiver.blobs.tarsafe import DirTree, TarTree, normalise_name
from archiver.errors import InputError, NotFound


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


FIXTURES = Path(__file__).resolve().parents[3] / "shared" / "public-fixtures"


@pytest.mark.parametrize(
    "suffix, kind",
    [("gz", "gzip"), ("bz2", "bzip2"), ("xz", "xz"), ("zst", "zstd"), ("uncompressed", None)],
)
def test_compression_sniffed_from_magic(suffix: str, kind: str | None) -> None:
    path = FIXTURES / "containers-image/pkg/compression/fixtures" / f"Hello.{suffix}"
    data = path.read_bytes()
    assert compression.sniff(data[:6]) == kind
    if kind:
        assert compression.open_decompressed(io.BytesIO(data), kind).read() == b"Hello"


def test_dir_tree_symlink_loop_is_an_input_error(tmp_path: Path) -> None:
    (tmp_path / "a").symlink_to(tmp_path / "b")
    (tmp_path / "b").symlink_to(tmp_path / "a")
    with pytest.raises(InputError, match="cannot resolve"):
        DirTree(tmp_path, "root").open("a")
