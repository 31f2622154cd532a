"""Each document is read (and verified) once per command, wherever it is asked for: a
hybrid archive's configs are read to merge its manifest.json with its index.json, then
again to resolve each image, and its manifests likewise; within ``shared_documents`` (as
every command runs) the second asking gets the bytes the first read."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from archiver.blobs.path_tree import open_tree
from archiver.blobs.tar_tree import TarTree
from archiver.engine import catalog
from archiver.places.archive import ArchiveSource
from archiver.places.read_once import shared_documents
from tests.conftest import SAMPLES


@pytest.mark.parametrize("sample", ["hybrid.tar", "bundle.tar.zst"])
def test_a_hybrid_archive_reads_each_document_once(
    sample: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    opened: Counter[str] = Counter()
    real = TarTree.open

    def counting(self: TarTree, name: str, *args: Any, **kwargs: Any) -> Any:
        opened[name] += 1
        return real(self, name, *args, **kwargs)

    monkeypatch.setattr(TarTree, "open", counting)
    with shared_documents(), open_tree(str(SAMPLES / sample)) as tree:
        source = ArchiveSource(tree)
        records = catalog.records(source)
    assert records
    documents = {
        f"blobs/{d.digest.algorithm}/{d.digest.hex}"
        for record in records
        for d in (record.root.entry.descriptor, record.image.manifest.config)
    }
    assert documents <= set(opened)
    assert {name: n for name, n in opened.items() if n > 1} == {}


def test_outside_a_command_every_read_goes_to_the_archive(tmp_path: Path) -> None:
    with open_tree(str(SAMPLES / "hybrid.tar")) as tree:
        source = ArchiveSource(tree)
        first = catalog.records(source)[0]
        digest = first.image.manifest.config.digest
        assert source.open_blob(digest).read() == first.image.config_raw
