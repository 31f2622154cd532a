"""Counting calls, for tests that prove a cost grows with the images and not with their
square (never timed: a count is the same on every machine)."""

from __future__ import annotations

from typing import Any

import pytest


class Calls:
    """How many times the function replaced by :func:`counted` was called."""

    def __init__(self) -> None:
        self.count = 0


def counted(monkeypatch: pytest.MonkeyPatch, owner: Any, name: str) -> Calls:
    """``owner.name`` (a function of a module, or a method of a class) counted from now on,
    doing what it did."""
    calls = Calls()
    real = getattr(owner, name)

    def counting(*args: Any, **kwargs: Any) -> Any:
        calls.count += 1
        return real(*args, **kwargs)

    monkeypatch.setattr(owner, name, counting)
    return calls
