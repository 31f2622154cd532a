"""Split media: a bundle written as ``NAME.001``, ``NAME.002``, … and ``NAME.parts.json``.

The parts are the bundle's bytes cut at a fixed size (``cat NAME.0* > NAME`` gives the
unsplit bundle back); the small JSON manifest lists each part's size and sha256 and the
whole bundle's, so a damaged, missing, reordered or foreign part is named. Readers take
the manifest, the first part or the bundle's own name and see one file (``PartsFile``).
A lost or damaged part is written again alone (``only_part``): writing is deterministic, so
the same inputs give the same bytes, and the new part is checked against the manifest
before it replaces anything.
"""

from __future__ import annotations

import bisect
import contextlib
import hashlib
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from archiver.blobs import limits
from archiver.blobs.atomic import SyncingFile, output_path, replace_file, temp_beside
from archiver.blobs.regular_file import open_regular
from archiver.errors import InputError, IntegrityError, NotFound
from archiver.model.json_decode import load_json

FAT32 = 4 * 1024**3 - 1
"""The largest file FAT32 holds."""
FORMAT = "archiver-parts"
JOURNAL_FORMAT = "archiver-parts-commit"
MANIFEST_SUFFIX = ".parts.json"
_UNITS = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}
_MIN_PART = 1024 * 1024
MAX_MANIFEST = limits.MAX_ARCHIVE_INDEX
"""A parts manifest is read whole: at most this many bytes."""


def parse_size(text: str) -> int:
    """``4G``, ``700M``, ``123456`` (bytes) or ``fat32``."""
    if text.lower() == "fat32":
        return FAT32
    match = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?", text.strip().lower(), re.ASCII)
    if not match:
        raise InputError(f"--split-size {text!r}: a size such as 4G, 700M, or fat32")
    size = int(float(match.group(1)) * _UNITS[match.group(2)])
    if size < _MIN_PART:
        raise InputError(f"--split-size {text!r}: parts of at least 1M")
    return size


def part_name(name: str, number: int) -> str:
    return f"{name}.{number:03d}"


@dataclass(frozen=True)
class Split:
    size: int
    only_part: int | None = None


class SplitWriter:
    """A write-only file cut into parts of ``size`` bytes, under temporary names until
    ``commit``; ``only_part``: keep just that part (the rest is counted, not written)."""

    def __init__(self, target: Path, split: Split) -> None:
        self._target = target
        self._size = split.size
        self._only = split.only_part
        if not target.parent.is_dir():
            raise InputError(f"{target}: directory {target.parent} does not exist")
        finish_commit(target)  # an earlier change of these parts, killed half done
        self._parts: list[dict[str, Any]] = []
        self._temps: list[tuple[str, Path]] = []
        """Each part written: its temporary name, and the file it will replace."""
        self._file: Any = None
        self._hasher: Any = None
        self._whole = hashlib.sha256()
        self._in_part = 0
        self.written = 0

    def _open_part(self) -> None:
        number = len(self._parts) + 1
        self._parts.append({"name": part_name(self._target.name, number), "size": 0})
        self._hasher = hashlib.sha256()
        self._in_part = 0
        if self._only is None or self._only == number:
            path = self._target.parent / self._parts[-1]["name"]
            final = output_path(path)  # a symlink: the file it points to is replaced
            fd, temp = temp_beside(final)
            self._temps.append((temp, final))
            self._file = SyncingFile(fd, name=path)
        else:
            self._file = None

    def _close_part(self) -> None:
        if self._hasher is None:
            return
        self._parts[-1]["sha256"] = self._hasher.hexdigest()
        if self._file is not None:
            self._file.sync()
            self._file.close()
        self._file = None
        self._hasher = None

    def write(self, data: bytes, /) -> int:
        view = memoryview(data)
        while view:
            if self._hasher is None or self._in_part == self._size:
                self._close_part()
                self._open_part()
            take = min(len(view), self._size - self._in_part)
            piece = view[:take]
            self._hasher.update(piece)
            self._whole.update(piece)
            if self._file is not None:
                self._file.write(piece)
            self._in_part += take
            self._parts[-1]["size"] += take
            self.written += take
            view = view[take:]
        return len(data)

    def flush(self) -> None:
        if self._file is not None:
            self._file.flush()

    def manifest(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "version": 1,
            "name": self._target.name,
            "size": self.written,
            "sha256": self._whole.hexdigest(),
            "parts": self._parts,
        }

    def commit(self, mode: int) -> list[str]:
        """Put the parts in place and write the manifest, as one change: a journal of the
        renames is written first, then carried out (see ``finish_commit``), so a run killed
        half way leaves a change the next use of the bundle completes, never a mix of old
        and new parts under the old manifest. The part names written."""
        self._close_part()
        manifest = self.manifest()
        if self._only is not None:
            return [self._commit_one(manifest, mode)]
        renames = []
        for (temp, _), part in zip(self._temps, manifest["parts"], strict=True):
            os.chmod(temp, mode)
            renames.append([part["name"], os.path.basename(temp)])
        journal = {"format": JOURNAL_FORMAT, "manifest": manifest, "mode": mode, "renames": renames}
        replace_file(_journal(self._target), json.dumps(journal).encode(), 0o600)
        self._temps = []  # the journal has them now: a failure from here on is finished later
        finish_commit(self._target)
        return [part["name"] for part in manifest["parts"]]

    def _commit_one(self, manifest: dict[str, Any], mode: int) -> str:
        number = self._only
        assert number is not None
        recorded = read_manifest(self._target)
        if number > len(recorded["parts"]) or number > len(manifest["parts"]):
            raise InputError(f"{self._target}: there is no part {number}")
        want = recorded["parts"][number - 1]
        got = manifest["parts"][number - 1]
        if (got["size"], got["sha256"]) != (want["size"], want["sha256"]):
            raise IntegrityError(
                str(self._target),
                f"part {number}",
                "written again, it differs from the manifest: the inputs or the options "
                "are not those the bundle was made with",
            )
        ((temp, _),) = self._temps
        os.chmod(temp, mode)
        os.replace(temp, output_path(self._target.parent / want["name"]))
        self._temps = []
        return str(want["name"])

    def discard(self) -> None:
        if self._file is not None:
            with contextlib.suppress(OSError):
                self._file.close()
        for temp, _ in self._temps:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temp)
        self._temps = []


def _journal(target: Path) -> Path:
    return target.parent / f".{target.name}.parts.commit"


def finish_commit(target: Path) -> None:
    """Carry out a change of parts a killed writer journaled and did not finish (each step
    may be done twice): the new parts renamed into place, parts beyond them removed, the
    new manifest written, an unsplit bundle of the name removed, the journal last."""
    journal = _journal(target)
    try:
        with os.fdopen(open_regular(journal), "rb") as file:
            raw = limits.read_capped(file, MAX_MANIFEST, str(journal))
    except FileNotFoundError:
        return
    except OSError as exc:
        raise InputError(f"{journal}: not a journal of parts ({exc.strerror or exc})") from None
    plan = load_json(raw, str(journal))
    renames = plan.get("renames") if isinstance(plan, dict) else None
    if (
        not isinstance(plan, dict)
        or plan.get("format") != JOURNAL_FORMAT
        or not isinstance(plan.get("mode"), int)
        or not isinstance(renames, list)
        or not all(_safe_rename(item, target) for item in renames)
    ):
        raise InputError(f"{journal}: not a journal of parts archiver wrote")
    manifest = _checked_manifest(plan.get("manifest"), str(journal))
    for name, temp in renames:
        final = output_path(target.parent / name)
        with contextlib.suppress(FileNotFoundError):  # renamed already
            os.replace(final.parent / temp, final)
    for stale in _numbered(target)[len(manifest["parts"]) :]:  # of an earlier, longer split
        stale.unlink()
    _write_manifest(target, manifest, plan["mode"])
    if target.is_file():  # an unsplit bundle of that name: the parts replace it
        target.unlink()
    journal.unlink()


def _safe_rename(item: object, target: Path) -> bool:
    """A journal's rename: a part of ``target`` from a temporary file beside it."""
    if not (isinstance(item, list) and len(item) == 2 and all(isinstance(i, str) for i in item)):
        return False
    name, temp = item
    part = re.fullmatch(re.escape(target.name) + r"\.\d{3,}", name, re.ASCII)
    stale = re.fullmatch(re.escape(f".{name}.") + r"[\w.]+\.tmp", temp, re.ASCII)
    return part is not None and stale is not None and "/" not in temp


def _numbered(target: Path) -> list[Path]:
    found = []
    number = 1
    while (path := target.parent / part_name(target.name, number)).exists():
        found.append(path)
        number += 1
    return found


def _write_manifest(target: Path, manifest: dict[str, Any], mode: int) -> None:
    path = target.parent / (target.name + MANIFEST_SUFFIX)
    replace_file(path, (json.dumps(manifest, indent=1) + "\n").encode(), mode)


def bundle_name(name: str) -> Path | None:
    """The bundle a name stands for when it is split: ``NAME``, ``NAME.parts.json`` or
    ``NAME.001`` with a manifest beside them; None for anything else."""
    path = Path(name)
    if name.endswith(MANIFEST_SUFFIX):
        target = path.with_name(path.name[: -len(MANIFEST_SUFFIX)])
    elif re.search(r"\.\d{3}$", name):
        target = path.with_name(path.name[:-4])
    else:
        target = path
    manifest = target.with_name(target.name + MANIFEST_SUFFIX)
    return target if manifest.is_file() and not target.is_file() else None


def read_manifest(target: Path) -> dict[str, Any]:
    """The manifest of a split bundle (a change of its parts a killed writer left half
    done is finished first)."""
    finish_commit(target)
    path = target.with_name(target.name + MANIFEST_SUFFIX)
    try:
        with os.fdopen(open_regular(path), "rb") as file:
            raw = limits.read_capped(file, MAX_MANIFEST, str(path))
    except FileNotFoundError:
        raise NotFound(f"{path}: no parts manifest") from None
    except OSError as exc:
        raise InputError(f"{path}: not a parts manifest ({exc.strerror or exc})") from None
    return _checked_manifest(load_json(raw, str(path)), str(path))


def _checked_manifest(data: Any, path: str) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise InputError(f"{path}: not an archiver parts manifest (not a JSON object)")
    parts = data.get("parts")
    if data.get("format") != FORMAT or not isinstance(parts, list) or not parts:
        raise InputError(f"{path}: not an archiver parts manifest")
    for part in parts:
        if not (
            isinstance(part, dict)
            and isinstance(part.get("name"), str)
            and "/" not in part["name"]
            and part["name"] not in ("", ".", "..")
            and isinstance(part.get("size"), int)
            and isinstance(part.get("sha256"), str)
        ):
            raise InputError(f"{path}: a part entry is malformed")
    return data


class PartsFile:
    """The parts of a split bundle read as one file (sizes checked against the manifest)."""

    def __init__(self, target: Path) -> None:
        self.fd: int | None = None  # many files: frames are read, never copied in the kernel
        manifest = read_manifest(target)
        self.origin = str(target)
        self._files: list[tuple[int, int, int]] = []  # (start, size, fd)
        start = 0
        for number, part in enumerate(manifest["parts"], 1):
            path = target.parent / part["name"]
            try:
                fd = open_regular(path)
            except FileNotFoundError:
                self.close()
                raise NotFound(f"{path}: part {number} of {target.name} is missing") from None
            except BaseException:  # not a regular file, say
                self.close()
                raise
            size = os.fstat(fd).st_size
            if size != part["size"]:
                os.close(fd)
                self.close()
                raise IntegrityError(
                    str(path), f"part {number}", f"{size} bytes, the manifest says {part['size']}"
                )
            self._files.append((start, size, fd))
            start += size
        self.size = start
        self._starts = [f[0] for f in self._files]

    def pread(self, length: int, offset: int, end: int | None = None) -> bytes:
        out = []
        index = bisect.bisect_right(self._starts, offset) - 1
        while length > 0 and 0 <= index < len(self._files):
            start, size, fd = self._files[index]
            within = offset - start
            take = min(length, size - within)
            data = os.pread(fd, take, within)
            out.append(data)
            offset += len(data)
            length -= len(data)
            if len(data) < take:
                break
            index += 1
        return b"".join(out)

    def close(self) -> None:
        for _, _, fd in self._files:
            with contextlib.suppress(OSError):
                os.close(fd)
        self._files = []


def check_parts(target: Path) -> list[str]:
    """Every part against the manifest (size and sha256), then the whole: the problems,
    each naming its part."""
    manifest = read_manifest(target)
    problems = []
    whole = hashlib.sha256()
    for number, part in enumerate(manifest["parts"], 1):
        path = target.parent / part["name"]
        hasher = hashlib.sha256()
        try:
            with os.fdopen(open_regular(path), "rb") as file:
                while chunk := file.read(1024 * 1024):
                    hasher.update(chunk)
                    whole.update(chunk)
        except FileNotFoundError:
            problems.append(f"{path}: part {number} is missing")
            continue
        if hasher.hexdigest() != part["sha256"]:
            problems.append(
                f"{path}: part {number} is damaged or from another bundle "
                f"(sha256 {hasher.hexdigest()[:16]}…, the manifest says {part['sha256'][:16]}…)"
            )
    if not problems and whole.hexdigest() != manifest.get("sha256"):
        problems.append(f"{target}: the parts do not add up to the bundle the manifest names")
    return problems
