"""What the asyncio runtime's modules share: the mailbox's request messages and their kinds,
the futures' small helpers, and the set of running managers."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import threading
from collections.abc import Callable
from typing import Any, Final

from .._core import DROPPABLE, Effect, Invoke, Kind, Procedure
from .._lanes import Lane

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

    __slots__ = ("ahead", "args", "caught_up", "deadline", "fut", "proc", "timeout", "via", "what")
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
        what: Kind,
        caught_up: bool = False,
    ) -> None:
        self.proc = proc
        self.args = args
        self.fut = fut
        self.what = what
        self.caught_up = caught_up  # back in the mailbox after isolated handlers caught up


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
    return msg.__class__ is _Request and msg.what not in DROPPABLE


def _droppable(msg: Any) -> bool:
    return not _is_control(msg)


def _nothing() -> Procedure:
    return None
    yield  # pragma: no cover - makes this a generator


def _resume(first: Effect, proc: Procedure) -> Procedure:
    """The rest of ``proc``, a core procedure the manager began to drive itself (see
    ``_Server.lean``), for the general driver: ``first`` (the effect it stopped at) is
    performed first, and its outcome sent on into ``proc``."""
    eff = first
    while True:
        outcome = yield eff
        try:
            eff = proc.send(outcome)
        except StopIteration as stop:
            return stop.value


def _given(proc: Procedure) -> Procedure:
    """``proc`` itself: a request's ``proc`` that hands a procedure begun elsewhere (see
    ``_Server.plain``) to the general driver."""
    return proc


def _raise(exc: BaseException) -> None:
    """A callback that raises ``exc``, which a callback already raised (a KeyboardInterrupt
    or SystemExit met by ``_Server.lean``): the general driver meets it as if it ran it."""
    raise exc


def _reraised(exc: BaseException) -> Invoke:
    return Invoke(_raise, (exc,))


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
