"""tag, rmi, prune, df and ls filters on archives of every writable format.

The daemon's behaviour (the oracle) is checked in tests/integration/test_manage_oracle.py;
here: the same rules on every format, the rewrite itself, and bad input.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from archiver.blobs.seek_table import read_seek_table
from archiver.blobs.zstd_writer import SeekableWriter
from archiver.model.digest import chain_ids
from tests.conftest import SAMPLES, Run
from tests.factory import _sha, docker_save, layer, random_layer

BASE = layer({"base": b"b" * 1000})
ONE = layer({"app": b"1" * 300})
TWO = layer({"app": b"2" * 500})
SOLO = layer({"solo": b"s" * 700})


def _archive(tmp_path: Path, run: Run, fmt: str) -> Path:
    """app:1 + app:one + other/x:1 (base + one), app:2 (base + two), solo:1 (solo)."""
    source = docker_save(
        tmp_path / "source.tar",
        [
            (["app:1", "app:one", "other/x:1"], [BASE, ONE]),
            (["app:2"], [BASE, TWO]),
            (["solo:1"], [SOLO]),
        ],
    )
    if fmt == "legacy":
        return source
    names = {"bundle": "a.tar.zst", "docker": "a.tar", "oci": "a.oci.tar", "oci-dir": "a-dir"}
    target = tmp_path / names[fmt]
    result = run("convert", source, target, "--to", fmt)
    assert result.code == 0, result.err
    source.unlink()
    return target


def _listing(run: Run, archive: Path) -> list[tuple[str, str, str]]:
    result = run("ls", "--json", archive)
    assert result.code == 0, result.err
    return sorted((r["repository"], r["tag"], r["id"][7:19]) for r in json.loads(result.out))


def _ids(run: Run, archive: Path) -> dict[str, str]:
    rows = json.loads(run("ls", "--json", archive).out)
    return {f"{r['repository']}:{r['tag']}": r["id"] for r in rows}


FORMATS = ["bundle", "docker", "oci", "oci-dir", "legacy"]


@pytest.mark.parametrize("fmt", FORMATS)
def test_docker_scenario_on_every_format(fmt: str, run: Run, tmp_path: Path) -> None:
    archive = _archive(tmp_path, run, fmt)
    ids = _ids(run, archive)
    one, two, solo = ids["app:1"], ids["app:2"], ids["solo:1"]

    assert run("tag", archive, "app:2", "app:latest").code == 0
    assert _ids(run, archive)["app:latest"] == two
    # moving solo:1 leaves the solo image dangling
    assert run("tag", archive, "app:2", "solo:1").code == 0
    listing = _listing(run, archive)
    assert ("<none>", "<none>", solo[7:19]) in listing
    assert ("solo", "1", two[7:19]) in listing

    result = run("rmi", archive, "app:one")
    assert (result.code, result.out) == (0, "Untagged: app:one\n")

    # by ID, named in two repositories: refused without -f, the archive unchanged
    before = _listing(run, archive)
    refused = run("rmi", archive, one[7:19])
    assert refused.code == 6
    assert "unable to delete" in refused.err and "must be forced" in refused.err
    assert _listing(run, archive) == before

    forced = run("rmi", "-f", archive, one[7:19])
    assert forced.code == 0, forced.err
    one_chains = chain_ids([_sha(BASE), _sha(ONE)])
    assert forced.out.splitlines() == [
        "Untagged: app:1",
        "Untagged: other/x:1",
        f"Deleted: {one}",
        f"Deleted: {one_chains[1]}",  # the base chain stays: app:2 uses it
    ]

    pruned = run("prune", "-f", archive)
    assert pruned.code == 0, pruned.err
    assert pruned.out.splitlines()[:3] == [
        "Deleted Images:",
        f"deleted: {solo}",
        f"deleted: {_sha(SOLO)}",
    ]
    assert pruned.out.splitlines()[-1].startswith("Total reclaimed space: ")
    assert _listing(run, archive) == [
        ("app", "2", two[7:19]),
        ("app", "latest", two[7:19]),
        ("solo", "1", two[7:19]),
    ]
    # app:2, app:latest and solo:1: two repositories, so by ID needs -f
    assert run("rmi", archive, two).code == 6
    assert run("verify", archive).code == 0
    assert run("prune", "-a", "-f", archive).out == "Total reclaimed space: 0B\n"


def test_rmi_by_id_without_force_when_one_tag(run: Run, tmp_path: Path) -> None:
    archive = _archive(tmp_path, run, "docker")
    solo = _ids(run, archive)["solo:1"]
    result = run("rmi", archive, solo[7:15])
    assert result.out.splitlines() == [
        "Untagged: solo:1",
        f"Deleted: {solo}",
        f"Deleted: {_sha(SOLO)}",
    ]
    # the last image using the base: its layers go, top down
    two = _ids(run, archive)["app:2"]
    result = run("rmi", archive, "app:2")
    chains = chain_ids([_sha(BASE), _sha(TWO)])
    assert result.out.splitlines() == [
        "Untagged: app:2",
        f"Deleted: {two}",
        f"Deleted: {chains[1]}",
    ]
    assert run("rmi", "-f", archive, "app:1").out == "Untagged: app:1\n"


def test_rmi_removes_blobs_nothing_uses_and_keeps_the_rest(run: Run, tmp_path: Path) -> None:
    archive = _archive(tmp_path, run, "oci-dir")
    blobs = archive / "blobs" / "sha256"
    assert (blobs / _sha(SOLO)[7:]).exists()
    assert run("rmi", archive, "solo:1").code == 0
    assert not (blobs / _sha(SOLO)[7:]).exists()
    assert (blobs / _sha(BASE)[7:]).exists() and (blobs / _sha(TWO)[7:]).exists()
    assert run("verify", archive).code == 0


def test_prune_collects_stray_blobs_and_reports_them(run: Run, tmp_path: Path) -> None:
    archive = _archive(tmp_path, run, "oci-dir")
    stray = archive / "blobs" / "sha256" / ("ab" * 32)
    stray.write_bytes(b"x" * 5000)
    df = json.loads(run("df", "--json", archive).out)
    assert df["reclaimable"] == 5000
    result = run("prune", "--json", "-f", archive)
    assert json.loads(result.out) == {
        "untagged": [],
        "deleted": [],
        "reclaimed": 5000,
        "dry_run": False,
    }
    assert not stray.exists()


def test_dry_run_changes_nothing(run: Run, tmp_path: Path) -> None:
    archive = _archive(tmp_path, run, "bundle")
    before = archive.read_bytes()
    assert run("tag", archive, "app:2", "solo:1").code == 0
    moved = archive.read_bytes()
    for args in (["rmi", "--dry-run", archive, "app:2"], ["prune", "--dry-run", "-a", archive]):
        result = run(*args)
        assert result.code == 0 and "Dry run" in result.err
        assert result.out
        assert archive.read_bytes() == moved
    assert moved != before


def test_prune_asks_first(run: Run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    archive = _archive(tmp_path, run, "docker")
    run("tag", archive, "app:2", "solo:1")
    before = archive.read_bytes()
    monkeypatch.setattr(sys, "stdin", io.StringIO("n\n"))
    result = run("prune", archive)
    assert result.code == 130 and "WARNING! This will remove all dangling images." in result.out
    assert archive.read_bytes() == before


def test_df(run: Run, tmp_path: Path) -> None:
    archive = _archive(tmp_path, run, "docker")
    df = json.loads(run("df", "--json", archive).out)
    sizes = {d["names"][0]: d for d in df["images"]}
    assert sizes["app:1"]["shared_size"] == len(BASE)
    assert sizes["app:1"]["unique_size"] == len(ONE)
    assert sizes["solo:1"]["shared_size"] == 0
    assert (df["total_count"], df["active"], df["reclaimable"]) == (3, 3, 0)
    assert {layer["digest"]: layer["images"] for layer in df["layers"]}[_sha(BASE)] == 2
    table = run("df", archive).out.splitlines()
    assert table[0].split() == ["TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"]
    assert table[1].split()[:3] == ["Images", "3", "3"]
    assert table[1].endswith("0B (0%)")

    solo = _ids(run, archive)["solo:1"]
    run("tag", archive, "app:2", "solo:1")  # solo's image is now dangling
    df = json.loads(run("df", "--json", archive).out)
    # prune would free its layer, config and manifest
    assert (df["active"], df["reclaimable"]) == (2, len(SOLO) + _document_sizes(archive, solo))
    verbose = run("df", "-v", archive).out
    assert "SHARED SIZE" in verbose and "UNIQUE SIZE" in verbose and "Layers space usage" in verbose
    assert run("df", "--format", "{{.Type}} {{.TotalCount}} {{.Active}}", archive).out == (
        "Images 3 2\n"
    )


def _document_sizes(archive: Path, image_id: str) -> int:
    """Config + manifest bytes of ``image_id`` in a hybrid tar."""
    import tarfile

    with tarfile.open(archive) as tar:
        index = json.load(tar.extractfile("index.json"))  # type: ignore[arg-type]
        for entry in index["manifests"]:
            manifest = tar.extractfile(f"blobs/sha256/{entry['digest'][7:]}").read()  # type: ignore[union-attr]
            if json.loads(manifest)["config"]["digest"] == image_id:
                config = json.loads(manifest)["config"]["size"]
                return len(manifest) + config
    raise AssertionError(image_id)


def test_ls_filters(run: Run, tmp_path: Path) -> None:
    sample = SAMPLES / "hybrid.tar"
    probe = _ids(run, sample)["localhost:5000/tools/probe:0.1"][7:19]
    assert run("ls", "-q", "-f", "label=tier", sample).out.split() == [probe]
    assert run("ls", "-q", "-f", "label=tier=tools", sample).out.strip()
    assert run("ls", "-q", "-f", "label=tier=other", sample).out == ""
    # every sample image was created at the same time: none before, none since
    assert run("ls", "-q", "-f", "before=demo/app:2.1", sample).out == ""
    assert run("ls", "-q", "-f", "since=demo/app:2.1", sample).out == ""
    assert run("ls", "-f", "before=nope:1", sample).code == 4


def test_ls_before_and_since_compare_creation_times(run: Run, tmp_path: Path) -> None:
    archive = tmp_path / "times.tar"
    docker_save(archive, [(["old:1"], [ONE]), (["new:1"], [TWO])])
    # the factory writes one creation time; give new:1 a later one via a rewrite of its config
    times = _with_created(archive, {"new:1": "2026-01-01T00:00:00Z"})
    assert run("ls", "--format", "{{.Repository}}", "-f", "before=new:1", times).out == "old\n"
    assert run("ls", "--format", "{{.Repository}}", "-f", "since=old:1", times).out == "new\n"


def _with_created(archive: Path, created: dict[str, str]) -> Path:
    """A copy of a factory archive whose images named in ``created`` have that time."""
    import hashlib
    import tarfile

    out = archive.with_name("timed.tar")
    with tarfile.open(archive) as tar:
        members = {m.name: tar.extractfile(m).read() for m in tar.getmembers()}  # type: ignore[union-attr]
    manifest = json.loads(members.pop("manifest.json"))
    for item in manifest:
        for tag, when in created.items():
            if tag in item["RepoTags"]:
                config = json.loads(members.pop(item["Config"]))
                config["created"] = when
                raw = json.dumps(config).encode()
                item["Config"] = hashlib.sha256(raw).hexdigest() + ".json"
                members[item["Config"]] = raw
    members["manifest.json"] = json.dumps(manifest).encode()
    with tarfile.open(out, "w") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return out


def test_bundle_rewrite_copies_layer_frames_without_recompressing(
    run: Run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = docker_save(tmp_path / "big.tar", [(["big:1"], [random_layer(3_000_000, seed=7)])])
    bundle = tmp_path / "big.tar.zst"
    assert run("pack", source, "-o", bundle, "--frame-size", "1048576").code == 0
    old_frames = _frame_bytes(bundle)

    compressed: list[int] = []
    original = SeekableWriter._compress

    def counting(self: SeekableWriter, chunk: bytes) -> bytes:
        compressed.append(len(chunk))
        return original(self, chunk)

    monkeypatch.setattr(SeekableWriter, "_compress", counting)
    assert run("tag", bundle, "big:1", "registry.local:5000/big:1").code == 0
    assert sum(compressed) < 64 * 1024  # the head only: names and documents
    new_frames = _frame_bytes(bundle)
    big = [f for f in new_frames if len(f) > 100_000]
    assert len(big) == 3 and all(f in old_frames for f in big)
    assert run("verify", bundle).code == 0
    assert ("registry.local:5000/big", "1") in [(r, t) for r, t, _ in _listing(run, bundle)]


def _frame_bytes(path: Path) -> list[bytes]:
    with path.open("rb") as file:
        frames = read_seek_table(file.fileno(), os.path.getsize(path))
        assert frames is not None
        return [os.pread(file.fileno(), f.compressed_size, f.compressed_offset) for f in frames]


def test_rewrite_keeps_the_file_mode(run: Run, tmp_path: Path) -> None:
    archive = _archive(tmp_path, run, "bundle")
    os.chmod(archive, 0o640)
    assert run("tag", archive, "app:2", "x:1").code == 0
    assert (archive.stat().st_mode & 0o777) == 0o640
    assert sorted(os.listdir(tmp_path)) == ["a.tar.zst"]


# -- bad input: one line, non-zero exit, the archive exactly as it was --------------------


@pytest.mark.parametrize(
    ("args", "code", "words"),
    [
        (["tag", "{a}", "nope:1", "x:1"], 4, "no image nope:1"),
        (["tag", "{a}", "app:2", "Bad:1"], 2, "must be lowercase"),
        (["tag", "{a}", "app:2", "x@sha256:" + "a" * 64], 2, "digest reference"),
        (["rmi", "{a}", "app:2", "nope:1"], 4, "no image nope:1"),
        (["rmi", "{a}", "app:2", "app:2"], 4, "no image app:2"),
    ],
)
def test_bad_requests_leave_the_archive_as_it_was(
    args: list[str], code: int, words: str, run: Run, tmp_path: Path
) -> None:
    archive = _archive(tmp_path, run, "bundle")
    before = archive.read_bytes()
    result = run(*[a.format(a=archive) for a in args])
    assert result.code == code, result.err
    assert words in result.err and result.err.count("\n") == 1, result.err
    assert archive.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["a.tar.zst"]


def test_ambiguous_id_prefix(run: Run, tmp_path: Path) -> None:
    images = [([f"img{i}:1"], [layer({"x": str(i).encode()})]) for i in range(40)]
    archive = docker_save(tmp_path / "many.tar", images)
    ids = list(_ids(run, archive).values())
    first = [i[7] for i in ids]
    shared = next(c for c in first if first.count(c) > 1)
    result = run("rmi", archive, shared)
    assert result.code == 6 and "ambiguous" in result.err


def test_read_only_formats_and_places(run: Run, tmp_path: Path) -> None:
    gz = tmp_path / "a.tar.gz"
    gz.write_bytes(gzip.compress((SAMPLES / "hybrid.tar").read_bytes()))
    result = run("tag", gz, "demo/app:2.1", "x:1")
    assert result.code == 2 and "gzip-compressed archive is read-only" in result.err
    legacy_dir = tmp_path / "legacy"
    legacy_dir.mkdir()
    (legacy_dir / "manifest.json").write_text("[]")
    result = run("tag", legacy_dir, "a:1", "b:1")
    assert result.code == 2 and "only an OCI layout directory" in result.err
    assert run("tag", tmp_path / "missing.tar", "a:1", "b:1").code == 4


def test_read_only_file_is_refused(run: Run, tmp_path: Path) -> None:
    """ResolvedImage ignores file modes, so the CLI runs without the capabilities that let it."""
    setpriv = shutil.which("setpriv")
    assert setpriv, "setpriv (util-linux) is needed"
    archive = _archive(tmp_path, run, "bundle")
    os.chmod(archive, 0o444)
    before = archive.read_bytes()
    drop = "-dac_override,-dac_read_search"
    unprivileged = [setpriv, f"--bounding-set={drop}", f"--inh-caps={drop}", sys.executable]
    result = subprocess.run(
        [*unprivileged, "-m", "archiver", "tag", str(archive), "app:2", "x:1"],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2, result.stderr
    assert result.stderr == f"Error: {archive}: read-only: permission denied, nothing changed\n"
    assert archive.read_bytes() == before


@pytest.mark.parametrize("fmt", ["bundle", "docker"])
def test_disk_full_during_a_rewrite(fmt: str, run: Run, tmp_path: Path) -> None:
    source = docker_save(
        tmp_path / "in.tar", [(["big:1"], [random_layer(150_000, seed=1)]), (["x:1"], [ONE])]
    )
    archive = tmp_path / ("a.tar.zst" if fmt == "bundle" else "a.tar")
    assert run("convert", source, archive, "--to", fmt).code == 0
    source.unlink()
    before = archive.read_bytes()
    result = subprocess.run(
        [sys.executable, "-m", "archiver", "rmi", str(archive), "x:1"],
        capture_output=True,
        text=True,
        preexec_fn=_file_size_limit(len(before) // 2),  # as a full disk would stop it
    )
    assert result.returncode != 0
    assert result.stderr.startswith("Error: ") and result.stderr.count("\n") == 1, result.stderr
    assert archive.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == [archive.name]


def _file_size_limit(size: int) -> Callable[[], None]:
    def apply() -> None:
        import resource
        import signal

        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (size, size))

    return apply
