"""One command resolves each image once and reads each blob once, whichever of catalog,
merge and copy asks for it (two inputs carrying one image read its documents once)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import BinaryIO

import pytest

from archiver.model.digest import Digest
from archiver.places.archive import ArchiveSource
from tests.conftest import SAMPLES, Run


def test_pack_of_two_inputs_opens_every_blob_once(
    run: Run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    opened: Counter[Digest] = Counter()
    open_blob = ArchiveSource.open_blob

    def counting(self: ArchiveSource, digest: Digest) -> BinaryIO:
        opened[digest] += 1
        return open_blob(self, digest)

    monkeypatch.setattr(ArchiveSource, "open_blob", counting)
    out = tmp_path / "one.tar.zst"
    result = run(
        "pack", SAMPLES / "legacy.tar", SAMPLES / "oci", "--image", "demo/app:2.1", "-o", out
    )
    assert result.code == 0, result.err
    assert opened, "nothing was read"
    assert {str(d): n for d, n in opened.items() if n > 1} == {}
