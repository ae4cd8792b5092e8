"""How handlers left: the record a manager keeps of the last ones, and the words for it.

:class:`~genevent.HandlerNotFound` says why an id that was installed is not any more (from
this record), or suggests an installed reference close to a missing one (:func:`close_to`).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from typing import Any

from .._errors import Departure
from .._text import cut, short
from ._reasons import (
    BadReturn,
    Crashed,
    Deleted,
    ExitReason,
    OwnerExited,
    RemovedItself,
    StartFailed,
)

__all__ = ("close_to", "left_for", "one_line", "remember")


def remember(
    departed: dict[Any, Departure] | None, left: Departure, kept: int
) -> dict[Any, Departure]:
    """Add ``left`` to ``departed`` (made if None) as its newest, forgetting the oldest beyond
    ``kept``; return the record."""
    if departed is None:
        departed = {}
    else:
        departed.pop(left.handler, None)  # it moves to the newest end
    departed[left.handler] = left
    if len(departed) > kept:
        del departed[next(iter(departed))]
    return departed


def close_to(refs: Iterable[Any], ref: Any, among: int) -> Any:
    """An installed reference (of ``refs``, newest first; at most ``among`` of the class asked
    for, or of its name, compared) close to the missing ``ref``, or None: the same class (or
    another class of the same name) with an id whose text differs by a small edit (the same
    id, for another class); else the class alone for a ``(class, id)``, or the newest
    ``(class, id)`` for the class alone."""
    if isinstance(ref, type):
        cls, ident = ref, None
    elif isinstance(ref, tuple) and len(ref) == 2 and isinstance(ref[0], type):
        cls, ident = ref[0], short(ref[1])
    else:
        return None
    name = getattr(cls, "__name__", None)
    ids: dict[str, Any] = {}
    same_class: Any = None
    seen = 0
    for other in refs:
        bare = isinstance(other, type)
        other_cls = other if bare else other[0]
        if other_cls is not cls and getattr(other_cls, "__name__", None) != name:
            continue
        if same_class is None and other_cls is cls and bare == (ident is not None):
            same_class = other
        if not bare:
            ids.setdefault(short(other[1]), other)
        elif ident is None and other_cls is not cls:
            ids.setdefault("", other)  # another class of the same name, alone too
        seen += 1
        if seen >= among:
            break
    if ident is None:
        return ids.get("", same_class)
    close = difflib.get_close_matches(ident, ids, n=1, cutoff=0.75)
    return ids[close[0]] if close else same_class


def one_line(exc: BaseException) -> str:
    """``"ValueError: bad input"``: an exception's type and the first line of its text."""
    kind = type(exc).__qualname__
    try:
        text = str(exc)
    except Exception:
        return kind
    text = text.strip().split("\n", 1)[0]
    return cut(f"{kind}: {text}", 120) if text else kind


def left_for(reason: ExitReason, callback: str | None) -> tuple[str, str]:
    """``(how, summary)`` of a :class:`Departure` for a handler that left for ``reason``."""
    if isinstance(reason, Crashed):
        where = f" in {callback}" if callback else ""
        return "crashed", f"it crashed{where} ({one_line(reason.exception)})"
    if isinstance(reason, BadReturn):
        where = f" from {callback}" if callback else ""
        return "bad_return", f"it returned a bad value{where}: {short(reason.value)}"
    if isinstance(reason, RemovedItself):
        return "removed_itself", "it removed itself (returned Remove())"
    if isinstance(reason, Deleted):
        return "deleted", "it was deleted (delete_handler)"
    if isinstance(reason, OwnerExited):
        exc = reason.reason
        return "owner_exited", "its owner ended" + (f" ({one_line(exc)})" if exc else "")
    if isinstance(reason, StartFailed):
        cause = reason.cause
        how = (
            f"init raised {one_line(cause)}"
            if isinstance(cause, BaseException)
            else f"init returned {short(getattr(cause, 'value', cause))}"
        )
        return "restart_failed", f"its restart failed ({how})"
    return "left", f"it left ({short(reason)})"  # Swapped and Stopped are noted where they happen
