"""A pax record or GNU long name declaring a huge size is refused before anything is
allocated, in a tar read from a file and in one read from a stream (issue #16)."""

from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path

import pytest

from archiver.blobs.seek_table import FileAccess
from archiver.blobs.tar_tree import TarTree
from archiver.blobs.zstd_writer import ZstdOptions
from archiver.errors import InputError
from tests.factory import Pipe

TERABYTE = 1 << 40


def _huge_record(kind: bytes, after: bytes = b"") -> bytes:
    """``after`` (whole blocks), then a header of ``kind`` declaring a 1 TB record (in
    base-256, as GNU tar writes sizes past 8 GiB), one block of it, and the end blocks."""
    info = tarfile.TarInfo("././@LongLink")
    info.type = kind
    info.size = TERABYTE
    return after + info.tobuf(format=tarfile.GNU_FORMAT) + b"n" * 512 + bytes(1024)


def _one_member() -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.GNU_FORMAT) as archive:
        info = tarfile.TarInfo("first")
        info.size = 3
        archive.addfile(info, io.BytesIO(b"abc"))
    return out.getvalue()[:1024]  # the member, without its end blocks


KINDS = [tarfile.GNUTYPE_LONGNAME, tarfile.GNUTYPE_LONGLINK, tarfile.XHDTYPE, tarfile.XGLTYPE]


@pytest.mark.parametrize("kind", KINDS)
def test_a_huge_record_in_a_tar_file_is_refused(tmp_path: Path, kind: bytes) -> None:
    path = tmp_path / "huge.tar"
    path.write_bytes(_huge_record(kind, _one_member()))
    fd = os.open(path, os.O_RDONLY)
    try:
        with pytest.raises(InputError) as caught:
            TarTree(FileAccess(fd), str(path))
    finally:
        os.close(fd)
    message = str(caught.value)
    assert message.startswith(f"{path}: member at offset 1024: a tar header of {TERABYTE} bytes")
    assert "\n" not in message


@pytest.mark.parametrize("kind", KINDS)
def test_a_huge_record_in_a_stream_is_refused(tmp_path: Path, kind: bytes) -> None:
    with (tmp_path / "spool").open("w+b") as spool, pytest.raises(InputError) as caught:
        TarTree.from_stream(
            Pipe(_huge_record(kind, _one_member())),  # type: ignore[arg-type]
            "pipe",
            spool,
            ZstdOptions(threads=1),
        )
    assert str(caught.value).startswith(
        f"pipe: member at offset 1024: a tar header of {TERABYTE} bytes: refused"
    )


def test_a_long_name_under_the_cap_is_read(tmp_path: Path) -> None:
    name = "d/" * 2000 + "file"  # 4 kB: a GNU long name record
    path = tmp_path / "long.tar"
    with tarfile.open(path, "w", format=tarfile.GNU_FORMAT) as archive:
        info = tarfile.TarInfo(name)
        info.size = 2
        archive.addfile(info, io.BytesIO(b"hi"))
    fd = os.open(path, os.O_RDONLY)
    try:
        assert TarTree(FileAccess(fd), str(path)).open(name).read() == b"hi"
    finally:
        os.close(fd)
