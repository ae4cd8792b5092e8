"""The thread runtime's hosting of isolated handlers (see :mod:`genevent._lanes`): the
manager's side of their lanes, as functions of the manager's server (``_server._Server``,
which calls them; it is the lanes' :class:`~genevent._lanes.Host`)."""

from __future__ import annotations

import concurrent.futures
import threading
from contextlib import closing
from functools import partial
from typing import Any, Protocol

from .._core import Invoke, Kind, Raised, Returned
from .._lanes import (
    Hosting,
    Lane,
    Order,
    ThreadLane,
    abandon,
    holding,
    in_order,
    pass_call,
    settling,
    still_busy,
    takes_turn,
    when_caught_up,
)
from ._requests import (
    _CALL,
    _STOP,
    _monotonic,
    _nothing,
    _Request,
    _swap_proc,
)


class _Host(Hosting, Protocol):
    """What these functions need of the manager's server, besides what the shared hosting
    does (defined here: the server's module sits above this one, which it imports)."""

    closed: bool
    sleeping: bool
    settling: bool
    run_lock: threading.Lock
    wakeup: threading.Lock
    fresh: list[Lane]
    exit_until: float | None
    exit_drain_until: float | None
    deferred: list[tuple[Lane, concurrent.futures.Future[Raised | Returned]]]
    _lane_order: Order

    def handle(self, req: _Request) -> None: ...
    def run_request(self, req: _Request) -> None: ...
    def dispatch(self, event: Any) -> None: ...
    def reap(self) -> None: ...
    def lane_post(self, req: _Request) -> None: ...
    def lane_recheck(self) -> None: ...


def lane_job(srv: _Host, eff: Invoke) -> Raised | Returned:
    """Run the core's invocation in the isolated handler's thread and wait for it; while
    stopping, for at most the rest of its ``stop_timeout`` (then it is left behind)."""
    lane: ThreadLane = eff.via
    if not lane.started:
        srv.lanes[lane] = None
        srv.fresh.append(lane)
    idle = lane.idle()
    fut = lane.job(eff)
    if srv.stop_started is None:
        return fut.result()
    if srv.exit_until is not None and not idle:
        # interpreter exit: a handler inside a callback is not waited for now, so that
        # the others are terminated first; its terminate runs when the callback returns,
        # and is waited for (up to the exit hook's deadline) once the others are done
        srv.deferred.append((lane, fut))
        return Returned(None)
    now = _monotonic()
    by = lane.stop_by(now, afresh=idle)  # its stop timeout counts from when it is told
    try:
        return fut.result(max(by - now, 0.0))
    except concurrent.futures.TimeoutError:
        abandon(srv, lane)
        return lane.left_behind_outcome(eff)


def isolated(srv: _Host, req: _Request) -> bool:
    """Requests that isolated handlers concern: a call to one is passed on to it; a
    ``sync_notify`` is answered once they handled its event too; a request that must see
    the table gen_event would show (``takes_its_place``) waits until they are past what
    was queued before it, the manager holding the messages behind it meanwhile (see
    :func:`hold_until`). True when ``req`` was taken care of (False: run it now)."""
    what = req.what
    core = srv.core
    if what is Kind.CALL and pass_call(core, req.args[0], req.args[1], req):
        return True
    if what is Kind.SYNC_NOTIFY:
        core.count_request()  # its event is counted by dispatch
        req.proc, event, req.args = _nothing, req.args[0], ()
        req.caught_up = True
        try:
            srv.dispatch(event)
        finally:  # answered once every isolated handler handled it too
            srv.reap()
            after(srv, [e.lane for e in core.entries if e.lane is not None], req)
        return True
    args = req.args[1:] if req.proc is _swap_proc else req.args
    if not takes_turn(core, srv._lane_order, srv.lanes, req, args):
        return False  # it runs now
    if req.proc is _CALL:  # by then the handler it names may be isolated: the core's way
        req.proc = core.call
    if not srv.closed:  # stopping: it runs in its turn, the stop handles the rest
        hold_until(srv, req)
    return True


def hold_until(srv: _Host, req: _Request) -> None:
    """``req`` waits for its turn among what the isolated handlers bring back: meanwhile
    the manager applies those (the messages that do not wait), and holds every other
    message, in order, until ``req`` ran; then they are back at the front of the mailbox.
    A stop ends the hold (the request then runs in its turn while the manager stops)."""
    mailbox = srv.mailbox
    with closing(holding(srv, srv._lane_order, req, _Request, _STOP)) as steps:
        for msg in steps:
            if msg is not None:
                srv.handle(msg)
                continue
            srv.sleeping = True
            if mailbox:  # re-check: a poster may have appended before seeing the flag
                srv.sleeping = False
                continue
            srv.run_lock.release()
            srv.wakeup.acquire()
            srv.run_lock.acquire()
            srv.sleeping = False


def after(srv: _Host, lanes: list[Lane], req: _Request) -> None:
    """Post ``req`` back to the mailbox once every lane in ``lanes`` caught up."""
    when_caught_up(lanes, lambda: srv.lane_post(req))


def settle(srv: _Host) -> None:
    """The core's :class:`Settle`: the isolated handlers get past what was queued before
    the message being handled (what they bring back is applied meanwhile, in order); the
    manager holds its other messages until then. Not while stopping."""
    marker = _Request(_nothing, (), Kind.SETTLE)
    if not srv._lane_order.take_place(srv.lanes, marker) and not srv.closed:
        hold_until(srv, marker)


def lane_results(srv: _Host, req: _Request) -> None:
    """An isolated handler's outcome (or a lane passed a place an outcome waits for):
    apply what may be applied now, in mailbox order (see genevent._lanes.Order). A
    KeyboardInterrupt or SystemExit goes on once each ready outcome is applied."""
    fatal: BaseException | None = None
    try:
        for ready in in_order(srv._lane_order, srv.lanes, req):
            try:
                srv.run_request(ready)
            except BaseException as exc:
                fatal = fatal or exc
            srv.reap()
    finally:
        if srv.lanes:
            srv.reap()
    if fatal is not None:
        raise fatal


def flush_lane_results(srv: _Host) -> BaseException | None:
    """Stopping, once no lane will move any more: apply every outcome still waiting, in
    order. Returns the first KeyboardInterrupt/SystemExit met."""
    fatal: BaseException | None = None
    for req in srv._lane_order.take_all():
        try:
            srv.run_request(req)
        except BaseException as exc:
            fatal = fatal or exc
        if srv.lanes:
            srv.reap()
    return fatal


def settle_lanes(srv: _Host) -> bool:
    """Stopping: wait until every isolated handler handled what it was given, each for at
    most its ``stop_timeout`` from when it is told to stop (then it is left behind). True
    if the mailbox got messages meanwhile (their outcomes): the caller drains it and comes
    back."""
    steps = settling(srv, _monotonic, partial(_recheck, srv), partial(_exit_by, srv))
    try:
        busy, timeout = next(steps)
        while True:
            srv.settling = srv.sleeping = True
            try:
                if still_busy(srv, busy):
                    srv.wakeup.acquire(True, timeout)
            finally:
                srv.settling = srv.sleeping = False
            busy, timeout = next(steps)
    except StopIteration as done:
        return bool(done.value)


def _recheck(srv: _Host) -> None:
    if srv._lane_order:  # outcomes waiting for a lane left behind wait no more
        srv.lane_recheck()


def _exit_by(srv: _Host) -> float | None:
    """Interpreter exit: when to stop waiting and terminate what can be (see lane_job)."""
    return srv.exit_drain_until


def await_deferred(srv: _Host) -> None:
    """Interpreter exit: wait, up to the exit hook's deadline, for the terminates of the
    handlers that were inside a callback; those still running then are left behind."""
    deferred, srv.deferred = srv.deferred, []
    for lane, fut in deferred:
        remaining = (srv.exit_until or 0.0) - _monotonic()
        try:
            fut.result(max(remaining, 0.0))
        except concurrent.futures.TimeoutError:
            abandon(srv, lane)
