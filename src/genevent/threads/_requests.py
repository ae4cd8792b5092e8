"""The thread runtime's messages: a control request (:class:`_Request`) and how its caller is
answered, the markers of the requests with a fast path, and the procedures the face queues."""

from __future__ import annotations

import concurrent.futures
import contextlib
import threading
import time
from collections.abc import Callable
from typing import Any, Final

from .._core import (
    DROPPABLE,
    HandlerExit,
    Kind,
    ManagerCore,
    Procedure,
)
from .._lanes import Lane
from ._owners import _OwnerWatch

_STOP: Final = object()
_SYNC_NOTIFY: Final = object()
_CALL: Final = object()  # a call, answered through _Server.call's fast path
_FOREVER: Final = threading.TIMEOUT_MAX  # timeouts this long or longer mean "no timeout"
_get_ident = threading.get_ident
_monotonic = time.monotonic
_allocate_lock = threading.Lock


class _Request:
    """A control message in the mailbox. Events from ``notify`` go in as themselves.

    A caller waits on ``lock`` (acquired at creation, released with the answer) or on
    ``future``; requests that nobody waits for (``send``, owner_down) have neither."""

    __slots__ = (
        "args",
        "caught_up",
        "error",
        "future",
        "lock",
        "proc",
        "value",
        "via",
        "watch",
        "what",
    )

    def __init__(
        self, proc: Callable[..., Procedure] | object, args: tuple[Any, ...], what: Kind
    ) -> None:
        self.proc = proc
        self.args = args
        self.what = what
        self.caught_up = False  # back in the mailbox after isolated handlers caught up
        self.lock: Any = None
        self.future: concurrent.futures.Future[Any] | None = None
        self.value: Any = None
        self.error: BaseException | None = None
        self.watch: _OwnerWatch | None = None
        #: an isolated handler's outcome: its lane, and the place in mailbox order it is from
        self.via: tuple[Lane, float] | None = None


def _answer(req: _Request, value: Any) -> None:
    fut = req.future
    if fut is not None:
        with contextlib.suppress(concurrent.futures.InvalidStateError):
            fut.set_result(value)
        return
    lock = req.lock
    if lock is not None:
        req.value = value
        with contextlib.suppress(RuntimeError):  # answered already (a lane left behind)
            lock.release()


def _is_control(msg: Any) -> bool:
    """A control request (never dropped), as opposed to an event or an info message."""
    return msg.__class__ is _Request and msg.what not in DROPPABLE


def _droppable(msg: Any) -> bool:
    return not _is_control(msg)


def _fail(req: _Request, exc: BaseException) -> None:
    fut = req.future
    if fut is not None:
        with contextlib.suppress(concurrent.futures.InvalidStateError):
            fut.set_exception(exc)
        return
    lock = req.lock
    if lock is not None:
        req.error = exc
        with contextlib.suppress(RuntimeError):  # answered already (a lane left behind)
            lock.release()


# -- the manager's thread --------------------------------------------------------------------


def _swap_proc(
    core: ManagerCore,
    old: Any,
    args1: Any,
    new: Any,
    args2: Any,
    sup: bool,
    owner: Any,
    on_exit: Callable[[HandlerExit], object] | None,
) -> Procedure:
    return core.swap_handler(old, args1, new, args2, sup=sup, owner=owner, on_exit=on_exit)


def _nothing() -> Procedure:
    return None
    yield  # pragma: no cover - makes this a generator


def _which_proc(core: ManagerCore) -> Procedure:
    return core.which_handlers()
    yield  # pragma: no cover - makes this a generator
