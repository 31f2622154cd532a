from __future__ import annotations

import pytest

from archiver.errors import InputError
from archiver.model.reference import Reference, is_valid_tag, match_reference

HEX = "a" * 64


@pytest.mark.parametrize(
    "text, full, familiar, registry, repository",
    [
        ("nginx", "docker.io/library/nginx:latest", "nginx:latest", "docker.io", "library/nginx"),
        ("nginx:1.25", "docker.io/library/nginx:1.25", "nginx:1.25", "docker.io", "library/nginx"),
        (
            "jwilder/nginx-proxy:0.7.0",
            "docker.io/jwilder/nginx-proxy:0.7.0",
            "jwilder/nginx-proxy:0.7.0",
            "docker.io",
            "jwilder/nginx-proxy",
        ),
        (
            "acme-registry:5000/nms-core:10.3.1",
            "acme-registry:5000/nms-core:10.3.1",
            "acme-registry:5000/nms-core:10.3.1",
            "acme-registry:5000",
            "nms-core",
        ),
        (
            "localhost:5000/a/b",
            "localhost:5000/a/b:latest",
            "localhost:5000/a/b:latest",
            "localhost:5000",
            "a/b",
        ),
        ("localhost/foo", "localhost/foo:latest", "localhost/foo:latest", "localhost", "foo"),
        (
            "docker.io/library/nginx",
            "docker.io/library/nginx:latest",
            "nginx:latest",
            "docker.io",
            "library/nginx",
        ),
        (
            "docker.io/nginx",
            "docker.io/library/nginx:latest",
            "nginx:latest",
            "docker.io",
            "library/nginx",
        ),
        (
            "index.docker.io/foo/bar",
            "docker.io/foo/bar:latest",
            "foo/bar:latest",
            "docker.io",
            "foo/bar",
        ),
        ("[::1]:5000/foo", "[::1]:5000/foo:latest", "[::1]:5000/foo:latest", "[::1]:5000", "foo"),
        ("foo:5000", "docker.io/library/foo:5000", "foo:5000", "docker.io", "library/foo"),
        (
            "my.reg/a__b/c-d--e.f:v1_2",
            "my.reg/a__b/c-d--e.f:v1_2",
            "my.reg/a__b/c-d--e.f:v1_2",
            "my.reg",
            "a__b/c-d--e.f",
        ),
        (
            f"nginx@sha256:{HEX}",
            f"docker.io/library/nginx@sha256:{HEX}",
            f"nginx@sha256:{HEX}",
            "docker.io",
            "library/nginx",
        ),
        (
            f"nginx:1.25@sha256:{HEX}",
            f"docker.io/library/nginx:1.25@sha256:{HEX}",
            f"nginx:1.25@sha256:{HEX}",
            "docker.io",
            "library/nginx",
        ),
    ],
)
def test_parse_and_normalise(
    text: str, full: str, familiar: str, registry: str, repository: str
) -> None:
    ref = Reference.parse(text)
    assert str(ref) == full
    assert ref.familiar() == familiar
    assert (ref.registry, ref.repository) == (registry, repository)
    assert Reference.parse(str(ref)) == ref


def test_digest_only_has_no_default_tag() -> None:
    ref = Reference.parse(f"nginx@sha256:{HEX}")
    assert ref.tag is None and str(ref.digest) == f"sha256:{HEX}"
    assert Reference.parse("nginx", default_tag=False).tag is None


@pytest.mark.parametrize(
    "text, why",
    [
        ("", "empty"),
        ("Nginx", "lowercase"),
        ("library/Nginx:1", "lowercase"),
        ("nginx:", "tag"),
        ("nginx:-bad", "tag"),
        ("nginx@sha256:abc", "digest"),
        (":tag", "empty"),
        ("a//b", "component"),
        ("-foo", "component"),
        (HEX, "64-byte"),
        ("a/" + "b" * 260, "longer"),
        # docker's grammar is ASCII and matched whole: no trailing newline, no Unicode \w, \d
        ("demo/a:1\n", "tag"),
        ("demo/a\n:1", "component"),
        ("demo/a\n", "component"),
        ("demo/a:tåg", "tag"),
        ("demo/a:v\u0661", "tag"),
        ("demo/å:1", "component"),
        ("rég.example/a:1", "registry"),
        ("reg.example:5\u0660\u0660\u0660/a", "registry"),
        ("reg.example\n/a", "registry"),
        (f"demo/a@sha256:{HEX}\n", "digest"),
        (HEX + "\n", "component"),
    ],
)
def test_invalid_references_are_refused(text: str, why: str) -> None:
    with pytest.raises(InputError) as err:
        Reference.parse(text)
    assert why in str(err.value)
    assert repr(text)[:40].strip("'") in str(err.value)


def test_with_tag_and_digest() -> None:
    ref = Reference.parse("localhost:5000/app:1")
    assert ref.with_tag("2").familiar() == "localhost:5000/app:2"
    assert is_valid_tag("v1.2_3") and not is_valid_tag(".bad")
    with pytest.raises(InputError):
        ref.with_tag("no good")


@pytest.mark.parametrize(
    "pattern, text, expected",
    [
        ("busy*", "busybox", True),
        ("busy*", "docker.io/library/busybox:1", True),
        ("*/nginx-proxy", "jwilder/nginx-proxy:0.7.0", True),
        ("nginx:1.*", "nginx:1.25", True),
        ("nginx:1.*", "nginx:2.0", False),
        ("nginx", "nginx:1.25", True),
        ("*", "jwilder/nginx-proxy", False),
        ("localhost:5000/*", "localhost:5000/app:1", True),
        ("docker.io/library/nginx", "nginx", True),
    ],
)
def test_match_reference(pattern: str, text: str, expected: bool) -> None:
    assert match_reference(pattern, Reference.parse(text)) is expected


@pytest.mark.parametrize("tag", ["1\n", "tåg", "v\u0661", "\u0661", "a\tb", "", "x" * 129])
def test_tags_are_ascii_and_whole(tag: str) -> None:
    assert not is_valid_tag(tag)
    with pytest.raises(InputError, match="invalid tag"):
        Reference.parse("demo/a").with_tag(tag)


@pytest.mark.parametrize("tag", ["1", "v1.2_3-rc", "_x", "A" * 128, "latest"])
def test_valid_tags_still_pass(tag: str) -> None:
    assert is_valid_tag(tag)
    assert Reference.parse(f"demo/a:{tag}").tag == tag
