from __future__ import annotations

from datetime import UTC, datetime

import pytest

from archiver.cli import output
from archiver.cli.template import render
from archiver.errors import InputError


@pytest.mark.parametrize(
    "size, text",
    [
        (0, "0B"),
        (999, "999B"),
        (1000, "1kB"),
        (1234, "1.23kB"),
        (7054321, "7.05MB"),
        (1_500_000_000, "1.5GB"),
    ],
)
def test_human_size(size: int, text: str) -> None:
    assert output.human_size(size) == text


@pytest.mark.parametrize(
    "seconds, text",
    [
        (0.5, "Less than a second"),
        (1, "1 second"),
        (30, "30 seconds"),
        (90, "About a minute"),
        (600, "10 minutes"),
        (4000, "About an hour"),
        (3 * 3600, "3 hours"),
        (3 * 86400, "3 days"),
        (20 * 86400, "2 weeks"),
        (90 * 86400, "3 months"),
        (3 * 365 * 86400, "3 years"),
    ],
)
def test_human_duration(seconds: float, text: str) -> None:
    assert output.human_duration(seconds) == text


def test_since() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    assert output.since("2024-01-01T00:00:00.123456789Z", now) == "2 years ago"
    assert output.since("0001-01-01T00:00:00Z", now) == "N/A"
    assert output.since(None, now) == "N/A"
    assert output.since("yesterday", now) == "N/A"


def test_table_alignment_like_tabwriter() -> None:
    text = output.format_table(["REPOSITORY", "TAG"], [["a", "latest"], ["longer/name", "1"]])
    assert text.splitlines() == [
        "REPOSITORY    TAG",
        "a             latest",
        "longer/name   1",
    ]


def test_render_rows_table_and_plain() -> None:
    rows = [{"Repository": "a", "Tag": "1", "ID": "abc"}]
    table = output.render_rows("table {{.Repository}}\\t{{.ID}}", "", rows)
    assert table.splitlines()[0].split() == ["REPOSITORY", "IMAGE", "ID"]
    assert output.render_rows("{{.Repository}}:{{.Tag}}", "", rows) == "a:1"


INSPECT = {
    "Os": "linux",
    "Architecture": "amd64",
    "Config": {"Env": ["PATH=/usr/bin", "A=b"], "Labels": {"b": "2", "a": "1"}, "Cmd": None},
    "RepoTags": ["x:1", "y:2"],
    "RootFS": {"Layers": ["sha256:1", "sha256:2"]},
}


@pytest.mark.parametrize(
    "template, text",
    [
        ("{{.Os}}/{{.Architecture}}", "linux/amd64"),
        ("{{.Config.Env}}", "[PATH=/usr/bin A=b]"),
        ("{{json .Config.Labels}}", '{"b":"2","a":"1"}'),
        ("{{.Config.Labels}}", "map[a:1 b:2]"),
        ("{{.Config.Cmd}}", "<nil>"),
        ("{{.Nope}}", "<no value>"),
        ('{{join .RepoTags ","}}', "x:1,y:2"),
        ('{{range .RootFS.Layers}}{{.}}{{"\\n"}}{{end}}', "sha256:1\nsha256:2\n"),
        ("{{.Os | upper}}", "LINUX"),
        ("{{if .Config.Cmd}}cmd{{else}}none{{end}}", "none"),
        ('{{index .Config.Labels "a"}}', "1"),
        ("{{len .RepoTags}}", "2"),
        ('{{printf "%s-%s" .Os .Architecture}}', "linux-amd64"),
        ("{{- .Os -}} ", "linux"),
    ],
)
def test_templates(template: str, text: str) -> None:
    assert render(template, INSPECT) == text


@pytest.mark.parametrize(
    "template", ["{{nosuch .Os}}", "{{if .Os}}x", "{{end}}", "{{.Os.Deeper}}", "{{.Os"]
)
def test_bad_templates(template: str) -> None:
    with pytest.raises(InputError, match="invalid --format template"):
        render(template, INSPECT)
