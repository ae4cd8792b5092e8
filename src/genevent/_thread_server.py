"""The thread runtime's manager thread (:class:`_Server`): its mailbox, its drain loop, the
isolation host, the fast paths of its requests.
The public :class:`genevent.threads.EventManager` wraps one."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import sys
import threading
import time
import warnings
import weakref
from collections import deque
from collections.abc import Callable
from itertools import repeat
from operator import length_hint as _left
from typing import Any, Final, Protocol, TypeVar

from . import _registry
from ._core import (
    MAYBE_INSTRUCTION,
    Entry,
    HandlerExit,
    Invoke,
    ManagerCore,
    Procedure,
    Raised,
    Retry,
    Returned,
    Settle,
    TellOwner,
    Unwatch,
    Watch,
)
from ._driver import (
    CRASHES,
    FATAL,
    callback_in,
    drive_sync,
    log,
    stack_frames,
    take_back,
    tell_owner,
)
from ._errors import (
    CallTimeout,
    GenEventError,
    ManagerNotRunning,
    _name,
)
from ._lanes import (
    CAUGHT_UP,
    CONCERNED,
    LANE_RESULTS,
    Lane,
    Order,
    ThreadLane,
    applied,
    call_applied,
    drop_backlogs,
    leave_behind,
    pass_call,
    reap,
    running_lane,
    stopped_before,
    takes_its_place,
    when_caught_up,
)
from ._mailbox import Bound, log_backlog, take_backlog
from ._metrics import Timings
from ._thread_owners import _OwnerWatch, _prepare_owner


class _Public(Protocol):
    """What the server needs of the public :class:`genevent.threads.EventManager` it serves
    (defined here: this module sits below the public one, which imports it)."""

    @property
    def is_running(self) -> bool: ...


E = TypeVar("E")

_STOP: Final = object()
_LANE_RESULTS: Final = LANE_RESULTS
_INTERNAL: Final = frozenset(
    {"info", "owner_down", "stream close", "restart"}
    | _LANE_RESULTS
    | {what + CAUGHT_UP for what in CONCERNED}  # counted when they first came in
)
"""Messages that are not control requests (metrics count them elsewhere, or not at all)."""
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

    __slots__ = ("args", "error", "future", "lock", "proc", "value", "via", "watch", "what")

    def __init__(
        self, proc: Callable[..., Procedure] | object, args: tuple[Any, ...], what: str
    ) -> None:
        self.proc = proc
        self.args = args
        self.what = what
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
    return msg.__class__ is _Request and msg.what != "info"


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


class _Server:
    """Everything the manager's thread needs. The thread references this, never the public
    :class:`EventManager`, so that an abandoned manager can be collected (and then stopped)."""

    #: a bounded mailbox's limits, counts and waiting producers (set before the thread starts)
    bound: Bound | None = None
    #: set by a stop that drops the backlog: what races it is dropped too, not handled
    dropping = False
    #: at interpreter exit: until when isolated handlers may catch up, and the deadline of
    #: the whole stop (the exit hook's); see :meth:`lane_job`
    exit_drain_until: float | None = None
    exit_until: float | None = None

    def __init__(self, name: str | None, inline: bool, timing: bool = False) -> None:
        self.name = name
        self.inline = inline
        self.public: Callable[[], _Public | None] = _no_public
        self.core = ManagerCore(self, allow_async=False, clock=time.monotonic)
        # metrics the core does not keep (it counts the rest)
        self.high_water = 0
        self.dropped = 0
        self.refused = 0
        self.timings = Timings(time.perf_counter_ns) if timing else None
        if self.timings is not None:
            self.core.wrap_event = self.timings.wrap
        self.mailbox: deque[Any] = deque()
        self.closed = False
        #: True while the thread is parked on ``wakeup`` (or about to be)
        self.sleeping = False
        self.wakeup = _allocate_lock()
        self.wakeup.acquire()
        #: guards ``closed`` against control messages posted while the manager shuts down
        self.post_lock = _allocate_lock()
        #: once stop is requested, the manager drains what was accepted; under ``seal_lock``
        #: it sets ``sealed`` when the mailbox is empty, and a ``notify`` that raced the stop
        #: then takes its event back and is refused (see :meth:`late`)
        self.seal_lock = _allocate_lock()
        self.sealed = False
        self.stopped = threading.Event()
        self.watched: dict[Any, _OwnerWatch | None] = {}
        self.arming: _OwnerWatch | None = None
        #: held by whoever runs handler code: the manager thread, or an inline caller
        self.run_lock = _allocate_lock()
        self.ident: int | None = None
        #: the thread running a request inline, if any
        self.inline_ident: int | None = None
        self.thread = threading.Thread(
            target=self.run, name=f"genevent:{name or hex(id(self))}", daemon=True
        )
        #: the lanes of isolated handlers (started ones; see :mod:`genevent._lanes`), in order
        self.lanes: dict[Lane, None] = {}
        #: lanes started since the last :meth:`reap` (it closes those no handler uses)
        self.fresh: list[Lane] = []
        self.left_behind = 0
        #: events and infos dropped by the bounded mailboxes of lanes that are gone
        self.lane_dropped = 0
        #: True while ``stop`` waits for isolated handlers to catch up (they wake it)
        self.settling = False
        self.stop_started: float | None = None
        #: the mailbox order of what is queued to lanes, and the outcomes waiting for it
        self._lane_order = Order()
        #: restarts waiting for their next attempt (timers)
        self.retries: set[threading.Timer] = set()
        #: interpreter exit: terminates of isolated handlers inside a callback (see lane_job)
        self.deferred: list[tuple[Lane, concurrent.futures.Future[Raised | Returned]]] = []
        #: the streams opened on it (made on first use)
        self.streams: weakref.WeakSet[Any] | None = None

    def forked(self) -> None:
        """This is a forked child's copy of a running manager: it is stopped here."""
        self.post_lock = _allocate_lock()  # another thread may have held them at the fork
        self.seal_lock = _allocate_lock()
        self.run_lock = _allocate_lock()
        self.closed = self.sealed = self.core.stopped = True
        self.mailbox.clear()
        self.watched.clear()
        self.ident = self.inline_ident = None
        if self.name is not None:
            mgr = self.public()
            if mgr is not None:
                _registry.unregister(self.name, mgr)
        self.stopped._at_fork_reinit()  # type: ignore[attr-defined]
        self.stopped.set()

    def label(self) -> Any:
        """The public manager if it still exists (for notices, errors and reports), else self."""
        mgr = self.public()
        return self if mgr is None else mgr

    def __repr__(self) -> str:
        state = "stopped" if self.closed else "running"
        label = f" {self.name!r}" if self.name else f" at {id(self):#x}"
        return (
            f"<threads.EventManager{label} {state} handlers={len(self.core.entries)} "
            f"queued={len(self.mailbox)}>"
        )

    # -- posting (any thread) -----------------------------------------------------------------

    def wake(self) -> None:
        self.sleeping = False
        try:  # noqa: SIM105 - cheaper than contextlib.suppress on the notify path
            self.wakeup.release()
        except RuntimeError:  # another poster woke it already: the token is pending
            pass

    def post(self, req: _Request, who: Any) -> None:
        """Queue a control message; raise :class:`ManagerNotRunning` (about ``who``) if the
        manager is stopped. The lock makes sure a request is either answered at shutdown or
        refused here, never left behind in a dead mailbox."""
        with self.post_lock:
            if self.closed:
                raise ManagerNotRunning(who)
            if req.proc is _STOP:  # refuse everything from now on; what came before is handled
                self.closed = True
            self.mailbox.append(req)
        if self.sleeping:
            self.wake()
        if req.proc is _STOP:
            self.streams_stopping()

    def track_stream(self, stream: Any) -> None:
        """``stream`` was opened on this manager: it ends when the manager stops."""
        streams = self.streams
        if streams is None:
            streams = self.streams = weakref.WeakSet()
        streams.add(stream)

    def streams_stopping(self) -> None:
        """A stop began: a ``"block"`` stream stops waiting for room (see the stream)."""
        for stream in list(self.streams or ()):
            stream.manager_stopping()

    def late(self, item: Any, who: Any) -> None:
        """``item`` was appended without the lock and the manager was found closed afterwards:
        accept it if the manager will still drain it, else take it back and refuse it."""
        with self.seal_lock:
            if not self.sealed:
                return
            take_back(self.mailbox, item)
            self.refused += 1
        raise ManagerNotRunning(who)

    def room(self) -> None:
        """Wake the producers waiting for room in a bounded mailbox (after each batch, and at
        stop: they are then refused)."""
        bound = self.bound
        if bound is not None:
            with bound.room:
                if bound.waiting:
                    bound.room.notify_all()

    def put_full(self, item: Any, who: Any, timeout: float | None) -> bool:
        """``item`` (an event or info) met a full bounded mailbox: carry out the policy. Under
        ``"block"`` wait for room for at most ``timeout`` seconds (None: as long as it takes;
        never on the manager's own thread, which would wait for itself), then refuse it with
        :class:`~genevent.MailboxFull`. Returns whether it was queued."""
        bound: Bound = self.bound  # type: ignore[assignment]
        deadline: float | None = None
        with bound.room:
            while True:
                if self.closed:  # stopped (maybe while it waited)
                    bound.counts.refused += 1
                    raise ManagerNotRunning(who)
                queued = bound.put_full(self.mailbox, item, who, _is_control)
                if queued is not None:
                    return queued
                ident = _get_ident()
                if ident in (self.ident, self.inline_ident) or timeout == 0.0:
                    raise bound.refuse(who)
                remaining = None
                if timeout is not None:
                    now = _monotonic()
                    if deadline is None:
                        deadline = now + timeout
                    remaining = deadline - now
                    if remaining <= 0.0:
                        raise bound.refuse(who)
                bound.waiting += 1
                try:
                    bound.room.wait(remaining)
                finally:
                    bound.waiting -= 1

    def drop_backlog(self) -> tuple[int, int]:
        """Drop what is queued (a stop that does not drain, or the exit hook): the events and
        infos are counted in ``dropped``, the queued requests answered with
        :class:`ManagerNotRunning`, a queued stop kept. Returns ``(events, requests)``."""
        self.dropping = True
        events, rest = take_backlog(self.mailbox, _droppable)
        with self.seal_lock:
            self.dropped += events
        # a stop, and what isolated handlers brought back (a crash is reported as a crash)
        kept = [m for m in rest if m.proc is _STOP or m.what in _LANE_RESULTS]
        with self.post_lock:
            self.mailbox.extend(kept)
        refused = 0
        for msg in rest:
            if msg.proc is not _STOP and msg.what not in _LANE_RESULTS:
                refused += 1
                _fail(msg, ManagerNotRunning(self.label(), stopped_before(msg.what)))
        self.drop_lanes()
        self.room()
        if self.sleeping:
            self.wake()
        return events, refused

    def drop_lanes(self) -> int:
        """A stop that drops the backlog: so do the isolated handlers' mailboxes (their drops
        counted on each handler). Returns how many events and infos they dropped."""
        return drop_backlogs(self.label(), self.lanes)

    def interrupt(self) -> None:
        """A KeyboardInterrupt or SystemExit ran through an inline request: stop as by stop."""
        with contextlib.suppress(ManagerNotRunning):
            self.post(_Request(_STOP, (), "stop"), self)

    def owner_down(self, owner: Any, reason: BaseException | None) -> None:
        """An owner thread ended (called from that thread, or from its watcher)."""
        with contextlib.suppress(ManagerNotRunning):
            self.post(_Request(self.core.owner_down, (owner, reason), "owner_down"), self)

    # -- the loop (manager thread) ------------------------------------------------------------

    def run(self) -> None:
        self.ident = _get_ident()
        mailbox = self.mailbox
        popleft = mailbox.popleft
        core = self.core
        wakeup = self.wakeup
        drive = self.drive
        request = _Request
        run_lock = self.run_lock
        run_lock.acquire()
        try:
            while True:
                # the handler table changes only in the core: re-read the targets after a
                # request, after entering the core, and after a park (an inline caller may
                # have run meanwhile). Rebinding ``targets`` inside the ``for`` does not change
                # the snapshot the current event is delivered to.
                targets = core.cached_targets or core.event_targets
                while mailbox:
                    # a batch of the messages known to be there; the event count (metrics) is
                    # brought up to date on the slow paths (a request, a callback that raised
                    # or returned something) and once per batch, never per event
                    batch = len(mailbox)
                    if batch > self.high_water:  # noqa: PLR1730 - no builtin call per wake-up
                        self.high_water = batch
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
                        if msg.__class__ is request:
                            i = batch - _left(it) - 1
                            core.events = base + i - requests
                            requests += 1
                            if msg.proc is _STOP:
                                self.stop(msg)
                                return
                            self.handle(msg)
                            targets = core.cached_targets or core.event_targets
                            base = core.events - i - 1 + requests  # handle may count an event
                        else:
                            for entry, fn in targets:
                                try:
                                    result = fn(msg)
                                except CRASHES as exc:
                                    i = batch - _left(it) - 1
                                    core.events = base + i + 1 - requests
                                    if isinstance(exc, FATAL):
                                        self.interrupted(entry, exc, msg)
                                    drive(core.event_result(entry, Raised(exc), msg))
                                    targets = core.event_targets
                                else:
                                    if result is not None:
                                        i = batch - _left(it) - 1
                                        core.events = base + i + 1 - requests
                                        drive(core.event_result(entry, Returned(result), msg))
                                        targets = core.event_targets
                    core.events = base + batch - requests
                    if self.bound is not None:
                        self.room()
                self.sleeping = True
                if mailbox:  # re-check: a poster may have appended before seeing the flag
                    self.sleeping = False
                    continue
                run_lock.release()
                wakeup.acquire()
                run_lock.acquire()  # an inline caller may hold it
                self.sleeping = False
        except BaseException as exc:
            # KeyboardInterrupt or SystemExit from a handler (the request it interrupted is
            # finished), or a bug: the manager stops as by stop
            self.finish([], exc)
            log.error(
                "genevent manager %r stopped: %s", self.label(), type(exc).__name__, exc_info=exc
            )
        finally:
            if not self.stopped.is_set():
                self.shutdown()
            # a later thread may get this id: it must not pass for the manager's own thread
            self.ident = None
            run_lock.release()

    def handle(self, req: _Request) -> None:
        if req.what in _LANE_RESULTS:
            self.lane_results(req)
            return
        if self.core.isolated and req.what in CONCERNED and self.isolated(req):
            return
        proc = req.proc
        if proc is _CALL:  # the usual request first, with the fast path's common case inline
            self.core.requests += 1
            handler, request = req.args
            lock = req.lock
            entry = self.core.by_ref.get(handler) if lock is not None else None
            if entry is not None and entry.info.has_call:
                # a blocked caller (already checked its reference: hashable) and a handler
                # that can reply: a plain reply is released to the caller at once
                try:
                    result = entry.instance.handle_call(request)
                except CRASHES as exc:
                    outcome: Raised | Returned = Raised(exc)
                else:
                    if result.__class__ not in MAYBE_INSTRUCTION:  # the core's rule, cheap
                        req.value = result
                        lock.release()
                        return
                    outcome = Returned(result)
                self.finish_call(req, entry, outcome, request)
                return
        elif req.what not in _INTERNAL:
            self.core.requests += 1
        try:
            self.run_request(req)
        finally:
            if self.lanes:
                self.reap()

    def run_request(self, req: _Request) -> None:
        """Run ``req``'s procedure (or its fast path) and answer its caller. A
        KeyboardInterrupt or SystemExit goes on once the request is finished."""
        proc = req.proc
        try:
            if proc is _CALL:
                result = self.call(*req.args)
            elif req.proc is _SYNC_NOTIFY:
                self.dispatch(req.args[0])
                result = None
            elif req.watch is None:
                result = self.drive(req.proc(*req.args))  # type: ignore[operator]
            else:  # a supervised add/swap: Watch(owner) picks its watch up from here
                self.arming = req.watch
                try:
                    result = self.drive(req.proc(*req.args))  # type: ignore[operator]
                finally:
                    self.arming = None
        except GenEventError as exc:
            _fail(req, exc)
        except Exception as exc:  # a bug in genevent: answer, log, carry on
            log.exception("genevent: internal error handling %s", req.what)
            _fail(req, exc)
        except BaseException:
            _fail(
                req, ManagerNotRunning(self.label(), f" (it was interrupted handling {req.what})")
            )
            raise
        else:
            _answer(req, result)

    def lane_results(self, req: _Request) -> None:
        """An isolated handler's outcome (or a lane passed a place an outcome waits for):
        apply what may be applied now, in mailbox order (see genevent._lanes.Order). A
        KeyboardInterrupt or SystemExit goes on once each ready outcome is applied."""
        fatal: BaseException | None = None
        order = self._lane_order
        try:
            if req.via is not None:
                lane, seq = req.via
                if order.admit(self.lanes, seq, lane, req):
                    try:
                        self.run_request(req)
                    except BaseException as exc:
                        fatal = exc
                    self.reap()
            while order:
                ready = order.ready(self.lanes)
                if not ready:
                    break
                for later in ready:
                    try:
                        self.run_request(later)
                    except BaseException as exc:
                        fatal = fatal or exc
                    self.reap()
        finally:
            if self.lanes:
                self.reap()
        if fatal is not None:
            raise fatal

    def flush_lane_results(self) -> BaseException | None:
        """Stopping, once no lane will move any more: apply every outcome still waiting, in
        order. Returns the first KeyboardInterrupt/SystemExit met."""
        fatal: BaseException | None = None
        for req in self._lane_order.take_all():
            try:
                self.run_request(req)
            except BaseException as exc:
                fatal = fatal or exc
            if self.lanes:
                self.reap()
        return fatal

    def finish_call(
        self, req: _Request, entry: Any, outcome: Raised | Returned, request: Any
    ) -> None:
        """A queued call whose ``handle_call`` ran and did more than reply: the core acts on
        it (as :meth:`call` does), then the caller is answered. A KeyboardInterrupt or
        SystemExit goes on once the request is finished (its caller told the manager failed)."""
        try:
            if type(outcome) is Raised and isinstance(outcome.exception, FATAL):
                with contextlib.suppress(GenEventError):
                    self.drive(self.core.call_result(entry, outcome, request))
                raise outcome.exception from None
            result = self.drive(self.core.call_result(entry, outcome, request))
        except GenEventError as exc:
            _fail(req, exc)
        except Exception as exc:  # a bug in genevent: answer, log, carry on
            log.exception("genevent: internal error handling %s", req.what)
            _fail(req, exc)
        except BaseException:
            _fail(
                req, ManagerNotRunning(self.label(), f" (it was interrupted handling {req.what})")
            )
            raise
        else:
            _answer(req, result)

    def call(self, handler: Any, request: Any) -> Any:
        """``call``, entering the core only when the reply is not a plain value."""
        core = self.core
        try:
            entry = core.by_ref.get(handler)
        except TypeError:  # unhashable: the core raises the typed error
            entry = None
        if entry is None or not entry.info.has_call:
            return self.drive(core.call(handler, request))  # raises the typed error
        try:
            reply = entry.instance.handle_call(request)
        except CRASHES as exc:
            if isinstance(exc, FATAL):  # finish the request (the caller is answered), go on
                with contextlib.suppress(GenEventError):
                    self.drive(core.call_result(entry, Raised(exc), request))
                raise exc from None
            return self.drive(core.call_result(entry, Raised(exc), request))
        if reply.__class__ in MAYBE_INSTRUCTION:  # the core tells them apart
            return self.drive(core.call_result(entry, Returned(reply), request))
        return reply

    def running_callback(self) -> str | None:
        """The handler callback running right now (``"Class.method"``), if any: read from the
        stack of the thread running this manager's handlers (an inline caller's, or its own)."""
        frames = sys._current_frames()
        for ident in (self.inline_ident, self.ident):
            frame = frames.get(ident) if ident is not None else None
            name = callback_in(stack_frames(frame))
            if name is not None:
                return name
        return None

    def timeout_error(
        self, what: str, timeout: float, ahead: int | None, args: tuple[Any, ...] = ()
    ) -> CallTimeout:
        """The :class:`CallTimeout` for a request that timed out now (a call to an isolated
        handler names it, and what it is running)."""
        label = f"call to {_name(args[0])}" if what == "call" and args else what
        running = None
        if what == "call" and args and self.core.isolated:
            entry = self.core.find(args[0])
            if entry is not None and entry.lane is not None:
                label = f"call to isolated handler {_name(args[0])}"
                running = entry.lane.running_callback()
        return CallTimeout(
            label, timeout, queued_ahead=ahead, running=running or self.running_callback()
        )

    def enter_inline(self) -> bool:
        """Take the manager for the calling thread if it is idle (parked, mailbox empty), so
        that a request can run in the caller. Every earlier message of this caller has then
        been handled; :meth:`leave_inline` gives it back."""
        if (
            self.sleeping
            and not self.mailbox
            and not self.core.isolated  # requests must wait for isolated handlers: queued
            and self.run_lock.acquire(False)
        ):
            if not self.mailbox and not self.closed:
                self.inline_ident = _get_ident()
                return True
            self.run_lock.release()
        return False

    def leave_inline(self) -> None:
        self.inline_ident = None
        self.run_lock.release()

    def dispatch(self, event: Any) -> None:
        """One event outside the drain loop (sync_notify, an inline caller, the final drain):
        call each handler; enter the core only when needed."""
        core = self.core
        core.events += 1
        for entry, fn in core.event_targets:
            try:
                result = fn(event)
            except CRASHES as exc:
                if isinstance(exc, FATAL):
                    self.interrupted(entry, exc, event)
                self.drive(core.event_result(entry, Raised(exc), event))
            else:
                if result is not None:
                    self.drive(core.event_result(entry, Returned(result), event))

    def interrupted(self, entry: Any, exc: BaseException, event: Any) -> None:
        """``entry``'s handle_event raised KeyboardInterrupt or SystemExit on ``event``: it is
        removed as crashed, the handlers after it still get ``event``, then ``exc`` goes on."""
        core = self.core
        try:
            rest = core.entries[core.entries.index(entry) + 1 :]
        except ValueError:
            rest = []
        with contextlib.suppress(*FATAL):
            self.drive(core.event_result(entry, Raised(exc), event))
        for later in rest:
            if not later.alive:
                continue
            try:
                result = later.event_fn(event)
            except CRASHES as other:
                outcome: Raised | Returned = Raised(other)
            else:
                if result is None:
                    continue
                outcome = Returned(result)
            with contextlib.suppress(*FATAL):
                self.drive(core.event_result(later, outcome, event))
        raise exc

    def drive(self, proc: Procedure) -> Any:
        """Run a core procedure to its end on this thread; return its reply."""
        return drive_sync(proc, self.label(), self.watch_effect, self.tell, self.lane_job)

    def tell(self, eff: TellOwner) -> None:
        """Deliver an owner notice naming the public manager (the core knows this server)."""
        notice = eff.notice
        if notice.manager is self:
            eff = TellOwner(eff.on_exit, HandlerExit(notice.handler, notice.reason, self.label()))
        tell_owner(eff)

    def watch_effect(self, eff: Watch | Unwatch | Retry | Settle) -> None:
        if type(eff) is Watch:
            self.watch(eff.owner)
        elif type(eff) is Unwatch:
            self.unwatch(eff.owner)
        elif type(eff) is Retry:
            self.schedule_retry(eff)
        else:
            self.settle()

    def settle(self) -> None:
        """The core's :class:`Settle`: the isolated handlers get past what was queued before
        the message being handled (what they bring back is applied meanwhile, in order); the
        manager holds its other messages until then. Not while stopping."""
        marker = _Request(_nothing, (), "settle")
        if not self._lane_order.take_place(self.lanes, marker) and not self.closed:
            self.hold_until(marker)

    def schedule_retry(self, eff: Retry) -> None:
        """A restart's ``init`` failed: its next attempt comes in ``eff.delay`` seconds, as a
        message of the mailbox (the manager serves the others meanwhile)."""
        timer = threading.Timer(eff.delay, self.post_retry)
        timer.args = (eff.handler, timer)
        timer.daemon = True
        self.retries.add(timer)
        timer.start()

    def post_retry(self, handler: Any, timer: threading.Timer) -> None:
        """A restart's next attempt is due (on the timer's thread)."""
        self.retries.discard(timer)
        with contextlib.suppress(ManagerNotRunning):
            self.post(_Request(self.core.retry_restart, (handler,), "restart"), self)

    def watch(self, owner: Any) -> None:
        if owner in self.watched:
            return
        reg = self.arming
        if reg is None or reg.thread is not owner:
            reg = _prepare_owner(owner, from_owner=False)
        self.watched[owner] = reg.subscribe(self) if reg is not None else None

    def unwatch(self, owner: Any) -> None:
        reg = self.watched.pop(owner, None)
        if reg is not None:
            reg.unsubscribe(self)

    # -- isolated handlers (see genevent._lanes; this server is their host) ------------------

    def on_lane(self, ident: int) -> bool:
        """True on the thread of one of this manager's isolated handlers (``ident``: the
        calling thread's)."""
        lane = running_lane()
        return (
            isinstance(lane, ThreadLane)
            and lane.host is self
            and lane.thread is not None
            and lane.thread.ident == ident
            and lane in self.lanes
        )

    def isolated(self, req: _Request) -> bool:
        """Requests that isolated handlers concern: a call to one is passed on to it; a
        ``sync_notify`` is answered once they handled its event too; a request that must see
        the table gen_event would show (``takes_its_place``) waits until they are past what
        was queued before it, the manager holding the messages behind it meanwhile (see
        :meth:`hold_until`). True when ``req`` was taken care of (False: run it now)."""
        what = req.what
        core = self.core
        if what == "call" and pass_call(core, req.args[0], req.args[1], req):
            return True
        if what == "sync_notify":
            core.requests += 1
            req.proc, event, req.args = _nothing, req.args[0], ()
            req.what = what + CAUGHT_UP
            try:
                self.dispatch(event)
            finally:  # answered once every isolated handler handled it too
                self.reap()
                self.after([e.lane for e in core.entries if e.lane is not None], req)
            return True
        args = req.args[1:] if req.proc is _swap_proc else req.args
        if not takes_its_place(core, what, args):
            return False
        order = self._lane_order
        if order.take_place(self.lanes, req):
            return False  # every isolated handler is past it: it runs now
        if what not in _INTERNAL:
            core.requests += 1
        if req.proc is _CALL:  # by then the handler it names may be isolated: the core's way
            req.proc = core.call
        req.what = what + CAUGHT_UP
        if not self.closed:  # stopping: it runs in its turn, the stop handles the rest
            self.hold_until(req)
        return True

    def hold_until(self, req: _Request) -> None:
        """``req`` waits for its turn among what the isolated handlers bring back: meanwhile
        the manager applies those (the messages that do not wait), and holds every other
        message, in order, until ``req`` ran; then they are back at the front of the mailbox.
        A stop ends the hold (the request then runs in its turn while the manager stops)."""
        held: deque[Any] = deque()
        mailbox = self.mailbox
        order = self._lane_order
        try:
            while order.holds(req):
                if mailbox:
                    msg = mailbox.popleft()
                    if msg.__class__ is _Request and msg.what in _LANE_RESULTS:
                        self.handle(msg)
                        continue
                    held.append(msg)
                    if msg.__class__ is _Request and msg.proc is _STOP:
                        return
                    continue
                self.sleeping = True
                if mailbox:  # re-check: a poster may have appended before seeing the flag
                    self.sleeping = False
                    continue
                self.run_lock.release()
                self.wakeup.acquire()
                self.run_lock.acquire()
                self.sleeping = False
        finally:
            mailbox.extendleft(reversed(held))

    def after(self, lanes: list[Lane], req: _Request) -> None:
        """Post ``req`` back to the mailbox once every lane in ``lanes`` caught up."""
        when_caught_up(lanes, lambda: self.lane_post(req))

    def reap(self) -> None:
        """After the table changed: lanes serve their new entries; unused ones are closed."""
        self.lane_dropped += reap(self.core, self.lanes, self.fresh)

    def lane_post(self, req: _Request) -> None:
        """Post a lane's message to the mailbox (any thread): accepted until the manager is
        sealed (a stopping manager still drains), then refused."""
        with self.seal_lock:
            sealed = self.sealed
            if not sealed:
                self.mailbox.append(req)
        if sealed:
            _fail(req, ManagerNotRunning(self.label(), stopped_before(req.what)))
            return
        if self.sleeping:
            self.wake()

    def lane_outcome(
        self,
        lane: Lane,
        entry: Entry,
        out: Raised | Returned,
        message: Any,
        callback: str,
        seq: float,
    ) -> None:
        """Host side of an isolated handler: an outcome that changes the table."""
        req = _Request(applied, (self.core, entry, out, message, callback), "lane")
        req.via = (lane, seq)
        self.lane_post(req)

    def lane_call_outcome(
        self, lane: Lane, req: Any, entry: Entry, out: Raised | Returned, request: Any, seq: float
    ) -> None:
        """Host side of an isolated handler: a call's outcome that changes the table (the
        caller's request comes back to the mailbox, to be answered once it is applied)."""
        req.proc, req.args, req.what = call_applied, (self.core, entry, out, request), "lane call"
        req.via = (lane, seq)
        self.lane_post(req)

    def lane_recheck(self) -> None:
        """Host side of an isolated handler: it passed a place an outcome waits for."""
        self.lane_post(_Request(_nothing, (), "lane order"))

    def lane_reply(self, req: Any, value: Any) -> None:
        """Host side of an isolated handler: a plain reply, straight to the caller."""
        _answer(req, value)

    def lane_fail(self, req: Any, exc: BaseException) -> None:
        """Host side of an isolated handler: the call could not be answered."""
        _fail(req, exc)

    def lane_wake(self) -> None:
        """Host side of an isolated handler: it went idle (``stop`` may wait for that)."""
        if self.settling and self.sleeping:
            self.wake()

    def lane_job(self, eff: Invoke) -> Raised | Returned:
        """Run the core's invocation in the isolated handler's thread and wait for it; while
        stopping, for at most the rest of its ``stop_timeout`` (then it is left behind)."""
        lane: ThreadLane = eff.via
        if not lane.started:
            self.lanes[lane] = None
            self.fresh.append(lane)
        idle = lane.idle()
        fut = lane.job(eff)
        if self.stop_started is None:
            return fut.result()
        if self.exit_until is not None and not idle:
            # interpreter exit: a handler inside a callback is not waited for now, so that
            # the others are terminated first; its terminate runs when the callback returns,
            # and is waited for (up to the exit hook's deadline) once the others are done
            self.deferred.append((lane, fut))
            return Returned(None)
        now = _monotonic()
        by = lane.stop_by(now, afresh=idle)  # its stop timeout counts from when it is told
        try:
            return fut.result(max(by - now, 0.0))
        except concurrent.futures.TimeoutError:
            self.abandon(lane)
            return lane.left_behind_outcome(eff)

    def abandon(self, lane: Lane) -> None:
        if leave_behind(self.label(), lane):
            self.left_behind += 1
        self.core.begin_stop(True)  # the stop timed out: nothing is restarted any more

    def settle_lanes(self) -> bool:
        """Stopping: wait until every isolated handler handled what it was given, each for at
        most its ``stop_timeout`` from when it is told to stop (then it is left behind). True
        if the mailbox got messages meanwhile (their outcomes): the caller drains it and comes
        back."""
        if self.stop_started is None:
            self.stop_started = _monotonic()
        while True:
            if self.mailbox:
                return True
            busy = [lane for lane in self.lanes if not lane.idle()]
            if not busy:
                return False
            now = _monotonic()
            if self.exit_drain_until is not None and now >= self.exit_drain_until:
                return False  # interpreter exit: terminate what can be (see lane_job)
            late = [lane for lane in busy if now >= lane.stop_by(now)]
            for lane in late:
                self.abandon(lane)
            if late:
                if self._lane_order:  # outcomes waiting for a lane left behind wait no more
                    self.lane_recheck()
                continue
            self.settling = self.sleeping = True
            try:
                if self.mailbox or all(lane.idle() for lane in busy):
                    continue
                until = min(lane.stop_by(now) for lane in busy)
                self.wakeup.acquire(True, until - now)
            finally:
                self.settling = self.sleeping = False

    def await_deferred(self) -> None:
        """Interpreter exit: wait, up to the exit hook's deadline, for the terminates of the
        handlers that were inside a callback; those still running then are left behind."""
        deferred, self.deferred = self.deferred, []
        for lane, fut in deferred:
            remaining = (self.exit_until or 0.0) - _monotonic()
            try:
                fut.result(max(remaining, 0.0))
            except concurrent.futures.TimeoutError:
                self.abandon(lane)

    def stop(self, req: _Request) -> None:
        interrupted = self.finish([req], None)
        if interrupted is not None:
            log.error(
                "genevent manager %r: %s while stopping",
                self.label(),
                type(interrupted).__name__,
                exc_info=interrupted,
            )

    def finish(self, stops: list[_Request], interrupted: BaseException | None) -> Any:
        """Stop: refuse new messages, handle every message accepted before (a notify that
        races this is either handled here or refused), terminate every handler, free the name
        and answer ``stops``. Returns the first KeyboardInterrupt/SystemExit met, if any."""
        with self.post_lock:
            self.closed = True
        self.streams_stopping()
        self.core.begin_stop(self.dropping)  # see there: which restarts still happen
        for timer in list(self.retries):
            timer.cancel()
        self.retries.clear()
        mailbox = self.mailbox
        late = 0
        while True:
            while mailbox:
                msg = mailbox.popleft()
                try:
                    if self.dropping and _droppable(msg):  # raced stop(drain=False): dropped
                        late += 1
                    elif msg.__class__ is not _Request:
                        self.dispatch(msg)
                    elif msg.proc is _STOP:
                        stops.append(msg)
                    elif self.dropping and msg.what not in _LANE_RESULTS:
                        why = stopped_before(msg.what)
                        _fail(msg, ManagerNotRunning(self.label(), why))
                    else:  # what isolated handlers bring back is applied even then
                        self.handle(msg)
                except BaseException as exc:  # the message was finished; remember, go on
                    interrupted = interrupted or exc
            if self.lanes:
                if self.dropping:  # what the last event gave the lanes is dropped too
                    self.drop_lanes()
                if self.settle_lanes():
                    continue
            with self.seal_lock:
                if not mailbox:
                    self.sealed = True
                    self.dropped += late
                    break
        if late:
            log_backlog(self.label(), late, 0, "that raced stop(drain=False)")
        if self._lane_order:
            interrupted = self.flush_lane_results() or interrupted
        if not self.core.stopped:
            if self.lanes and self.stop_started is None:
                self.stop_started = _monotonic()
            try:
                self.drive(self.core.stop())
            except BaseException as exc:
                interrupted = interrupted or exc
        self.await_deferred()
        self.shutdown()
        for req in stops:
            _answer(req, None)
        return interrupted

    def shutdown(self) -> None:
        with self.post_lock, self.seal_lock:
            self.closed = True
            drained = self.sealed
            self.sealed = True
            pending = list(self.mailbox)
            self.mailbox.clear()
        if not drained and (lost := sum(m.__class__ is not _Request for m in pending)):
            self.dropped += lost
            log.error("genevent manager %r dropped %d queued events", self.label(), lost)
        if self.bound is not None:
            self.room()
            self.bound.flush_log(self.label())
        if self.name is not None:
            mgr = self.public()
            if mgr is not None:
                _registry.unregister(self.name, mgr)
        for reg in self.watched.values():
            if reg is not None:
                reg.unsubscribe(self)
        self.watched.clear()
        for lane in self.lanes:
            self.lane_dropped += lane.counts.dropped
            lane.close()
        self.lanes = {}
        for stream in list(self.streams or ()):  # every stream opened on it ends
            stream.manager_stopped()
        self.streams = None
        self.fresh.clear()
        self.core.lane_edits = None
        _live.discard(self)
        for msg in pending:
            if msg.__class__ is _Request:
                _fail(
                    msg,
                    ManagerNotRunning(self.label(), f" (it stopped before answering {msg.what})"),
                )
        self.stopped.set()


def _no_public() -> None:
    return None


def _abandon(server: _Server) -> None:
    """The public manager was collected while running: stop it (weakref.finalize callback)."""
    if server.closed:
        return
    with contextlib.suppress(ManagerNotRunning):
        server.post(_Request(_STOP, (), "stop"), server)  # it drains what it accepted first
    # after the stop is posted: under ``-W error`` the warning raises (and is printed)
    warnings.warn(
        f"genevent manager {server!r} was garbage collected while running; stopping it "
        "(call stop() or use 'with threads.start() as mgr:')",
        ResourceWarning,
        stacklevel=1,
    )


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
        raise srv.timeout_error(what, timeout, ahead, args)
    wrapped = asyncio.wrap_future(fut)
    if timeout is None:
        return await wrapped
    try:
        return await asyncio.wait_for(wrapped, timeout)
    except TimeoutError:
        if fut.done() and not fut.cancelled():  # the answer itself was a timeout error
            raise
        raise srv.timeout_error(what, timeout, ahead, args) from None


_live: set[_Server] = set()
