"""``archiver sync`` against the real distribution registry: images pushed there by
skopeo, one list file of each format, collected into a bundle and mirrored into a second
registry, checked with skopeo; second runs, new tags, moved tags, deleted tags, and
credentials behind htpasswd from docker's config file."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import Run
from tests.factory import docker_save, layer
from tests.integration.peers import skopeo
from tests.integration.registry_peers import FaultProxy, Registry, Rule
from tests.isolation import own_registry_client


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    own_registry_client(tmp_path, monkeypatch)


def put(folder: Path, target: str, seed: str, *flags: str) -> str:
    """An image of its own (a base layer shared by all, one of its own) pushed by skopeo to
    ``target`` (host/repo:tag); its manifest digest as the registry has it."""
    archive = docker_save(
        folder / f"{hashlib.sha256(seed.encode()).hexdigest()[:12]}.tar",
        [([], [layer({"base.txt": b"shared base\n"}), layer({"app.txt": seed.encode()})])],
    )
    skopeo(
        "copy", "--dest-tls-verify=false", *flags, f"docker-archive:{archive}", f"docker://{target}"
    )
    return digest_of(target, *flags)


def digest_of(ref: str, *flags: str) -> str:
    flags = tuple(f.replace("--dest-", "--") for f in flags)
    out = skopeo(
        "inspect", "--tls-verify=false", *flags, "--format", "{{.Digest}}", f"docker://{ref}"
    )
    return out.strip()


def names_in(run: Run, bundle: Path) -> dict[str, str]:
    result = run("ls", "--json", "--digests", bundle)
    assert result.code == 0, result.err
    return {f"{r['repository']}:{r['tag']}": r["digest"] for r in json.loads(result.out)}


def lists(folder: Path, host: str) -> list[Path]:
    """One file of each format (the shapes of each tool's documentation, our values)."""
    files = {
        "hauler.yaml": f"""\
apiVersion: content.hauler.cattle.io/v1
kind: Images
metadata:
  name: sync-test
  annotations:
    hauler.dev/registry: {host}
spec:
  images:
    - name: library/base:latest
""",
        "skopeo.yaml": f"""\
{host}:
  images-by-tag-regex:
    team/tool: ^v[0-9]+$
  images-by-semver:
    team/app: ">=1.0 <2"
""",
        "mindthegap.yaml": f"""\
{host}:
  tlsVerify: false
  images:
    team/app:
      - "2.0"
""",
        "mindthegap.txt": f"# one per line\n{host}/team/solo:1\n",
        "regsync.yaml": f"""\
version: 1
creds:
  - registry: {host}
    tls: disabled
defaults:
  interval: 60m
sync:
  - source: {host}/team/web
    target: mirror.example/team/web
    type: repository
    tags:
      allow: ["3\\\\.[0-9]+"]
      deny: ["3\\\\.1[0-9]"]
""",
        "own.yaml": f"""\
archiver-sync: 1
platforms: [linux/amd64]
images:
  - image: {host}/team/tool
    tags: [extra]
""",
    }
    out = []
    for name, text in files.items():
        (folder / name).write_text(text)
        out.append(folder / name)
    return out


@pytest.fixture
def source(start: Callable[..., Registry], tmp_path: Path) -> Registry:
    registry = start()
    images = tmp_path / "images"
    images.mkdir()
    for ref in [
        "library/base:latest",
        "team/app:1.0",
        "team/app:1.1",
        "team/app:2.0",
        "team/app:3.0-rc1",
        "team/tool:v1",
        "team/tool:v2",
        "team/tool:extra",
        "team/tool:beta",
        "team/solo:1",
        "team/web:3.1",
        "team/web:3.9",
        "team/web:3.12",
    ]:
        put(images, f"{registry.host}/{ref}", ref)
    return registry


EXPECTED = [
    "library/base:latest",
    "team/app:1.0",
    "team/app:1.1",
    "team/app:2.0",
    "team/tool:v1",
    "team/tool:v2",
    "team/tool:extra",
    "team/solo:1",
    "team/web:3.1",
    "team/web:3.9",
]


def test_every_format_to_a_bundle_and_to_a_registry(
    run: Run, source: Registry, start: Callable[..., Registry], tmp_path: Path
) -> None:
    files = lists(tmp_path, source.host)
    out = tmp_path / "out.tar.zst"
    dry = run("sync", *files, "-o", out, "--dry-run")
    assert dry.code == 0, dry.err
    assert "Would fetch 10 images" in dry.out and not out.exists()
    first = run("sync", *files, "-o", out)
    assert first.code == 0, first.err
    assert "defaults.interval: not supported" in first.err
    assert first.out.splitlines()[-1] == f"Synced {out}: 10 added, 0 updated, 0 kept, 0 removed"
    held = names_in(run, out)
    assert sorted(held) == sorted(f"{source.host}/{name}" for name in EXPECTED)
    for name, digest in held.items():
        assert digest == digest_of(name)
    assert run("verify", out).code == 0
    mirror = start()
    mirrored = run("sync", *files, "--to", f"{mirror.host}/copy", "--json")
    assert mirrored.code == 0, mirrored.err
    assert len(json.loads(mirrored.out)["added"]) == 10
    for name in EXPECTED:
        assert digest_of(f"{mirror.host}/copy/{name}") == digest_of(f"{source.host}/{name}")
    tags = json.loads(
        skopeo("list-tags", "--tls-verify=false", f"docker://{mirror.host}/copy/team/app")
    )
    assert sorted(tags["Tags"]) == ["1.0", "1.1", "2.0"]
    again = run("sync", *files, "--to", f"{mirror.host}/copy", "--json")
    summary = json.loads(again.out)
    assert (len(summary["added"]), len(summary["kept"])) == (0, 10)
    (tmp_path / "moved").mkdir()
    moved = put(tmp_path / "moved", f"{source.host}/team/app:1.0", "app 1.0 rebuilt")
    third = run("sync", *files, "--to", f"{mirror.host}/copy", "--json")
    summary = json.loads(third.out)
    assert summary["updated"] == [f"{source.host}/team/app:1.0"] and len(summary["kept"]) == 9
    assert digest_of(f"{mirror.host}/copy/team/app:1.0") == moved


def test_second_runs_new_moved_and_deleted_tags(run: Run, source: Registry, tmp_path: Path) -> None:
    files = lists(tmp_path, source.host)
    out = tmp_path / "out.tar.zst"
    assert run("sync", *files, "-o", out).code == 0
    before = out.read_bytes()
    stat = out.stat()
    again = run("sync", *files, "-o", out)
    assert again.code == 0, again.err
    assert again.out.splitlines()[-1].startswith(f"Nothing new: {out} left as it was")
    assert out.read_bytes() == before and out.stat().st_mtime_ns == stat.st_mtime_ns

    images = tmp_path / "images2"
    images.mkdir()
    put(images, f"{source.host}/team/tool:v3", "tool v3")  # a new tag the regex takes
    moved = put(images, f"{source.host}/team/app:1.1", "app 1.1 rebuilt")  # a moved tag
    gone = digest_of(f"{source.host}/team/tool:v2")  # a tag the regex found, deleted
    skopeo("delete", "--tls-verify=false", f"docker://{source.host}/team/tool:v2")
    third = run("sync", *files, "-o", out, "--json")
    assert third.code == 0, third.err
    summary = json.loads(third.out)
    assert summary["added"] == [f"{source.host}/team/tool:v3"]
    assert summary["updated"] == [f"{source.host}/team/app:1.1"]
    assert summary["no_longer_listed"] == [f"{source.host}/team/tool:v2"]
    assert len(summary["kept"]) == 9 and summary["removed"] == []
    held = names_in(run, out)
    assert len(held) == 11  # the old app:1.1 went with its name
    assert held[f"{source.host}/team/app:1.1"] == moved
    assert held[f"{source.host}/team/tool:v3"] == digest_of(f"{source.host}/team/tool:v3")
    assert held[f"{source.host}/team/tool:v2"] == gone  # kept: not in the registry any more
    assert run("verify", out).code == 0

    kept = run("sync", *files, "-o", out)
    assert kept.code == 0, kept.err
    assert "Nothing new" in kept.out and "1 no longer listed, kept" in kept.out
    pruned = run("sync", *files, "-o", out, "--prune")
    assert pruned.code == 0, pruned.err
    assert pruned.out.splitlines()[-1].endswith("1 removed")
    assert sorted(names_in(run, out)) == sorted(
        [f"{source.host}/{n}" for n in EXPECTED if n != "team/tool:v2"]
        + [f"{source.host}/team/tool:v3"]
    )
    assert run("verify", out).code == 0

    # an image named in a list that is not there: named, nothing written; --keep-going
    # writes the rest and says what it left out
    before = out.read_bytes()
    skopeo("delete", "--tls-verify=false", f"docker://{source.host}/team/solo:1")
    missing = run("sync", *files, "-o", out)
    assert missing.code == 4 and "team/solo: no manifest 1" in missing.err
    assert out.read_bytes() == before
    going = run("sync", *files, "-o", out, "--keep-going", "--json")
    assert going.code == 1 and json.loads(going.out)["left_out"][0]["image"].endswith("solo:1")


def test_an_unchanged_image_costs_one_head(
    run: Run,
    source: Registry,
    tmp_path: Path,
    proxy_to: Callable[[Registry], FaultProxy],
) -> None:
    proxy = proxy_to(source)
    listed = tmp_path / "list.txt"
    listed.write_text(f"{proxy.host}/team/app:1.0\n{proxy.host}/team/web:3.9\n")
    out = tmp_path / "out.tar.zst"
    assert run("sync", listed, "-o", out).code == 0
    # any GET of a manifest or a blob, or a tag list, now fails: a second run only HEADs
    for path in ("/manifests/", "/blobs/", "/tags/"):
        proxy.add(Rule("GET", path, "status", times=100, status=500))
    again = run("sync", listed, "-o", out)
    assert again.code == 0, again.err
    assert "Nothing new" in again.out and proxy.fired == []


def test_credentials_behind_htpasswd_from_docker_config(
    run: Run, start: Callable[..., Registry], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    registry = start("htpasswd", {"alice": "wonder-land"})
    monkeypatch.setenv("ARCHIVER_CERTS_D", str(registry.certs_d()))
    certs = str(registry.certs_d() / registry.host)
    creds = ("--dest-creds", "alice:wonder-land", "--dest-cert-dir", certs)
    (tmp_path / "images").mkdir()
    digest = put(tmp_path / "images", f"{registry.host}/private/app:1", "private", *creds)
    listed = tmp_path / "list.yaml"
    listed.write_text(f"{registry.host}:\n  images:\n    private/app: ['1']\n")
    out = tmp_path / "out.tar.zst"
    refused = run("sync", listed, "-o", out)
    assert refused.code == 5 and "authentication required" in refused.err and not out.exists()
    config = tmp_path / "docker-config" / "config.json"
    config.parent.mkdir(exist_ok=True)
    auth = base64.b64encode(b"alice:wonder-land").decode()
    config.write_text(json.dumps({"auths": {registry.host: {"auth": auth}}}))
    synced = run("sync", listed, "-o", out)
    assert synced.code == 0, synced.err
    assert names_in(run, out) == {f"{registry.host}/private/app:1": digest}
    assert "wonder-land" not in synced.out + synced.err
    # archiver's own list names environment variables instead
    config.write_text("{}")
    own = tmp_path / "own.yaml"
    own.write_text(
        f"archiver-sync: 1\nregistries:\n  {registry.host}:\n"
        f"    credentials: {{env: {{username: REG_USER, password: REG_PASS}}}}\n"
        f"images:\n  - image: {registry.host}/private/app:1\n"
    )
    monkeypatch.setenv("REG_USER", "alice")
    monkeypatch.setenv("REG_PASS", "wonder-land")
    out.unlink()
    assert run("sync", own, "-o", out).code == 0
    # a mindthegap file may carry them inline (the docs advise against it)
    inline = tmp_path / "inline.yaml"
    inline.write_text(
        f"{registry.host}:\n  credentials: {{username: alice, password: wonder-land}}\n"
        f"  images:\n    private/app: ['1']\n"
    )
    monkeypatch.delenv("REG_PASS")
    out.unlink()
    with_inline = run("sync", inline, "-o", out)
    assert with_inline.code == 0, with_inline.err
    assert names_in(run, out) == {f"{registry.host}/private/app:1": digest}


def test_bad_input_is_one_line_and_leaves_out_untouched(
    run: Run, source: Registry, tmp_path: Path
) -> None:
    out = tmp_path / "out.tar.zst"
    listed = tmp_path / "list.txt"
    listed.write_text(f"{source.host}/team/solo:1\n")
    assert run("sync", listed, "-o", out).code == 0
    before = out.read_bytes()
    cases = {
        f"{source.host}/team/solo:nope\n": (4, "no manifest nope"),
        f"{source.host}:\n  images-by-tag-regex:\n    team/app: '(['\n": (2, "does not compile"),
        f"{source.host}:\n  images-by-semver:\n    team/app: '>>1'\n": (2, "does not parse"),
        "a: [1\n": (2, "list.txt:2:1: YAML does not parse"),
        "127.0.0.1:1/none/here:1\n": (5, "127.0.0.1:1"),
    }
    for text, (code, said) in cases.items():
        listed.write_text(text)
        result = run("sync", listed, "-o", out)
        assert result.code == code and said in result.err, (text, result.err)
        assert result.err.count("\n") == 1
        assert out.read_bytes() == before
    listed.write_text(f"{source.host}:\n  images-by-tag-regex:\n    team/app: ^zzz$\n")
    nothing = run("sync", listed, "-o", out)
    assert "matches no tag" in nothing.err


def test_split_bundles_and_deltas(run: Run, source: Registry, tmp_path: Path) -> None:
    listed = tmp_path / "list.yaml"
    listed.write_text(f"{source.host}:\n  images-by-semver:\n    team/app: '^1'\n")
    out = tmp_path / "split.tar.zst"
    first = run("sync", listed, "-o", out, "--split-size", "1M")
    assert first.code == 0, first.err
    assert (tmp_path / "split.tar.zst.parts.json").exists()
    assert "Nothing new" in run("sync", listed, "-o", out, "--split-size", "1M").out
    (tmp_path / "new").mkdir()
    put(tmp_path / "new", f"{source.host}/team/app:1.5", "app 1.5")
    again = run("sync", listed, "-o", out, "--split-size", "1M")
    assert again.code == 0, again.err
    assert "1 added, 0 updated, 2 kept" in again.out
    assert run("verify", out).code == 0
    assert len(names_in(run, out)) == 3

    # a delta against an earlier bundle holds only what that one lacks
    base = tmp_path / "base.tar.zst"
    listed.write_text(f"{source.host}/team/app:1.0\n")
    assert run("sync", listed, "-o", base).code == 0
    listed.write_text(f"{source.host}/team/app:1.0\n{source.host}/team/app:1.1\n")
    delta = tmp_path / "delta.tar.zst"
    made = run("sync", listed, "-o", delta, "--base", base)
    assert made.code == 0, made.err
    assert delta.stat().st_size < base.stat().st_size + 4096
    assert len(names_in(run, delta)) == 2


def test_a_mirror_keeps_the_digests_of_plain_layers(
    run: Run, start: Callable[..., Registry], tmp_path: Path
) -> None:
    """A mirror is the source's images as they are: push's compression of plain layers
    would change their digests (and every later run would find them "updated")."""
    origin, mirror = start(), start()
    archive = docker_save(
        tmp_path / "plain.tar", [(["team/plain:1"], [layer({"plain.txt": b"plain\n"})])]
    )
    there = f"{origin.host}/team/plain:1"
    assert run("push", archive, "--to", origin.host, "--compress", "none").code == 0
    plain = digest_of(there)
    raw = skopeo("inspect", "--tls-verify=false", "--raw", f"docker://{there}")
    assert [d["mediaType"] for d in json.loads(raw)["layers"]] == [
        "application/vnd.oci.image.layer.v1.tar"
    ]
    listed = tmp_path / "plain.txt"
    listed.write_text(f"{origin.host}/team/plain:1\n")
    first = run("sync", listed, "--to", f"{mirror.host}/copy", "--json")
    assert first.code == 0, first.err
    assert digest_of(f"{mirror.host}/copy/team/plain:1") == plain
    again = json.loads(run("sync", listed, "--to", f"{mirror.host}/copy", "--json").out)
    assert (again["updated"], len(again["kept"])) == ([], 1)
