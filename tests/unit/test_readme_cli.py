"""What a newcomer meets before any archive: `archiver` alone, and `archiver VERB --help`.

Plain `archiver` prints its help and succeeds (as docker does); every option of every verb
says in its help what it does.
"""

from __future__ import annotations

import click
import pytest

from archiver.cli.main import _COMMANDS, cli
from tests.conftest import Run


def _verbs() -> list[click.Command]:
    context = click.Context(cli)
    commands = [cli.get_command(context, name) for name in cli.list_commands(context)]
    assert all(commands) and len(commands) == len(_COMMANDS)
    return [c for c in commands if c is not None]


def _undocumented(command: click.Command) -> list[str]:
    return [
        "/".join(param.opts)
        for param in command.params
        if isinstance(param, click.Option) and not param.hidden and not (param.help or "").strip()
    ]


def test_every_option_of_every_verb_has_help() -> None:
    missing = {c.name: _undocumented(c) for c in [cli, *_verbs()] if _undocumented(c)}
    assert missing == {}


def test_the_check_finds_an_option_without_help() -> None:
    @click.command("probe")
    @click.option("-x", "--example")
    @click.option("-y", help="Documented.")
    def probe(example: str, y: str) -> None: ...

    assert _undocumented(probe) == ["-x/--example"]


@pytest.mark.parametrize("name", sorted(_COMMANDS))
def test_every_verb_says_what_it_does(name: str, run: Run) -> None:
    result = run(name, "--help")
    assert result.code == 0, result.err
    assert result.out.startswith(f"Usage: archiver {name} ")
    summary = result.out.split("\n\n")[1].strip()
    assert len(summary) > 20, summary


def test_archiver_alone_prints_help_and_succeeds(run: Run) -> None:
    result = run()
    assert result.code == 0, result.err
    assert result.out.startswith("Usage: archiver [OPTIONS]")  # click 8.4: COMMAND, 8.5: [COMMAND]
    assert all(f"  {name} " in result.out for name in _COMMANDS)
    assert result.err == ""


def test_an_unknown_verb_is_still_a_usage_error(run: Run) -> None:
    result = run("nosuch")
    assert result.code == 2
    assert "No such command 'nosuch'" in result.err
