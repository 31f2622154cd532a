"""``archiver serve PATH...``: archives and bundles answered as a read-only registry."""

from __future__ import annotations

import click


@click.command("serve")
@click.argument("paths", nargs=-1, required=True, metavar="PATH...")
@click.option(
    "--listen",
    metavar="HOST:PORT",
    help="Where to listen (default 127.0.0.1:5000: loopback only, unless named here).",
)
@click.option("--prefix", default="", metavar="NS", help="Serve every repository under NS/.")
@click.option(
    "--prefer",
    type=click.Choice(["error", "first", "last"]),
    default="error",
    help="Two images taking one name: refuse (default), or the first or last PATH wins.",
)
@click.option("--tls-cert", metavar="FILE", help="Serve HTTPS with this certificate (PEM).")
@click.option("--tls-key", metavar="FILE", help="... and this private key (PEM).")
@click.option("--htpasswd", metavar="FILE", help="Basic auth: users with bcrypt hashes.")
def command(
    paths: tuple[str, ...],
    listen: str | None,
    prefix: str,
    prefer: str,
    tls_cert: str | None,
    tls_key: str | None,
    htpasswd: str | None,
) -> None:
    """Serve PATHs (bundles, split bundles, docker-save or OCI archives, OCI directories)
    as one read-only registry, straight from the files: a blob is read from its own
    frames, verified as it streams. Images keep their repository path without the registry
    host (docker.io/library/nginx:1.25 is library/nginx:1.25), so the server also works as
    a registry mirror. A page for people is at /. Stops on SIGTERM or Ctrl-C."""
    from archiver.serve.start import Options, run  # starlette, uvicorn: this verb only

    run(Options(paths, listen, prefix, prefer, tls_cert, tls_key, htpasswd))
