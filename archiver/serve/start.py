"""``archiver serve`` from start to stop: every input opened and every name settled, the
TLS pair and the htpasswd file read, the socket bound (each of these fails in one line,
before anything listens), then served until a signal."""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass

from archiver.serve import catalog as catalogs
from archiver.serve import server
from archiver.serve.app import make_app
from archiver.serve.auth import Htpasswd
from archiver.serve.inputs import open_inputs
from archiver.serve.server import DEFAULT_LISTEN, Listen

log = logging.getLogger("archiver.serve")


@dataclass(frozen=True)
class Options:
    paths: Sequence[str]
    listen: str | None = None
    prefix: str = ""
    prefer: str = "error"
    tls_cert: str | None = None
    tls_key: str | None = None
    htpasswd: str | None = None


def _read_all(catalog: catalogs.Catalog) -> None:
    """Every image's documents read while the first requests are answered; an image that
    cannot be read is said once here (and is not served)."""
    for problem in catalog.complete():
        log.error("archiver serve: not served: %s", problem)


def run(options: Options) -> None:
    server.setup_logging()
    listen = Listen.parse(options.listen or DEFAULT_LISTEN)
    server.check_tls(options.tls_cert, options.tls_key)
    users = Htpasswd.read(options.htpasswd) if options.htpasswd else None
    tls = options.tls_cert is not None
    with open_inputs(options.paths) as served:
        catalog = catalogs.build(served, options.prefix, options.prefer)
        sock = server.bind(listen)
        port = sock.getsockname()[1]
        if listen.loopback:
            where = "loopback only" + ("" if options.listen else "; --listen HOST:PORT for others")
        else:
            where = "all who reach it" if tls else "plain HTTP, all who reach it (--listen)"
        log.info(
            "archiver serve: %d images in %d repositories from %s; listening on %s (%s)%s",
            len(catalog.images),
            len(catalog.repositories()),
            ", ".join(options.paths),
            listen.url(tls, port),
            where,
            "; Basic auth from " + options.htpasswd if options.htpasswd else "",
        )
        untitled = [e.label for _, e in catalog.unnamed if e.tags]
        if untitled:
            log.info(
                "archiver serve: not served by name (an OCI tag without a repository): %s",
                ", ".join(untitled[:5])
                + (f" and {len(untitled) - 5} more" if len(untitled) > 5 else ""),
            )
        threading.Thread(target=_read_all, args=(catalog,), daemon=True).start()
        server.serve(make_app(catalog, users), sock, options.tls_cert, options.tls_key)
    log.info("archiver serve: stopped")
