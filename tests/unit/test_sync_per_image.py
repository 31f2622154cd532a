"""What list items say of single images: Hauler's ``rewrite`` read as Hauler reads it, the
per-image settings a sync hands its transfer, and how a transfer looks them up."""

from __future__ import annotations

import pytest

from archiver.engine.sync import item_platforms, per_image, platforms_for
from archiver.engine.sync_plan import Wanted
from archiver.errors import InputError
from archiver.model.descriptor import Descriptor
from archiver.model.digest import Digest
from archiver.model.image import ImageEntry
from archiver.model.per_image import PerImage
from archiver.model.platform import Platform
from archiver.model.reference import Reference
from archiver.model.sync_lists import ImageSpec, TagFilter, read_list

INDEX = "application/vnd.oci.image.index.v1+json"
DIGEST = "sha256:" + "b" * 64


def hauler(name: str, rewrite: str) -> str:
    return f"""\
apiVersion: content.hauler.cattle.io/v1
kind: Images
metadata:
  annotations: {{hauler.dev/registry: registry.example.com}}
spec:
  images:
    - name: {name}
      rewrite: {rewrite}
"""


@pytest.mark.parametrize(
    ("name", "rewrite", "written"),
    [
        # no registry: the image's own; no tag: the image's own; a leading / dropped
        ("team/app:1.2", "/custom/app", "registry.example.com/custom/app:1.2"),
        ("team/app:1.2", "mirror/app:stable", "registry.example.com/mirror/app:stable"),
        ("team/app:1.2", "other.example.com:5000/x:2", "other.example.com:5000/x:2"),
        (f"team/app@{DIGEST}", "pinned/app:v1", "registry.example.com/pinned/app:v1"),
        ("docker.io/library/busybox:1", "tools/busybox", "docker.io/tools/busybox:1"),
    ],
)
def test_hauler_rewrite_is_the_name_written(name: str, rewrite: str, written: str) -> None:
    [spec] = read_list(hauler(name, rewrite), "h.yaml").images
    assert spec.rewrite == written


@pytest.mark.parametrize(
    ("name", "rewrite", "said"),
    [
        (f"team/app@{DIGEST}", "pinned/app", "is named by digest: give the rewrite a tag"),
        ("team/app:1", f"pinned/app@{DIGEST}", "a name and tag, not a digest"),
        ("team/app:1", "Bad/Name", "must be lowercase"),
    ],
)
def test_bad_rewrites_are_one_line_naming_the_field(name: str, rewrite: str, said: str) -> None:
    with pytest.raises(InputError) as caught:
        read_list(hauler(name, rewrite), "h.yaml")
    message = str(caught.value)
    assert message.startswith("h.yaml: document 1.spec.images[0].rewrite: ") and said in message


def item(name: str, *platforms: str, rewrite: str | None = None, bare: bool = False) -> Wanted:
    spec = ImageSpec("x", TagFilter(), "l.yaml", platforms, rewrite, exclude_extras=bare)
    out = Reference.parse(rewrite) if rewrite else None
    return Wanted(Reference.parse(name), spec, Descriptor(INDEX, Digest.parse(DIGEST), 1), out)


def entry(*names: str) -> ImageEntry:
    refs = tuple(Reference.parse(n) for n in names)
    return ImageEntry(Descriptor(INDEX, Digest.parse(DIGEST), 1), refs)


def test_per_image_settings_are_found_by_either_name() -> None:
    arm, amd = Platform.parse("linux/arm64"), Platform.parse("linux/amd64")
    settings = per_image(
        [
            item("reg.io/a:1", "linux/arm64", rewrite="reg.io/b:1", bare=True),
            item("reg.io/c:1"),
        ],
        False,
    )
    default = [amd]
    # before the rewrite (the registry's entry) and after (the earlier output's)
    for names in (("reg.io/a:1",), ("reg.io/b:1",)):
        assert settings.platforms_of(entry(*names), default) == [arm]
        assert not settings.takes_extras(entry(*names))
    assert settings.platforms_of(entry("reg.io/c:1"), default) == [amd]
    assert settings.platforms_of(entry("reg.io/c:1"), None) is None
    assert settings.takes_extras(entry("reg.io/c:1"))
    renamed = settings.renamed(entry("reg.io/a:1"))
    assert renamed.refs == (Reference.parse("reg.io/b:1"),)
    assert renamed.descriptor.digest == Digest.parse(DIGEST)
    assert settings.renamed(entry("reg.io/c:1")) == entry("reg.io/c:1")


def test_an_image_named_by_digest_is_found_by_its_digest() -> None:
    settings = per_image([item(f"reg.io/a@{DIGEST}", "linux/s390x")], False)
    assert settings.platforms_of(ImageEntry(Descriptor(INDEX, Digest.parse(DIGEST), 1)), None) == [
        Platform.parse("linux/s390x")
    ]


def test_an_item_then_the_command_then_the_list() -> None:
    silent = item("reg.io/a:1")
    listed = Wanted(
        Reference.parse("reg.io/a:1"),
        ImageSpec("x", TagFilter(), "l.yaml", ("linux/arm64",), default_platforms=("linux/386",)),
    )
    by_list = Wanted(
        Reference.parse("reg.io/a:1"),
        ImageSpec("x", TagFilter(), "l.yaml", default_platforms=("linux/386",)),
    )
    assert item_platforms(listed, given=True) == ("linux/arm64",)  # the item's own win
    assert item_platforms(by_list, given=False) == ("linux/386",)  # the list's default
    assert item_platforms(by_list, given=True) == ()  # --platform wins over the list's
    assert item_platforms(silent, given=False) == ()  # nothing said: the command's default


def test_nothing_said_changes_nothing() -> None:
    plain = PerImage()
    one = entry("reg.io/a:1")
    assert plain.platforms_of(one, None) is None and plain.takes_extras(one)
    assert plain.renamed(one) is one


def test_the_default_platforms_of_items_naming_none() -> None:
    given = [Platform.parse("linux/arm64")]
    assert platforms_for(given, False) == given
    assert platforms_for(None, True) is None
    assert platforms_for(None, False) == [Platform.host()]
