"""The thread runtime's manager thread (:class:`_Server`): its mailbox, its drain loop, the
fast paths of its requests, and the calls isolated handlers make to it (hosting them is in
:mod:`._lanes_host`, stopping in :mod:`._stop`).
The public :class:`genevent.threads.EventManager` wraps one."""

from __future__ import annotations

import concurrent.futures
import contextlib
import sys
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable
from itertools import repeat
from operator import length_hint as _left
from typing import Any, Protocol

from .._core import (
    CONCERNED,
    COUNTED,
    LANE_RESULTS,
    MAYBE_INSTRUCTION,
    Entry,
    HandlerExit,
    Invoke,
    Kind,
    ManagerCore,
    Outcome,
    Procedure,
    Raised,
    Retry,
    Returned,
    Settle,
    TellOwner,
    Unwatch,
    Watch,
    caught_up_detail,
    sole_target,
)
from .._driver import (
    CRASHES,
    FATAL,
    callback_in,
    drive_sync,
    log,
    stack_frames,
    take_back,
    tell_owner,
)
from .._errors import (
    GenEventError,
    ManagerNotRunning,
)
from .._lanes import (
    Lane,
    Order,
    ThreadLane,
    applied,
    call_applied,
    reap,
    running_lane,
)
from .._mailbox import Bound
from .._metrics import Timings
from . import _lanes_host, _stop
from ._owners import _OwnerWatch, _prepare_owner
from ._requests import (
    _CALL,
    _STOP,
    _SYNC_NOTIFY,
    _allocate_lock,
    _answer,
    _fail,
    _get_ident,
    _nothing,
    _Request,
)


class _Public(Protocol):
    """What the server needs of the public :class:`genevent.threads.EventManager` it serves
    (defined here: this module sits below the public one, which imports it)."""

    @property
    def is_running(self) -> bool: ...


# -- the manager's thread --------------------------------------------------------------------


class _Server:
    """Everything the manager's thread needs. The thread references this, never the public
    :class:`EventManager`, so that an abandoned manager can be collected (and then stopped)."""

    #: a bounded mailbox's limits, counts and waiting producers (set before the thread starts)
    bound: Bound | None = None
    #: set by a stop that drops the backlog: what races it is dropped too, not handled
    dropping = False
    #: at interpreter exit: until when isolated handlers may catch up, and the deadline of
    #: the whole stop (the exit hook's); see :func:`._lanes_host.lane_job`
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
        #: interpreter exit: terminates of isolated handlers inside a callback (see
        #: _lanes_host.lane_job)
        self.deferred: list[tuple[Lane, concurrent.futures.Future[Raised | Returned]]] = []
        #: the streams opened on it (made on first use)
        self.streams: weakref.WeakSet[Any] | None = None

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

    def interrupt(self) -> None:
        """A KeyboardInterrupt or SystemExit ran through an inline request: stop as by stop."""
        with contextlib.suppress(ManagerNotRunning):
            self.post(_Request(_STOP, (), Kind.STOP), self)

    def owner_down(self, owner: Any, reason: BaseException | None) -> None:
        """An owner thread ended (called from that thread, or from its watcher)."""
        with contextlib.suppress(ManagerNotRunning):
            self.post(_Request(self.core.owner_down, (owner, reason), Kind.OWNER_DOWN), self)

    # -- the loop (manager thread) ------------------------------------------------------------

    def run(self) -> None:
        self.ident = _get_ident()
        mailbox = self.mailbox
        popleft = mailbox.popleft
        core = self.core
        wakeup = self.wakeup
        outcome = self.event_outcome
        seen: object = None  # the snapshot ``sole`` was read from
        sole = None
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
                                _stop.stop(self, msg)
                                return
                            self.handle(msg)
                            targets = core.cached_targets or core.event_targets
                            base = core.events - i - 1 + requests  # handle may count an event
                            continue
                        if targets is not seen:  # a new snapshot: one handler, or not
                            seen, sole = targets, self.sole(targets)
                        if sole:  # one handler: no walk over the snapshot (the core's rule)
                            try:
                                result = sole(msg)
                            except CRASHES as exc:
                                out: Outcome = Raised(exc)
                            else:
                                if result is None:  # the core's needs_attention, inlined
                                    continue
                                out = Returned(result)
                            i = batch - _left(it) - 1
                            core.events = base + i + 1 - requests
                            outcome(seen[0][0], out, msg)
                            targets = core.event_targets
                            continue
                        for entry, fn in targets:
                            try:
                                result = fn(msg)
                            except CRASHES as exc:
                                i = batch - _left(it) - 1
                                core.events = base + i + 1 - requests
                                outcome(entry, Raised(exc), msg)
                                targets = core.event_targets
                            else:
                                if result is not None:
                                    i = batch - _left(it) - 1
                                    core.events = base + i + 1 - requests
                                    outcome(entry, Returned(result), msg)
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
            _stop.finish(self, [], exc)
            log.error(
                "genevent manager %r stopped: %s", self.label(), type(exc).__name__, exc_info=exc
            )
        finally:
            if not self.stopped.is_set():
                _stop.shutdown(self)
            # a later thread may get this id: it must not pass for the manager's own thread
            self.ident = None
            run_lock.release()

    def handle(self, req: _Request) -> None:
        if req.what in LANE_RESULTS:
            _lanes_host.lane_results(self, req)
            return
        if (
            self.core.isolated
            and req.what in CONCERNED
            and not req.caught_up
            and _lanes_host.isolated(self, req)
        ):
            return
        proc = req.proc
        if proc is _CALL:  # the usual request first, with the fast path's common case inline
            self.core.count_request()
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
        elif req.what in COUNTED and not req.caught_up:
            self.core.count_request()
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
                self.event_outcome(entry, Raised(exc), event)
            else:
                if result is not None:
                    self.event_outcome(entry, Returned(result), event)

    def event_outcome(self, entry: Entry, out: Outcome, event: Any) -> None:
        """``entry``'s plain handle_event raised or returned something (``out``): the core
        acts on it (a KeyboardInterrupt or SystemExit first lets the handlers after it see
        ``event``, then goes on: see ``_stop.interrupted``)."""
        if isinstance(out, Raised) and isinstance(out.exception, FATAL):
            _stop.interrupted(self, entry, out.exception, event)
        self.drive(self.core.event_result(entry, out, event))

    def sole(self, targets: Any) -> Any:
        """The drain loop's path for a snapshot of one handler: its function, else None (the
        core's rule, :func:`sole_target`). A method, so a test variant can turn it off."""
        return sole_target(targets)

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
            _lanes_host.settle(self)

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
            self.post(_Request(self.core.retry_restart, (handler,), Kind.RESTART), self)

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
            _fail(req, ManagerNotRunning(self.label(), caught_up_detail(req.what, req.caught_up)))
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
        req = _Request(applied, (self.core, entry, out, message, callback), Kind.LANE)
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
        self.lane_post(_Request(_nothing, (), Kind.LANE_ORDER))

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
        """Run the core's invocation in the isolated handler's thread and wait for it (see
        :func:`genevent.threads._lanes_host.lane_job`)."""
        return _lanes_host.lane_job(self, eff)


def _no_public() -> None:
    return None
