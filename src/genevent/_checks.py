"""Argument checks shared by every runtime, run at the call before anything is queued or run.

Each public request of :mod:`genevent.aio` and :mod:`genevent.threads` checks its arguments
here first, on every path (queued, inline, blocking, awaiting), so that a bad argument is
refused the same way everywhere and never after the request already ran.
"""

from __future__ import annotations

import math
import numbers
import threading
from collections.abc import Callable, Hashable
from typing import Any, Final

from . import _functions
from ._core import Args, Restart, handler_key, restart_spec
from ._errors import InvalidName, InvalidOwner
from ._text import short

__all__ = (
    "NO_WAIT",
    "check_add",
    "check_name",
    "check_on_exit",
    "check_ref",
    "check_subscribe",
    "check_timeout",
)

NO_WAIT: Final = 0.0
"""A checked timeout of 0: the request is delivered, and the caller times out at once."""

_UNSUPERVISED: Final = object()

_FOREVER: Final = threading.TIMEOUT_MAX
"""Timeouts at least this long (about 292 years on 64-bit systems) mean "no timeout"."""


def check_timeout(timeout: Any) -> float | None:
    """Check a ``timeout=`` argument and return it as a float, or None for "wait forever".

    ``None`` and ``math.inf`` (or anything too long for the platform's locks) mean no timeout;
    ``0`` means do not wait (:data:`NO_WAIT`); any other real number must be positive. Raises
    :class:`TypeError` for a value that is not a real number (a ``bool`` or ``str`` included)
    and :class:`ValueError` for a negative number or NaN."""
    if timeout is None:
        return None
    if isinstance(timeout, bool) or not isinstance(timeout, numbers.Real):
        raise TypeError(f"timeout must be None or a number of seconds, not {short(timeout)}")
    seconds = float(timeout)
    if math.isnan(seconds):
        raise ValueError("timeout must be a number of seconds, not NaN")
    if seconds < 0.0:
        raise ValueError(f"timeout must not be negative, not {short(timeout)}")
    if seconds >= _FOREVER:
        return None
    return seconds


def check_ref(ref: Any) -> None:
    """Raise :class:`~genevent.InvalidHandler` unless ``ref`` is a handler class or a
    ``(class, id)`` pair with a hashable id."""
    handler_key(ref)


def check_on_exit(on_exit: Any) -> None:
    """Raise :class:`~genevent.InvalidOwner` unless ``on_exit`` is callable or None."""
    if on_exit is not None and not callable(on_exit):
        raise InvalidOwner(
            f"on_exit must be a callable taking a HandlerExit (or None), not {short(on_exit)}"
        )


def check_name(name: Any) -> str:
    """Return ``name`` if it is a non-empty str; raise :class:`~genevent.InvalidName` else."""
    if not isinstance(name, str) or not name:
        raise InvalidName(f"a manager name must be a non-empty str, not {short(name)}")
    return name


def check_add(
    handler: Any,
    args: Any,
    timeout: float | None,
    restart: str,
    max_restarts: int,
    restart_period: float,
    on_exit: object = _UNSUPERVISED,
) -> tuple[float | None, Restart | None]:
    """The options of ``add_handler`` and ``add_sup_handler`` (with ``on_exit``), checked in
    the order both runtimes check them: the checked timeout and the restart spec. (The lane
    of an isolated handler is the runtime's, checked next.)"""
    timeout = check_timeout(timeout)
    check_ref(handler)
    spec = restart_spec(restart, args, max_restarts, restart_period)
    if on_exit is not _UNSUPERVISED:
        check_on_exit(on_exit)
    return timeout, spec


def check_subscribe(
    fn: Callable[[Any], object], event_type: Any, where: Any, id: Hashable | None
) -> tuple[tuple[type[_functions.FunctionHandler], Hashable], Args]:
    """``subscribe``'s and ``on``'s function handler: its reference (``id`` or ``fn``) and the
    ``Args`` it is added with, checked."""
    ref = _functions.reference(fn, id)
    _functions.check_filter(event_type, where)
    return ref, Args(fn, event_type, where)
