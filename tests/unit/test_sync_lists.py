"""The sync list readers: each format as its tool documents it, recognised by content, and
one line naming the file and field for what is not understood."""

from __future__ import annotations

import pytest

from archiver.errors import InputError
from archiver.model.semver import Range, Version
from archiver.model.sync_lists import read_list
from archiver.model.sync_lists.tags import choose

HAULER = """\
apiVersion: content.hauler.cattle.io/v1
kind: Images
metadata:
  name: my-images
  annotations:
    hauler.dev/platform: linux/amd64
    hauler.dev/registry: registry.example.com
spec:
  images:
    - name: team/app:1.10
    - name: other.example.com/tool@sha256:%s
      platform: linux/arm64
      exclude-extras: true
---
apiVersion: content.hauler.cattle.io/v1
kind: Images
spec:
  images:
    - name: busybox
""" % ("a" * 64)

SKOPEO = """\
registry.example.com:
  images:
    busybox: []
    redis:
      - "1.0"
      - 7
  images-by-tag-regex:
    nginx: ^1\\.13\\.[12]-alpine-perl$
  images-by-semver:
    alpine: ">= 3.12.0"
  tls-verify: false
"""

MINDTHEGAP = """\
registry.example.com:
  tlsVerify: false
  images:
    nginx:
      - 1.21.5
"""

REGSYNC = """\
version: 1
creds:
  - registry: registry.example.com
    user: '{{env "REG_USER"}}'
    pass: '{{env "REG_PASS"}}'
    tls: insecure
defaults:
  interval: 60m
  platforms: [linux/amd64]
sync:
  - source: registry.example.com/library/busybox:latest
    target: mirror.example.com/library/busybox:latest
    type: image
  - source: registry.example.com/library/alpine
    target: mirror.example.com/library/alpine
    type: repository
    tags:
      allow: ["3\\\\.\\\\d+"]
      deny: ["3\\\\.1\\\\d"]
"""

OWN = """\
archiver-sync: 1
platforms: [linux/amd64]
registries:
  registry.example.com:
    tls: insecure
    credentials: {env: {username: REG_USER, password: REG_PASS}}
images:
  - image: registry.example.com/team/app:2
  - image: registry.example.com/team/tool
    semver: ">=1.2 <2"
"""


def test_hauler_documents_annotations_and_fields() -> None:
    found = read_list(HAULER, "h.yaml")
    assert found.format == "hauler"
    app, tool, box = found.images
    assert (app.repository, app.filter.tags, app.platforms, app.default_platforms) == (
        "registry.example.com/team/app",
        ("1.10",),  # not the number 1.1
        (),  # the item names none
        ("linux/amd64",),  # the annotation: kept unless --platform says otherwise
    )
    assert tool.repository == "other.example.com/tool" and tool.exclude_extras
    assert tool.filter.digests == ("sha256:" + "a" * 64,) and tool.platforms == ("linux/arm64",)
    assert box.repository == "docker.io/library/busybox"


def test_skopeo_and_mindthegap_registry_keyed() -> None:
    found = read_list(SKOPEO, "s.yaml")
    assert found.format == "skopeo sync" and found.registries[0].tls_verify is False
    by_repo = {s.repository.split("/")[-1]: s.filter for s in found.images}
    assert by_repo["busybox"].all_tags and by_repo["redis"].tags == ("1.0", "7")
    assert by_repo["nginx"].regex and by_repo["alpine"].semver == ">= 3.12.0"
    mind = read_list(MINDTHEGAP, "m.yaml")
    assert mind.format == "mindthegap" and mind.images[0].filter.tags == ("1.21.5",)
    plain = read_list("# images\nregistry.example.com/a:1\n\nregistry.example.com/b\n", "l.txt")
    assert [s.filter.tags for s in plain.images] == [("1",), ("latest",)]


def test_regsync_and_own() -> None:
    found = read_list(REGSYNC, "r.yaml")
    assert found.format == "regsync"
    said = "r.yaml: defaults.interval: not supported by archiver sync (left out)"
    assert found.warnings == [said]
    creds = found.registries[0]
    assert creds.tls_verify is False and creds.credentials is not None
    assert creds.credentials.password_env == "REG_PASS" and creds.credentials.password is None
    box, alpine = found.images
    assert box.filter.tags == ("latest",) and box.default_platforms == ("linux/amd64",)
    listed = ["3.1", "3.9", "3.12", "3.20", "latest", "3.18.2"]
    assert choose(alpine.filter, listed, "w") == ["3.1", "3.20", "3.9"]
    own = read_list(OWN, "o.yaml")
    assert own.format == "archiver" and own.images[1].filter.semver == ">=1.2 <2"
    assert own.registries[0].credentials is not None


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ("a: [1\n", "bad.yaml:2:1: YAML does not parse"),
        ("apiVersion: content.hauler.cattle.io/v1\nkind: Charts\n", "kind: Charts: not supported"),
        ("apiVersion: content.hauler.cattle.io/v1\nkind: Nope\n", "unknown kind 'Nope'"),
        (HAULER.replace("exclude-extras", "exclude-extra"), "images[1].exclude-extra: unknown"),
        ("reg.io:\n  images-by-tag-regex: {a: '(['}\n", "regex '([' does not compile"),
        ("reg.io:\n  images-by-semver: {a: '>>1'}\n", "semver range '>>1' does not parse"),
        (OWN.replace("semver", "semvr"), "o.yaml"),
        ("just: text\n", "not a list archiver sync reads"),
        (REGSYNC.replace("type: image", "type: artifact"), "sync[0].type: 'artifact'"),
        ("reg.io:\n  tls-verify: maybe\n  images: {a: []}\n", "reg.io.tls-verify: want true"),
    ],
)
def test_bad_lists_are_one_line(text: str, said: str) -> None:
    with pytest.raises(InputError) as caught:
        read_list(text, "bad.yaml" if said.startswith("bad") else "o.yaml")
    assert said in str(caught.value) and "\n" not in str(caught.value)


@pytest.mark.parametrize(
    ("wanted", "version", "ok"),
    [
        (">=1.2 <2", "1.2.0", True),
        (">=1.2 <2", "2.0.0", False),
        ("^1.2.3", "1.9.9", True),
        ("^0.2.3", "0.3.0", False),
        ("~1.2", "1.2.9", True),
        ("~1.2", "1.3.0", False),
        ("1.2.x", "1.2.5", True),
        ("1.2 - 1.4", "1.4.9", True),
        ("1.2 - 1.4", "1.5.0", False),
        (">=1.0 <2 || >=3", "3.1", True),
        (">=1.0 <2 || >=3", "2.5", False),
        (">=1.0", "2.0.0-rc1", False),
        (">=2.0.0-rc0", "2.0.0-rc1", True),
        (">1.2", "1.2.9", False),
        ("<=1.2", "1.2.9", True),
        (">= 1.2, < 3.0.0", "v2.9", True),
        ("*", "5.0.0", True),
    ],
)
def test_semver_ranges_as_npm_and_masterminds_write_them(
    wanted: str, version: str, ok: bool
) -> None:
    parsed = Version.parse(version)
    assert parsed is not None and Range.parse(wanted).matches(parsed) is ok
