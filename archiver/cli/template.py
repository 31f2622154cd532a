"""A subset of Go's text/template, enough for docker's ``--format``.

Supported: ``{{.A.B}}``, ``{{.}}``, functions ``json join upper lower title split len
index println printf``, pipes (``{{.Name | upper}}``), string literals, ``{{- -}}``
trimming, ``{{if}}{{else}}{{end}}``, ``{{range}}`` and ``{{with}}``. Values print as Go
prints them: lists ``[a b]``, maps ``map[k:v]``, null ``<nil>``.
"""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from archiver.errors import InputError

_ACTION = re.compile(r"\{\{(-\s)?(.*?)(\s-)?\}\}", re.S)
_MISSING = object()


def _error(detail: str) -> InputError:
    return InputError(f"invalid --format template: {detail}")


@dataclass
class _Node:
    kind: str  # "text", "expr", "if", "range", "with"
    text: str = ""
    body: list[_Node] = field(default_factory=list)
    otherwise: list[_Node] = field(default_factory=list)


def _tokens(template: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    pos = 0
    for match in _ACTION.finditer(template):
        text = template[pos : match.start()]
        if match.group(1):
            text = text.rstrip()
        if out and out[-1][0] == "trim-next":
            out.pop()
            text = text.lstrip()
        out.append(("text", text))
        out.append(("action", match.group(2).strip()))
        if match.group(3):
            out.append(("trim-next", ""))
        pos = match.end()
    tail = template[pos:]
    if out and out[-1][0] == "trim-next":
        out.pop()
        tail = tail.lstrip()
    if "{{" in tail:
        raise _error("unclosed action")
    out.append(("text", tail))
    return out


def _parse(
    tokens: list[tuple[str, str]], pos: int, closers: tuple[str, ...]
) -> tuple[list[_Node], int, str]:
    nodes: list[_Node] = []
    while pos < len(tokens):
        kind, value = tokens[pos]
        pos += 1
        if kind == "text":
            if value:
                nodes.append(_Node("text", value))
            continue
        word = value.split(None, 1)[0] if value else ""
        if word in closers:
            return nodes, pos, word
        if word in ("if", "range", "with"):
            node = _Node(word, value[len(word) :].strip())
            node.body, pos, closer = _parse(tokens, pos, ("else", "end"))
            if closer == "else":
                node.otherwise, pos, closer = _parse(tokens, pos, ("end",))
            if closer != "end":
                raise _error(f"unterminated {word}")
            nodes.append(node)
        elif word in ("end", "else"):
            raise _error(f"unexpected {{{{{word}}}}}")
        elif value.startswith("/*"):
            continue
        else:
            nodes.append(_Node("expr", value))
    if closers:
        raise _error(f"missing {{{{{closers[-1]}}}}}")
    return nodes, pos, ""


def render(template: str, data: Any) -> str:
    """Render ``template`` with ``data`` as ``.``; docker's ``\\t`` / ``\\n`` escapes apply."""
    return _execute(_compiled(template), data)


@lru_cache(maxsize=64)
def _compiled(template: str) -> list[_Node]:
    """``template`` parsed, once for all the rows it renders (ls of 10,000 images parsed
    it 10,000 times). The nodes are only read."""
    template = template.replace("\\t", "\t").replace("\\n", "\n")
    nodes, _, _ = _parse(_tokens(template), 0, ())
    return nodes


def _execute(nodes: list[_Node], dot: Any) -> str:
    out = []
    for node in nodes:
        if node.kind == "text":
            out.append(node.text)
        elif node.kind == "expr":
            out.append(go_string(_pipeline(node.text, dot)))
        elif node.kind == "if":
            out.append(
                _execute(node.body if _truthy(_pipeline(node.text, dot)) else node.otherwise, dot)
            )
        elif node.kind == "with":
            value = _pipeline(node.text, dot)
            out.append(
                _execute(node.body, value) if _truthy(value) else _execute(node.otherwise, dot)
            )
        elif node.kind == "range":
            value = _pipeline(node.text, dot)
            items = list(value.values()) if isinstance(value, dict) else list(value or [])
            if items:
                out.extend(_execute(node.body, item) for item in items)
            else:
                out.append(_execute(node.otherwise, dot))
    return "".join(out)


def _truthy(value: Any) -> bool:
    return value is not _MISSING and bool(value)


def _pipeline(text: str, dot: Any) -> Any:
    value: Any = _MISSING
    for i, args in enumerate(_stages(text)):
        extra = [] if i == 0 else [value]
        value = _command(list(args), extra, dot)
    return value


@lru_cache(maxsize=256)
def _stages(text: str) -> tuple[tuple[str, ...], ...]:
    """A pipeline's commands, each split into its words (once per pipeline text)."""
    stages = []
    for stage in _split_pipes(text):
        args = _words(stage)
        if not args:
            raise _error(f"empty command in {text!r}")
        stages.append(tuple(args))
    return tuple(stages)


def _split_pipes(text: str) -> list[str]:
    parts, current, quote = [], "", ""
    for char in text:
        if quote:
            current += char
            if char == quote and not current.endswith("\\" + quote):
                quote = ""
        elif char in '"`':
            quote = char
            current += char
        elif char == "|":
            parts.append(current.strip())
            current = ""
        else:
            current += char
    parts.append(current.strip())
    return parts


def _words(stage: str) -> list[str]:
    try:
        lexer = shlex.shlex(stage, posix=False)
        lexer.whitespace_split = True
        lexer.quotes = '"`'
        return list(lexer)
    except ValueError as exc:
        raise _error(f"{exc} in {stage!r}") from None


def _argument(word: str, dot: Any) -> Any:
    if word.startswith(('"', "`")):
        inner = word[1:-1]
        return json.loads(word, strict=False) if word.startswith('"') else inner
    if word == ".":
        return dot
    if word.startswith("."):
        return _field(dot, word)
    if re.fullmatch(r"-?\d+", word):
        return int(word)
    if word in ("true", "false"):
        return word == "true"
    raise _error(f"function {word!r} not defined")


def _field(dot: Any, path: str) -> Any:
    value = dot
    for name in path.strip(".").split("."):
        if isinstance(value, dict):
            value = value.get(name, _MISSING)
        elif value is None or value is _MISSING:
            return _MISSING
        else:
            raise _error(f"can't evaluate field {name} in type {type(value).__name__}")
    return value


def _command(args: list[str], piped: list[Any], dot: Any) -> Any:
    name = args[0]
    if (
        name.startswith((".", '"', "`"))
        or re.fullmatch(r"-?\d+", name)
        or name in ("true", "false")
    ):
        if len(args) > 1 or piped:
            raise _error(f"can't give arguments to {name}")
        return _argument(name, dot)
    values = [_argument(a, dot) for a in args[1:]] + piped
    function = _FUNCTIONS.get(name)
    if function is None:
        raise _error(f"function {name!r} not defined")
    try:
        return function(*values)
    except TypeError as exc:
        raise _error(f"wrong arguments for {name}: {exc}") from None


def go_string(value: Any) -> str:
    """A value as Go's fmt prints it with %v."""
    if value is _MISSING:
        return "<no value>"
    if value is None:
        return "<nil>"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple):
        return "[" + " ".join(go_string(v) for v in value) + "]"
    if isinstance(value, dict):
        return "map[" + " ".join(f"{k}:{go_string(value[k])}" for k in sorted(value)) + "]"
    return str(value)


def _json(value: Any) -> str:
    return (
        "null"
        if value is _MISSING
        else json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    )


def _printf(fmt: str, *values: Any) -> str:
    converted = re.sub(r"%[vsdq]", lambda m: "%r" if m.group() == "%q" else "%s", fmt)
    shown = tuple(
        json.dumps(v) if isinstance(v, str) and "%q" in fmt else go_string(v) for v in values
    )
    return converted.replace("%r", "%s") % shown


_FUNCTIONS: dict[str, Any] = {
    "json": _json,
    "join": lambda items, sep: sep.join(go_string(i) for i in (items or [])),
    "upper": lambda s: go_string(s).upper(),
    "lower": lambda s: go_string(s).lower(),
    "title": lambda s: go_string(s).title(),
    "split": lambda s, sep: go_string(s).split(sep),
    "len": lambda v: len(v) if v not in (None, _MISSING) else 0,
    "index": lambda v, *keys: _index(v, keys),
    "println": lambda *v: " ".join(go_string(x) for x in v) + "\n",
    "print": lambda *v: "".join(go_string(x) for x in v),
    "printf": _printf,
}


def _index(value: Any, keys: tuple[Any, ...]) -> Any:
    for key in keys:
        try:
            value = value[key]
        except (KeyError, IndexError, TypeError):
            return _MISSING
    return value
