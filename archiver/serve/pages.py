"""The pages for people: ``/`` lists the images served (searchable with ``?q=``, a plain
GET form: no JavaScript), ``/image/REPOSITORY@DIGEST`` shows one image's platforms,
layers and history. Server-side HTML with a little CSS; every value is escaped."""

from __future__ import annotations

from collections import Counter
from html import escape
from urllib.parse import quote

from archiver.model.digest import Digest
from archiver.serve.catalog import Catalog, Image

_STYLE = """
body{font-family:system-ui,sans-serif;margin:2rem auto;max-width:70rem;color:#222;padding:0 1rem}
h1{font-size:1.4rem}h2{font-size:1.1rem;margin-top:1.6rem}
table{border-collapse:collapse;width:100%;font-size:.9rem}
th,td{text-align:left;padding:.3rem .5rem;border-bottom:1px solid #ddd;vertical-align:top}
th{background:#f4f4f4}code{font-size:.85rem}a{color:#0645ad}
form{margin:1rem 0}input[type=search]{width:24rem;padding:.3rem}
.tag{background:#eef;border-radius:3px;padding:0 .3rem;margin-right:.2rem}
.muted{color:#777}
"""


def _page(title: str, body: str) -> str:
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>{escape(title)}</title><style>{_STYLE}</style></head>"
        f"<body>{body}</body></html>"
    )


def size_text(size: int) -> str:
    value = float(size)
    for unit in ("B", "kB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{size} B"


def _link(image: Image) -> str:
    return f"/image/{quote(image.repository)}@{image.digest}"


def _layer_uses(catalog: Catalog) -> Counter[Digest]:
    uses: Counter[Digest] = Counter()
    for image in catalog.images:
        node = image.root.default_image() if image.root is not None else None
        if node is not None:
            uses.update({layer.digest for layer in node.manifest.layers})
    return uses


def _signatures(catalog: Catalog, image: Image) -> list[str]:
    """Cosign tags (``sha256-HEX.sig|.att|.sbom``) for the image, and its referrers."""
    prefix = f"{image.digest.algorithm}-{image.digest.hex}."
    found = [
        tag.removeprefix(prefix)
        for tag in catalog.tags.get(image.repository, {})
        if tag.startswith(prefix)
    ]
    referrers = catalog.referrers.get(image.digest, [])
    if referrers:
        found.append(f"{len(referrers)} referrer{'s' if len(referrers) > 1 else ''}")
    return found


def _is_artifact_tag(image: Image) -> bool:
    return bool(image.tags) and all(
        t.startswith(("sha256-", "sha512-")) and t.rsplit(".", 1)[-1] in ("sig", "att", "sbom")
        for t in image.tags
    )


def index_page(catalog: Catalog, query: str = "") -> str:
    """Every image (artifacts apart), those matching ``query`` when one is given."""
    wanted = query.strip().lower()
    uses = _layer_uses(catalog)
    rows = []
    shown = [
        image
        for image in catalog.images
        if image.root is not None
        and image.root.default_image() is not None
        and not _is_artifact_tag(image)
    ]
    for image in shown:
        assert image.root is not None
        names = " ".join([image.repository, *image.tags, str(image.digest)]).lower()
        if wanted and wanted not in names:
            continue
        node = image.root.default_image()
        assert node is not None and node.config is not None
        layers = node.manifest.layers
        shared = sum(1 for layer in layers if uses[layer.digest] > 1)
        platforms = ", ".join(str(n.platform) for n in image.root.images if n.config is not None)
        tags = "".join(f"<span class='tag'>{escape(t)}</span>" for t in image.tags)
        extras = ", ".join(_signatures(catalog, image)) or "<span class='muted'>none</span>"
        rows.append(
            f"<tr><td><a href='{escape(_link(image))}'>{escape(image.repository)}</a></td>"
            f"<td>{tags}</td><td>{escape(platforms)}</td>"
            f"<td>{size_text(sum(layer.size for layer in layers))}</td>"
            f"<td>{escape(node.config.created or '')}</td>"
            f"<td>{shared} of {len(layers)}</td><td>{extras}</td></tr>"
        )
    found = f"{len(rows)} of {len(shown)} images" if wanted else f"{len(shown)} images"
    body = (
        "<h1>Images served</h1>"
        "<form method='get' action='/'><input type='search' name='q' "
        f"value='{escape(query)}' placeholder='repository, tag or digest'>"
        " <button type='submit'>Search</button></form>"
        f"<p class='muted' id='count'>{found}</p>"
        "<table><thead><tr><th>Repository</th><th>Tags</th><th>Platforms</th><th>Size</th>"
        "<th>Created</th><th>Layers shared</th><th>Signatures, referrers</th></tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table>"
    )
    return _page("archiver serve", body)


def find_image(catalog: Catalog, repository: str, digest: str) -> Image | None:
    for image in catalog.images:
        if image.root is None:
            continue
        if image.repository == repository and str(image.digest) == digest:
            return image
    return None


def image_page(catalog: Catalog, image: Image, host: str) -> str:
    """One image: how to pull it, its platforms, and each platform's layers and history."""
    uses = _layer_uses(catalog)
    pull = f"{host}/{image.repository}@{image.digest}"
    parts = [
        f"<p><a href='/'>All images</a></p><h1>{escape(image.repository)}</h1>",
        "<p>Tags: "
        + ("".join(f"<span class='tag'>{escape(t)}</span>" for t in image.tags) or "none")
        + "</p>",
        f"<p>Digest: <code>{escape(str(image.digest))}</code><br>"
        f"Pull: <code>docker pull {escape(pull)}</code><br>"
        f"From: <code>{escape(image.origin)}</code></p>",
    ]
    signatures = _signatures(catalog, image)
    if signatures:
        parts.append(f"<p>Signatures and referrers: {escape(', '.join(signatures))}</p>")
    for node in image.root.images if image.root is not None else []:
        if node.config is None:
            continue
        config = node.config
        parts.append(
            f"<h2>{escape(str(node.platform))}</h2><p>Image ID "
            f"<code>{escape(str(config.id))}</code>, created {escape(config.created or '?')}</p>"
        )
        rows = "".join(
            f"<tr><td><code>{escape(str(layer.digest))}</code></td>"
            f"<td>{size_text(layer.size)}</td><td>{escape(layer.media_type)}</td>"
            f"<td>{uses[layer.digest] - 1 if uses[layer.digest] else 0}</td></tr>"
            for layer in node.manifest.layers
        )
        parts.append(
            "<h3>Layers</h3><table class='layers'><thead><tr><th>Digest</th><th>Size</th>"
            f"<th>Media type</th><th>Other images using it</th></tr></thead>{rows}</table>"
        )
        history = "".join(
            f"<tr><td>{escape(h.created or '')}</td><td><code>{escape(h.created_by)}</code></td>"
            f"<td>{'' if h.empty_layer else 'a layer'}</td><td>{escape(h.comment)}</td></tr>"
            for h in config.history
        )
        parts.append(
            "<h3>History</h3><table class='history'><thead><tr><th>Created</th>"
            "<th>Created by</th><th>Adds</th><th>Comment</th></tr></thead>"
            f"{history or '<tr><td colspan=4 class=muted>no history recorded</td></tr>'}</table>"
        )
    return _page(f"{image.repository} — archiver serve", "".join(parts))


def not_found_page(what: str) -> str:
    return _page(
        "not found", f"<p><a href='/'>All images</a></p><h1>Not found</h1><p>{escape(what)}</p>"
    )
