"""A newline or another control character in a file's name does not split the error line
that names it: such characters are escaped in every error message (issue #16)."""

from __future__ import annotations

import os
from pathlib import Path

from archiver.errors import InputError, IntegrityError, one_line
from tests.conftest import Run


def test_control_characters_are_escaped() -> None:
    assert one_line("a\nb\r\tc\x1b[31md\u2028") == "a\\nb\\r\\tc\\x1b[31md\\u2028"
    assert one_line("plain: é, ü, 名前") == "plain: é, ü, 名前"
    assert str(InputError("x\ny: bad")) == "x\\ny: bad"
    assert str(IntegrityError("in\nput", "sha256:ab", "got\n")).count("\n") == 0


def test_a_newline_in_an_input_name_stays_on_one_line(run: Run, tmp_path: Path) -> None:
    path = tmp_path / "two\nlines.tar"
    path.write_bytes(b"not a tar at all" * 64)
    result = run("ls", path)
    assert result.code == 2
    assert result.err.count("\n") == 1
    assert result.err.startswith(f"Error: {tmp_path}/two\\nlines.tar: ")


def test_a_newline_in_a_refused_fifo_name_stays_on_one_line(run: Run, tmp_path: Path) -> None:
    path = tmp_path / "fi\x1bfo\n"
    os.mkfifo(path)
    result = run("ls", path)
    assert result.code == 2
    assert (
        result.err
        == f"Error: {tmp_path}/fi\\x1bfo\\n: a FIFO, not a regular file or a directory: refused\n"
    )


def test_a_missing_input_with_a_newline(run: Run, tmp_path: Path) -> None:
    result = run("ls", tmp_path / "no\nsuch.tar")
    assert result.code == 4 and result.err.count("\n") == 1 and "no\\nsuch.tar" in result.err
