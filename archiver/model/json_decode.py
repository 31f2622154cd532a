"""The one way archiver decodes JSON it reads: strict, bounded, one line when refused.

Every document we read (``manifest.json``, ``index.json``, manifests, configs, inventories,
parts manifests, daemon and registry answers) goes through :func:`load_json`, which refuses
what ``json.loads`` alone would let through or turn into a traceback:

- bytes that are not UTF-8 (RFC 8259 §8.1): UTF-16 or UTF-32 text, a byte-order mark;
- nesting deeper than :data:`MAX_DEPTH` (``json`` itself raises RecursionError at ~1000);
- integers longer than :data:`MAX_INT_DIGITS` digits (Python refuses 4300 with ValueError);
- ``NaN``, ``Infinity`` and ``-Infinity``, which are not JSON.

No I/O: the caller reads the bytes (capped) and names where they came from.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from archiver.errors import ArchiverError, InputError

MAX_DEPTH = 64
"""Arrays and objects inside each other; real image documents stay under 10."""
MAX_INT_DIGITS = 40
"""An int64 (a size, an offset) has 19 digits; twice that leaves room and stops there."""

_BOMS = (
    (b"\x00\x00\xfe\xff", "UTF-32 (big-endian, with a byte-order mark)"),
    (b"\xff\xfe\x00\x00", "UTF-32 (little-endian, with a byte-order mark)"),
    (b"\xef\xbb\xbf", "UTF-8 with a byte-order mark"),
    (b"\xfe\xff", "UTF-16 (big-endian, with a byte-order mark)"),
    (b"\xff\xfe", "UTF-16 (little-endian, with a byte-order mark)"),
)


class _Refused(ValueError):
    """A value json.loads would accept but we do not."""


def _int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_INT_DIGITS:
        raise _Refused(f"an integer of {len(text.lstrip('-'))} digits (at most {MAX_INT_DIGITS})")
    return int(text)


def _constant(name: str) -> Any:
    raise _Refused(f"{name} is not a JSON value")


_DECODER = json.JSONDecoder(parse_int=_int, parse_constant=_constant)
"""One decoder for every document (``json.loads`` with these hooks builds one per call)."""


def _encoding_problem(raw: bytes) -> str | None:
    """Why ``raw`` is not UTF-8 JSON text, judged by its first bytes; None when it may be."""
    for mark, name in _BOMS:
        if raw.startswith(mark):
            return name
    head = raw[:4]
    if len(head) == 4 and b"\x00" in head:
        # JSON text starts with an ASCII character: its NULs tell UTF-16/32 apart (RFC 4627 §3)
        if head[:3] == b"\x00\x00\x00" or head[1:] == b"\x00\x00\x00":
            return "UTF-32"
        return "UTF-16"
    return None


def _too_deep(data: Any) -> bool:
    """Whether ``data`` nests arrays and objects deeper than MAX_DEPTH (no recursion)."""
    stack: list[tuple[Any, int]] = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if depth > MAX_DEPTH:
            return True
        children = value.values() if isinstance(value, dict) else value
        stack.extend((c, depth + 1) for c in children if isinstance(c, dict | list))
    return False


def load_json(raw: bytes, origin: str, error: Callable[[str], ArchiverError] = InputError) -> Any:
    """Decode the JSON document ``raw``; ``error`` (InputError unless a peer sent it)
    naming ``origin`` on one line when it is not strict, bounded UTF-8 JSON."""
    problem = _encoding_problem(raw)
    if problem is not None:
        raise error(f"{origin}: invalid JSON: encoded as {problem}; JSON must be UTF-8")
    try:
        data = _DECODER.decode(raw.decode("utf-8"))
    except RecursionError:
        raise error(f"{origin}: invalid JSON: nested deeper than {MAX_DEPTH} levels") from None
    except UnicodeDecodeError as exc:
        raise error(
            f"{origin}: invalid JSON: not UTF-8: {exc.reason} at byte {exc.start}"
        ) from None
    except ValueError as exc:  # JSONDecodeError (line and column in its message), _Refused
        raise error(f"{origin}: invalid JSON: {exc}") from None
    # a document with fewer brackets than MAX_DEPTH cannot nest deeper: most are not walked
    shallow = raw.count(b"[") + raw.count(b"{") <= MAX_DEPTH
    if not shallow and isinstance(data, dict | list) and _too_deep(data):
        raise error(f"{origin}: invalid JSON: nested deeper than {MAX_DEPTH} levels")
    return data


T = TypeVar("T")


class Memo(Generic[T]):
    """What was made of a document's bytes (validated, parsed), by (kind, bytes): the same
    bytes are the same digest, so a command makes it once however many places read them.
    Bounded by the bytes kept; the least recently used go first. Values are shared:
    only immutable ones belong here."""

    def __init__(self, most: int) -> None:
        self._most = most
        self._size = 0
        self._kept: OrderedDict[tuple[str, bytes], T] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, kind: str, raw: bytes) -> T | None:
        key = (kind, raw)
        with self._lock:
            value = self._kept.get(key)
            if value is not None:
                self._kept.move_to_end(key)
            return value

    def put(self, kind: str, raw: bytes, value: T) -> None:
        key = (kind, raw)
        with self._lock:
            if key in self._kept:
                return
            self._kept[key] = value
            self._size += len(raw)
            while self._size > self._most:
                (_, dropped), _ = self._kept.popitem(last=False)
                self._size -= len(dropped)
