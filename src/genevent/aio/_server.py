"""The asyncio runtime's server: one object per manager holding its state (the core, the
mailbox and its wake-ups, owners, streams, lanes) and the plumbing every other part uses.
The public :class:`genevent.aio.EventManager` is a face over it; the drain loop
(:mod:`._drain`), the handling of messages (:mod:`._dispatch`), requests and their deadlines
(:mod:`._requests`), the host side of isolated handlers (:mod:`._lanes_host`) and the stop
(:mod:`._stop`) are functions that receive it.

Two flags stay on the face, where ``notify`` reads them without a hop: ``_closed`` (set when
stop is requested: new messages are refused from then on) and ``_waiter`` (the future the
parked manager task awaits; None while it runs). The server reads and sets them there."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
import weakref
from collections import deque
from collections.abc import Hashable
from typing import Any, Protocol

from .. import _functions, _registry
from .._core import (
    MAYBE_INSTRUCTION,
    TABLE_EDITS,
    Args,
    Invoke,
    Kind,
    ManagerCore,
    Raised,
    Retry,
    Returned,
    Unwatch,
    Watch,
    plain_add,
    sole_target,
)
from .._driver import CRASHES, FATAL, log, take_back
from .._errors import (
    CallingSelf,
    GenEventError,
    InvalidOwner,
    ManagerNotRunning,
    WrongRuntime,
)
from .._lanes import Host, Lane, Order, leftovers, running_lane, unanswered
from .._mailbox import Bound
from .._metrics import ManagerStats, Timings, build_stats
from .._streams import AsyncEventStream
from .._text import short
from ._common import (
    _CALL,
    _CALL_OUTCOME,
    _LIVE,
    _SYNC,
    _SYNC_REST,
    _WHICH,
    _consume_outcome,
    _fail,
    _given,
    _is_control,
    _Request,
    _reraised,
    _resolve,
    _resume,
    _seal_lock,
    _task_of,
)
from ._deadlines import _Pending


class _Face(Host, Protocol):
    """What the server knows of its face, :class:`genevent.aio.EventManager` (also the host
    of its isolated handlers' lanes)."""

    name: str | None
    _mailbox: deque[Any]
    _closed: bool
    _waiter: asyncio.Future[None] | None
    _srv: _Server


class _Server:
    """The state and plumbing of one :class:`genevent.aio.EventManager` (``face``)."""

    # set on the few managers that need them: an idle manager must stay small (benchmarks:
    # <= 4 KB), and its instance dictionary compact (it stays so only while it holds fewer
    # than 30 attributes)
    bound: Bound | None = None
    room: asyncio.Future[None] | None = None
    dropping = False
    late_dropped = 0
    order: Order | None = None  # made with the first lane
    streams: weakref.WeakSet[AsyncEventStream[Any]] | None = None  # opened on it
    retries: set[asyncio.TimerHandle] | None = None  # restarts waiting for another attempt
    fresh: list[Lane] | None = None  # lanes started since the last reap
    timings: Timings | None = None  # start(timing=True)
    watched: set[Any] | None = None  # the owners watched
    spawned: set[asyncio.Future[Any]] | None = None  # what telling owners left running
    # metrics the core does not keep (it counts the rest); high_water is the server's own
    dropped = 0
    refused = 0
    left_behind = 0
    lane_dropped = 0  # by the bounded mailboxes of isolated handlers that are gone
    #: set once the stopping manager found its mailbox empty (see late)
    sealed = False
    #: while stopping: a CancelledError from a callback is its crash, never the manager's
    finishing = False
    #: while stopping: waiting for the lanes to go idle (a lane going idle wakes the manager)
    settling = False
    stop_started: float | None = None  # when the stop began waiting for lanes
    #: set by the first shutdown: the manager task's ``finally`` finds it done after a stop
    shut = False
    task: asyncio.Task[None]  # the manager task (the face starts it)

    def __init__(self, face: _Face, *, timing: bool) -> None:
        self.face = face
        self.loop = asyncio.get_running_loop()
        self.thread_id = threading.get_ident()
        self.core = ManagerCore(face, clock=self.loop.time)
        self.high_water = 0
        if timing:
            self.timings = Timings(time.perf_counter_ns)
            self.core.wrap_event = self.timings.wrap
        self.mailbox: deque[Any] = face._mailbox
        self.wake_pending = False
        self.dispatch_task: object = None
        self.inline_done: asyncio.Future[None] | None = None
        # requests with a deadline until answered, and their watchdog (see
        # _requests.enqueue); made on first use
        self.pending: _Pending | None = None
        #: how many awaits the manager's work is suspended in (a coroutine callback, a turn
        #: given to the loop, an inline request's work): only then can a deadline pass before
        #: the manager gets to the request, so only then is the watchdog armed
        self.suspended = 0
        #: the lanes of isolated handlers (started ones), in order
        self.lanes: dict[Lane, None] = {}

    def __repr__(self) -> str:
        return repr(self.face)

    def label(self) -> Any:
        """The manager as its log lines and errors name it: its face."""
        return self.face

    def gone(self) -> bool:
        """True if the manager's event loop was closed under it; it is then marked stopped,
        its name freed, and what it never handled counted in a log line. Checked lazily (off
        the notify path): requests, ``is_running``, name lookups."""
        if not self.loop.is_closed():
            return False
        if self.task.done() or self.sealed:
            return True
        self.face._closed = self.sealed = True
        with _seal_lock:
            lost = len(self.mailbox)
            self.mailbox.clear()
        self.pending = None  # the loop is closed: its timers never fire
        self.dropped += lost
        log.error(
            "genevent manager %r: its event loop was closed while it was running; %d queued "
            "messages not handled, handlers not terminated: %s",
            self.face,
            lost,
            ", ".join(repr(e.ref) for e in self.core.entries) or "none",
        )
        self.shutdown()
        # the task can never run again: let it go quietly
        self.task._log_destroy_pending = False  # type: ignore[attr-defined]
        close = getattr(self.task.get_coro(), "close", None)
        if close is not None:
            close()
        return True

    def wake(self) -> None:
        self.wake_pending = False
        face = self.face
        waiter = face._waiter
        if waiter is not None:
            face._waiter = None
            if not waiter.done():
                try:
                    waiter.set_result(None)
                except RuntimeError:  # the loop is closed: nobody will run this manager again
                    if self.gone():
                        raise ManagerNotRunning(face, " (its event loop is closed)") from None
                    raise

    def wake_from_thread(self) -> None:
        if not self.wake_pending:
            self.wake_pending = True
            try:
                self.loop.call_soon_threadsafe(self.wake)
            except RuntimeError as exc:  # the loop is closed: nobody will run this manager again
                self.wake_pending = False
                self.gone()
                raise ManagerNotRunning(self.face, " (its event loop is closed)") from exc

    def post(self, item: Any) -> None:
        self.mailbox.append(item)
        if self.face._waiter is not None:
            if threading.get_ident() == self.thread_id:
                self.wake()
            else:
                self.wake_from_thread()

    def wake_room(self) -> None:
        """Wake the producers waiting for room (``notify_wait``): after each batch, and at
        stop (they are then refused)."""
        room = self.room
        self.room = None
        if room is not None and not room.done():
            with contextlib.suppress(RuntimeError):  # its loop is closed: nobody waits
                room.set_result(None)

    def late(self, item: Any) -> None:
        """``item`` was appended and the manager was found stopping afterwards: accept it if the
        manager will still drain it, else take it back and refuse it."""
        with _seal_lock:
            if not self.sealed:
                return
            take_back(self.mailbox, item)
            self.refused += 1
        raise ManagerNotRunning(self.face)

    def inline_finished(self, task: asyncio.Task[Any] | None) -> None:
        """An inline request's work is finished (``task``: its task, if it had one): the
        manager task, waiting for it, goes on."""
        self.dispatch_task = None
        done = self.inline_done
        if done is not None:
            self.inline_done = None
            if not done.done():
                done.set_result(None)

    def suspend(self) -> None:
        """The manager's work is about to await something other than its mailbox: from now
        on the loop runs other callbacks, timers included, before the pending requests are
        answered, so the watchdog watches their deadlines. (While the manager task runs or is
        about to, the loop fires no timer before it answered what is queued: a request's
        deadline can pass then only if the loop is blocked, when no timer fires either.)"""
        self.suspended += 1
        if self.pending:
            self.pending.watch()

    def check_caller(self, what: str) -> None:
        face = self.face
        if face._closed or self.gone():
            raise ManagerNotRunning(face)
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        if loop is not self.loop:
            raise WrongRuntime(
                f"{what} on {short(face)} must be awaited in the manager's own event loop; from "
                "another thread use asyncio.run_coroutine_threadsafe(..., manager.loop) "
                "or the thread-safe notify()"
            )
        dispatching = self.dispatch_task
        if dispatching is not None and dispatching is _task_of(self.loop):
            raise CallingSelf(face, what)
        if self.lanes:  # an isolated handler's task, or its thread, waiting on its manager
            lane = running_lane()
            if (
                lane is not None
                and lane.host is face
                and lane in self.lanes
                and (lane.kind == "thread" or getattr(lane, "task", None) is _task_of(self.loop))
            ):
                raise CallingSelf(face, what)

    def can_inline(self) -> bool:
        return (
            self.face._waiter is not None
            and not self.mailbox
            and not self.core.async_count
            and not self.core.isolated
            and self.dispatch_task is None
        )

    def quick(self, req: _Request) -> bool:
        """Answer a queued ``call``, ``sync_notify`` or ``which_handlers`` without the core's
        generators when the handlers do nothing more than reply (or return None); True if
        answered. Otherwise the request is left for ``_dispatch.handle``, turned into what
        remains to do once a callback ran (its outcome goes to the core, as on the hot
        path)."""
        proc = req.proc
        core = self.core
        if core.isolated:  # requests may concern isolated handlers: see _dispatch.handle
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
        elif req.what in TABLE_EDITS:
            return self.lean(req)
        else:
            return False
        core.requests += 1
        # cheaper than asking done() first: it is done only if it timed out or its caller
        # was cancelled
        try:  # noqa: SIM105
            req.fut.set_result(result)  # type: ignore[union-attr]
        except asyncio.InvalidStateError:
            pass
        if self.pending:
            self.pending.answered()
        return True

    def lean(self, req: _Request) -> bool:
        """Drive a table edit's core procedure (add, delete, swap: see the core's
        ``TABLE_EDITS``) here, without the general driver, and answer it; True if answered.
        At the first effect that is not a plain callback run here, or a KeyboardInterrupt,
        SystemExit or CancelledError from one, the rest of the procedure is left to
        ``_dispatch.handle`` (False), which performs that effect first."""
        core = self.core
        if self.fresh or core.lane_edits:  # lanes to look after: the general path does
            return False
        if req.what is Kind.ADD_HANDLER and req.args[4] is None and req.args[5] is None:
            return self.plain(req)  # no restart policy, no lane
        proc = req.proc(*req.args)  # type: ignore[operator]
        send: Any = None
        try:
            while True:
                eff = proc.send(send)
                if eff.__class__ is not Invoke or eff.is_async or eff.via is not None:
                    req.proc, req.args = _resume, (eff, proc)
                    return False
                try:
                    value = eff.fn(*eff.args, **eff.kwargs) if eff.kwargs else eff.fn(*eff.args)
                except CRASHES as exc:
                    if isinstance(exc, (*FATAL, asyncio.CancelledError)):
                        req.proc, req.args = _resume, (_reraised(exc), proc)
                        return False
                    send = Raised(exc)
                else:
                    send = Returned(value)
        except StopIteration as stop:
            _resolve(req.fut, stop.value)
        except GenEventError as exc:
            _fail(req.fut, exc)
        except Exception as exc:  # a bug in genevent: answer, log, carry on
            log.exception("genevent: internal error handling %s", req.what)
            _fail(req.fut, exc)
        core.requests += 1
        if self.pending:
            self.pending.answered()
        return True

    def plain(self, req: _Request) -> bool:
        """A queued ``add_handler`` with no restart policy and no lane, as the core's plain
        step (:func:`plain_add`), and its answer; True if answered, else what the core left
        to the general driver is handed to ``_dispatch.handle``. A method, so a test variant
        can turn it off (the table edit is then driven by :meth:`lean`)."""
        try:
            rest = plain_add(self.core, req.args[0], req.args[1])
        except GenEventError as exc:
            _fail(req.fut, exc)
        except Exception as exc:  # a bug in genevent: answer, log, carry on
            log.exception("genevent: internal error handling %s", req.what)
            _fail(req.fut, exc)
        else:
            if rest is not None:
                req.proc, req.args = _given, (rest,)
                return False
            _resolve(req.fut, None)
        self.core.requests += 1
        if self.pending:
            self.pending.answered()
        return True

    def sole(self, targets: Any) -> Any:
        """The drain loop's path for a snapshot of one handler: its function, else None (the
        core's rule, :func:`sole_target`). A method, so a test variant can turn it off."""
        return sole_target(targets)

    def stats(self, *, running: bool) -> ManagerStats:
        face = self.face
        return build_stats(
            self.core,
            name=face.name,
            ident=id(face),
            running=running,
            mailbox=self.mailbox,
            request_class=_Request,
            high_water=self.high_water,
            dropped=self.dropped,
            refused=self.refused,
            bound=self.bound,
            timings=self.timings,
            lane_dropped=self.lane_dropped,
        )

    async def wait_stopped(self) -> None:
        current = asyncio.current_task()
        if (
            current is self.task
            or (current is not None and current is self.dispatch_task)
            or (self.lanes and _on_own_lane_thread(self))
        ):
            raise CallingSelf(self.face, "wait_stopped")
        if not self.task.done() and not self.gone():
            await asyncio.wait((self.task,))

    def subscribe_later(self, fn: Any, args: tuple[Any, ...]) -> None:
        """``on``: queue the subscription of ``fn``; a failure is logged."""
        fut: asyncio.Future[Any] = self.loop.create_future()
        fut.add_done_callback(lambda f: _functions.log_failure(f, fn))
        self.post(_Request(self.core.add_handler, args, fut, Kind.SUBSCRIBE))

    # -- a bounded mailbox (the bounded face's notify, send and notify_wait) ---------------

    def put_full(self, item: Any) -> bool:
        """``item`` met a full mailbox: the policy decides (a plain ``notify`` or ``send``
        cannot wait: under ``"block"`` it is refused)."""
        bound: Bound = self.bound  # type: ignore[assignment]
        with bound.lock:
            queued = bound.put_full(self.mailbox, item, self.face, _is_control)
            if queued is None:
                raise bound.refuse(self.face)
        return queued

    async def put_waiting(self, item: Any, timeout: float | None) -> bool:
        """``item`` met a full mailbox, and its producer accepts to wait (``notify_wait``)."""
        bound: Bound = self.bound  # type: ignore[assignment]
        face = self.face
        loop = self.loop
        deadline = None if timeout is None else loop.time() + timeout
        checked = False
        while True:
            with bound.lock:
                if face._closed:  # stopped while it waited
                    bound.counts.refused += 1
                    raise ManagerNotRunning(face)
                queued = bound.put_full(self.mailbox, item, face, _is_control)
                if queued is not None:
                    return queued
                remaining = None if deadline is None else deadline - loop.time()
                if remaining is not None and remaining <= 0.0:
                    raise bound.refuse(face)
            if not checked:
                try:
                    running = asyncio.get_running_loop()
                except RuntimeError:  # pragma: no cover - a coroutine runs in a loop
                    running = None
                if running is not loop:
                    raise WrongRuntime(
                        f"notify_wait on {short(face)} can wait for room only in the "
                        "manager's own event loop"
                    )
                if self.dispatch_task is not None and self.dispatch_task is _task_of(loop):
                    with bound.lock:  # its own handler: the manager cannot make room
                        raise bound.refuse(face)
                checked = True
            room = self.room
            if room is None:
                room = self.room = loop.create_future()
            try:
                if remaining is None:
                    await asyncio.shield(room)
                else:
                    await asyncio.wait_for(asyncio.shield(room), remaining)
            except TimeoutError:
                pass  # offered once more: refused unless room appeared meanwhile

    # -- streams ------------------------------------------------------------------------------

    def install_stream(self, stream: AsyncEventStream[Any]) -> None:
        streams = self.streams
        if streams is None:
            streams = self.streams = weakref.WeakSet()
        streams.add(stream)
        fut: asyncio.Future[Any] = self.loop.create_future()
        fut.add_done_callback(lambda f: _functions.log_failure(f, stream))
        args = (stream.ref, Args(stream), None, None)
        self.post(_Request(self.core.add_handler, args, fut, Kind.STREAM))

    def streams_stopping(self) -> None:
        """A stop began: a ``"block"`` stream stops waiting for room (see the stream)."""
        for stream in list(self.streams or ()):
            stream.manager_stopping()

    def end_streams(self) -> None:
        """The manager stopped: every stream opened on it ends, even one whose feed was not
        installed yet (its subscription was refused by the stop)."""
        for stream in list(self.streams or ()):
            stream.manager_stopped()
        self.streams = None

    def remove_stream(self, stream: AsyncEventStream[Any]) -> None:
        if self.face._closed or self.loop.is_closed():
            return
        fut: asyncio.Future[Any] = self.loop.create_future()
        fut.add_done_callback(_consume_outcome)  # gone already (the stream ended): fine
        self.post(_Request(self.core.delete_handler, (stream.ref, None), fut, Kind.STREAM_CLOSE))

    # -- owners and restarts ------------------------------------------------------------------

    def owner(self, owner: Any) -> Any:
        if owner is None:
            owner = asyncio.current_task()
            if owner is None:  # pragma: no cover - check_caller ran inside a task
                raise InvalidOwner("add_sup_handler needs a current task (or owner=)")
        elif not asyncio.isfuture(owner):
            raise InvalidOwner(
                f"owner {short(owner)} cannot be watched: pass an asyncio task or future"
            )
        if not isinstance(owner, Hashable):
            raise InvalidOwner(f"owner {short(owner)} is not hashable")
        return owner

    def watch(self, eff: Any) -> None:
        if eff.__class__ is Retry:
            self.schedule_retry(eff)
            return
        owner = eff.owner
        watched = self.watched
        if watched is None:
            watched = self.watched = set()
        if eff.__class__ is Watch:
            if owner not in watched:
                watched.add(owner)
                owner.add_done_callback(self.owner_done)
        elif eff.__class__ is Unwatch and owner in watched:
            watched.discard(owner)
            owner.remove_done_callback(self.owner_done)

    def schedule_retry(self, eff: Retry) -> None:
        """A restart's ``init`` failed: its next attempt comes in ``eff.delay`` seconds, as a
        message of the mailbox (the manager serves the others meanwhile)."""
        retries = self.retries
        if retries is None:
            retries = self.retries = set()
        handle: asyncio.TimerHandle | None = None

        def due() -> None:
            retries.discard(handle)
            if not self.face._closed:
                self.post(_Request(self.core.retry_restart, (eff.handler,), None, Kind.RESTART))

        handle = self.loop.call_later(eff.delay, due)
        retries.add(handle)

    def cancel_retries(self) -> None:
        for handle in self.retries or ():
            handle.cancel()
        self.retries = None

    def owner_done(self, owner: Any) -> None:
        reason: BaseException | None = (
            asyncio.CancelledError() if owner.cancelled() else owner.exception()
        )
        if not self.face._closed:
            self.post(_Request(self.core.owner_down, (owner, reason), None, Kind.OWNER_DOWN))

    # -- lanes --------------------------------------------------------------------------------

    @property
    def lane_order(self) -> Order:
        """The order of what is queued to the lanes and of what they bring back."""
        order = self.order
        if order is None:
            order = self.order = Order()
        return order

    # -- the end ------------------------------------------------------------------------------

    def shutdown(self) -> None:
        if self.shut:  # a stop ran it already; nothing can have been queued since the seal
            return
        self.shut = True
        face = self.face
        face._closed = True
        _LIVE.discard(face)
        self.cancel_retries()
        self.end_streams()
        for lane in self.lanes:
            self.lane_dropped += lane.counts.dropped
            lane.close()
        self.lanes = {}
        if self.fresh:
            self.fresh.clear()
        self.core.lane_edits = None
        if self.bound is not None:
            self.wake_room()
            self.bound.flush_log(face)
        if face.name is not None:
            _registry.unregister(face.name, face)
        for owner in self.watched or ():
            owner.remove_done_callback(self.owner_done)
        self.watched = None
        with _seal_lock:
            drained = self.sealed
            self.sealed = True
            pending = list(self.mailbox)
            self.mailbox.clear()
        lost, requests = leftovers(face, pending, _Request, drained)
        self.dropped += lost
        for msg in requests:
            if msg.fut is not None:
                _fail(msg.fut, unanswered(face, msg))
        if self.pending is not None:  # every request was answered
            self.pending.cancel()
            self.pending = None


def _on_own_lane_thread(srv: _Server) -> bool:
    """True in the thread of one of the manager's isolated handlers (or in a coroutine that
    thread handed to the loop): waiting there for the manager would wait for itself."""
    lane = running_lane()
    return lane is not None and lane.kind == "thread" and lane in srv.lanes
