"""The output an earlier sync wrote, opened once while a run plans: its images (read on
another thread while the registries answer the HEADs) and, when a kept image is an index
that may lack a platform the list now wants, the same open file as a source."""

from __future__ import annotations

import contextlib
import os

from archiver.blobs.parts import bundle_name
from archiver.blobs.path_tree import open_tree
from archiver.blobs.tree import Tree
from archiver.model.image import ImageEntry
from archiver.places.archive import ArchiveSource
from archiver.places.base import Source
from archiver.places.oci_layout import is_layout, read_entries


def output_exists(output: str) -> bool:
    """A file, a directory, or the parts of a split bundle."""
    return os.path.exists(output) or bundle_name(output) is not None


class EarlierOutput:
    """OUT as the last run left it; ``close`` when the plan is made."""

    def __init__(self, output: str) -> None:
        self._output = output
        self._open = contextlib.ExitStack()
        self._tree: Tree | None = None
        self._source: ArchiveSource | None = None

    def entries(self) -> list[ImageEntry] | None:
        """Its images, or None when there is none: its index.json's entries (the names are
        all a plan needs; a hybrid's index.json names every image as its manifest.json
        does), else every image."""
        if not output_exists(self._output):
            return None
        self._tree = self._open.enter_context(open_tree(self._output))
        if is_layout(self._tree):
            return read_entries(self._tree)
        return self.source().images()

    def source(self) -> Source:
        """The same open file, every image of it (after ``entries``, which opened it)."""
        if self._source is None:
            assert self._tree is not None, "entries() opens it"
            self._source = ArchiveSource(self._tree)
        return self._source

    def close(self) -> None:
        self._open.close()
