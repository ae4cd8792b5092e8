"""How the asyncio runtime's manager handles a message: it runs the core's procedures
(:func:`drive`, awaiting coroutine callbacks), answers requests, applies what isolated
handlers bring back in mailbox order, and holds its other messages while a request waits
for the isolated handlers to catch up."""

from __future__ import annotations

import asyncio
from contextlib import closing
from functools import partial
from typing import Any, NoReturn

from .._core import (
    CONCERNED,
    COUNTED,
    LANE_RESULTS,
    Entry,
    Invoke,
    Kind,
    Outcome,
    Procedure,
    Raised,
    Report,
    Returned,
    Settle,
    TellOwner,
)
from .._driver import CRASHES, FATAL, log, report, tell_owner
from .._errors import GenEventError, ManagerNotRunning
from .._lanes import Lane, abandon, holding, in_order, pass_call, takes_turn
from ._common import (
    _CALL,
    _CALL_OUTCOME,
    _STOP,
    _SYNC,
    _SYNC_REST,
    _WHICH,
    _fail,
    _nothing,
    _Request,
    _resolve,
)
from ._lanes_host import after, reap_lanes
from ._server import _Server


async def drive(srv: _Server, proc: Procedure) -> Any:
    """Run a core procedure, awaiting coroutine callbacks. Anything a callback raises is its
    crash; a KeyboardInterrupt or SystemExit is re-raised once the procedure finished."""
    send: Any = None
    interrupted: BaseException | None = None
    while True:
        try:
            eff = proc.send(send)
        except StopIteration as stop:
            if interrupted is not None:
                raise interrupted from None
            return stop.value
        except GenEventError:
            if interrupted is not None:
                raise interrupted from None
            raise
        send = None
        if type(eff) is Invoke:
            if eff.via is not None:
                send = await lane_job(srv, eff)
                if send.__class__ is Raised and isinstance(send.exception, FATAL):
                    interrupted = interrupted or send.exception
                continue
            try:
                value = eff.fn(*eff.args, **eff.kwargs) if eff.kwargs else eff.fn(*eff.args)
                if eff.is_async:
                    srv.suspend()
                    try:
                        value = await value
                    finally:
                        srv.suspended -= 1
            except asyncio.CancelledError as exc:
                if not srv.finishing:
                    running = asyncio.current_task()
                    if running is not None and running.cancelling():
                        raise  # the task running this procedure is being cancelled
                send = Raised(exc)
            except CRASHES as exc:
                if isinstance(exc, FATAL) and interrupted is None:
                    interrupted = exc
                send = Raised(exc)
            else:
                send = Returned(value)
        elif type(eff) is TellOwner or type(eff) is Report:
            try:
                if type(eff) is Report:
                    report(srv.face, eff)
                else:
                    tell_owner(eff, partial(spawn, srv))  # type: ignore[arg-type]
            except FATAL as exc:
                if interrupted is None:
                    interrupted = exc
        elif type(eff) is Settle:
            try:
                await settle(srv)
            except FATAL as exc:  # from what it applied meanwhile: finish the procedure
                if interrupted is None:
                    interrupted = exc
        else:
            srv.watch(eff)


def spawn(srv: _Server, awaitable: Any) -> None:
    task = asyncio.ensure_future(awaitable)
    if srv.spawned is None:
        srv.spawned = set()
    srv.spawned.add(task)
    task.add_done_callback(srv.spawned.discard)


async def handle(srv: _Server, req: _Request) -> None:
    if req.what in LANE_RESULTS:
        await lane_results(srv, req)
        return
    if (
        srv.core.isolated
        and req.what in CONCERNED
        and not req.caught_up
        and await isolated(srv, req)
    ):
        return
    try:
        await handle_request(srv, req)
    finally:
        reap_lanes(srv)


async def lane_results(srv: _Server, req: _Request) -> None:
    """An isolated handler's outcome (or a lane passed a place an outcome waits for):
    apply what may be applied now, in mailbox order (see genevent._lanes.in_order). A
    KeyboardInterrupt or SystemExit goes on once each ready outcome is applied."""
    fatal: BaseException | None = None
    for ready in in_order(srv.lane_order, srv.lanes, req):
        fatal = await apply_lane_result(srv, ready) or fatal
    if fatal is not None:
        raise fatal


async def apply_lane_result(srv: _Server, req: _Request) -> BaseException | None:
    try:
        await handle_request(srv, req)
    except BaseException as exc:  # finished: it goes on once the others are applied
        return exc
    finally:
        reap_lanes(srv)
    return None


async def handle_request(srv: _Server, req: _Request) -> None:
    fut = req.fut
    core = srv.core
    if req.what in COUNTED and not req.caught_up:
        core.count_request(events=req.what is Kind.SYNC_NOTIFY)
    try:
        proc = req.proc
        if proc is _CALL:
            result = await drive(srv, core.call(*req.args))
        elif proc is _SYNC:
            await drive(srv, core.notify(req.args[0]))
            result = None
        elif proc is _CALL_OUTCOME:
            result = await drive(srv, call_outcome(srv, *req.args))
        elif proc is _SYNC_REST:
            fatal = await finish_dispatch(srv, *req.args)
            if fatal is not None:
                raise fatal
            result = None
        elif proc is _WHICH:
            result = core.which_handlers()
        else:
            result = await drive(srv, proc(*req.args))  # type: ignore[operator]
    except GenEventError as exc:
        _fail(fut, exc)
    except asyncio.CancelledError:
        _fail(fut, ManagerNotRunning(srv.face, f" (it was cancelled handling {req.what})"))
        raise
    except FATAL:  # the request was finished, but its answer is lost with it
        _fail(fut, ManagerNotRunning(srv.face, f" (it was interrupted handling {req.what})"))
        raise
    except Exception as exc:  # a bug in genevent: answer, log, carry on
        log.exception("genevent: internal error handling %s", req.what)
        _fail(fut, exc)
    else:
        _resolve(fut, result)
    finally:
        if srv.pending:
            srv.pending.answered()


def call_outcome(srv: _Server, entry: Entry, out: Raised | Returned, request: Any) -> Procedure:
    """The core's part of a queued call whose ``handle_call`` already ran. A
    KeyboardInterrupt or SystemExit goes on once the request is finished, and a
    CancelledError while the manager task is being cancelled is that cancellation (both as
    when the core's ``call`` runs the callback)."""
    if type(out) is Raised and isinstance(out.exception, asyncio.CancelledError):
        running = asyncio.current_task()
        if not srv.finishing and running is not None and running.cancelling():
            raise out.exception
    try:
        return (yield from srv.core.call_result(entry, out, request))
    finally:
        if type(out) is Raised and isinstance(out.exception, FATAL):
            raise out.exception


async def finish_dispatch(
    srv: _Server,
    entry: Entry,
    outcome: Raised | Returned,
    event: Any,
    rest: Any,
) -> BaseException | None:
    """The rest of a plain event's dispatch, from the first handler that did more than
    return None (``rest``: the ``(entry, handle_event)`` pairs after it). Returns the first
    KeyboardInterrupt or SystemExit met (the dispatch is finished all the same)."""
    core = srv.core
    fatal: BaseException | None = None
    if type(outcome) is Raised and isinstance(outcome.exception, FATAL):
        fatal = outcome.exception
    try:
        await drive(srv, core.event_result(entry, outcome, event))
    except FATAL as exc:
        fatal = fatal or exc
    for later, fn in rest:
        if not later.alive:
            continue
        try:
            result = fn(event)
        except CRASHES as exc:
            if isinstance(exc, FATAL):
                fatal = fatal or exc
            outcome = Raised(exc)
        else:
            if result is None:
                continue
            outcome = Returned(result)
        try:
            await drive(srv, core.event_result(later, outcome, event))
        except FATAL as exc:
            fatal = fatal or exc
    return fatal


async def event_outcome(srv: _Server, entry: Entry, out: Outcome, event: Any) -> None:
    """``entry``'s plain handle_event, run by the drain loop, raised or returned something
    (``out``): the core acts on it (a KeyboardInterrupt or SystemExit first lets the handlers
    after it see ``event``, then goes on)."""
    if isinstance(out, Raised) and isinstance(out.exception, FATAL):
        await interrupted(srv, entry, out.exception, event)
    await drive(srv, srv.core.event_result(entry, out, event))


async def interrupted(srv: _Server, entry: Entry, exc: BaseException, event: Any) -> NoReturn:
    """``entry``'s plain handle_event raised KeyboardInterrupt or SystemExit on ``event``:
    it is removed as crashed, the handlers after it still get ``event``, then ``exc`` goes
    on."""
    entries = srv.core.entries
    rest = [(e, e.event_fn) for e in entries[entries.index(entry) + 1 :]]
    await finish_dispatch(srv, entry, Raised(exc), event, rest)
    raise exc


async def isolated(srv: _Server, req: _Request) -> bool:
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
        core.count_request(events=1)
        try:
            await drive(srv, core.notify(*req.args))
        except GenEventError as exc:  # pragma: no cover - notify raises nothing typed
            _fail(req.fut, exc)
            return True
        reap_lanes(srv)
        lanes = [e.lane for e in core.entries if e.lane is not None]
        after(srv, lanes, _Request(_nothing, (), req.fut, what, caught_up=True))
        return True
    if not takes_turn(core, srv.lane_order, srv.lanes, req, req.args):
        return False  # it runs now
    if not srv.face._closed:  # stopping: it runs in its turn, the stop handles the rest
        await hold_until(srv, req)
    return True


async def settle(srv: _Server) -> None:
    """The core's ``Settle``: the isolated handlers get past what was queued before the
    message being handled (what they bring back is applied meanwhile, in order); the
    manager holds its other messages until then. Not while stopping."""
    marker = _Request(_nothing, (), None, Kind.SETTLE)
    if not srv.lane_order.take_place(srv.lanes, marker) and not srv.face._closed:
        await hold_until(srv, marker)


async def hold_until(srv: _Server, req: _Request) -> None:
    """``req`` waits for its turn among what the isolated handlers bring back: meanwhile
    the manager applies those (the messages that do not wait), and holds every other
    message, in order, until ``req`` ran; then they are back at the front of the mailbox.
    A stop ends the hold (the request then runs in its turn while the manager stops)."""
    mailbox = srv.mailbox
    face = srv.face
    with closing(holding(srv, srv.lane_order, req, _Request, _STOP)) as steps:
        for msg in steps:
            if msg is not None:
                await handle(srv, msg)
                continue
            waiter = face._waiter = srv.loop.create_future()
            if mailbox:  # re-check: a thread may have posted before seeing the waiter
                face._waiter = None
                continue
            srv.suspend()
            try:
                await waiter
            finally:
                srv.suspended -= 1
                if face._waiter is waiter:
                    face._waiter = None


async def lane_job(srv: _Server, eff: Invoke) -> Raised | Returned:
    lane: Lane = eff.via
    if not lane.started:
        srv.lanes[lane] = None
        if srv.fresh is None:
            srv.fresh = []
        srv.fresh.append(lane)
    idle = lane.idle()
    fut = lane.job(eff)  # type: ignore[attr-defined]
    waiting: Any = fut if lane.kind == "task" else asyncio.wrap_future(fut)
    if srv.stop_started is None:
        return await waiting  # type: ignore[no-any-return]
    now = srv.loop.time()
    by = lane.stop_by(now, afresh=idle)  # its stop timeout counts from when it is told
    try:
        return await asyncio.wait_for(waiting, max(by - now, 0.0))
    except TimeoutError:
        abandon(srv, lane)
        return lane.left_behind_outcome(eff)
