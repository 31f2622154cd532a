"""The ``archiver`` command: one click group, one module per verb.

``main()`` turns an ArchiverError into one line on stderr and its exit code; a traceback
only with ``--debug``.
"""

from __future__ import annotations

import sys

import click

from archiver import __version__
from archiver.cli import (
    convert,
    df,
    history,
    inspect,
    inventory,
    load,
    login,
    ls,
    pack,
    prune,
    pull,
    push,
    rmi,
    save,
    tag,
    unpack,
    verify,
)
from archiver.errors import ArchiverError
from archiver.places.registry.client import close_clients


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", "-v", prog_name="archiver")
@click.option("--debug", is_flag=True, help="Show tracebacks for errors.")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """Move and keep container images offline: docker-save and OCI archives, verified."""
    ctx.ensure_object(dict)
    ctx.obj["debug"] = debug


for _command in (
    ls.command,
    inspect.command,
    history.command,
    verify.command,
    convert.command,
    convert.copy_command,
    pack.command,
    pack.merge_command,
    unpack.command,
    load.command,
    save.command,
    tag.command,
    rmi.command,
    prune.command,
    df.command,
    push.command,
    pull.command,
    login.command,
    login.logout_command,
    inventory.command,
):
    cli.add_command(_command)


def main(argv: list[str] | None = None) -> None:
    """Entry point of the console script and ``python -m archiver``."""
    debug = "--debug" in (argv if argv is not None else sys.argv[1:])
    try:
        try:
            cli.main(args=argv, prog_name="archiver", standalone_mode=False)
        finally:
            close_clients()
    except ArchiverError as exc:
        if debug:
            raise
        click.echo(f"Error: {exc}", err=True)
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except BrokenPipeError:
        sys.exit(141)
    except OSError as exc:  # disk full, permission denied, file too large...
        if debug:
            raise
        where = f"{exc.filename}: " if exc.filename else ""
        click.echo(f"Error: {where}{exc.strerror or exc}", err=True)
        sys.exit(ArchiverError.exit_code)
    except KeyboardInterrupt:
        click.echo("Interrupted.", err=True)
        sys.exit(130)
