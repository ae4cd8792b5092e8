"""How the thread runtime's public face waits for its manager: a request posted and waited
for (or its future), the check that the caller is not the manager itself, the wait for the
end, and the :class:`~genevent.CallTimeout` a request that timed out raises."""

from __future__ import annotations

import asyncio
import concurrent.futures
import time
from typing import Any

from .._core import Kind
from .._errors import CallingSelf, CallTimeout, ManagerNotRunning, _name
from .._mailbox import log_backlog
from ._owners import _OwnerWatch
from ._requests import _STOP, _allocate_lock, _get_ident, _Request
from ._server import _Server
from ._stop import drop_backlog


def _check_caller(srv: _Server, who: Any, what: str) -> None:
    """Raise :class:`CallingSelf` (about ``who``) on the manager's own thread, an inline
    caller's while it runs the manager, or one of its isolated handlers' threads."""
    ident = _get_ident()
    if ident in (srv.ident, srv.inline_ident) or (srv.lanes and srv.on_lane(ident)):
        raise CallingSelf(who, what)


def _request(
    srv: _Server,
    who: Any,
    proc: Any,
    args: tuple[Any, ...],
    what: Kind,
    timeout: float | None,
    watch: _OwnerWatch | None = None,
) -> Any:
    """Post a request and block until it is answered (or ``timeout``: 0 delivers it without
    waiting); return its answer or raise its error."""
    ident = _get_ident()
    if (
        ident == srv.ident  # noqa: PLR1714 - compared one by one: no tuple built
        or ident == srv.inline_ident
        or (srv.lanes and srv.on_lane(ident))
    ):
        raise CallingSelf(who, what)
    req = _Request(proc, args, what)
    if watch is not None:
        req.watch = watch
    lock = req.lock = _allocate_lock()
    lock.acquire()
    ahead = len(srv.mailbox)
    srv.post(req, who)
    if timeout is None:
        lock.acquire()
    elif not timeout or not lock.acquire(True, timeout):  # 0: delivered, not waited for
        raise _timeout_error(srv, what, timeout, ahead, args)
    error = req.error
    if error is not None:
        raise error
    return req.value


def _submit(
    srv: _Server, who: Any, proc: Any, args: tuple[Any, ...], what: Kind
) -> concurrent.futures.Future[Any]:
    """Post a request answered through the future returned."""
    _check_caller(srv, who, what)
    req = _Request(proc, args, what)
    fut = req.future = concurrent.futures.Future()
    try:
        srv.post(req, who)
    except ManagerNotRunning as exc:  # a future form answers through its future
        fut.set_exception(exc)
    return fut


async def _await(
    fut: concurrent.futures.Future[Any],
    srv: _Server,
    what: str,
    timeout: float | None,
    ahead: int,
    args: tuple[Any, ...] = (),
) -> Any:
    """Await a submitted request's future for at most ``timeout`` seconds (0: not at all; the
    request still runs, its answer is dropped)."""
    if timeout is not None and not timeout:
        raise _timeout_error(srv, what, timeout, ahead, args)
    wrapped = asyncio.wrap_future(fut)
    if timeout is None:
        return await wrapped
    try:
        return await asyncio.wait_for(wrapped, timeout)
    except TimeoutError:
        if fut.done() and not fut.cancelled():  # the answer itself was a timeout error
            raise
        raise _timeout_error(srv, what, timeout, ahead, args) from None


def _stop_dropping(srv: _Server, who: Any, timeout: float | None) -> None:
    """``stop(drain=False)`` up to the stop's answer."""
    fut = _submit(srv, who, _STOP, (), Kind.STOP)  # CallingSelf here; ManagerNotRunning in fut
    if not fut.done():  # posted: this stop closed the manager, and drops what is queued
        events, requests = drop_backlog(srv)
        log_backlog(who, events, requests, "at stop(drain=False)")
    try:
        fut.result(timeout)
    except concurrent.futures.TimeoutError:
        raise _timeout_error(srv, "stop", timeout or 0.0, 0) from None


def _wait_ended(srv: _Server, what: str, timeout: float | None) -> None:
    """Wait for the manager to have stopped and its thread to have ended."""
    if timeout is None:
        srv.stopped.wait()
        srv.thread.join()
        return
    deadline = time.monotonic() + timeout
    if srv.stopped.wait(max(timeout, 0.0)):
        srv.thread.join(max(0.0, deadline - time.monotonic()))
    if srv.thread.is_alive():
        raise _timeout_error(srv, what, timeout, None)


def _timeout_error(
    srv: _Server, what: str, timeout: float, ahead: int | None, args: tuple[Any, ...] = ()
) -> CallTimeout:
    """The :class:`CallTimeout` for a request that timed out now (a call to an isolated
    handler names it, and what it is running)."""
    label = f"call to {_name(args[0])}" if what == Kind.CALL and args else what
    running = None
    if what == Kind.CALL and args and srv.core.isolated:
        entry = srv.core.find(args[0])
        if entry is not None and entry.lane is not None:
            label = f"call to isolated handler {_name(args[0])}"
            running = entry.lane.running_callback()
    return CallTimeout(
        label, timeout, queued_ahead=ahead, running=running or srv.running_callback()
    )
