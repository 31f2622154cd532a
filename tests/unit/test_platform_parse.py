"""Platforms as users write them: ``os/arch[/variant]``, several to a ``--platform`` when
separated by commas (as ``docker buildx`` takes them), anything else one line."""

from __future__ import annotations

import pytest

from archiver.cli.common import parse_platforms
from archiver.errors import InputError
from archiver.model.platform import Platform


def test_one_platform_with_or_without_its_variant() -> None:
    assert Platform.parse("linux/arm64/v8") == Platform("linux", "arm64", "v8")
    assert Platform.parse("windows/amd64") == Platform("windows", "amd64", None)


@pytest.mark.parametrize(
    "text", ["linux", "linux/", "linux/amd64,linux/arm64", "linux/am d64", "a/b/c/d"]
)
def test_what_is_not_a_platform_is_refused_in_one_line(text: str) -> None:
    with pytest.raises(InputError, match="invalid platform"):
        Platform.parse(text)


def test_a_platform_option_may_name_several_separated_by_commas() -> None:
    assert parse_platforms(["linux/amd64,linux/arm64/v8", "linux/386"]) == [
        Platform("linux", "amd64", None),
        Platform("linux", "arm64", "v8"),
        Platform("linux", "386", None),
    ]
    assert parse_platforms(["linux/amd64, linux/arm64"])[1] == Platform("linux", "arm64", None)
