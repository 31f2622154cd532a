"""push, pull, login and copy against the real distribution registry, read back by skopeo
and pulled and run by the real dockerd; faults from a proxy that breaks things."""

from __future__ import annotations

import hashlib
import io
import json
import os
import signal
import subprocess
import sys
import tarfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.conftest import SAMPLES, Run
from tests.factory import layer, random_layer
from tests.integration.conftest import _short_tmp
from tests.integration.peers import Dockerd, require, skopeo
from tests.integration.registry_peers import FaultProxy, Registry, Rule, TokenServer
from tests.isolation import own_registry_client

BUSYBOX = "/bin/busybox"


def executable_layer(files: dict[str, bytes]) -> bytes:
    return layer(files, mode=0o755)


def runnable_archive(path: Path, images: dict[str, list[bytes]]) -> Path:
    """A docker-save tar of images whose layers are given (the first holds busybox)."""
    manifest = []
    with tarfile.open(path, "w") as tar:
        written: set[str] = set()

        def add(name: str, data: bytes) -> None:
            if name not in written:
                written.add(name)
                info = tarfile.TarInfo(name)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))

        for tag, layers in images.items():
            diff_ids = ["sha256:" + hashlib.sha256(x).hexdigest() for x in layers]
            config = json.dumps(
                {
                    "architecture": "amd64",
                    "os": "linux",
                    "config": {"Cmd": ["/bin/busybox", "cat", "/app.txt"]},
                    "rootfs": {"type": "layers", "diff_ids": diff_ids},
                },
                sort_keys=True,
            ).encode()
            config_name = hashlib.sha256(config).hexdigest() + ".json"
            add(config_name, config)
            for diff_id, data in zip(diff_ids, layers, strict=True):
                add(diff_id[7:] + ".tar", data)
            manifest.append(
                {
                    "Config": config_name,
                    "RepoTags": [tag],
                    "Layers": [d[7:] + ".tar" for d in diff_ids],
                }
            )
        add("manifest.json", json.dumps(manifest).encode())
    return path


@pytest.fixture(scope="module")
def base_layer() -> bytes:
    if not os.access(BUSYBOX, os.X_OK):
        pytest.fail(f"{BUSYBOX} is missing: install Debian's busybox-static")
    return executable_layer({"bin/busybox": Path(BUSYBOX).read_bytes()})


@pytest.fixture
def app_archive(tmp_path: Path, base_layer: bytes) -> Path:
    return runnable_archive(
        tmp_path / "apps.tar",
        {
            "reg/app:1": [base_layer, executable_layer({"app.txt": b"app one\n"})],
            "reg/tool:1": [base_layer, executable_layer({"app.txt": b"tool one\n"})],
        },
    )


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Our own docker config and upload state; no proxy settings from the host."""
    own_registry_client(tmp_path, monkeypatch)


def pulls_whole(run: Run, reference: str, target: Path) -> None:
    """What the registry holds under ``reference`` pulls, and verifies, whole."""
    assert run("pull", reference, "-o", target).code == 0
    assert run("verify", target).code == 0


@pytest.fixture
def token_server() -> Iterator[Callable[..., TokenServer]]:
    """Start token servers (users -> password and actions) that stop with the test."""
    servers: list[TokenServer] = []

    def make(users: dict[str, tuple[str, tuple[str, ...]]], expired: int = 0) -> TokenServer:
        servers.append(TokenServer(_short_tmp("arch-t-"), users, expired=expired))
        servers[-1].start()
        return servers[-1]

    yield make
    for server in servers:
        server.stop()


def skopeo_digest(ref: str, *flags: str) -> str:
    out = skopeo(
        "inspect", "--tls-verify=false", *flags, "--format", "{{.Digest}}", f"docker://{ref}"
    )
    return out.strip()


def _ids(run: Run, archive: Path) -> dict[str, str]:
    rows = json.loads(run("ls", "--json", archive).out)
    return {f"{r['repository']}:{r['tag']}": r["id"] for r in rows}


def test_push_skopeo_reads_it_docker_pulls_and_runs_it(
    run: Run,
    start: Callable[..., Registry],
    app_archive: Path,
    dockerd: Dockerd,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    registry = start()
    first = run("push", app_archive, "--to", f"{registry.host}/team")
    assert first.code == 0, first.err
    lines = first.out.splitlines()
    assert lines[0] == f"The push refers to repository [{registry.host}/team/reg/app]"
    assert sum(1 for line in lines if line.endswith(": Pushed")) == 3  # base, app, tool
    assert sum(1 for line in lines if "Mounted from team/reg/app" in line) == 1
    digest_line = next(line for line in lines if line.startswith("1: digest: "))
    digest = digest_line.split()[2]
    assert skopeo_digest(f"{registry.host}/team/reg/app:1") == digest

    again = run("push", app_archive, "--to", f"{registry.host}/team", "--json")
    summary = json.loads(again.out)
    assert (summary["blobs_pushed"], summary["bytes_pushed"]) == (0, 0)
    assert summary["blobs_skipped"] == 6  # 2 layers + config, in each repository
    said = run("push", app_archive, "--to", f"{registry.host}/team").out
    assert said.count("Layer already exists") == 4

    image = f"{registry.host}/team/reg/app:1"
    dockerd.docker("pull", image)
    assert dockerd.docker("run", "--rm", "--network", "none", image) == "app one\n"
    assert (
        dockerd.docker("image", "inspect", "--format", "{{.Id}}", image).strip()
        == (_ids(run, app_archive)["reg/app:1"])
    )
    monkeypatch.setenv("DOCKER_HOST", dockerd.host)  # from the daemon straight to the registry
    again_from_daemon = run("push", f"docker-daemon:{image}", "--tag", f"{registry.host}/d:1")
    assert again_from_daemon.code == 0, again_from_daemon.err
    assert skopeo_digest(f"{registry.host}/d:1") != ""
    dockerd.docker("rmi", image)

    pulled = tmp_path / "pulled.tar.zst"
    result = run("pull", image, f"{registry.host}/team/reg/tool:1", "-o", pulled)
    assert result.code == 0, result.err
    assert set(_ids(run, pulled).values()) == set(_ids(run, app_archive).values())
    assert run("verify", pulled).code == 0


def test_catalog_mirror_recreates_repositories_tags_and_digests(
    run: Run,
    start: Callable[..., Registry],
    app_archive: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    source, mirror = start(), start()
    # small pages, so the catalog and tag lists come in several, linked
    monkeypatch.setattr("archiver.places.registry.api.PAGE_SIZE", 2)
    assert run("push", app_archive, "--to", source.host).code == 0
    assert run("push", SAMPLES / "bundle.tar.zst", "--to", f"{source.host}/samples").code == 0
    backup = tmp_path / "backup.tar.zst"
    result = run("pull", "--catalog", source.host, "-o", backup, "--json")
    assert result.code == 0, result.err
    assert json.loads(result.out)["images"] == 5  # demo/base's two tags name one image
    only_demo = tmp_path / "demo.tar.zst"
    filtered = run("pull", "--catalog", source.host, "--filter", "samples/demo/*", "-o", only_demo)
    assert filtered.code == 0 and len(_ids(run, only_demo)) == 3

    pushed = run("push", backup, "--to", mirror.host, "--json")
    assert pushed.code == 0, pushed.err
    names = [
        "reg/app:1",
        "reg/tool:1",
        "samples/demo/base:1.0",
        "samples/demo/base:latest",
        "samples/demo/app:2.1",
        "samples/tools/probe:0.1",
    ]
    for name in names:
        assert skopeo_digest(f"{mirror.host}/{name}") == skopeo_digest(f"{source.host}/{name}")
    tags = json.loads(
        skopeo("list-tags", "--tls-verify=false", f"docker://{mirror.host}/samples/demo/base")
    )
    assert sorted(tags["Tags"]) == ["1.0", "latest"]


def test_registry_to_registry_copy_and_all_tags(
    run: Run, start: Callable[..., Registry], app_archive: Path, tmp_path: Path
) -> None:
    one, two = start(), start()
    assert run("push", app_archive, "--to", one.host).code == 0
    copied = run("copy", f"docker://{one.host}/reg/app:1", f"docker://{two.host}/x/app:7")
    assert copied.code == 0, copied.err
    assert skopeo_digest(f"{two.host}/x/app:7") == skopeo_digest(f"{one.host}/reg/app:1")
    # within one registry, blobs are mounted, never sent again
    inside = run("copy", f"docker://{one.host}/reg/app:1", f"docker://{one.host}/y/app:1")
    assert inside.out.count(": Mounted from reg/") == 2 and "Pushed" not in inside.out
    run("copy", f"docker://{one.host}/reg/app:1", f"docker://{one.host}/reg/app:2")
    every = tmp_path / "tags.tar"
    assert run("pull", "--all-tags", f"{one.host}/reg/app", "-o", every, "--to", "docker").code == 0
    assert sorted(_ids(run, every)) == [f"{one.host}/reg/app:1", f"{one.host}/reg/app:2"]


def test_basic_auth_behind_tls_with_login_and_logout(
    run: Run,
    start: Callable[..., Registry],
    app_archive: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    registry = start("htpasswd", {"alice": "wonder-land"})
    # the registry's CA is not trusted yet: one line, nothing pushed
    untrusted = run("push", app_archive, "--to", registry.host)
    assert untrusted.code == 5 and "TLS certificate not trusted" in untrusted.err
    assert untrusted.err.count("\n") == 1
    # named as insecure, its certificate is not checked (as docker's insecure registries)
    monkeypatch.setattr(sys, "stdin", io.StringIO("wonder-land\n"))
    insecure = ["--insecure-registry", registry.host]
    assert run("login", registry.host, "-u", "alice", "--password-stdin", *insecure).code == 0
    assert run("logout", registry.host).code == 0
    monkeypatch.setenv("ARCHIVER_CERTS_D", str(registry.certs_d()))

    anonymous = run("push", app_archive, "--to", registry.host)
    assert anonymous.code == 5 and "authentication required" in anonymous.err

    monkeypatch.setattr(sys, "stdin", io.StringIO("wrong\n"))
    refused = run("login", registry.host, "-u", "alice", "--password-stdin")
    assert refused.code == 5 and refused.err.count("\n") == 1
    assert "wrong" not in refused.err

    monkeypatch.setattr(sys, "stdin", io.StringIO("wonder-land\n"))
    login = run("login", registry.host, "-u", "alice", "--password-stdin")
    assert login.code == 0 and login.out.endswith("Login Succeeded\n")
    config = tmp_path / "docker-config" / "config.json"
    assert (config.stat().st_mode & 0o777) == 0o600
    assert json.loads(config.read_text())["auths"][registry.host]["auth"]

    pushed = run("push", app_archive, "--to", registry.host)
    assert pushed.code == 0, pushed.err
    assert "wonder-land" not in pushed.out + pushed.err
    ca_dir = registry.certs_d() / registry.host
    out = skopeo(
        "inspect",
        "--cert-dir",
        str(ca_dir),
        "--creds",
        "alice:wonder-land",
        "--format",
        "{{.Name}}",
        f"docker://{registry.host}/reg/app:1",
    )
    assert out.strip() == f"{registry.host}/reg/app"

    assert run("logout", registry.host).out == f"Removing login credentials for {registry.host}\n"
    assert registry.host not in json.loads(config.read_text())["auths"]
    assert run("logout", registry.host).out == f"Not logged in to {registry.host}\n"


def test_bearer_tokens_from_a_token_server(
    run: Run,
    start: Callable[..., Registry],
    token_server: Callable[..., TokenServer],
    app_archive: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    tokens = token_server({"alice": ("secret-a", ("pull", "push")), "bob": ("secret-b", ("pull",))})
    registry = start(tokens)
    monkeypatch.setattr(sys, "stdin", io.StringIO("secret-a\n"))
    assert run("login", registry.host, "-u", "alice", "--password-stdin").code == 0
    pushed = run("push", app_archive, "--to", registry.host, "--json")
    assert pushed.code == 0, pushed.err
    # tokens are cached per scope: a handful of token requests for dozens of calls
    assert len(tokens.requests) <= 8, tokens.requests
    assert all(r["user"] == "alice" for r in tokens.requests)

    monkeypatch.setattr(sys, "stdin", io.StringIO("secret-b\n"))
    assert run("login", registry.host, "-u", "bob", "--password-stdin").code == 0
    denied = run("push", app_archive, "--to", f"{registry.host}/bob")
    assert denied.code == 5 and "denied" in denied.err and denied.err.count("\n") == 1
    pulled = run("pull", f"{registry.host}/reg/app:1", "-o", tmp_path / "bob.tar.zst")
    assert pulled.code == 0, pulled.err


def test_credentials_from_a_credential_helper(
    run: Run,
    start: Callable[..., Registry],
    token_server: Callable[..., TokenServer],
    app_archive: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """credsStore names docker-credential-NAME, spoken to as docker does."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    store = tmp_path / "helper-store.json"
    helper = bin_dir / "docker-credential-archivertest"
    helper.write_text(
        f"""#!{sys.executable}
import json, sys
path = {str(store)!r}
try:
    data = json.load(open(path))
except FileNotFoundError:
    data = {{}}
action = sys.argv[1]
if action == "store":
    item = json.load(sys.stdin)
    data[item["ServerURL"]] = item
    json.dump(data, open(path, "w"))
elif action == "get":
    key = sys.stdin.read().strip()
    if key not in data:
        print("credentials not found in native keychain")
        sys.exit(1)
    print(json.dumps(data[key]))
elif action == "erase":
    data.pop(sys.stdin.read().strip(), None)
    json.dump(data, open(path, "w"))
"""
    )
    helper.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    config = tmp_path / "docker-config" / "config.json"
    config.parent.mkdir()
    config.write_text(json.dumps({"credsStore": "archivertest"}))

    tokens = token_server({"carol": ("pw-c", ("pull", "push"))})
    registry = start(tokens)
    monkeypatch.setattr(sys, "stdin", io.StringIO("pw-c\n"))
    assert run("login", registry.host, "-u", "carol", "--password-stdin").code == 0
    assert json.loads(store.read_text())[registry.host]["Secret"] == "pw-c"
    assert json.loads(config.read_text())["auths"][registry.host] == {}
    assert run("push", app_archive, "--to", registry.host).code == 0
    assert run("logout", registry.host).code == 0
    assert registry.host not in json.loads(store.read_text())


def test_a_bad_network_is_survived(
    run: Run,
    start: Callable[..., Registry],
    proxy_to: Callable[[Registry], FaultProxy],
    tmp_path: Path,
    base_layer: bytes,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Errors, 429 with Retry-After, a connection cut inside a chunk, a stall: the push
    finishes, and what the registry holds is whole."""
    registry = start()
    proxy = proxy_to(registry)
    monkeypatch.setenv("ARCHIVER_UPLOAD_CHUNK", str(1024 * 1024))
    monkeypatch.setenv("ARCHIVER_REGISTRY_TIMEOUT", "2")
    big = random_layer(3 * 1024 * 1024, seed=11)
    archive = runnable_archive(tmp_path / "big.tar", {"net/big:1": [base_layer, big]})
    proxy.add(Rule("HEAD", r"/blobs/", "status", times=2, status=503))
    proxy.add(
        Rule(
            "POST", r"/blobs/uploads/$", "status", times=1, status=429, headers={"Retry-After": "1"}
        )
    )
    proxy.add(Rule("PATCH", r"/blobs/uploads/", "cut", times=2, after=300_000))
    proxy.add(Rule("PUT", r"/manifests/", "stall", times=1, seconds=4))
    proxy.add(Rule("PUT", r"/manifests/", "status", times=1, status=500))
    result = run("push", archive, "--tag", f"{proxy.host}/net/big:1", "--json")
    assert result.code == 0, result.err
    assert len(proxy.fired) == 7, proxy.fired
    digest = json.loads(result.out)["pushed"][0]["digest"]
    assert skopeo_digest(f"{registry.host}/net/big:1") == digest
    pulls_whole(run, f"{registry.host}/net/big:1", tmp_path / "back.tar.zst")


def test_a_push_that_cannot_finish_leaves_no_manifest(
    run: Run,
    start: Callable[..., Registry],
    proxy_to: Callable[[Registry], FaultProxy],
    app_archive: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    registry = start()
    proxy = proxy_to(registry)
    monkeypatch.setenv("ARCHIVER_RETRY_TOTAL", "3")
    proxy.add(Rule("PATCH", r"/blobs/uploads/", "status", times=1000, status=500))
    proxy.add(Rule("PUT", r"/blobs/uploads/", "status", times=1000, status=502))
    result = run("push", app_archive, "--to", proxy.host)
    assert result.code == 5 and result.err.count("\n") == 1, result.err
    assert "gave up after retries" in result.err
    missing = subprocess.run(
        [
            require("skopeo"),
            "inspect",
            "--tls-verify=false",
            f"docker://{registry.host}/reg/app:1",
        ],
        capture_output=True,
        text=True,
    )
    assert missing.returncode != 0  # no manifest names a blob the registry lacks


def test_a_killed_push_resumes_where_it_stopped(
    start: Callable[..., Registry],
    proxy_to: Callable[[Registry], FaultProxy],
    tmp_path: Path,
    base_layer: bytes,
    run: Run,
) -> None:
    """Killed while a chunk waits on the network: the rerun skips the layers the registry
    has and goes on with the cut one from the last chunk it holds."""
    registry = start()
    proxy = proxy_to(registry)
    mib = 1024 * 1024
    first_layer, second_layer = random_layer(12 * mib, seed=5), random_layer(12 * mib, seed=6)
    archive = runnable_archive(
        tmp_path / "huge.tar", {"big/one:1": [base_layer, first_layer, second_layer]}
    )
    before_second = len(base_layer) + len(first_layer)
    # the third chunk of the second layer hangs in the network
    proxy.add(
        Rule("PATCH", "/blobs/uploads/", "stall", seconds=30, when_sent=before_second + 4 * mib)
    )
    env = {
        **os.environ,
        "ARCHIVER_UPLOAD_CHUNK": str(2 * mib),
        "XDG_CACHE_HOME": str(tmp_path / "cache"),
    }
    command = [sys.executable, "-m", "archiver", "push", str(archive), "--to", proxy.host]
    quiet = subprocess.DEVNULL
    first = subprocess.Popen([*command, "--jobs", "1"], env=env, stdout=quiet, stderr=quiet)
    deadline = time.monotonic() + 60
    while not proxy.fired and time.monotonic() < deadline:
        time.sleep(0.02)
    first.send_signal(signal.SIGKILL)
    first.wait()
    sent_before = proxy.body_bytes
    assert proxy.fired and sent_before < before_second + 12 * mib
    second = subprocess.run([*command, "--json"], env=env, capture_output=True, text=True)
    assert second.returncode == 0, second.stderr
    summary = json.loads(second.stdout)
    assert summary["uploads_resumed"] == 1 and summary["blobs_skipped"] == 2, summary
    sent_again = proxy.body_bytes - sent_before
    # the rest of the second layer (8 MiB) and the config: not 12 MiB, not 26
    assert sent_again < 8 * mib + 64 * 1024, (sent_before, sent_again)
    pulls_whole(run, f"{registry.host}/big/one:1", tmp_path / "back.tar.zst")


def test_bad_requests_get_one_line(
    run: Run,
    start: Callable[..., Registry],
    tmp_path: Path,
    app_archive: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    registry = start()
    monkeypatch.setenv("ARCHIVER_RETRY_TOTAL", "2")
    out = tmp_path / "none.tar.zst"
    missing = run("pull", f"{registry.host}/nope/nothing:1", "-o", out)
    assert missing.code == 4 and missing.err.count("\n") == 1 and not out.exists()
    down = run("push", app_archive, "--to", "127.0.0.1:9")
    assert down.code == 5 and down.err.count("\n") == 1, down.err
    assert "127.0.0.1:9" in down.err and "gave up" not in down.err
    # --keep-going: the references that resolve are pulled, the others summed up
    assert run("push", app_archive, "--to", registry.host).code == 0
    partial = tmp_path / "partial.tar.zst"
    wanted = [f"{registry.host}/reg/app:1", f"{registry.host}/nope/nothing:1"]
    kept = run("pull", *wanted, "-o", partial, "--keep-going", "--json")
    assert kept.code == 1 and "1 of 2 inputs left out" in kept.err
    assert [i["input"] for i in json.loads(kept.out)["left_out"]] == [f"docker://{wanted[1]}"]
    assert [r["tag"] for r in json.loads(run("ls", "--json", partial).out)] == ["1"]
    no_name = run("push", app_archive, "--tag", f"{registry.host}/a:1")
    assert no_name.code == 2 and "exactly one image" in no_name.err


def multi_platform_layout(folder: Path) -> Path:
    """An OCI layout with one index of two platform images (amd64, arm64)."""
    blobs = folder / "blobs" / "sha256"
    blobs.mkdir(parents=True)

    def put(data: bytes) -> dict[str, object]:
        digest = hashlib.sha256(data).hexdigest()
        (blobs / digest).write_bytes(data)
        return {"digest": f"sha256:{digest}", "size": len(data)}

    children = []
    for arch in ("amd64", "arm64"):
        layer = executable_layer({"arch.txt": arch.encode()})
        config = json.dumps(
            {
                "architecture": arch,
                "os": "linux",
                "rootfs": {
                    "type": "layers",
                    "diff_ids": ["sha256:" + hashlib.sha256(layer).hexdigest()],
                },
            }
        ).encode()
        manifest = json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": {"mediaType": "application/vnd.oci.image.config.v1+json", **put(config)},
                "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", **put(layer)}],
            }
        ).encode()
        children.append(
            {
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                **put(manifest),
                "platform": {"os": "linux", "architecture": arch},
            }
        )
    index = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": children,
        }
    ).encode()
    top = {"mediaType": "application/vnd.oci.image.index.v1+json", **put(index)}
    top["annotations"] = {"org.opencontainers.image.ref.name": "1"}
    (folder / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [top]}))
    (folder / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    return folder


def test_multi_platform_index_push_and_pull(
    run: Run, start: Callable[..., Registry], tmp_path: Path
) -> None:
    registry = start()
    layout = multi_platform_layout(tmp_path / "multi")
    name = f"{registry.host}/multi/app:1"
    assert run("push", layout, "--tag", name).code == 0
    raw = json.loads(skopeo("inspect", "--tls-verify=false", "--raw", f"docker://{name}"))
    assert raw["mediaType"] == "application/vnd.oci.image.index.v1+json"
    digest = skopeo_digest(name)

    host_only = tmp_path / "host.tar.zst"
    assert run("pull", name, "-o", host_only, "--json").code == 0
    (row,) = json.loads(run("ls", "--json", host_only).out)
    assert row["platform"] == "linux/amd64" and row["digest"] == digest
    # pushed back, the tag names the one image it has, as docker pushes it
    again = f"{registry.host}/multi/host-only:1"
    assert run("push", host_only, "--tag", again).code == 0
    pushed = json.loads(skopeo("inspect", "--tls-verify=false", "--raw", f"docker://{again}"))
    assert pushed["mediaType"] == "application/vnd.oci.image.manifest.v1+json"
    amd64 = next(m for m in raw["manifests"] if m["platform"]["architecture"] == "amd64")
    assert skopeo_digest(again) == amd64["digest"]
    every = tmp_path / "all.tar"
    assert run("pull", name, "-o", every, "--all-platforms", "--to", "oci").code == 0
    arm = run("inspect", "--platform", "linux/arm64", every, name).out
    assert json.loads(arm)[0]["Architecture"] == "arm64"
    by_digest = tmp_path / "by-digest.tar.zst"
    assert run("pull", f"{registry.host}/multi/app@{digest}", "-o", by_digest).code == 0

    absent = run("pull", name, "--platform", "linux/s390x", "-o", tmp_path / "none.tar.zst")
    assert absent.code == 4 and absent.err.count("\n") == 1
    assert "(it has linux/amd64, linux/arm64)" in absent.err
    assert not (tmp_path / "none.tar.zst").exists()


def test_registries_that_misbehave(
    run: Run,
    start: Callable[..., Registry],
    token_server: Callable[..., TokenServer],
    proxy_to: Callable[[Registry], FaultProxy],
    tmp_path: Path,
    app_archive: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ARCHIVER_RETRY_TOTAL", "2")
    registry = start()
    assert run("push", app_archive, "--to", registry.host).code == 0
    proxy = proxy_to(registry)
    # a blob whose bytes do not match its digest: rejected, nothing written
    proxy.add(Rule("GET", r"/blobs/sha256:", "corrupt", times=1))
    target = tmp_path / "bad.tar.zst"
    corrupt = run("pull", f"{proxy.host}/reg/app:1", "-o", target)
    assert corrupt.code == 3 and "digest mismatch" in corrupt.err, corrupt.err
    assert corrupt.err.count("\n") == 1 and not target.exists()
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".bad")) == []

    # the registry refuses a manifest: its own error, in one line
    proxy.add(Rule("PUT", r"/blobs/uploads/", "status", times=100, status=201))
    refused = run("push", app_archive, "--to", f"{proxy.host}/elsewhere")
    assert refused.code == 5 and refused.err.count("\n") == 1
    assert "MANIFEST_BLOB_UNKNOWN" in refused.err, refused.err

    unknown = run("push", app_archive, "--to", "registry.invalid:5000")
    assert unknown.code == 5 and unknown.err.count("\n") == 1
    assert "registry.invalid:5000" in unknown.err

    # the first token the server gives is expired: it is fetched anew
    tokens = token_server({"dan": ("pw-d", ("pull", "push"))}, expired=1)
    guarded = start(tokens)
    monkeypatch.setattr(sys, "stdin", io.StringIO("pw-d\n"))
    assert run("login", guarded.host, "-u", "dan", "--password-stdin").code == 0
    assert run("push", app_archive, "--to", guarded.host).code == 0
