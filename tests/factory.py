"""Deterministic FROM-scratch images for tests, written as a docker-save archive."""

from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile
from pathlib import Path


def layer(files: dict[str, bytes], mode: int = 0o644) -> bytes:
    """A layer tar of ``files`` with fixed metadata (0o755: files a container can run)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name in sorted(files):
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode = len(files[name]), 0, mode
            tar.addfile(info, io.BytesIO(files[name]))
    return buffer.getvalue()


def random_layer(size: int, seed: int = 0) -> bytes:
    """A layer with ``size`` bytes that do not compress (seeded, so repeatable)."""
    out = bytearray()
    counter = 0
    while len(out) < size:
        out += hashlib.sha512(f"{seed}:{counter}".encode()).digest()
        counter += 1
    return layer({f"blob-{seed}.bin": bytes(out[:size])})


def _sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def docker_save(path: Path, images: list[tuple[list[str], list[bytes]]]) -> Path:
    """Write ``images`` (tags, layer tars) as a docker-save archive (skopeo's naming)."""
    manifest = []
    written: set[str] = set()
    with tarfile.open(path, "w") as tar:

        def add(name: str, data: bytes) -> None:
            if name in written:
                return
            written.add(name)
            info = tarfile.TarInfo(name)
            info.size, info.mtime = len(data), 0
            tar.addfile(info, io.BytesIO(data))

        for tags, layers in images:
            config = json.dumps(
                {
                    "architecture": "amd64",
                    "os": "linux",
                    "created": "2025-01-01T00:00:00Z",
                    "config": {"Labels": {"tags": ",".join(tags)}},
                    "rootfs": {"type": "layers", "diff_ids": [_sha(x) for x in layers]},
                    "history": [{"created_by": f"layer {i}"} for i in range(len(layers))],
                },
                sort_keys=True,
            ).encode()
            config_name = _sha(config)[7:] + ".json"
            add(config_name, config)
            paths = []
            for data in layers:
                name = _sha(data)[7:] + ".tar"
                add(name, data)
                paths.append(name)
            manifest.append({"Config": config_name, "RepoTags": tags, "Layers": paths})
        add("manifest.json", json.dumps(manifest).encode())
    return path


def file_size(path: Path) -> int:
    return os.path.getsize(path)


class Pipe(io.RawIOBase):
    """A non-seekable stream, as a daemon's response is."""

    def __init__(self, data: bytes) -> None:
        self._data = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        chunk = self._data.read(len(buffer))
        buffer[: len(chunk)] = chunk
        return len(chunk)
