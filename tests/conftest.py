"""Shared test helpers: run the CLI in-process, locate samples and public fixtures."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

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


def fixture_path(relative: str) -> Path:
    path = FIXTURES / relative
    if not path.exists():
        pytest.fail(f"public fixture missing: {path} (shared/ must sit beside the repository)")
    return path
