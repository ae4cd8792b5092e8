"""What the asyncio runtime's modules share: the mailbox's request messages and their kinds,
the futures' small helpers, and the set of running managers."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import threading
from collections.abc import Callable
from typing import Any, Final

from .._core import Procedure
from .._lanes import CAUGHT_UP, CONCERNED, LANE_RESULTS, Lane

try:  # the running task, cheaply: 3.11's asyncio.current_task is Python code (~300 ns);
    # the dict behind it is C, and eager tasks (3.12+) keep it up to date too
    from asyncio.tasks import _current_tasks  # type: ignore[attr-defined]  # private, C

    _task_of: Callable[[asyncio.AbstractEventLoop], asyncio.Task[Any] | None] = _current_tasks.get
except ImportError:  # pragma: no cover - a Python without it has a C current_task
    _task_of = asyncio.current_task

_running_loop = asyncio._get_running_loop  # C; None outside a running loop (public twin raises)
_FOREVER: Final = threading.TIMEOUT_MAX  # timeouts this long or longer mean "no timeout"
_LIVE: set[Any] = set()  # running managers (the public objects) stay alive until they stop,
# like Erlang processes: a manager nobody references is still a running manager, not garbage
_STOP: Final = object()
_LANE_RESULTS: Final = LANE_RESULTS
_INTERNAL: Final = frozenset({"info", "owner_down", "stream close", "restart"} | _LANE_RESULTS)
_CONCERNED: Final = CONCERNED
"""Requests that may concern isolated handlers (see ``_dispatch.isolated``)."""
_CAUGHT_UP: Final = CAUGHT_UP  # a request re-posted after a barrier
# request kinds the manager answers without the core's generator when the reply is plain
_CALL: Final = object()
_SYNC: Final = object()
_WHICH: Final = object()
_CALL_OUTCOME: Final = object()  # a queued call whose handle_call ran: (entry, outcome, request)
_SYNC_REST: Final = object()  # a queued sync_notify from its first handler that did more
_seal_lock = threading.Lock()  # shared: taken only by a notify that raced a stop, and at seal


class _Request:
    """A control message in the mailbox. Events from ``notify`` go in as themselves.

    A request with a deadline also carries ``deadline`` (the loop's clock), ``timeout`` and
    ``ahead`` (the messages queued ahead of it when it was posted); the others leave them
    unset."""

    __slots__ = ("ahead", "args", "deadline", "fut", "proc", "timeout", "via", "what")
    ahead: int
    deadline: float
    timeout: float
    #: an isolated handler's outcome: its lane, and the place in mailbox order it is from
    via: tuple[Lane, float]

    def __init__(
        self,
        proc: Callable[..., Procedure] | object,
        args: tuple[Any, ...],
        fut: asyncio.Future[Any] | None,
        what: str,
    ) -> None:
        self.proc = proc
        self.args = args
        self.fut = fut
        self.what = what


def _resolve(fut: asyncio.Future[Any] | None, value: Any) -> None:
    if fut is not None and not fut.done():
        fut.set_result(value)


def _fail(fut: asyncio.Future[Any] | None, exc: BaseException) -> None:
    if fut is not None and not fut.done():
        fut.set_exception(exc)


def _consume_outcome(fut: asyncio.Future[Any]) -> None:
    if not fut.cancelled():
        fut.exception()


def _is_control(msg: Any) -> bool:
    """A control request (never dropped), as opposed to an event or an info message."""
    return msg.__class__ is _Request and msg.what != "info"


def _droppable(msg: Any) -> bool:
    return not _is_control(msg)


def _nothing() -> Procedure:
    return None
    yield  # pragma: no cover - makes this a generator


def _has_coroutines(cls: type) -> bool:
    return any(
        inspect.iscoroutinefunction(getattr(cls, name, None))
        for name in ("init", "handle_event", "handle_call", "handle_info", "terminate")
    )


def _fail_threadsafe(
    loop: asyncio.AbstractEventLoop, fut: asyncio.Future[Any] | None, exc: BaseException
) -> None:
    if fut is None:
        return
    try:
        running = asyncio.get_running_loop()
    except RuntimeError:
        running = None
    if running is loop:
        _fail(fut, exc)
    else:
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits
            loop.call_soon_threadsafe(_fail, fut, exc)
