"""Shared test helpers: run the CLI in-process, locate samples and public fixtures.

The public fixtures (``../shared/public-fixtures``, beside the checkout) are optional for a
developer: a test that needs them skips with one line saying they are absent. CI (CI=true)
has them beside its clone, so there a test that finds them absent fails.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import pytest

from archiver.cli.main import main

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "samples"
FIXTURES = ROOT.parent / "shared" / "public-fixtures"


@dataclass
class Result:
    code: int
    out: str
    err: str


Run = Callable[..., Result]


@pytest.fixture
def run(capsys: pytest.CaptureFixture[str]) -> Run:
    """Run ``archiver ARGS...`` in-process; return exit code, stdout and stderr."""

    def _run(*args: str) -> Result:
        capsys.readouterr()
        code = 0
        try:
            main([str(a) for a in args])
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    return _run


def skip_or_fail(message: str, needed: str = "it") -> NoReturn:
    """Something a test needs is missing: skip it in one line, or fail it under CI=true
    (where nothing may skip)."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"{message}; CI=true needs {needed}", pytrace=False)
    pytest.skip(message)


def require_fixtures() -> Path:
    """The public fixtures' folder; absent: skip the test in one line (fail it under CI)."""
    if not FIXTURES.is_dir():
        skip_or_fail(
            f"public fixtures absent: {FIXTURES} (shared/ is not beside the checkout)", "them"
        )
    return FIXTURES


def fixture_path(relative: str) -> Path:
    """One public fixture; a file missing from fixtures that are there fails the test."""
    path = require_fixtures() / relative
    if not path.exists():
        pytest.fail(f"public fixture missing: {path}")
    return path


needs_fixtures = pytest.mark.public_fixtures
"""Marks a test that reads FIXTURES itself (not through fixture_path): it goes through
require_fixtures() before it runs."""


def fixture_params(values: Sequence[Any]) -> list[Any]:
    """Parameters found among the fixtures at import (a glob, a list of cases); with the
    fixtures absent, one placeholder whose test goes through require_fixtures(), instead of
    an empty set that pytest would skip silently (and CI would not notice)."""
    if FIXTURES.is_dir():
        return list(values)
    return [pytest.param(None, marks=needs_fixtures, id="public-fixtures-absent")]


def fixture_json(relative: str, default: Any) -> Any:
    """A JSON fixture read at import time, or ``default`` where it is absent: collecting the
    tests never fails; the tests that use it are marked with needs_fixtures."""
    path = FIXTURES / relative
    return json.loads(path.read_text()) if path.is_file() else default


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "public_fixtures: reads ../shared/public-fixtures")


def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("public_fixtures") is not None:
        require_fixtures()


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """One line at the end for the tests that skipped for want of the public fixtures."""
    skipped = [
        r
        for r in terminalreporter.stats.get("skipped", [])
        if "public fixtures absent" in str(r.longrepr)
    ]
    if skipped:
        terminalreporter.write_line(
            f"{len(skipped)} tests skipped: public fixtures absent ({FIXTURES}; "
            "shared/ is not beside the checkout)"
        )
