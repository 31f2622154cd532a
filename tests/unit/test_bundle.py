"""Bundles: seekable zstd, readable by plain zstd, listed from the head, read in place."""

from __future__ import annotations

import io
import json
import os
import struct
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from archiver.blobs.path_tree import open_tree
from archiver.blobs.seek_table import read_seek_table
from archiver.blobs.zstd_reader import SeekableReader
from archiver.engine.copy import copy
from archiver.places.archive import ArchiveSource
from archiver.places.layout_writer import open_sink
from tests.conftest import SAMPLES, Run, fixture_path
from tests.factory import Pipe, docker_save, layer, random_layer

BIG = 6 * 1024 * 1024


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Two archives sharing a big base layer, and one with an unrelated big layer."""
    root = tmp_path_factory.mktemp("inputs")
    base = random_layer(BIG, seed=1)
    return {
        "a": docker_save(root / "a.tar", [(["t/a:1"], [base, layer({"a": b"a" * 1000})])]),
        "b": docker_save(root / "b.tar", [(["t/b:1"], [base, layer({"b": b"b" * 1000})])]),
        "other": docker_save(root / "other.tar", [(["t/other:1"], [random_layer(BIG, seed=2)])]),
        "small": docker_save(root / "small.tar", [(["t/small:1"], [layer({"s": b"s" * 100})])]),
    }


def ls(run: Run, path: Path | str) -> list[dict]:
    result = run("ls", "--json", path)
    assert result.code == 0, result.err
    return json.loads(result.out)


def test_pack_dedups_across_inputs(inputs: dict[str, Path], run: Run, tmp_path: Path) -> None:
    bundle = tmp_path / "b.tar.zst"
    result = run("pack", inputs["a"], inputs["b"], "-o", bundle, "--json")
    assert result.code == 0, result.err
    summary = json.loads(result.out)
    assert summary["images"] == 2 and summary["bytes_saved_by_dedup"] >= BIG
    assert summary["bytes_written"] == bundle.stat().st_size
    # the base is stored once: the bundle is barely bigger than one copy of it
    assert BIG < bundle.stat().st_size < BIG * 1.2
    assert [(r["repository"], r["tag"]) for r in ls(run, bundle)] == [("t/a", "1"), ("t/b", "1")]
    assert run("verify", bundle).code == 0


def test_plain_zstd_gives_the_hybrid_tar(run: Run, tmp_path: Path) -> None:
    plain = subprocess.run(
        ["zstd", "-dc", str(SAMPLES / "bundle.tar.zst")], capture_output=True, check=True
    )
    assert plain.stdout == (SAMPLES / "hybrid.tar").read_bytes()


def test_bundle_head_comes_first_and_shared_layers_lead(
    inputs: dict[str, Path], run: Run, tmp_path: Path
) -> None:
    bundle = tmp_path / "order.tar.zst"
    assert run("pack", inputs["small"], inputs["a"], inputs["b"], "-o", bundle).code == 0
    names = subprocess.run(
        f"zstd -dc {bundle} | tar t", shell=True, capture_output=True, text=True, check=True
    ).stdout.split()
    assert names[:3] == ["oci-layout", "index.json", "manifest.json"]
    index = json.loads(
        subprocess.run(
            f"zstd -dc {bundle} | tar xO index.json", shell=True, capture_output=True, check=True
        ).stdout
    )
    manifests = {m["digest"][7:] for m in index["manifests"]}
    first_blob = next(
        i for i, n in enumerate(names) if n.startswith("blobs/sha256/") and len(n) > 20
    )
    documents = [n for n in names[first_blob:] if n.rsplit("/", 1)[-1] in manifests]
    assert documents and all(names.index(d) < names.index(names[-1]) for d in documents)
    sizes = {}
    with open_tree(str(bundle)) as tree:
        for name in names:
            if name.startswith("blobs/sha256/") and len(name) > 20:
                sizes[name] = tree.size(name)
    layers = [n for n in names if sizes.get(n, 0) > 2048]
    assert sizes[layers[0]] > BIG  # the shared base layer is the first layer


def test_ls_reads_only_the_head(inputs: dict[str, Path], run: Run, tmp_path: Path) -> None:
    bundle = tmp_path / "head.tar.zst"
    assert run("pack", inputs["a"], inputs["other"], "-o", bundle).code == 0
    with open_tree(str(bundle)) as tree:
        source = ArchiveSource(tree)
        from archiver.engine.catalog import records

        assert len(records(source)) == 2
        reader = tree._access  # type: ignore[attr-defined]
        assert isinstance(reader, SeekableReader)
        assert reader.compressed_bytes_read < 256 * 1024, reader.compressed_bytes_read


def test_one_image_reads_only_its_frames(inputs: dict[str, Path], run: Run, tmp_path: Path) -> None:
    bundle = tmp_path / "two.tar.zst"
    assert run("pack", inputs["small"], inputs["other"], "-o", bundle).code == 0
    with open_tree(str(bundle)) as tree:
        source = ArchiveSource(tree)
        wanted = [e for e in source.images() if e.refs[0].repository == "t/small"]
        copy(source, open_sink(str(tmp_path / "small.tar"), "docker"), wanted)
        reader = tree._access  # type: ignore[attr-defined]
        assert reader.compressed_bytes_read < 256 * 1024, reader.compressed_bytes_read
    assert [r["repository"] for r in ls(run, tmp_path / "small.tar")] == ["t/small"]
    result = run(
        "unpack", bundle, "-o", tmp_path / "other", "--to", "oci-dir", "--image", "t/other:1"
    )
    assert result.code == 0, result.err
    assert [r["repository"] for r in ls(run, tmp_path / "other")] == ["t/other"]


def test_layers_read_side_by_side_decompress_each_frame_once(
    inputs: dict[str, Path], run: Run, tmp_path: Path
) -> None:
    """Loads into a daemon read several layers of one bundle at once, a chunk of each in
    turn: each stream keeps its own frame, nobody's frames are decompressed twice."""
    import hashlib

    from archiver.engine.graph import resolve

    bundle = tmp_path / "two.tar.zst"
    assert run("pack", inputs["a"], inputs["other"], "-o", bundle).code == 0
    with open_tree(str(bundle)) as tree:
        source = ArchiveSource(tree)
        layers = {
            d.digest: d
            for entry in source.images()
            for d, data in resolve(source, entry).blobs()
            if data is None and d.size >= BIG
        }
        assert len(layers) == 2
        streams = {digest: source.open_blob(digest) for digest in layers}
        hashes = {digest: hashlib.sha256() for digest in layers}
        while streams:
            for digest, stream in list(streams.items()):
                if chunk := stream.read(1024 * 1024):
                    hashes[digest].update(chunk)
                else:
                    del streams[digest]
        assert {d.hex: h.hexdigest() for d, h in hashes.items()} == {d.hex: d.hex for d in layers}
        reader = tree._access  # type: ignore[attr-defined]
        # (headers near frame starts are read twice: a prefix, then the frame)
        assert reader.compressed_bytes_read < 1.1 * bundle.stat().st_size


@pytest.mark.parametrize("fmt", ["docker", "oci", "oci-dir"])
def test_round_trip_keeps_digests(fmt: str, run: Run, tmp_path: Path) -> None:
    out = tmp_path / f"out-{fmt}"
    assert run("unpack", SAMPLES / "bundle.tar.zst", "-o", out, "--to", fmt).code == 0
    again = tmp_path / "again.tar.zst"
    assert run("pack", out, "-o", again).code == 0
    assert again.read_bytes() == (SAMPLES / "bundle.tar.zst").read_bytes()
    assert ls(run, out) == ls(run, SAMPLES / "bundle.tar.zst")


def test_unpack_to_stdout(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "archiver", "unpack", str(SAMPLES / "bundle.tar.zst"), "-o", "-"],
        capture_output=True,
        check=True,
    ).stdout
    assert out == (SAMPLES / "hybrid.tar").read_bytes()


def test_merge_bundles(inputs: dict[str, Path], run: Run, tmp_path: Path) -> None:
    one, two, merged = tmp_path / "1.tar.zst", tmp_path / "2.tar.zst", tmp_path / "m.tar.zst"
    assert run("pack", inputs["a"], "-o", one).code == 0
    assert run("pack", inputs["b"], "-o", two).code == 0
    result = run("merge", one, two, "-o", merged, "--json")
    assert result.code == 0, result.err
    assert merged.stat().st_size < one.stat().st_size + two.stat().st_size - BIG // 2
    assert len(ls(run, merged)) == 2


def test_conflicting_names_are_listed(run: Run, tmp_path: Path) -> None:
    folder = fixture_path("go-containerregistry/pkg/v1/mutate/testdata")
    first, second = (
        folder / "source_image.tar",
        folder / "source_image_with_empty_layer_history.tar",
    )
    out = tmp_path / "c.tar.zst"
    result = run("pack", first, second, "-o", out)
    assert result.code == 6 and "bazel/pkg/v1/mutate:source_image" in result.err
    assert str(first) in result.err and str(second) in result.err and not out.exists()
    assert run("pack", first, second, "-o", out, "--prefer", "last").code == 0
    rows = ls(run, out)
    assert [(r["tag"], r["id"][7:15]) for r in rows] == [
        ("<none>", "6e0b0504"),
        ("source_image", "05b5ec12"),
    ]


def test_bad_input_fails_the_pack_unless_keep_going(
    inputs: dict[str, Path], run: Run, tmp_path: Path
) -> None:
    bad = tmp_path / "bad.tar"
    data = bytearray(inputs["small"].read_bytes())
    with tarfile.open(inputs["small"]) as tar:
        offset = next(m.offset_data for m in tar if m.name.endswith(".tar"))
    data[offset + 600] ^= 0xFF  # inside the layer
    bad.write_bytes(bytes(data))
    out = tmp_path / "p.tar.zst"
    result = run("pack", inputs["a"], bad, "-o", out)
    assert result.code == 3 and str(bad) in result.err and not out.exists()
    assert os.listdir(tmp_path) == ["bad.tar"]
    result = run("pack", inputs["a"], bad, "-o", out, "--keep-going", "--json")
    assert result.code == 1 and "1 of 2 inputs left out" in result.err
    summary = json.loads(result.out)
    assert [i["input"] for i in summary["left_out"]] == [str(bad)]
    assert [r["repository"] for r in ls(run, out)] == ["t/a"]


def _seek_table(path: Path) -> tuple[bytes, int]:
    data = path.read_bytes()
    count = struct.unpack("<I", data[-9:-5])[0]
    return data, 8 + count * 8 + 9


def test_missing_seek_table_falls_back_to_reading_in_order(run: Run, tmp_path: Path) -> None:
    data, table = _seek_table(SAMPLES / "bundle.tar.zst")
    plain = tmp_path / "no-table.tar.zst"
    plain.write_bytes(data[:-table])
    fd = os.open(plain, os.O_RDONLY)
    assert read_seek_table(fd, plain.stat().st_size) is None
    assert ls(run, plain) == ls(run, SAMPLES / "bundle.tar.zst")


def test_wrong_seek_table_never_gives_wrong_data(run: Run, tmp_path: Path) -> None:
    data, table = _seek_table(SAMPLES / "bundle.tar.zst")
    start = len(data) - table + 8
    broken = bytearray(data)
    # swap the decompressed sizes of the first two frames: sums still agree
    first, second = broken[start + 4 : start + 8], broken[start + 12 : start + 16]
    broken[start + 4 : start + 8], broken[start + 12 : start + 16] = second, first
    path = tmp_path / "lying.tar.zst"
    path.write_bytes(bytes(broken))
    result = run("verify", path)
    assert result.code != 0 and "Traceback" not in result.err and str(path) in result.err


def test_bundle_cut_short(run: Run, tmp_path: Path) -> None:
    data = (SAMPLES / "bundle.tar.zst").read_bytes()
    path = tmp_path / "short.tar.zst"
    path.write_bytes(data[: len(data) // 2])
    result = run("ls", path)
    assert result.code != 0 and str(path) in result.err and "Traceback" not in result.err


def test_inspect_history_and_convert_accept_bundles(run: Run, tmp_path: Path) -> None:
    bundle = SAMPLES / "bundle.tar.zst"
    inspected = run("inspect", bundle, "demo/app:2.1", "-f", "{{.Config.WorkingDir}}")
    assert inspected.code == 0 and inspected.out.strip() == "/app"
    assert "COPY L2" in run("history", bundle, "demo/app:2.1").out
    assert run("convert", bundle, tmp_path / "x.tar").code == 0
    assert (tmp_path / "x.tar").read_bytes() == (SAMPLES / "hybrid.tar").read_bytes()


def test_pack_from_stdin_and_quiet_when_not_a_terminal(tmp_path: Path) -> None:
    out = tmp_path / "s.tar.zst"
    result = subprocess.run(
        [sys.executable, "-m", "archiver", "pack", "-", "-o", str(out)],
        input=(SAMPLES / "legacy.tar").read_bytes(),
        capture_output=True,
        check=True,
    )
    assert result.stderr == b""  # no progress bar when stderr is not a terminal
    assert out.read_bytes() == (SAMPLES / "bundle.tar.zst").read_bytes()


def test_seek_table_claiming_huge_frames_is_not_trusted(run: Run, tmp_path: Path) -> None:
    data, table = _seek_table(SAMPLES / "bundle.tar.zst")
    start = len(data) - table + 8
    broken = bytearray(data)
    struct.pack_into("<I", broken, start + 4, 0xFFFFFFF0)  # frame 0 "decompresses to 4 GiB"
    path = tmp_path / "huge.tar.zst"
    path.write_bytes(bytes(broken))
    fd = os.open(path, os.O_RDONLY)
    assert read_seek_table(fd, path.stat().st_size) is None  # so: read in order, safely
    assert ls(run, path) == ls(run, SAMPLES / "bundle.tar.zst")


def _spooled_bundle(data: bytes, tmp_path: Path) -> Path:
    from archiver.blobs.tar_tree import TarTree
    from archiver.blobs.zstd_writer import ZstdOptions

    options = ZstdOptions()
    out = tmp_path / "spooled.tar.zst"
    with (tmp_path / "spool").open("w+b") as spool:
        tree = TarTree.from_stream(io.BufferedReader(Pipe(data)), "pipe", spool, options)  # type: ignore[arg-type]
        source = ArchiveSource(tree, spool_options=options)
        copy(source, open_sink(str(out), "bundle", options), source.images())
    return out


def test_a_streamed_archive_is_compressed_once(
    run: Run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Frames made while a tar streams in are copied into the bundle, not made again."""
    from archiver.blobs import zstd_writer as seekable

    compressed: list[int] = []
    original = seekable.SeekableWriter._compress
    monkeypatch.setattr(
        seekable.SeekableWriter,
        "_compress",
        lambda self, chunk: compressed.append(len(chunk)) or original(self, chunk),
    )
    out = _spooled_bundle((SAMPLES / "legacy.tar").read_bytes(), tmp_path)
    layer_bytes = 3 * 10240
    # spooled once (~34 kB of members) plus the bundle head; compressing the layers again
    # would add another 30 kB
    assert layer_bytes < sum(compressed) < 2 * layer_bytes
    assert ls(run, out) == ls(run, SAMPLES / "bundle.tar.zst")
    assert run("verify", out).code == 0
    plain = subprocess.run(["zstd", "-dc", str(out)], capture_output=True, check=True).stdout
    assert plain == (SAMPLES / "hybrid.tar").read_bytes()  # the same tar, whatever the frames


def test_a_streamed_archive_with_a_bad_layer_is_refused(tmp_path: Path) -> None:
    from archiver.errors import IntegrityError

    data = bytearray((SAMPLES / "legacy.tar").read_bytes())
    with tarfile.open(SAMPLES / "legacy.tar") as tar:
        offset = next(m.offset_data for m in tar if m.name.endswith("layer.tar") and m.isreg())
    data[offset + 2000] ^= 0xFF
    with pytest.raises(IntegrityError, match="digest mismatch"):
        _spooled_bundle(bytes(data), tmp_path)
    assert not (tmp_path / "spooled.tar.zst").exists()


def test_a_streamed_archive_cut_short_is_one_clear_error(tmp_path: Path) -> None:
    from archiver.errors import InputError

    data = (SAMPLES / "legacy.tar").read_bytes()
    with pytest.raises(InputError, match=r"pipe: .*truncated"):
        _spooled_bundle(data[: len(data) // 2 + 100], tmp_path)
