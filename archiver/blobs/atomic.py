"""Files written to disk for good: small ones replaced atomically (written under a
temporary name beside the target, synced, given their mode, then renamed over it; nothing
is left behind on failure), large ones handed to the disk as they grow.

What is replaced is a regular file or nothing: a device, a FIFO, a socket or a directory
at the output's name is refused. A symlink is written through, as ``cp`` does: its target
is replaced (atomically, beside itself) and the link stays a link. Temporary files are
named ``.NAME.PID.XXXXXXXX.tmp``; those a killed run left are removed by the next write to
the same place. A full disk names the file being written."""

from __future__ import annotations

import contextlib
import io
import os
import re
import stat
import tempfile
import threading
import time
from pathlib import Path

from archiver.blobs.regular_file import kind
from archiver.errors import Conflict, one_line


def umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def output_path(path: Path) -> Path:
    """Where writing ``path`` lands: ``path``, or the file a symlink there points to (the
    end of its chain, which may not exist yet); Conflict when what is there is not a
    regular file."""
    target = Path(os.path.realpath(path)) if path.is_symlink() else path
    try:
        mode = os.stat(target).st_mode
    except FileNotFoundError:
        return target
    if not stat.S_ISREG(mode):
        shown = path if target == path else f"{path} (a link to {target})"
        raise Conflict(f"{shown}: {kind(mode)}, not a regular file: refused to replace it")
    return target


def temp_beside(target: Path) -> tuple[int, str]:
    """A new temporary file in ``target``'s directory (its descriptor and name), once the
    ones an earlier, killed run left there for ``target`` are gone."""
    remove_stale_temps(target)
    return tempfile.mkstemp(
        prefix=f".{target.name}.{os.getpid()}.", suffix=".tmp", dir=target.parent
    )


def remove_stale_temps(target: Path) -> list[Path]:
    """Remove ``.NAME.*.tmp`` files beside ``target`` that a run killed before this process
    started left behind: older than this process, and not of a process still running
    (the pid in the name). Those removed."""
    pattern = re.compile(re.escape(f".{target.name}.") + r"(?:(\d+)\.)?[a-z0-9_]{8}\.tmp")
    removed: list[Path] = []
    try:
        names = os.listdir(target.parent)
    except OSError:
        return removed  # the write that follows says why
    for name in names:
        match = pattern.fullmatch(name)
        if match is None:
            continue
        path = target.parent / name
        try:
            st = os.lstat(path)
        except OSError:
            continue
        pid = int(match.group(1)) if match.group(1) else None
        if not stat.S_ISREG(st.st_mode) or st.st_mtime >= process_start():
            continue
        if pid is not None and pid != os.getpid() and _running(pid):
            continue
        with contextlib.suppress(OSError):  # another run removed it first, or may not
            path.unlink()
            removed.append(path)
    return removed


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's, alive
    except (OSError, OverflowError):
        return False
    return True


_IMPORTED = time.time()


def process_start() -> float:
    """When this process started (seconds since the epoch); where /proc does not say,
    when this module was imported."""
    try:
        with open("/proc/self/stat") as file:
            ticks = int(file.read().rsplit(")", 1)[1].split()[19])  # field 22, starttime
        with open("/proc/stat") as file:
            boot = next(int(line.split()[1]) for line in file if line.startswith("btime "))
        return min(boot + ticks / os.sysconf("SC_CLK_TCK"), _IMPORTED)
    except (OSError, ValueError, IndexError, StopIteration):
        return _IMPORTED


def named(exc: OSError, path: str | Path) -> OSError:
    """``exc`` naming ``path`` when it names no file (a full disk: ENOSPC on a write)."""
    if exc.filename is not None or exc.errno is None:
        return exc
    return OSError(exc.errno, exc.strerror, one_line(str(path)))


def replace_file(path: Path, data: bytes, mode: int | None = None) -> None:
    """``path`` now holds ``data``, or (on any error) what it held before. ``mode``: the
    file's permissions; by default those of the file it replaces, else the umask's. A
    symlink at ``path`` stays: the file it points to is replaced."""
    target = output_path(path)
    if mode is None:
        mode = target.stat().st_mode & 0o777 if target.exists() else 0o666 & ~umask()
    fd, temp = temp_beside(target)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(temp, mode)
        os.replace(temp, target)
    except BaseException as exc:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp)
        if isinstance(exc, OSError):
            raise named(exc, path) from None
        raise


class SyncingFile(io.BufferedWriter):
    """A large output file handed to the disk as it grows: every ``step`` bytes written,
    what is written so far is synced (fdatasync) on a thread of its own while writing goes
    on, so ``sync()`` at the end waits for the rest alone (making an archive keeps the CPU
    busy compressing and hashing while the disk would be idle). An error of a sync on the
    thread is raised by
    ``sync()`` (the kernel reports it to one sync only)."""

    def __init__(
        self, file: str | int, step: int = 16 * 1024 * 1024, name: str | Path | None = None
    ) -> None:
        """``file``: a path or an open descriptor (then owned: closed with this); ``name``:
        the file an error names (a full disk), by default ``file``'s path."""
        super().__init__(io.FileIO(file, "wb"))
        self._name = name if name is not None else file if isinstance(file, str) else None
        self._step = step
        self._unsynced = 0
        self._thread: threading.Thread | None = None
        self._error: OSError | None = None

    def _named(self, exc: OSError) -> OSError:
        return exc if self._name is None else named(exc, self._name)

    def write(self, data: bytes, /) -> int:  # type: ignore[override]
        try:
            written = super().write(data)
        except OSError as exc:
            raise self._named(exc) from None
        self._wrote(written)
        return written

    def copied(self, size: int) -> None:
        """``size`` bytes were put into the file past this stream (``copy_file_range``):
        they are synced as written ones are."""
        self._wrote(size)

    def _wrote(self, size: int) -> None:
        self._unsynced += size
        if self._unsynced >= self._step and (self._thread is None or not self._thread.is_alive()):
            self._unsynced = 0
            self.flush()  # all of it in the file: what the sync is for
            self._thread = threading.Thread(target=self._sync_so_far, name="writeback")
            self._thread.start()

    def _sync_so_far(self) -> None:
        try:
            os.fdatasync(self.fileno())
        except OSError as exc:
            self._error = exc

    def _settled(self) -> None:
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def flush(self) -> None:
        try:
            super().flush()
        except OSError as exc:
            raise self._named(exc) from None

    def sync(self) -> None:
        """Everything written is on disk (or the error that kept it from it)."""
        self.flush()
        self._settled()
        try:
            if self._error is not None:
                raise self._error
            os.fsync(self.fileno())
        except OSError as exc:
            raise self._named(exc) from None

    def close(self) -> None:
        self._settled()  # no sync of a closed (or reused) descriptor
        try:
            super().close()
        except OSError as exc:
            raise self._named(exc) from None
