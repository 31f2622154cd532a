"""``archiver serve``: archives answered as a read-only registry (the OCI distribution API,
read side) and a page for people, straight from the files as they are.

A face, like ``cli/``: it reads its inputs through the engine's Source model (the same
``open_place``, ``MultiSource``, ``WithBase`` and ``resolve`` every verb uses) and never
opens a file itself. Modules:

    inputs.py     PATHs -> one Source: several merged, a delta over the bases beside it
    names.py      names without host, ``--prefix``, clashes refused or settled by ``--prefer``
    catalog.py    the registry's view: tags, and per repository (its documents read when
                  it is first asked for) manifests, blobs and referrers by digest
    ranges.py     the Range header (one range) parsed against a blob's size
    streaming.py  a blob's bytes streamed in chunks, verified against its digest as they go
    auth.py       htpasswd (bcrypt) files and Basic credentials
    answers.py    the spec's error JSON and the headers every answer carries
    registry.py   the /v2/ routes
    pages.py      the HTML pages (server-side, a little CSS, no JavaScript)
    start.py      from start to stop: inputs, names, TLS, htpasswd, socket, serve
    app.py        the ASGI application: routes, auth, one log line per request
    server.py     listening: checks before it (address, TLS files), uvicorn, signals
"""
