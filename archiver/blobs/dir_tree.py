"""A directory as a file tree (``tree.Tree``); symlinks are followed only while they stay
inside it."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import BinaryIO

from archiver.blobs.tree import normalise_name
from archiver.errors import InputError, NotFound


class DirTree:
    """A directory; symlinks are followed only while they stay inside it."""

    def __init__(self, root: Path, origin: str) -> None:
        self.origin = origin
        self._root = root.resolve()

    def _path(self, name: str) -> Path:
        clean = normalise_name(name, self.origin)
        path = self._root / clean
        try:
            real = path.resolve()
        except (RuntimeError, OSError) as exc:  # a symlink loop
            raise InputError(f"{self.origin}: cannot resolve {clean!r} ({exc})") from None
        if real != self._root and self._root not in real.parents:
            raise InputError(f"{self.origin}: unsafe path {clean!r}: a link leaves the directory")
        return real

    def exists(self, name: str) -> bool:
        return self._path(name).is_file()

    def size(self, name: str) -> int:
        path = self._path(name)
        try:
            st = path.stat()
        except FileNotFoundError:
            raise NotFound(f"{self.origin}: no file {name!r}") from None
        if not stat.S_ISREG(st.st_mode):
            raise InputError(f"{self.origin}: {name!r} is not a regular file")
        return st.st_size

    def open(self, name: str) -> BinaryIO:
        path = self._path(name)
        try:
            return path.open("rb")
        except FileNotFoundError:
            raise NotFound(f"{self.origin}: no file {name!r}") from None
        except IsADirectoryError:
            raise InputError(f"{self.origin}: {name!r} is not a regular file") from None

    def files(self) -> list[str]:
        out = []
        for dirpath, _dirs, names in os.walk(self._root):
            for n in names:
                out.append(
                    os.path.relpath(os.path.join(dirpath, n), self._root).replace(os.sep, "/")
                )
        return sorted(out)
