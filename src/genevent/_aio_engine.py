"""The asyncio runtime's manager, its upper half: the drain loop (``_run``: tuned, per event),
running the core's procedures (``_drive``), inline work, and stopping."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from itertools import repeat
from operator import length_hint as _left
from typing import Any, NoReturn

from . import _registry
from ._aio_base import (
    _BUDGET,
    _CALL,
    _CALL_OUTCOME,
    _CAUGHT_UP,
    _CONCERNED,
    _INTERNAL,
    _LANE_RESULTS,
    _LIVE,
    _SLICE,
    _STOP,
    _SYNC,
    _SYNC_REST,
    _WHICH,
    E,
    _clock,
    _fail,
    _Fatal,
    _ManagerBase,
    _Request,
    _resolve,
    _seal_lock,
    _yield,
)
from ._core import (
    MAYBE_INSTRUCTION,
    Entry,
    Invoke,
    Procedure,
    Raised,
    Report,
    Returned,
    Settle,
    TellOwner,
)
from ._driver import CRASHES, FATAL, log, report, tell_owner
from ._errors import (
    GenEventError,
    ManagerNotRunning,
)
from ._lanes import stopped_before
from ._mailbox import log_backlog


async def _guarded(work: Coroutine[Any, Any, Any]) -> Any:
    """Inline work, run in a task of its own: a KeyboardInterrupt or SystemExit comes back as
    a value, so that it goes on from the caller's task once the request is finished."""
    try:
        return await work
    except FATAL as exc:
        return _Fatal(exc)


class _ManagerEngine(_ManagerBase[E]):
    """The drain loop of :class:`genevent.aio.EventManager` (see there)."""

    async def _finish_inline(
        self,
        work: Coroutine[Any, Any, Any],
        what: str,
        timeout: float | None,
        args: tuple[Any, ...] = (),
    ) -> Any:
        """Finish an inline request whose handler did more than return (it raised, or asked
        to be removed or swapped): that work may await (a swap to a coroutine handler), so it
        runs in a task of its own, which becomes the dispatching task (the manager task waits
        for it, and a handler calling back into the manager still gets CallingSelf). The
        caller waits for it as for a queued request: its cancellation or timeout does not
        interrupt the work, whose result is then dropped."""
        task = asyncio.Task(_guarded(work), loop=self._loop)  # never started eagerly: see __init__
        self._dispatch_task = task
        task.add_done_callback(self._inline_finished)
        try:
            if timeout is None:
                result = await asyncio.shield(task)
            else:
                result = await asyncio.wait_for(asyncio.shield(task), timeout)
            if result.__class__ is _Fatal:
                self._inline_fatal(result.exc)
            return result
        except TimeoutError:
            assert timeout is not None
            raise self._timeout_error(what, timeout, 0, args) from None
        except asyncio.CancelledError:
            if task.cancelled():  # the manager was cancelled under it, not the caller
                caller = asyncio.current_task()
                if caller is None or not caller.cancelling():
                    raise ManagerNotRunning(self, f" (it stopped while answering {what})") from None
            raise

    def _inline_fatal(self, exc: BaseException) -> NoReturn:
        """A KeyboardInterrupt or SystemExit ran through an inline request, which is finished:
        the manager stops as by stop (at its next turn), and ``exc`` goes on in the caller."""
        if not self._closed:
            self._closed = True
            self._post(_Request(_STOP, (), None, "stop"))
        raise exc

    async def _cancel_inline(self) -> None:
        work = self._dispatch_task
        if isinstance(work, asyncio.Task) and work is not self._task and not work.done():
            work.cancel()
            self._suspend()
            try:
                await asyncio.wait((work,))
            finally:
                self._suspended -= 1

    def _inline_finished(self, task: asyncio.Task[Any] | None) -> None:
        self._dispatch_task = None
        done = self._inline_done
        if done is not None:
            self._inline_done = None
            if not done.done():
                done.set_result(None)

    async def _finish_dispatch(
        self,
        entry: Entry,
        outcome: Raised | Returned,
        event: Any,
        rest: Any,
    ) -> BaseException | None:
        """The rest of a plain event's dispatch, from the first handler that did more than
        return None (``rest``: the ``(entry, handle_event)`` pairs after it). Returns the first
        KeyboardInterrupt or SystemExit met (the dispatch is finished all the same)."""
        core = self._core
        fatal: BaseException | None = None
        if type(outcome) is Raised and isinstance(outcome.exception, FATAL):
            fatal = outcome.exception
        try:
            await self._drive(core.event_result(entry, outcome, event))
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
                await self._drive(core.event_result(later, outcome, event))
            except FATAL as exc:
                fatal = fatal or exc
        return fatal

    def _spawn(self, awaitable: Any) -> None:
        task = asyncio.ensure_future(awaitable)
        if self._spawned is None:
            self._spawned = set()
        self._spawned.add(task)
        task.add_done_callback(self._spawned.discard)

    async def _drive(self, proc: Procedure) -> Any:
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
                    send = await self._lane_job(eff)
                    if send.__class__ is Raised and isinstance(send.exception, FATAL):
                        interrupted = interrupted or send.exception
                    continue
                try:
                    value = eff.fn(*eff.args, **eff.kwargs) if eff.kwargs else eff.fn(*eff.args)
                    if eff.is_async:
                        self._suspend()
                        try:
                            value = await value
                        finally:
                            self._suspended -= 1
                except asyncio.CancelledError as exc:
                    if not self._finishing:
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
                        report(self, eff)
                    else:
                        tell_owner(eff, self._spawn)  # type: ignore[arg-type]
                except FATAL as exc:
                    if interrupted is None:
                        interrupted = exc
            elif type(eff) is Settle:
                try:
                    await self._settle()
                except FATAL as exc:  # from what it applied meanwhile: finish the procedure
                    if interrupted is None:
                        interrupted = exc
            else:
                self._watch(eff)

    async def _run(self) -> None:
        mailbox = self._mailbox
        popleft = mailbox.popleft
        core = self._core
        task = asyncio.current_task()
        budget = _BUDGET
        create_future = self._loop.create_future
        quick = self._quick
        try:
            while True:
                if not mailbox:
                    waiter = self._waiter = create_future()
                    if mailbox:  # re-check: a thread may have posted before seeing the waiter
                        self._waiter = None
                    else:
                        if self._pending:  # calls passed on to isolated handlers: watched
                            self._watch_pending()
                        await waiter
                    continue
                if self._dispatch_task is not None:
                    # an inline request is awaiting a coroutine (rare): let it finish first
                    done = self._inline_done = self._loop.create_future()
                    self._suspend()
                    try:
                        await done
                    finally:
                        self._suspended -= 1
                    continue
                self._dispatch_task = task
                try:
                    # the dispatch tuple is read once per batch and again after anything that
                    # may change the table (a control request, a non-None outcome)
                    targets = None
                    spent = 0
                    deadline = 0.0  # read from the clock once the first budget is spent
                    while mailbox:
                        # the budget is counted per batch of messages known to be there, not
                        # per message: the loop below is a C iterator, as cheap as the plain
                        # ``while mailbox`` drain it replaces; the clock is read per budget
                        # (not per wake-up: a request's round trip is one wake-up)
                        if spent >= budget:
                            if not deadline:
                                deadline = _clock() + _SLICE
                            elif _clock() >= deadline:
                                break
                            spent = 0
                        batch = len(mailbox)
                        # comparisons, not max()/min(): a builtin call each costs per wake-up
                        if batch > self._high_water:  # noqa: PLR1730
                            self._high_water = batch
                        if batch > budget - spent:  # noqa: PLR1730
                            batch = budget - spent
                        spent += batch
                        # the event count (metrics) is brought up to date on the slow paths
                        # (a request, a callback that raised or returned something) and once
                        # per batch, never per event
                        base = core.events
                        requests = 0
                        it = repeat(None, batch)  # a C iterator: no int per message
                        for _ in it:
                            try:
                                msg = popleft()
                            except IndexError:  # taken by stop(drain=False) or drop_oldest
                                i = batch - _left(it) - 1
                                batch = i
                                break
                            if msg.__class__ is _Request:
                                i = batch - _left(it) - 1
                                core.events = base + i - requests
                                requests += 1
                                if msg.proc is _STOP:
                                    fatal = await self._finish([msg])
                                    if fatal is not None:
                                        raise fatal
                                    return
                                if quick(msg):  # answered; a plain reply changes no table
                                    base = core.events - i - 1 + requests
                                    continue
                                await self._handle(msg)
                                base = core.events - i - 1 + requests  # _handle may count one
                                targets = None
                                continue
                            if targets is None:
                                if core.async_count:
                                    i = batch - _left(it) - 1
                                    core.events = base + i + 1 - requests
                                    await self._drive(core.notify(msg))
                                    continue
                                targets = core.cached_targets or core.event_targets
                            for entry, fn in targets:
                                try:
                                    result = fn(msg)
                                except CRASHES as exc:
                                    i = batch - _left(it) - 1
                                    core.events = base + i + 1 - requests
                                    if isinstance(exc, FATAL):
                                        await self._interrupted(entry, exc, msg)
                                    await self._drive(core.event_result(entry, Raised(exc), msg))
                                    targets = None
                                else:
                                    if result is not None:
                                        i = batch - _left(it) - 1
                                        core.events = base + i + 1 - requests
                                        await self._drive(
                                            core.event_result(entry, Returned(result), msg)
                                        )
                                        targets = None
                        core.events = base + batch - requests
                        if self._room is not None:  # producers wait for room (notify_wait)
                            self._wake_room()
                finally:
                    self._dispatch_task = None
                if mailbox:  # the slice is spent: the loop's other tasks and timers go first
                    self._suspend()
                    try:
                        await _yield(0)
                    finally:
                        self._suspended -= 1
        except GeneratorExit:  # its loop was closed under it and the coroutine closed
            raise
        except asyncio.CancelledError:
            # the loop is shutting down or the task was cancelled: like a parent's exit in OTP,
            # every handler is terminated before the manager goes, as by stop(drain=False)
            # (after an inline request's pending work, if any, is cancelled too): what is
            # queued is dropped (counted), since a callback stuck in an await would stall a
            # drain for ever
            self._closed = True
            self._drop_backlog()
            self._streams_stopping()
            for lane in list(self._lanes):  # a callback stuck in an await gets it too
                task = getattr(lane, "task", None)
                if task is not None and not task.done() and lane.busy:
                    task.cancel()
            await self._cancel_inline()
            fatal = await self._finish([])
            if fatal is not None:
                raise fatal from None
            raise
        except BaseException as exc:
            # a KeyboardInterrupt or SystemExit (its request finished), or a bug: stop as by
            # stop, then let it go on out of the event loop
            if not isinstance(exc, FATAL):
                log.exception("genevent manager %r failed; terminating its handlers", self)
            await self._finish([])
            raise
        finally:
            self._shutdown()

    async def _interrupted(self, entry: Entry, exc: BaseException, event: Any) -> NoReturn:
        """``entry``'s plain handle_event raised KeyboardInterrupt or SystemExit on ``event``:
        it is removed as crashed, the handlers after it still get ``event``, then ``exc`` goes
        on."""
        entries = self._core.entries
        rest = [(e, e.event_fn) for e in entries[entries.index(entry) + 1 :]]
        await self._finish_dispatch(entry, Raised(exc), event, rest)
        raise exc

    async def _handle(self, req: _Request) -> None:
        if req.what in _LANE_RESULTS:
            await self._lane_results(req)
            return
        if self._core.isolated and req.what in _CONCERNED and await self._isolated(req):
            return
        try:
            await self._handle_request(req)
        finally:
            self._reap()

    async def _lane_results(self, req: _Request) -> None:
        """An isolated handler's outcome (or a lane passed a place an outcome waits for):
        apply what may be applied now, in mailbox order (see genevent._lanes.Order). A
        KeyboardInterrupt or SystemExit goes on once each ready outcome is applied."""
        fatal: BaseException | None = None
        order = self._lane_order
        if req.what != "lane order":
            lane, seq = req.via
            if order.admit(self._lanes, seq, lane, req):
                fatal = await self._apply_lane_result(req)
        while order:
            ready = order.ready(self._lanes)
            if not ready:
                break
            for later in ready:
                fatal = await self._apply_lane_result(later) or fatal
        if fatal is not None:
            raise fatal

    async def _apply_lane_result(self, req: _Request) -> BaseException | None:
        try:
            await self._handle_request(req)
        except BaseException as exc:  # finished: it goes on once the others are applied
            return exc
        finally:
            self._reap()
        return None

    async def _handle_request(self, req: _Request) -> None:
        fut = req.fut
        core = self._core
        if req.what not in _INTERNAL and not req.what.endswith(_CAUGHT_UP):
            core.requests += 1
            if req.what == "sync_notify":
                core.events += 1
        try:
            proc = req.proc
            if proc is _CALL:
                result = await self._drive(core.call(*req.args))
            elif proc is _SYNC:
                await self._drive(core.notify(req.args[0]))
                result = None
            elif proc is _CALL_OUTCOME:
                result = await self._drive(self._call_outcome(*req.args))
            elif proc is _SYNC_REST:
                fatal = await self._finish_dispatch(*req.args)
                if fatal is not None:
                    raise fatal
                result = None
            elif proc is _WHICH:
                result = core.which_handlers()
            else:
                result = await self._drive(proc(*req.args))  # type: ignore[operator]
        except GenEventError as exc:
            _fail(fut, exc)
        except asyncio.CancelledError:
            _fail(fut, ManagerNotRunning(self, f" (it was cancelled handling {req.what})"))
            raise
        except FATAL:  # the request was finished, but its answer is lost with it
            _fail(fut, ManagerNotRunning(self, f" (it was interrupted handling {req.what})"))
            raise
        except Exception as exc:  # a bug in genevent: answer, log, carry on
            log.exception("genevent: internal error handling %s", req.what)
            _fail(fut, exc)
        else:
            _resolve(fut, result)
        finally:
            if self._pending:
                self._answered()

    def _quick(self, req: _Request) -> bool:
        """Answer a queued ``call``, ``sync_notify`` or ``which_handlers`` without the core's
        generators when the handlers do nothing more than reply (or return None); True if
        answered. Otherwise the request is left for :meth:`_handle`, turned into what remains
        to do once a callback ran (its outcome goes to the core, as on the hot path)."""
        proc = req.proc
        core = self._core
        if core.isolated:  # requests may concern isolated handlers: see _handle
            return False
        if proc is _CALL:
            handler, request = req.args
            entry = core.by_ref.get(handler)  # hashable: the caller checked the reference
            if entry is None or not entry.info.plain_call:
                return False  # the core raises the typed error, or awaits the coroutine
            try:
                result = entry.instance.handle_call(request)
            except CRASHES as exc:
                req.proc, req.args = _CALL_OUTCOME, (entry, Raised(exc), request)
                return False
            if result.__class__ in MAYBE_INSTRUCTION:  # the core tells them apart
                req.proc, req.args = _CALL_OUTCOME, (entry, Returned(result), request)
                return False
        elif proc is _SYNC:
            if core.async_count:
                return False
            event = req.args[0]
            targets = core.cached_targets or core.event_targets
            for entry, fn in targets:
                try:
                    value = fn(event)
                except CRASHES as exc:
                    outcome: Raised | Returned = Raised(exc)
                else:
                    if value is None:
                        continue
                    outcome = Returned(value)
                rest = targets[targets.index((entry, fn)) + 1 :]
                req.proc, req.args = _SYNC_REST, (entry, outcome, event, rest)
                return False
            core.events += 1
            result = None
        elif proc is _WHICH:
            result = core.which_handlers()
        else:
            return False
        core.requests += 1
        # cheaper than asking done() first: it is done only if it timed out or its caller
        # was cancelled
        try:  # noqa: SIM105
            req.fut.set_result(result)  # type: ignore[union-attr]
        except asyncio.InvalidStateError:
            pass
        if self._pending:
            self._answered()
        return True

    def _call_outcome(self, entry: Entry, out: Raised | Returned, request: Any) -> Procedure:
        """The core's part of a queued call whose ``handle_call`` already ran. A
        KeyboardInterrupt or SystemExit goes on once the request is finished, and a
        CancelledError while the manager task is being cancelled is that cancellation (both as
        when the core's ``call`` runs the callback)."""
        if type(out) is Raised and isinstance(out.exception, asyncio.CancelledError):
            running = asyncio.current_task()
            if not self._finishing and running is not None and running.cancelling():
                raise out.exception
        try:
            return (yield from self._core.call_result(entry, out, request))
        finally:
            if type(out) is Raised and isinstance(out.exception, FATAL):
                raise out.exception

    async def _finish(self, stops: list[_Request]) -> BaseException | None:
        """Stop: refuse new messages, handle every event and info accepted before (a notify
        that races this is either handled here or refused), terminate every handler, free the
        name and answer ``stops``. Returns the first KeyboardInterrupt/SystemExit met."""
        self._closed = True
        self._finishing = True
        fatal: BaseException | None = None
        mailbox = self._mailbox
        core = self._core
        core.begin_stop(self._dropping)  # see there: which restarts still happen
        self._streams_stopping()
        self._cancel_retries()
        dropping = self._dropping
        while True:
            while mailbox:
                msg = mailbox.popleft()
                try:
                    if dropping and (msg.__class__ is not _Request or msg.what == "info"):
                        # stop(drain=False): what raced the stop is dropped, not handled
                        self._dropped += 1
                        self._late_dropped += 1
                    elif msg.__class__ is not _Request:
                        core.events += 1
                        await self._drive(core.notify(msg))
                    elif msg.proc is _STOP:
                        stops.append(msg)
                    elif dropping and msg.what not in _LANE_RESULTS:
                        _fail(msg.fut, ManagerNotRunning(self, stopped_before(msg.what)))
                    else:  # what isolated handlers bring back is applied even then
                        await self._handle(msg)
                except BaseException as exc:  # the message was finished: remember, go on
                    fatal = fatal or exc
            if self._lanes:
                if dropping:  # what the last event gave the lanes is dropped too
                    self._drop_lanes()
                if await self._settle_lanes():
                    continue
            with _seal_lock:
                if not mailbox:
                    self._sealed = True
                    break
        if self._order:  # no lane moves any more: what waits is applied, in order
            for req in self._order.take_all():
                fatal = await self._apply_lane_result(req) or fatal
        if not core.stopped:
            if self._lanes and self._stop_started is None:
                self._stop_started = self._loop.time()
            try:
                await self._drive(core.stop())
            except BaseException as exc:
                fatal = fatal or exc
        self._shutdown()
        if self._late_dropped:
            log_backlog(self, self._late_dropped, 0, "that raced stop(drain=False)")
        for req in stops:
            _resolve(req.fut, None)
        if fatal is not None and not isinstance(fatal, FATAL):
            log.error("genevent manager %r: error while stopping", self, exc_info=fatal)
            return None
        return fatal

    def _shutdown(self) -> None:
        self._closed = True
        _LIVE.discard(self)
        self._cancel_retries()
        self._end_streams()
        for lane in self._lanes:
            self._lane_dropped += lane.counts.dropped
            lane.close()
        self._lanes = {}
        if self._fresh:
            self._fresh.clear()
        self._core.lane_edits = None
        if self._bound is not None:
            self._wake_room()
            self._bound.flush_log(self)
        if self.name is not None:
            _registry.unregister(self.name, self)
        for owner in self._watched or ():
            owner.remove_done_callback(self._owner_done)
        self._watched = None
        with _seal_lock:
            drained = self._sealed
            self._sealed = True
            pending = list(self._mailbox)
            self._mailbox.clear()
        if not drained and (lost := sum(m.__class__ is not _Request for m in pending)):
            self._dropped += lost
            log.error("genevent manager %r dropped %d queued events", self, lost)
        for msg in pending:
            if msg.__class__ is _Request and msg.fut is not None:
                _fail(
                    msg.fut, ManagerNotRunning(self, f" (it stopped before answering {msg.what})")
                )
        if self._pending is not None:  # every request was answered
            if self._pending.watchdog is not None:
                self._pending.watchdog.cancel()
            self._pending = None
