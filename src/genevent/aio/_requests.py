"""Requests of the asyncio runtime: queued from the manager's loop, with a deadline each
(see :class:`._deadlines._Pending`), and the :class:`~genevent.CallTimeout` they fail with."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from functools import partial
from typing import Any

from .._core import HandlerExit, Kind, ManagerCore, Procedure
from .._driver import awaited_frames, callback_in
from .._errors import CallTimeout, _name
from ._common import _CALL, _Request, _running_loop
from ._deadlines import _Pending
from ._server import _Server


def enqueue(
    srv: _Server,
    proc: Callable[..., Procedure] | object,
    args: tuple[Any, ...],
    what: Kind,
    timeout: float | None,
) -> asyncio.Future[Any]:
    """Queue a request (from the manager's loop) and return the future of its answer,
    failed with :class:`CallTimeout` once ``timeout`` has passed (0: at once)."""
    fut: asyncio.Future[Any] = srv.loop.create_future()
    mailbox = srv.mailbox
    req = _Request(proc, args, fut, what)
    ahead = len(mailbox)
    mailbox.append(req)
    if srv.face._waiter is not None:  # check_caller ran: this is the manager's own thread
        srv.wake()
    if timeout is not None:
        if not timeout:  # delivered, but not waited for (OTP: a call with timeout 0)
            expire(srv, fut, what, timeout, ahead, args)
            return fut
        pending = srv.pending
        if pending is None:
            pending = srv.pending = _Pending(srv.loop, partial(expire, srv))
        pending.add(req, ahead, timeout, bool(srv.suspended))
    return fut


def busy(srv: _Server) -> bool:
    """Whether the manager is busy for a caller in its loop: its task runs (so there is
    nothing to wake and nothing runs inline), it is not stopping, and no isolated handler
    could be the caller: every check of ``_Server.check_caller`` is known to pass."""
    return (
        srv.dispatch_task is None
        and not srv.face._closed
        and not srv.lanes
        and _running_loop() is srv.loop  # running, so not closed
    )


def call_busy(srv: _Server, handler: Any, request: Any, timeout: float | None) -> Any:
    """A ``call`` to a busy manager (its task runs, so there is nothing to wake), with a
    timeout that is None or a number of seconds > 0: :func:`enqueue`, made lean (this is
    the queued call's hot path). Returns the future of its answer."""
    return queue_busy(srv, _CALL, (handler, request), Kind.CALL, timeout)


def queue_busy(
    srv: _Server, proc: object, args: tuple[Any, ...], what: Kind, timeout: float | None
) -> Any:
    """A request to a busy manager (see :func:`busy`), with a timeout that is None or a
    number of seconds > 0: :func:`enqueue`, made lean (the queued call's and sync_notify's
    hot path). Returns the future of its answer."""
    fut = srv.loop.create_future()
    mailbox = srv.mailbox
    req = _Request(proc, args, fut, what)
    if timeout is not None:  # _Pending.add, inlined
        pending = srv.pending
        if pending is None:
            pending = srv.pending = _Pending(srv.loop, partial(expire, srv))
        req.ahead = len(mailbox)
        req.timeout = timeout
        req.deadline = at = pending.time() + timeout
        if pending:
            if at < pending[-1].deadline:
                pending.sorted = False
        else:
            pending.sorted = True
        pending.append(req)
        if srv.suspended and (pending.watchdog is None or at < pending.watchdog_at):
            pending.arm(at)
    mailbox.append(req)
    return fut


async def answer(
    srv: _Server,
    fut: asyncio.Future[Any],
    what: str,
    timeout: float | None,
    ahead: int,
    args: tuple[Any, ...] = (),
) -> Any:
    """Await a queued request's answer for at most ``timeout`` seconds (0: not at all)."""
    if timeout is None:
        return await fut
    if not timeout:  # delivered, but not waited for (OTP: a call with timeout 0)
        expire(srv, fut, what, timeout, ahead, args)
        return await fut
    handle = srv.loop.call_later(timeout, expire, srv, fut, what, timeout, ahead, args)
    try:
        return await fut
    finally:
        handle.cancel()


def expire(
    srv: _Server,
    fut: asyncio.Future[Any],
    what: str,
    timeout: float,
    ahead: int,
    args: tuple[Any, ...] = (),
) -> None:
    if not fut.done():
        fut.set_exception(timeout_error(srv, what, timeout, ahead, args))


def timeout_error(
    srv: _Server, what: str, timeout: float, ahead: int, args: tuple[Any, ...] = ()
) -> CallTimeout:
    label = f"call to {_name(args[0])}" if what == Kind.CALL and args else what
    running = None
    if what == Kind.CALL and args and srv.core.isolated:
        entry = srv.core.find(args[0])
        if entry is not None and entry.lane is not None:
            label = f"call to isolated handler {_name(args[0])}"
            running = entry.lane.running_callback()
    return CallTimeout(label, timeout, queued_ahead=ahead, running=running or running_callback(srv))


def running_callback(srv: _Server) -> str | None:
    """The handler callback the manager is awaiting right now (``"Class.method"``), if any:
    read from the coroutines its task (or an inline request's task) is suspended in."""
    for task in (srv.dispatch_task, srv.task):
        if isinstance(task, asyncio.Task) and not task.done():
            name = callback_in(awaited_frames(task.get_coro()))
            if name is not None:
                return name
    return None


def swap_proc(
    core: ManagerCore,
    old: Any,
    args1: Any,
    new: Any,
    args2: Any,
    sup: bool,
    owner: Any,
    on_exit: Callable[[HandlerExit], object] | None,
) -> Procedure:
    """The procedure of ``swap_handler`` and ``swap_sup_handler``."""
    return core.swap_handler(old, args1, new, args2, sup=sup, owner=owner, on_exit=on_exit)
