"""Every command a user runs, on the samples: formats, compression, stdin, determinism."""

from __future__ import annotations

import bz2
import gzip
import itertools
import json
import lzma
import os
import subprocess
import sys
from pathlib import Path

import pytest
import zstandard

import archiver
from archiver.errors import IntegrityError
from tests.conftest import ROOT, SAMPLES, Run
from tests.factory import docker_save, random_layer

SAMPLE_TAGS = [
    ("demo/base", "1.0"),
    ("demo/base", "latest"),
    ("demo/app", "2.1"),
    ("localhost:5000/tools/probe", "0.1"),
]


def ls_json(run: Run, *args: str | Path) -> list[dict]:
    result = run("ls", "--json", *args)
    assert result.code == 0, result.err
    return json.loads(result.out)


@pytest.mark.parametrize("sample", ["legacy.tar", "hybrid.tar", "oci"])
def test_samples_list_the_same_images(sample: str, run: Run) -> None:
    rows = ls_json(run, SAMPLES / sample)
    assert [(r["repository"], r["tag"]) for r in rows] == SAMPLE_TAGS
    assert rows[0]["id"] == rows[1]["id"]  # one image, two tags
    assert rows[0]["reference"] == "docker.io/demo/base:1.0"
    assert rows[2]["layers"][0] == rows[0]["layers"][0]  # the shared base layer
    assert all(r["platform"] == "linux/amd64" for r in rows)
    legacy = ls_json(run, SAMPLES / "legacy.tar")
    assert [r["id"] for r in rows] == [r["id"] for r in legacy]
    if sample == "legacy.tar":
        assert all(r["digest"] is None for r in rows)
    else:
        assert all(r["digest"].startswith("sha256:") for r in rows)


def test_samples_regenerate_byte_for_byte(tmp_path: Path) -> None:
    copy = tmp_path / "samples"
    copy.mkdir()
    (copy / "generate.py").write_text((SAMPLES / "generate.py").read_text())
    subprocess.run([sys.executable, str(copy / "generate.py")], check=True, capture_output=True)
    for name in ("legacy.tar", "hybrid.tar", "oci/index.json"):
        assert (copy / name).read_bytes() == (SAMPLES / name).read_bytes(), name


@pytest.mark.parametrize(
    "suffix, compress",
    [
        ("gz", gzip.compress),
        ("zst", lambda data: zstandard.ZstdCompressor().compress(data)),
        ("xz", lzma.compress),
        ("bz2", bz2.compress),
    ],
)
def test_compressed_inputs_by_magic_not_name(
    suffix: str, compress, run: Run, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    packed = tmp_path / "archive.bin"  # the name says nothing: the magic bytes do
    packed.write_bytes(compress((SAMPLES / "hybrid.tar").read_bytes()))
    assert [(r["repository"], r["tag"]) for r in ls_json(run, packed)] == SAMPLE_TAGS
    assert run("verify", packed).code == 0


def test_stdin_is_spooled(tmp_path: Path) -> None:
    data = gzip.compress((SAMPLES / "legacy.tar").read_bytes())
    result = subprocess.run(
        [sys.executable, "-m", "archiver", "ls", "-q", "-"],
        input=data,
        capture_output=True,
        check=True,
    )
    assert len(result.stdout.decode().split()) == 3


def test_convert_is_deterministic_and_round_trips(run: Run, tmp_path: Path) -> None:
    first, second = tmp_path / "a.tar", tmp_path / "b.tar"
    assert run("convert", SAMPLES / "legacy.tar", first).code == 0
    assert run("convert", SAMPLES / "legacy.tar", second).code == 0
    assert first.read_bytes() == second.read_bytes() == (SAMPLES / "hybrid.tar").read_bytes()
    chain = [first]
    for fmt, name in (("oci-dir", "dir"), ("oci", "oci.tar"), ("docker", "back.tar")):
        target = tmp_path / name
        result = run("convert", chain[-1], target, "--to", fmt)
        assert result.code == 0, result.err
        chain.append(target)
    ids = [
        [(r["repository"], r["tag"], r["id"], r["digest"]) for r in ls_json(run, p)] for p in chain
    ]
    assert all(i == ids[0] for i in ids)
    assert chain[-1].read_bytes() == first.read_bytes()
    for path in chain:
        assert run("verify", path).code == 0


def test_convert_selects_images_and_prefixes_choose_formats(run: Run, tmp_path: Path) -> None:
    target = tmp_path / "layout"
    result = run(
        "convert", SAMPLES / "hybrid.tar", f"oci:{target}", "--image", "demo/app:2.1", "--json"
    )
    assert result.code == 0, result.err
    assert json.loads(result.out)["format"] == "oci-dir"
    assert [(r["repository"], r["tag"]) for r in ls_json(run, target)] == [("demo/app", "2.1")]
    # skopeo-style input with :ref selects too
    picked = tmp_path / "picked.tar"
    assert (
        run("convert", f"docker-archive:{SAMPLES / 'hybrid.tar'}:demo/base:1.0", picked).code == 0
    )
    tags = [(r["repository"], r["tag"]) for r in ls_json(run, picked)]
    assert tags == [("demo/base", "1.0"), ("demo/base", "latest")]


def test_convert_failure_keeps_the_old_target(
    run: Run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "out.tar"
    target.write_bytes(b"precious")

    def broken(*args: object, **kwargs: object) -> None:
        raise IntegrityError("x", "sha256:0", "simulated failure in the middle of a write")

    monkeypatch.setattr("archiver.blobs.tarwriter.TarWriter.close", broken)
    result = run("convert", SAMPLES / "legacy.tar", target)
    assert result.code == 3
    assert target.read_bytes() == b"precious"
    assert os.listdir(tmp_path) == ["out.tar"]


def test_convert_refuses_a_non_empty_directory(run: Run, tmp_path: Path) -> None:
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "file").write_text("x")
    result = run("convert", SAMPLES / "legacy.tar", tmp_path / "taken", "--to", "oci-dir")
    assert result.code == 6 and "already exists" in result.err


def test_ls_options(run: Run) -> None:
    sample = SAMPLES / "hybrid.tar"
    table = run("ls", sample).out.splitlines()
    assert table[0].split() == ["REPOSITORY", "TAG", "IMAGE", "ID", "CREATED", "SIZE"]
    assert len(table) == 5
    assert "DIGEST" in run("ls", "--digests", sample).out
    quiet = run("ls", "-q", sample).out.split()
    assert len(quiet) == 3 and all(len(q) == 12 for q in quiet)
    assert all(q.startswith("sha256:") for q in run("ls", "-q", "--no-trunc", sample).out.split())
    assert run(
        "ls", "-f", "reference=demo/*", "--format", "{{.Repository}}:{{.Tag}}", sample
    ).out.split() == [
        "demo/base:1.0",
        "demo/base:latest",
        "demo/app:2.1",
    ]
    # '*' does not cross '/', as in docker
    assert run("ls", "-f", "reference=*/*:latest", "-q", sample).out.split() == [quiet[0]]
    assert run("ls", "-f", "reference=*:latest", "-q", sample).out.split() == []
    assert run("ls", "-f", "dangling=true", "-q", sample).out == ""
    assert run("ls", "-f", "bogus=1", sample).code == 2


def test_ls_shows_dangling_images_as_none(run: Run) -> None:
    from tests.conftest import fixture_path

    (row,) = ls_json(
        run, fixture_path("go-containerregistry/pkg/v1/tarball/testdata/hello-world-v25.tar")
    )
    assert (row["repository"], row["tag"], row["reference"]) == ("<none>", "<none>", None)
    result = run(
        "ls",
        "-f",
        "dangling=true",
        "--format",
        "{{.Repository}} {{.Tag}}",
        fixture_path("go-containerregistry/pkg/v1/tarball/testdata/hello-world-v25.tar"),
    )
    assert result.out.strip() == "<none> <none>"


def test_inspect(run: Run) -> None:
    sample = SAMPLES / "hybrid.tar"
    result = run("inspect", sample, "localhost:5000/tools/probe:0.1")
    assert result.code == 0, result.err
    (doc,) = json.loads(result.out)
    assert doc["RepoTags"] == ["localhost:5000/tools/probe:0.1"]
    assert doc["RepoDigests"][0].startswith("localhost:5000/tools/probe@sha256:")
    assert doc["Config"]["Labels"]["tier"] == "tools"
    assert doc["RootFS"]["Type"] == "layers" and len(doc["RootFS"]["Layers"]) == 2
    image_id = doc["Id"]
    by_prefix = run("inspect", sample, image_id[7:14], "--format", "{{.Os}}/{{.Architecture}}")
    assert by_prefix.out.strip() == "linux/amd64"
    labels = run(
        "inspect", sample, "localhost:5000/tools/probe:0.1", "-f", "{{json .Config.Labels}}"
    )
    assert json.loads(labels.out) == {"org.opencontainers.image.title": "probe", "tier": "tools"}
    env = run("inspect", sample, "demo/app:2.1", "-f", "{{.Config.Env}}").out.strip()
    assert env == "[PATH=/usr/bin APP_PORT=8080]"
    tags = run("inspect", sample, "demo/base", "-f", '{{join .RepoTags ","}}').out.strip()
    assert tags == "demo/base:1.0,demo/base:latest"


def test_inspect_errors(run: Run) -> None:
    sample = SAMPLES / "hybrid.tar"
    missing = run("inspect", sample, "nope:1")
    assert missing.code == 4 and "nope:1" in missing.err
    assert run("inspect", sample, "Bad:Ref").code == 2
    from tests.conftest import fixture_path

    repo = fixture_path("regclient/testdata/testrepo")
    ids = sorted({r["id"][7:] for r in ls_json(run, repo)})
    shared = next(a[0] for a, b in itertools.pairwise(ids) if a[0] == b[0])
    ambiguous = run("inspect", repo, shared)
    assert ambiguous.code == 6 and "ambiguous" in ambiguous.err


def test_history(run: Run) -> None:
    result = run("history", SAMPLES / "hybrid.tar", "demo/app:2.1")
    assert result.code == 0, result.err
    lines = result.out.splitlines()
    assert lines[0].split()[:3] == ["IMAGE", "CREATED", "CREATED"]
    assert len(lines) == 4
    assert lines[1].split()[0] == ls_json(run, SAMPLES / "hybrid.tar")[2]["id"][7:19]
    assert "<missing>" in lines[2]
    full = run(
        "history",
        "--no-trunc",
        "--format",
        "{{.CreatedBy}}|{{.Size}}",
        SAMPLES / "oci",
        "demo/app:2.1",
    )
    assert full.out.splitlines()[1] == "COPY L2 / # generated by samples/generate.py|10.2kB"


def test_version_and_module_entry_point() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "archiver", "--version"], capture_output=True, text=True, cwd=ROOT
    )
    assert out.returncode == 0 and archiver.__version__ in out.stdout


def test_every_verb_is_listed_and_answers_help() -> None:
    from archiver.cli.main import _COMMANDS, cli

    listed = subprocess.run(
        [sys.executable, "-m", "archiver", "--help"], capture_output=True, text=True, cwd=ROOT
    ).stdout
    for verb in _COMMANDS:
        assert f"  {verb} " in listed
        command = cli.get_command(None, verb)  # type: ignore[arg-type]
        assert command is not None and command.name == verb


def test_local_verbs_leave_the_registry_client_and_bars_unimported(tmp_path: Path) -> None:
    """Start-up is part of every command's time: `ls`, `verify` or a quiet `pack` never
    import httpx (the registry client), http.client (the daemon's) or tqdm (bars are not
    drawn off a terminal)."""
    script = (
        "import sys; from archiver.cli.main import main\n"
        "try:\n    main(sys.argv[1:])\nexcept SystemExit:\n    pass\n"
        "print(sorted(m for m in ('httpx', 'http.client', 'tqdm') if m in sys.modules))"
    )
    pack = ["pack", "-q", str(SAMPLES / "legacy.tar"), "-o", str(tmp_path / "b.tar.zst")]
    for args in (
        ["ls", str(SAMPLES / "bundle.tar.zst")],
        ["verify", "-q", str(SAMPLES / "oci")],
        pack,
    ):
        out = subprocess.run(
            [sys.executable, "-c", script, *args], capture_output=True, text=True, cwd=ROOT
        )
        assert out.stdout.splitlines()[-1] == "[]", out.stdout + out.stderr


def test_save_asks_the_daemon_before_importing_jsonschema() -> None:
    """jsonschema (~0.05 s) is imported at the first validation, so `save` sends its
    request first and pays for it while the daemon writes its temporary files."""
    script = "import sys, archiver.cli.save; print('jsonschema' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT)
    assert out.stdout.strip() == "False", out.stdout + out.stderr


def test_public_api_is_pinned() -> None:
    assert sorted(archiver.__all__) == sorted(
        [
            "ArchiveSource",
            "ArchiverError",
            "Conflict",
            "CopyReport",
            "Descriptor",
            "Digest",
            "DirLayoutSink",
            "ImageConfig",
            "ImageRecord",
            "Index",
            "InputError",
            "IntegrityError",
            "Manifest",
            "NotFound",
            "PeerError",
            "Platform",
            "Reference",
            "TarLayoutSink",
            "VerifyReport",
            "__version__",
            "copy",
            "open_sink",
            "open_source",
            "records",
            "verify",
        ]
    )


def test_debug_shows_traceback_only_when_asked(tmp_path: Path) -> None:
    missing = str(tmp_path / "none.tar")
    plain = subprocess.run(
        [sys.executable, "-m", "archiver", "ls", missing], capture_output=True, text=True
    )
    assert (
        plain.returncode == 4 and plain.stderr.count("\n") == 1 and "Traceback" not in plain.stderr
    )
    debug = subprocess.run(
        [sys.executable, "-m", "archiver", "--debug", "ls", missing], capture_output=True, text=True
    )
    assert "Traceback" in debug.stderr


def _small_file_limit() -> None:
    import resource
    import signal

    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG
    resource.setrlimit(resource.RLIMIT_FSIZE, (20_000, 20_000))


@pytest.mark.parametrize("verb", ["convert", "pack"])
def test_disk_full_leaves_nothing_at_the_target(verb: str, tmp_path: Path) -> None:
    """A write that fails part-way (here: a file-size limit, as a full disk would) leaves
    no file at the target name and no temporary file beside it."""
    target = tmp_path / "out.tar"
    args = [str(SAMPLES / "legacy.tar"), str(target)]
    if verb == "pack":  # incompressible, so the bundle outgrows the limit too
        big = tmp_path / "big"
        big.mkdir()
        source = docker_save(big / "in.tar", [(["x/y:1"], [random_layer(100_000)])])
        args = [str(source), "-o", str(target)]
    result = subprocess.run(
        [sys.executable, "-m", "archiver", verb, *args],
        capture_output=True,
        text=True,
        preexec_fn=_small_file_limit,
    )
    assert result.returncode != 0
    assert result.stderr.startswith("Error: ") and result.stderr.count("\n") == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert sorted(os.listdir(tmp_path)) == (["big"] if verb == "pack" else [])
