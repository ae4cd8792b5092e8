"""The host side of isolated handlers (see :mod:`genevent._lanes`) in the asyncio runtime:
what the lanes bring back goes to the manager's mailbox, in order; the manager's stop waits
for them. The face (:class:`genevent.aio.EventManager`) is each lane's host and passes its
methods, ``lane_outcome`` and the others, are the ``lane_*`` functions here."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from functools import partial
from typing import Any

from .._core import Entry, Kind, Raised, Returned
from .._errors import InvalidHandler, ManagerNotRunning
from .._lanes import (
    Lane,
    TaskLane,
    ThreadLane,
    applied,
    call_applied,
    check_isolation,
    drop_backlogs,
    reap,
    settling,
    still_busy,
    when_caught_up,
)
from ._common import _fail_threadsafe, _has_coroutines, _nothing, _Request, _resolve, _seal_lock
from ._server import _Face, _Server


def new_lane(
    srv: _Server,
    handler: Any,
    isolation: Any,
    maxsize: int | None,
    overflow: Any,
    stop_timeout: float,
) -> Lane | None:
    """The lane of a handler to be added with ``isolation=`` (checked), or None."""
    if isolation is None:
        check_isolation(maxsize, overflow, stop_timeout, False)
        return None
    check_isolation(maxsize, overflow, stop_timeout, True)
    if isolation == "task":
        return TaskLane(srv.face, handler, maxsize, overflow, stop_timeout, loop=srv.loop)
    if isolation == "thread":
        cls = handler if isinstance(handler, type) else handler[0]
        if _has_coroutines(cls):
            raise InvalidHandler(
                f"{cls.__qualname__} has coroutine methods: isolation='thread' runs plain "
                "methods in a thread of their own (use isolation='task' for coroutines)"
            )
        return ThreadLane(srv.face, handler, maxsize, overflow, stop_timeout)
    raise ValueError(f"isolation must be None, 'task' or 'thread', not {isolation!r}")


def lane_post(srv: _Server, req: _Request) -> None:
    """Post a lane's message to the mailbox (any thread); refused only once sealed."""
    with _seal_lock:
        if srv.sealed:
            _fail_threadsafe(srv.loop, req.fut, ManagerNotRunning(srv.face))
            return
        srv.mailbox.append(req)
    if srv.face._waiter is not None:
        if threading.get_ident() == srv.thread_id:
            srv.wake()
        else:
            with contextlib.suppress(ManagerNotRunning, RuntimeError):
                srv.wake_from_thread()


def lane_outcome(
    face: _Face,
    lane: Lane,
    entry: Entry,
    out: Raised | Returned,
    message: Any,
    callback: str,
    seq: float,
) -> None:
    """Host side of an isolated handler (see :mod:`genevent._lanes`)."""
    srv = face._srv
    req = _Request(applied, (srv.core, entry, out, message, callback), None, Kind.LANE)
    req.via = (lane, seq)
    lane_post(srv, req)


def lane_call_outcome(
    face: _Face,
    lane: Lane,
    req: Any,
    entry: Entry,
    out: Raised | Returned,
    request: Any,
    seq: float,
) -> None:
    """Host side of an isolated handler: a call's outcome that changes the table."""
    srv = face._srv
    then = _Request(call_applied, (srv.core, entry, out, request), req.fut, Kind.LANE_CALL)
    then.via = (lane, seq)
    lane_post(srv, then)


def lane_recheck(face: _Face) -> None:
    """Host side of an isolated handler: it passed a place an outcome waits for."""
    lane_post(face._srv, _Request(_nothing, (), None, Kind.LANE_ORDER))


def lane_reply(face: _Face, req: Any, value: Any) -> None:
    """Host side of an isolated handler: a plain reply, straight to the caller."""
    srv = face._srv
    if threading.get_ident() == srv.thread_id:
        _resolve(req.fut, value)
    else:
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits
            srv.loop.call_soon_threadsafe(_resolve, req.fut, value)


def lane_wake(face: _Face) -> None:
    """Host side of an isolated handler: it went idle (``stop`` may wait for that)."""
    srv = face._srv
    if srv.settling and face._waiter is not None:
        if threading.get_ident() == srv.thread_id:
            srv.wake()
        else:
            with contextlib.suppress(ManagerNotRunning, RuntimeError):
                srv.wake_from_thread()


def after(srv: _Server, lanes: list[Lane], then: _Request) -> None:
    """Post ``then`` to the mailbox once every lane in ``lanes`` caught up."""
    when_caught_up(lanes, lambda: lane_post(srv, then))


def reap_lanes(srv: _Server) -> None:
    fresh = srv.fresh
    if fresh or srv.core.lane_edits:
        srv.lane_dropped += reap(srv.core, srv.lanes, fresh or [])


def drop_lanes(srv: _Server) -> None:
    """A stop that drops the backlog: so do the isolated handlers' mailboxes."""
    drop_backlogs(srv.face, srv.lanes)


async def settle_lanes(srv: _Server) -> bool:
    """Stopping: wait until every isolated handler handled what it was given, each for at
    most its ``stop_timeout`` (then it is left behind). True if the mailbox got messages
    meanwhile (their outcomes): the caller drains it and comes back (see
    :func:`genevent._lanes.settling`, which decides; this parks)."""
    face = srv.face
    steps = settling(srv, srv.loop.time, partial(_recheck, srv))
    try:
        busy, timeout = next(steps)
        while True:
            waiter = face._waiter = srv.loop.create_future()
            srv.settling = True
            try:
                if still_busy(srv, busy):
                    await asyncio.wait((waiter,), timeout=timeout)
            finally:
                srv.settling = False
                face._waiter = None
            busy, timeout = next(steps)
    except StopIteration as done:
        return bool(done.value)


def _recheck(srv: _Server) -> None:
    if srv.order:  # outcomes waiting for a lane left behind wait no more
        lane_recheck(srv.face)


def lane_fail(face: _Face, req: Any, exc: BaseException) -> None:
    """Host side of an isolated handler: the call could not be answered."""
    _fail_threadsafe(face._srv.loop, req.fut, exc)
