"""YAML as sync lists are written: every document of a file, scalars that look like numbers
kept as text where tags need it (``1.10`` is not ``1.1``), and a parse error as one line
with the file, line and column."""

from __future__ import annotations

from typing import Any

import yaml

from archiver.errors import InputError

MAX_LIST = 4 * 1024 * 1024
"""Bytes of one list file at most."""


_SAFE: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
"""libyaml's parser where PyYAML has it (a list of 2,000 images: 0.3 s in pure Python)."""


class _Loader(_SAFE):
    """The safe loader without float resolution: ``1.10`` stays the text ``1.10``."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:float"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def load_documents(text: str, origin: str) -> list[Any]:
    """Every YAML document of ``text`` (empty ones left out)."""
    if len(text) > MAX_LIST:
        raise InputError(f"{origin}: over {MAX_LIST} bytes: not a list file")
    try:
        documents = list(yaml.load_all(text, Loader=_Loader))
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{origin}:{mark.line + 1}:{mark.column + 1}" if mark else origin
        raise InputError(f"{where}: YAML does not parse: {exc.problem or exc.context}") from None
    except yaml.YAMLError as exc:
        raise InputError(f"{origin}: YAML does not parse: {exc}") from None
    return [d for d in documents if d is not None]
