"""Bounded text for user data: the one place error messages and log lines shorten it.

Everything genevent writes about a user's object (an event, a handler's state, a bad return
value, an exception that a callback raised, a handler id, a manager's name) goes through
:func:`short`, so that a message or a report stays small whatever the data: a million-element
list, an exception wrapping an exception wrapping ... (a call crashing through a chain of
managers), or an object whose ``__repr__`` raises.
"""

from __future__ import annotations

import dataclasses
import reprlib
from typing import Any, Final

__all__ = ("MAX_TEXT", "cut", "short")

MAX_TEXT: Final = 240
"""The longest text :func:`short` returns for one object (characters)."""


class _Repr(reprlib.Repr):
    """``reprlib`` with fixed limits, which also shortens exceptions and dataclass instances
    (the exit reasons) field by field instead of asking for their full ``repr`` first, and
    shortens subclasses of the builtin containers as the containers they are."""

    def __init__(self) -> None:
        super().__init__()
        self.maxlevel = 3
        self.maxtuple = 6
        self.maxlist = 6
        self.maxarray = 6
        self.maxdict = 4
        self.maxset = 6
        self.maxfrozenset = 6
        self.maxdeque = 6
        self.maxstring = 80
        self.maxlong = 40
        self.maxother = 80

    def repr_instance(self, x: Any, level: int) -> str:
        if isinstance(x, BaseException):
            if level <= 0:
                return f"{type(x).__qualname__}(...)"
            args = ", ".join(self.repr1(a, level - 1) for a in x.args[: self.maxtuple])
            more = ", ..." if len(x.args) > self.maxtuple else ""
            return f"{type(x).__qualname__}({args}{more})"
        if dataclasses.is_dataclass(x) and not isinstance(x, type):
            if level <= 0:
                return f"{type(x).__qualname__}(...)"
            fields = [f for f in dataclasses.fields(x) if f.repr]
            shown = ", ".join(
                f"{f.name}={self.repr1(getattr(x, f.name, None), level - 1)}"
                for f in fields[: self.maxtuple]
            )
            more = ", ..." if len(fields) > self.maxtuple else ""
            return f"{type(x).__qualname__}({shown}{more})"
        if isinstance(x, tuple) and hasattr(x, "_fields"):  # a named tuple
            if level <= 0:
                return f"{type(x).__qualname__}(...)"
            names = list(x._fields)[: self.maxtuple]
            shown = ", ".join(
                f"{n}={self.repr1(v, level - 1)}" for n, v in zip(names, x, strict=False)
            )
            more = ", ..." if len(x) > self.maxtuple else ""
            return f"{type(x).__qualname__}({shown}{more})"
        for base in (list, tuple, dict, set, frozenset):
            if isinstance(x, base):
                method = getattr(self, f"repr_{base.__name__}")
                return f"{type(x).__qualname__}({method(x, level)})"
        return super().repr_instance(x, level)


_repr = _Repr()


def cut(text: str, limit: int = MAX_TEXT) -> str:
    """``text`` itself if it is at most ``limit`` characters, else its start and end around
    ``...``."""
    if len(text) <= limit:
        return text
    keep = max(limit - 3, 2)
    head = keep - keep // 3
    return f"{text[:head]}...{text[len(text) - (keep - head) :]}"


def short(obj: Any) -> str:
    """A bounded ``repr`` of ``obj`` (at most :data:`MAX_TEXT` characters). Never raises for an
    ``Exception`` in the object's own ``__repr__``: it then names the object's type instead."""
    try:
        text = _repr.repr(obj)
    except Exception as exc:
        try:
            kind = type(obj).__qualname__
        except Exception:  # pragma: no cover - a type without a str __qualname__
            kind = "object"
        return f"<{kind} object at {id(obj):#x}; repr raised {type(exc).__qualname__}>"
    return cut(text)
