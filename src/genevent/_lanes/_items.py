"""What a lane's mailbox holds besides events (calls, info messages, marks for a
:class:`Barrier`, the manager's jobs), the options of an isolated handler, and the answer a
lane gives for a handler that left.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, Final, Literal, TypeAlias

from .._core import Invoke, ManagerCore
from .._errors import HandlerNotFound
from .._overflow import check_bound

__all__ = (
    "BUDGET",
    "IDLE",
    "LANE_OVERFLOW",
    "LOG_EVERY",
    "NOTHING",
    "SPECIAL",
    "STOP_TIMEOUT",
    "Barrier",
    "CallItem",
    "InfoItem",
    "Isolation",
    "JobItem",
    "LaneOverflow",
    "MarkItem",
    "check_isolation",
    "lane_not_found",
)


Isolation: TypeAlias = Literal["task", "thread"]
"""How an asyncio handler is isolated (``add_handler(..., isolation=...)``): ``"task"``, a
task of its own in the manager's loop (for slow coroutine handlers), or ``"thread"``, a thread
of its own (for plain handlers that block). On :mod:`genevent.threads`, ``isolation=True``."""

LaneOverflow: TypeAlias = Literal["drop_oldest", "drop_newest"]
"""What a full isolated handler's mailbox (``maxsize=``) does with an arriving event or info
message: drop the oldest queued one, or the arriving one; either way counted (in
``HandlerStats.dropped`` and ``ManagerStats.lane_dropped``) and logged at most once a second."""

LANE_OVERFLOW: Final[tuple[LaneOverflow, ...]] = ("drop_oldest", "drop_newest")

STOP_TIMEOUT: Final = 5.0
"""Default ``stop_timeout`` of an isolated handler: how long ``stop`` waits for it."""

BUDGET: Final = 1024  # a task lane gives its loop a turn after this many items in a row
LOG_EVERY: Final = 1.0  # drops are logged at most once a second per handler


class InfoItem:
    __slots__ = ("message",)

    def __init__(self, message: Any) -> None:
        self.message = message


class CallItem:
    __slots__ = ("ref", "req", "request")

    def __init__(self, request: Any, req: Any, ref: Any) -> None:
        self.request = request
        self.req = req
        #: the handler it was made to: a handler swapped in under another id does not answer
        self.ref = ref


class MarkItem:
    __slots__ = ("barrier",)

    def __init__(self, barrier: Barrier) -> None:
        self.barrier = barrier


class JobItem:
    __slots__ = ("eff", "fut")

    def __init__(self, eff: Invoke, fut: Any) -> None:
        self.eff = eff
        self.fut = fut


SPECIAL: Final = frozenset({InfoItem, CallItem, MarkItem})
NOTHING: Final = object()  # nothing to run now (None is an event like any other)
IDLE: Final = float("inf")  # the place in mailbox order of a lane with nothing to run


class Barrier:
    """Counts lanes down to zero, then calls ``done`` once (from whichever thread got there
    last)."""

    __slots__ = ("_count", "_done", "_lock")

    def __init__(self, count: int, done: Callable[[], None]) -> None:
        self._count = count
        self._done = done
        self._lock = threading.Lock()

    def reach(self) -> None:
        """One lane caught up."""
        with self._lock:
            self._count -= 1
            last = self._count == 0
        if last:
            self._done()


def lane_not_found(host: Any, ref: Any) -> HandlerNotFound:
    """The :class:`HandlerNotFound` a lane answers a call with once its handler left: the
    manager's core says how it left (read from the lane's thread: no suggestion, which would
    walk the manager's table)."""
    core = getattr(host, "core", None) or getattr(host, "_core", None)
    if isinstance(core, ManagerCore):
        return core.not_found(ref, suggest=False)
    return HandlerNotFound(ref)


def check_isolation(
    maxsize: int | None, overflow: str, stop_timeout: float, isolated: bool
) -> None:
    """Refuse bad ``maxsize``/``overflow``/``stop_timeout`` keywords of an isolated handler
    (and any of them on a handler that is not isolated)."""
    if not isolated:
        if maxsize is not None:
            raise ValueError("maxsize= applies to an isolated handler only (pass isolation=)")
        return
    check_bound(maxsize, "drop_oldest")
    if overflow not in LANE_OVERFLOW:
        raise ValueError(
            f"an isolated handler's overflow must be one of {', '.join(map(repr, LANE_OVERFLOW))}"
            f", not {overflow!r} (its mailbox is fed by the manager, which neither waits for "
            "one handler nor has a producer to refuse)"
        )
    if isinstance(stop_timeout, bool) or not isinstance(stop_timeout, (int, float)):
        raise TypeError(f"stop_timeout must be a number of seconds, not {stop_timeout!r}")
    if not stop_timeout >= 0.0:
        raise ValueError(f"stop_timeout must be >= 0, not {stop_timeout!r}")
