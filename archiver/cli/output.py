"""Output as docker prints it: aligned tables, ``--format`` templates, sizes, ages, JSON."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any

_HEADERS = {
    "ID": "IMAGE ID",
    "CreatedSince": "CREATED",
    "CreatedAt": "CREATED AT",
    "CreatedBy": "CREATED BY",
    "Repository": "REPOSITORY",
    "Tag": "TAG",
    "Digest": "DIGEST",
    "Size": "SIZE",
    "Comment": "COMMENT",
}
_FIELD = re.compile(r"\{\{\s*\.(\w+)\s*\}\}")


def format_table(headers: list[str], rows: list[list[str]]) -> str:
    """Columns aligned like Go's tabwriter(minwidth 10, padding 3), as docker's tables are."""
    table = [headers, *rows]
    columns = max(len(r) for r in table)
    widths = [max(10, max(len(r[i]) for r in table if i < len(r)) + 3) for i in range(columns - 1)]
    lines = []
    for row in table:
        cells = [cell.ljust(widths[i]) if i < len(widths) else cell for i, cell in enumerate(row)]
        lines.append("".join(cells).rstrip())
    return "\n".join(lines)


def render_rows(
    template: str | None,
    default_table: str,
    rows: list[dict[str, Any]],
    headers: dict[str, str] | None = None,
) -> str:
    """docker's ``--format`` for list commands: a ``table`` template, or one line per row."""
    from archiver.cli.template import render  # not for --json, -q, or no output at all

    template = template or default_table
    if not template.startswith("table"):
        return "\n".join(render(template, row) for row in rows)
    body = template[len("table") :].strip() or default_table[len("table") :].strip()
    names = {**_HEADERS, **(headers or {})}
    header_template = _FIELD.sub(lambda m: names.get(m.group(1), m.group(1).upper()), body)
    header = render(header_template, {}).split("\t")
    lines = [render(body, row).split("\t") for row in rows]
    return format_table(header, lines)


_UNITS = ["B", "kB", "MB", "GB", "TB", "PB", "EB"]


def human_size(size: float) -> str:
    """go-units HumanSizeWithPrecision(size, 3): ``1.23kB``, ``7.05MB``."""
    unit = 0
    while size >= 1000 and unit < len(_UNITS) - 1:
        size /= 1000.0
        unit += 1
    return f"{float(f'{size:.3g}'):g}{_UNITS[unit]}"


def human_duration(seconds: float) -> str:
    """go-units HumanDuration."""
    if seconds < 1:
        return "Less than a second"
    if seconds < 2:
        return "1 second"
    if seconds < 60:
        return f"{int(seconds)} seconds"
    minutes = seconds / 60
    if minutes < 2:
        return "About a minute"
    if minutes < 60:
        return f"{int(minutes)} minutes"
    hours = seconds / 3600
    if hours < 2:
        return "About an hour"
    if hours < 48:
        return f"{int(hours)} hours"
    if hours < 24 * 7 * 2:
        return f"{int(hours / 24)} days"
    if hours < 24 * 30 * 2:
        return f"{int(hours / 24 / 7)} weeks"
    if hours < 24 * 365 * 2:
        return f"{int(hours / 24 / 30)} months"
    return f"{int(hours / 24 / 365)} years"


def parse_time(text: str | None) -> datetime | None:
    """RFC 3339 with up to nanoseconds; None for missing, zero or unparseable times."""
    if not text or text.startswith("0001-01-01"):
        return None
    cleaned = re.sub(r"(\.\d{6})\d+", r"\1", text.replace("Z", "+00:00"))
    try:
        parsed = datetime.fromisoformat(cleaned)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def since(created: str | None, now: datetime | None = None) -> str:
    when = parse_time(created)
    if when is None:
        return "N/A"
    now = now or datetime.now(UTC)
    return human_duration(max(0.0, (now - when).total_seconds())) + " ago"


def to_json(obj: Any) -> str:
    return json.dumps(obj, indent=2, ensure_ascii=False)


def short_id(digest: str) -> str:
    return digest.removeprefix("sha256:")[:12]
