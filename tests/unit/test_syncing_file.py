"""Outputs handed to the disk as they grow (SyncingFile): synced on a thread as writing
goes on, and a failed sync on that thread is not lost."""

from __future__ import annotations

import errno
import os
import threading
from pathlib import Path

import pytest

from archiver.blobs.atomic import SyncingFile


def test_written_so_far_is_synced_while_writing_goes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    synced: list[int] = []
    real = os.fdatasync

    def record(fd: int) -> None:
        assert threading.current_thread().name == "writeback"
        synced.append(os.fstat(fd).st_size)
        real(fd)

    monkeypatch.setattr(os, "fdatasync", record)
    path = tmp_path / "out"
    out = SyncingFile(str(path), step=1000)
    for i in range(10):
        out.write(bytes([i]) * 600)
    out.sync()
    out.close()
    assert synced and all(0 < size <= 6000 for size in synced)
    assert path.read_bytes() == b"".join(bytes([i]) * 600 for i in range(10))


def test_a_sync_failing_on_the_thread_fails_the_end(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(fd: int) -> None:
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(os, "fdatasync", broken)
    out = SyncingFile(str(tmp_path / "out"), step=10)
    out.write(b"x" * 100)
    with pytest.raises(OSError, match="Input/output error"):
        out.sync()
    out.close()
