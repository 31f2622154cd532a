"""``archiver login`` and ``logout``: registry credentials kept as the docker CLI keeps them."""

from __future__ import annotations

import sys

import click

from archiver.cli.common import insecure_option
from archiver.errors import InputError
from archiver.places.registry import credentials
from archiver.places.registry.client import RegistryClient
from archiver.places.registry.credentials import Credentials, config_path

_PASSWORD_WARNING = "WARNING! Using --password via the CLI is insecure. Use --password-stdin."


@click.command("login")
@click.argument("registry")
@click.option("-u", "--username", required=True, help="The user to log in as.")
@click.option("-p", "--password", help="Prefer --password-stdin: a password here shows in ps.")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
@insecure_option
def command(
    registry: str,
    username: str,
    password: str | None,
    password_stdin: bool,
    insecure: tuple[str, ...],
) -> None:
    """Check credentials against REGISTRY, then keep them in $DOCKER_CONFIG/config.json."""
    if password_stdin:
        if password is not None:
            raise InputError("--password and --password-stdin are mutually exclusive")
        password = sys.stdin.readline().rstrip("\r\n")
    elif password is None:
        password = click.prompt("Password", hide_input=True)
    else:
        click.echo(
            "WARNING! Using --password via the CLI is insecure. Use --password-stdin.", err=True
        )
    if not password:
        raise InputError("an empty password")
    given = Credentials(username, password)
    client = RegistryClient(registry, registry in insecure or None, credentials=given)
    try:
        client.check_login()
    finally:
        client.close()
    credentials.store(registry, given)
    click.echo(f"Credentials kept in {config_path()}")
    click.echo("Login Succeeded")


@click.command("logout")
@click.argument("registry")
def logout_command(registry: str) -> None:
    """Forget the credentials kept for REGISTRY."""
    if credentials.erase(registry):
        click.echo(f"Removing login credentials for {registry}")
    else:
        click.echo(f"Not logged in to {registry}")
