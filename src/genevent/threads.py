"""The thread runtime: an event manager is one thread with one mailbox.

Handlers are the same classes as for :mod:`genevent.aio`, with plain (non-coroutine) methods
only: a handler with a coroutine method is refused with :class:`~genevent.InvalidHandler`.
Every handler callback and every ``on_exit`` owner callback runs on the manager's thread (unless
``inline=True``, below), one at a time, in arrival order, so handlers need no locks. A handler
added with ``isolation=True`` runs on a thread of its own instead, still one callback at a
time and in arrival order (see :meth:`EventManager.add_handler`).

Which calls are safe from where:

* ``notify`` and ``send`` never block; they are safe from any thread, including a handler of
  this manager (the message is queued behind the current one).
* Every other request (``sync_notify``, ``call``, ``add_handler``, ``add_sup_handler``,
  ``delete_handler``, ``swap_handler``, ``swap_sup_handler``, ``which_handlers``, ``stop``,
  ``wait_stopped``) blocks the calling thread until the manager answered, or until its
  ``timeout`` (:class:`~genevent.CallTimeout`; ``call`` waits 5 s by default, the others
  forever). Made on the manager's own thread (from a handler or an ``on_exit`` callback), it
  raises :class:`~genevent.CallingSelf` at once instead of deadlocking; so do the
  future-returning forms, whose result the manager thread could never wait for.
* From asyncio code, ``call_future`` / ``sync_notify_future`` / ``stop_future`` return a
  :class:`concurrent.futures.Future` (``await asyncio.wrap_future(f)``), and the coroutines
  ``acall`` / ``async_sync_notify`` do that for you. A blocking method called inside a running
  event loop is allowed: it works, but it blocks that loop until the answer comes.

Inline requests (``start(inline=True)``): when the manager is idle (its mailbox is empty and its
thread is parked), ``call`` and ``sync_notify`` run in the calling thread while it holds the
manager's run lock, without a context switch (about 1 µs instead of tens). Every ordering
guarantee holds: callbacks still run one at a time, the caller's earlier messages have all been
handled, and a callback calling its own manager still gets ``CallingSelf``. What changes:
handler and ``on_exit`` callbacks may then run on the caller's thread (so thread-local state in
a handler is not safe), and the ``timeout`` of a request that runs inline is checked when it
is done rather than enforced while it runs: if the handlers took longer, the caller gets
:class:`~genevent.CallTimeout` and the reply is dropped, as when a queued request times out,
but only once they finished. ``which_handlers`` runs no handler code and
is answered inline whenever the manager is idle, whatever ``inline`` says.

Arguments are checked at the call, before anything is queued or run, the same way on every path
(queued, inline, blocking, awaiting): ``timeout`` must be None (wait as long as it takes),
``math.inf`` (the same) or a number of seconds >= 0 (else :class:`TypeError` /
:class:`ValueError`); a handler reference must be a handler class or ``(class, id)`` (else
:class:`~genevent.InvalidHandler`); ``on_exit`` must be callable (else
:class:`~genevent.InvalidOwner`). ``timeout=0`` never waits, as in OTP: the request is delivered
(never run inline) and handled in its turn, and the caller gets :class:`~genevent.CallTimeout`
at once (the reply is dropped). The future-returning forms take no timeout and never raise for
the request itself: its failure arrives through the future.

Owners (``add_sup_handler``, ``swap_sup_handler``): the owner is the calling thread unless
``owner=`` names another started :class:`threading.Thread`. The owner's end is detected
without polling: the calling thread gets a sentinel in a :class:`threading.local`, which
CPython tears down when the thread ends (normally or by an exception); another thread is
watched by a daemon thread that joins it (one per watched thread, shared by every
manager; it lets go within a second of the last ``Unwatch``). The reason handed to
``terminate`` is ``OwnerExited(None)`` after a normal end and ``OwnerExited(exc)`` after the
thread died of ``exc`` (seen through a chained :func:`threading.excepthook`; ``None`` if
someone replaced that hook after genevent installed it). The main thread never ends before
the interpreter does: its handlers are terminated with :class:`~genevent.Stopped` by the exit
hook. In a thread pool the owner is the worker thread, which usually outlives the task.

Lifetime: :meth:`EventManager.stop` joins the manager's thread (unless called on it). Manager
threads are daemons, and an :mod:`atexit` hook stops the managers still running, waiting at
most :data:`EXIT_TIMEOUT` seconds in all. A manager that becomes garbage while running is
stopped (its handlers are terminated with :class:`~genevent.Stopped`) and a
:class:`ResourceWarning` is issued: the thread references the manager's internals only.
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import contextlib
import os
import sys
import threading
import time
import warnings
import weakref
from collections import deque
from collections.abc import Callable, Hashable
from types import TracebackType
from typing import Any, Final, Generic, TypeVar, overload

from . import _functions, _registry
from ._checks import check_on_exit, check_ref, check_timeout
from ._core import (
    Args,
    Entry,
    HandlerExit,
    Invoke,
    ManagerCore,
    Procedure,
    Raised,
    Remove,
    RestartPolicy,
    Returned,
    Swap,
    TellOwner,
    Unwatch,
    Watch,
    restart_spec,
)
from ._driver import CRASHES, FATAL, callback_in, drive_sync, log, take_back, tell_owner
from ._errors import (
    CallingSelf,
    CallTimeout,
    GenEventError,
    InvalidOwner,
    ManagerNotRunning,
    _name,
)
from ._handler import HandlerRef
from ._lanes import (
    CAUGHT_UP,
    CONCERNED,
    STOP_TIMEOUT,
    Barrier,
    Lane,
    LaneOverflow,
    ThreadLane,
    applied,
    call_applied,
    check_isolation,
    lanes_to_wait_for,
    left_behind,
    reap,
)
from ._mailbox import Bound, check_mailbox, log_backlog, take_backlog
from ._metrics import ManagerStats, Timings, build_stats, count_events
from ._overflow import OverflowPolicy
from ._streams import EventStream
from ._text import short

__all__ = ("EXIT_TIMEOUT", "EventManager", "start")

E = TypeVar("E")
Req = TypeVar("Req")
Rep = TypeVar("Rep")
T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])

EXIT_TIMEOUT: Final = 2.0
"""At interpreter exit, how long (seconds, in all) the exit hook waits for running managers to
terminate their handlers."""

_EXIT_DRAIN_SHARE: Final = 0.75
"""The share of :data:`EXIT_TIMEOUT` the exit hook lets managers drain their mailboxes; then
it drops what is left (counted) so that their handlers are terminated in the rest."""

_JOINER_RELEASE: Final = 1.0  # how often an idle owner-watching thread checks it is still needed

_STOP: Final = object()
_INTERNAL: Final = frozenset(
    {"info", "owner_down", "stream close", "lane", "lane call"}
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

    __slots__ = ("args", "error", "future", "lock", "proc", "value", "watch", "what")

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


def _answer(req: _Request, value: Any) -> None:
    fut = req.future
    if fut is not None:
        with contextlib.suppress(concurrent.futures.InvalidStateError):
            fut.set_result(value)
        return
    lock = req.lock
    if lock is not None:
        req.value = value
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
        lock.release()


# -- the manager's thread --------------------------------------------------------------------


class _Server:
    """Everything the manager's thread needs. The thread references this, never the public
    :class:`EventManager`, so that an abandoned manager can be collected (and then stopped)."""

    #: a bounded mailbox's limits, counts and waiting producers (set before the thread starts)
    bound: Bound | None = None
    #: set by a stop that drops the backlog: what races it is dropped too, not handled
    dropping = False

    def __init__(self, name: str | None, inline: bool, timing: bool = False) -> None:
        self.name = name
        self.inline = inline
        self.public: Callable[[], EventManager[Any] | None] = _no_public
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
        #: the lanes of isolated handlers (started ones; see :mod:`genevent._lanes`)
        self.lanes: list[Lane] = []
        self.left_behind = 0
        #: events and infos dropped by the bounded mailboxes of lanes that are gone
        self.lane_dropped = 0
        #: True while ``stop`` waits for isolated handlers to catch up (they wake it)
        self.settling = False
        self.stop_started: float | None = None

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
        stops = [m for m in rest if m.proc is _STOP]
        with self.post_lock:
            self.mailbox.extend(stops)
        for msg in rest:
            if msg.proc is not _STOP:
                _fail(msg, ManagerNotRunning(self.label(), f" (it stopped before {msg.what})"))
        self.room()
        if self.sleeping:
            self.wake()
        return events, sum(1 for m in rest if m.proc is not _STOP)

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
                    for i in range(batch):
                        try:
                            msg = popleft()
                        except IndexError:  # taken by stop(drain=False) or drop_oldest
                            batch = i
                            break
                        if msg.__class__ is request:
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
                                    core.events = base + i + 1 - requests
                                    if isinstance(exc, FATAL):
                                        self.interrupted(entry, exc, msg)
                                    drive(core.event_result(entry, Raised(exc), msg))
                                    targets = core.event_targets
                                else:
                                    if result is not None:
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
                    cls = result.__class__
                    if cls is not Remove and cls is not Swap and cls is not type:
                        req.value = result
                        lock.release()
                        return
                    outcome = Returned(result)
                self.finish_call(req, entry, outcome, request)
                return
        elif req.what not in _INTERNAL:
            self.core.requests += 1
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
            _fail(req, ManagerNotRunning(self.label(), f" (it failed handling {req.what})"))
            raise
        else:
            _answer(req, result)
        if self.lanes:
            self.reap()

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
            _fail(req, ManagerNotRunning(self.label(), f" (it failed handling {req.what})"))
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
        cls = reply.__class__
        # a class as reply may be Remove or Swap (a forgotten "()"): the core tells those apart
        if cls is Remove or cls is Swap or cls is type:
            return self.drive(core.call_result(entry, Returned(reply), request))
        return reply

    def running_callback(self) -> str | None:
        """The handler callback running right now (``"Class.method"``), if any: read from the
        stack of the thread running this manager's handlers (an inline caller's, or its own)."""
        frames = sys._current_frames()
        for ident in (self.inline_ident, self.ident):
            frame = frames.get(ident) if ident is not None else None
            codes = []
            while frame is not None:
                codes.append(frame.f_code)
                frame = frame.f_back
            codes.reverse()
            name = callback_in(codes)
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

    def watch_effect(self, eff: Watch | Unwatch) -> None:
        if type(eff) is Watch:
            self.watch(eff.owner)
        else:
            self.unwatch(eff.owner)

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
        """True on the thread of one of this manager's isolated handlers."""
        return any(
            lane.thread is not None and lane.thread.ident == ident
            for lane in list(self.lanes)
            if isinstance(lane, ThreadLane)
        )

    def isolated(self, req: _Request) -> bool:
        """Requests that isolated handlers concern: a call to one is passed on to it; a request
        that must see what they did (``lanes_to_wait_for``) waits for them, without holding
        the manager, and comes back to the mailbox. True when ``req`` was taken care of."""
        what = req.what
        core = self.core
        if what == "call":
            entry = core.find(req.args[0])
            if entry is not None and entry.lane is not None and entry.call_fn is not None:
                core.requests += 1
                entry.lane.post_call(req.args[1], req)
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
        lanes = lanes_to_wait_for(core, what, args)
        if not lanes:
            return False
        if what not in _INTERNAL:
            core.requests += 1
        if req.proc is _CALL:  # by then the handler it names may be isolated: the core's way
            req.proc = core.call
        req.what = what + CAUGHT_UP
        self.after(lanes, req)
        return True

    def after(self, lanes: list[Lane], req: _Request) -> None:
        """Post ``req`` back to the mailbox once every lane in ``lanes`` caught up."""
        if not lanes:
            self.lane_post(req)
            return
        barrier = Barrier(len(lanes), lambda: self.lane_post(req))
        for lane in lanes:
            lane.mark(barrier)

    def reap(self) -> None:
        """After the table changed: lanes serve their new entries; unused ones are closed."""
        before = list(self.lanes)
        reap(self.core, self.lanes)
        if len(before) != len(self.lanes):
            kept = {id(lane) for lane in self.lanes}
            self.lane_dropped += sum(x.counts.dropped for x in before if id(x) not in kept)

    def lane_post(self, req: _Request) -> None:
        """Post a lane's message to the mailbox (any thread): accepted until the manager is
        sealed (a stopping manager still drains), then refused."""
        with self.seal_lock:
            sealed = self.sealed
            if not sealed:
                self.mailbox.append(req)
        if sealed:
            _fail(req, ManagerNotRunning(self.label(), f" (it stopped before {req.what})"))
            return
        if self.sleeping:
            self.wake()

    def lane_outcome(
        self, lane: Lane, entry: Entry, out: Raised | Returned, message: Any, callback: str
    ) -> None:
        """Host side of an isolated handler: an outcome that changes the table."""
        self.lane_post(_Request(applied, (self.core, entry, out, message, callback), "lane"))

    def lane_call_outcome(
        self, lane: Lane, req: Any, entry: Entry, out: Raised | Returned, request: Any
    ) -> None:
        """Host side of an isolated handler: a call's outcome that changes the table (the
        caller's request comes back to the mailbox, to be answered once it is applied)."""
        req.proc, req.args, req.what = call_applied, (self.core, entry, out, request), "lane call"
        self.lane_post(req)

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
            self.lanes.append(lane)
        fut = lane.job(eff)
        if self.stop_started is None:
            return fut.result()
        remaining = self.stop_started + lane.stop_timeout - _monotonic()
        try:
            return fut.result(max(remaining, 0.0))
        except concurrent.futures.TimeoutError:
            self.abandon(lane)
            return Returned(None)

    def abandon(self, lane: Lane) -> None:
        if not lane.abandoned:
            left_behind(self.label(), lane)
            lane.abandon()  # type: ignore[attr-defined]
            self.left_behind += 1

    def settle_lanes(self) -> bool:
        """Stopping: wait until every isolated handler handled what it was given, each for at
        most its ``stop_timeout`` (then it is left behind). True if the mailbox got messages
        meanwhile (their outcomes): the caller drains it and comes back."""
        if self.stop_started is None:
            self.stop_started = _monotonic()
        start = self.stop_started
        while True:
            if self.mailbox:
                return True
            busy = [lane for lane in self.lanes if not lane.idle()]
            if not busy:
                return False
            now = _monotonic()
            late = [lane for lane in busy if now >= start + lane.stop_timeout]
            for lane in late:
                self.abandon(lane)
            if late:
                continue
            self.settling = self.sleeping = True
            try:
                if self.mailbox or all(lane.idle() for lane in busy):
                    continue
                self.wakeup.acquire(True, min(start + lane.stop_timeout for lane in busy) - now)
            finally:
                self.settling = self.sleeping = False

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
                    elif self.dropping:
                        why = f" (it stopped before {msg.what})"
                        _fail(msg, ManagerNotRunning(self.label(), why))
                    else:
                        self.handle(msg)
                except BaseException as exc:  # the message was finished; remember, go on
                    interrupted = interrupted or exc
            if self.lanes and self.settle_lanes():
                continue
            with self.seal_lock:
                if not mailbox:
                    self.sealed = True
                    self.dropped += late
                    break
        if late:
            log_backlog(self.label(), late, 0, "that raced stop(drain=False)")
        if not self.core.stopped:
            if self.lanes and self.stop_started is None:
                self.stop_started = _monotonic()
            try:
                self.drive(self.core.stop())
            except BaseException as exc:
                interrupted = interrupted or exc
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
        self.lanes = []
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


# -- owners ----------------------------------------------------------------------------------

_watch_lock = threading.Lock()
_watches: dict[threading.Thread, _OwnerWatch] = {}
_local = threading.local()
_previous_excepthook: Callable[[threading.ExceptHookArgs], Any] | None = None
_exiting = False


class _Sentinel:
    """Lives in one thread's :data:`_local`; its finalizer runs when that thread ends."""

    __slots__ = ("__weakref__",)


class _OwnerWatch:
    """Watches one owner thread for every manager that has a handler owned by it."""

    __slots__ = ("exc", "fired", "joiner", "local", "reason", "servers", "thread")

    def __init__(self, thread: threading.Thread) -> None:
        self.thread = thread
        self.servers: set[_Server] = set()
        self.fired = False
        self.reason: BaseException | None = None
        #: the exception the thread died of, recorded by the excepthook
        self.exc: BaseException | None = None
        #: True when a sentinel in the thread's locals reports its end
        self.local = False
        self.joiner: threading.Thread | None = None

    def subscribe(self, server: _Server) -> _OwnerWatch:
        """Report the thread's end to ``server``; return the watch that will (this one, or the
        one that replaced it after an idle watcher let go)."""
        with _watch_lock:
            if not self.fired:
                reg = _watches.setdefault(self.thread, self)
                reg.servers.add(server)
                if not reg.local and reg.joiner is None:
                    reg.joiner = threading.Thread(
                        target=reg._join, name=f"genevent-owner:{reg.thread.name}", daemon=True
                    )
                    reg.joiner.start()
                return reg
        server.owner_down(self.thread, self.reason)  # it ended before the watch began
        return self

    def unsubscribe(self, server: _Server) -> None:
        with _watch_lock:
            self.servers.discard(server)

    def fire(self) -> None:
        """The thread ended: tell every subscribed manager."""
        if _exiting:
            return
        with _watch_lock:
            if self.fired:
                return
            self.fired = True
            self.reason, self.exc = self.exc, None
            servers = list(self.servers)
            self.servers.clear()
            if _watches.get(self.thread) is self:
                del _watches[self.thread]
        for server in servers:
            server.owner_down(self.thread, self.reason)

    def _join(self) -> None:
        thread = self.thread
        while True:
            thread.join(_JOINER_RELEASE)
            if not thread.is_alive():
                self.fire()
                return
            with _watch_lock:
                if self.local or not self.servers:
                    self.joiner = None
                    if not self.local and _watches.get(thread) is self:
                        del _watches[thread]
                    return


def _fire_local(reg: _OwnerWatch) -> None:
    with contextlib.suppress(BaseException):
        reg.fire()


def _excepthook(args: threading.ExceptHookArgs) -> None:
    thread = args.thread
    if thread is not None:
        reg = _watches.get(thread)
        if reg is not None:
            reg.exc = args.exc_value
    hook = _previous_excepthook or threading.__excepthook__
    hook(args)


def _prepare_owner(owner: Any, *, from_owner: bool) -> _OwnerWatch | None:
    """The watch for ``owner`` (None for the main thread, which ends with the interpreter).
    ``from_owner``: called on the owner thread itself, so its locals can hold a sentinel."""
    global _previous_excepthook
    if owner is threading.main_thread():
        return None
    with _watch_lock:
        if _previous_excepthook is None:
            _previous_excepthook = threading.excepthook
            threading.excepthook = _excepthook
        reg = _watches.get(owner)
        if reg is None:
            reg = _OwnerWatch(owner)
            if from_owner:  # another thread's watch is registered by subscribe(), if ever
                _watches[owner] = reg
        if from_owner and not reg.local:
            sentinel = getattr(_local, "sentinel", None)
            if sentinel is None:
                sentinel = _local.sentinel = _Sentinel()
            weakref.finalize(sentinel, _fire_local, reg).atexit = False
            reg.local = True
        return reg


def _check_owner(owner: Any) -> tuple[threading.Thread, _OwnerWatch | None]:
    current = threading.current_thread()
    if owner is None or owner is current:
        return current, _prepare_owner(current, from_owner=True)
    if not isinstance(owner, threading.Thread):
        raise InvalidOwner(f"owner {short(owner)} cannot be watched: pass a threading.Thread")
    if owner.ident is None:
        raise InvalidOwner(f"owner {short(owner)} is not started")
    if isinstance(owner, threading._DummyThread) and owner not in _watches:
        raise InvalidOwner(
            f"owner {short(owner)} was not started by threading and cannot be joined; let it add "
            "the handler itself"
        )
    return owner, _prepare_owner(owner, from_owner=False)


# -- interpreter exit ------------------------------------------------------------------------

_live: set[_Server] = set()


@atexit.register
def _stop_all_at_exit() -> None:
    global _exiting
    _exiting = True
    _stop_servers(list(_live), EXIT_TIMEOUT)


def _stop_servers(servers: list[_Server], timeout: float) -> None:
    """Ask each manager to stop and wait ``timeout`` seconds in all for their threads: for
    most of it (:data:`_EXIT_DRAIN_SHARE`) while they drain their mailboxes; then what is left
    queued is dropped (counted in ``stats().dropped``) so that their handlers are terminated
    in the rest of the time. Log (as an error) what each one that did not make it leaves
    undone: the events dropped, and its handlers, which get no ``terminate``."""
    here = threading.current_thread()
    for server in servers:
        with contextlib.suppress(ManagerNotRunning):
            server.post(_Request(_STOP, (), "stop"), server)
    start = time.monotonic()
    deadline = start + timeout
    for server in servers:
        if server.thread is not here:
            server.thread.join(max(0.0, start + timeout * _EXIT_DRAIN_SHARE - time.monotonic()))
    late = [s for s in servers if s.thread is not here and s.thread.is_alive()]
    dropped = {server: server.drop_backlog() for server in late}
    for server in late:
        server.thread.join(max(0.0, deadline - time.monotonic()))
    for server in late:
        events, requests = dropped[server]
        if server.thread.is_alive():
            _log_exit_backlog(server, timeout, events, requests)
        elif events or requests:
            log_backlog(server.label(), events, requests, "when the interpreter exited")


def _log_exit_backlog(server: _Server, timeout: float, events: int, requests: int) -> None:
    refs = server.core.which_handlers()
    running = server.running_callback()
    log.error(
        "genevent: gave up on manager %s at exit after %g s%s: %d queued event%s dropped%s; "
        "handlers not terminated: %s",
        short(server.label()),
        timeout,
        f" ({running} was running)" if running else "",
        events,
        "" if events == 1 else "s",
        f" (and {requests} other request{'' if requests == 1 else 's'})" if requests else "",
        ", ".join(_name(ref) for ref in refs) if refs else "none",
        extra={
            "genevent": {
                "kind": "exit_backlog",
                "manager": server.label(),
                "dropped_events": events,
                "dropped_requests": requests,
                "not_terminated": refs,
                "running": running,
            }
        },
    )


def _after_fork_in_child() -> None:
    """In a forked child the manager threads do not exist: mark every copy stopped (no
    terminate runs here: the parent still owns those handlers) and free its name."""
    global _watch_lock
    _watch_lock = threading.Lock()
    _watches.clear()
    servers = list(_live)
    _live.clear()
    for server in servers:
        server.forked()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


# -- the public manager ----------------------------------------------------------------------


class EventManager(Generic[E]):
    """A thread-backed event manager (OTP's ``gen_event`` process). Create it with :func:`start`.

    ``EventManager[Event]`` accepts only handlers of ``Event``; ``notify`` only ``Event``.
    Use it as ``with threads.start() as mgr:`` to stop it (every handler terminated) when the
    block exits, normally or by an exception.
    """

    def __init__(
        self,
        name: str | None = None,
        *,
        inline: bool = False,
        timing: bool = False,
        bound: Bound | None = None,
    ) -> None:
        """Internal: use :func:`start`."""
        #: the name it is registered under, or None
        self.name = name
        srv = self._srv = _Server(name, inline, timing)
        if bound is not None:
            srv.bound = bound
        self._append = srv.mailbox.append
        if name is not None:
            _registry.register(name, self)
        srv.public = weakref.ref(self)
        try:
            srv.thread.start()
        except BaseException:
            if name is not None:
                _registry.unregister(name, self)
            raise
        srv.ident = srv.thread.ident
        _live.add(srv)
        self._finalizer = weakref.finalize(self, _abandon, srv)
        self._finalizer.atexit = False

    def __repr__(self) -> str:
        return repr(self._srv)

    # -- properties ---------------------------------------------------------------------------

    @property
    def queued(self) -> int:
        """How many messages (events, infos and requests) wait in the mailbox, not counting the
        one being handled: a snapshot, which other threads may change at once."""
        return len(self._srv.mailbox)

    def stats(self) -> ManagerStats:
        """What the manager and its handlers did (events, infos, requests, mailbox depth and
        high-water mark, drops, refusals, crashes, restarts, per-handler counts and, with
        ``start(timing=True)``, ``handle_event`` durations), read without stopping it."""
        srv = self._srv
        bound = srv.bound
        return build_stats(
            srv.core,
            name=self.name,
            ident=id(self),
            running=not srv.closed,
            queued=len(srv.mailbox),
            queued_events=count_events(srv.mailbox, _Request),
            high_water=srv.high_water,
            dropped=srv.dropped + (bound.counts.dropped if bound is not None else 0),
            refused=srv.refused + (bound.counts.refused if bound is not None else 0),
            timings=srv.timings,
            lane_dropped=srv.lane_dropped,
        )

    @property
    def maxsize(self) -> int | None:
        """The mailbox's bound (``start(maxsize=...)``), or None: unbounded."""
        bound = self._srv.bound
        return None if bound is None else bound.maxsize

    @property
    def thread(self) -> threading.Thread:
        """The thread the manager runs on."""
        return self._srv.thread

    @property
    def left_behind(self) -> int:
        """How many isolated handlers ``stop`` left behind because they did not finish within
        their ``stop_timeout`` (each logged; its thread, a daemon, left running)."""
        return self._srv.left_behind

    def _new_lane(
        self,
        handler: Any,
        isolation: Any,
        maxsize: int | None,
        overflow: Any,
        stop_timeout: float,
    ) -> Lane | None:
        """The lane of a handler to be added with ``isolation=True`` (checked), or None."""
        if isolation is not True and isolation is not False:
            raise ValueError(
                f"isolation must be True (a thread of its own) or False, not {isolation!r}"
            )
        check_isolation(maxsize, overflow, stop_timeout, isolation)
        if not isolation:
            return None
        return ThreadLane(self._srv, handler, maxsize, overflow, stop_timeout)

    @property
    def is_running(self) -> bool:
        """False once the manager has stopped (or is stopping)."""
        return not self._srv.closed

    def wait_stopped(self, timeout: float | None = None) -> None:
        """Block until the manager has stopped, every handler was terminated and its thread
        ended. Raises :class:`CallTimeout` after ``timeout`` seconds (0: at once unless it has
        already stopped)."""
        timeout = check_timeout(timeout)
        self._check_caller("wait_stopped")
        _wait_ended(self._srv, "wait_stopped", timeout)

    # -- asynchronous messages ----------------------------------------------------------------

    def notify(self, event: E) -> None:
        """Queue ``event`` for every handler's ``handle_event`` and return at once (OTP's
        ``notify``). Safe from any thread. Raises :class:`ManagerNotRunning` once stopped."""
        srv = self._srv
        if srv.closed:
            srv.refused += 1
            raise ManagerNotRunning(self)
        self._append(event)
        if srv.closed:  # stop was requested meanwhile: accepted only if it will be handled
            srv.late(event, self)
        if srv.sleeping:
            srv.wake()

    def send(self, message: Any) -> None:
        """Queue an info ``message`` for every handler's ``handle_info`` (OTP: any other message
        sent to the manager). Safe from any thread."""
        srv = self._srv
        try:
            srv.post(_Request(srv.core.info, (message,), "info"), self)
        except ManagerNotRunning:
            srv.refused += 1
            raise

    def notify_wait(self, event: E, *, timeout: float | None = None) -> None:
        """As :meth:`notify`, with a limit on the wait: under ``start(maxsize=...,
        overflow="block")``, when the mailbox is full, block for at most ``timeout`` seconds
        (None: as long as it takes, which is what ``notify`` does) for room, then raise
        :class:`~genevent.MailboxFull` (counted as refused). On an unbounded mailbox, one with
        room, or under another policy it never waits: it is :meth:`notify`."""
        if timeout is not None:
            check_timeout(timeout)
        self.notify(event)

    # -- waiting for an answer ----------------------------------------------------------------

    def _check_caller(self, what: str) -> None:
        srv = self._srv
        ident = _get_ident()
        if ident in (srv.ident, srv.inline_ident) or (srv.lanes and srv.on_lane(ident)):
            raise CallingSelf(self, what)

    def _request(
        self,
        proc: Any,
        args: tuple[Any, ...],
        what: str,
        timeout: float | None,
        watch: _OwnerWatch | None = None,
    ) -> Any:
        srv = self._srv
        ident = _get_ident()
        if (
            ident == srv.ident  # noqa: PLR1714 - compared one by one: no tuple built
            or ident == srv.inline_ident
            or (srv.lanes and srv.on_lane(ident))
        ):
            raise CallingSelf(self, what)
        req = _Request(proc, args, what)
        if watch is not None:
            req.watch = watch
        lock = req.lock = _allocate_lock()
        lock.acquire()
        ahead = len(srv.mailbox)
        srv.post(req, self)
        if timeout is None:
            lock.acquire()
        elif not timeout or not lock.acquire(True, timeout):  # 0: delivered, not waited for
            raise srv.timeout_error(what, timeout, ahead, args)
        error = req.error
        if error is not None:
            raise error
        return req.value

    def _submit(
        self, proc: Any, args: tuple[Any, ...], what: str
    ) -> concurrent.futures.Future[Any]:
        self._check_caller(what)
        srv = self._srv
        req = _Request(proc, args, what)
        fut = req.future = concurrent.futures.Future()
        try:
            srv.post(req, self)
        except ManagerNotRunning as exc:  # a future form answers through its future
            fut.set_exception(exc)
        return fut

    # -- requests -----------------------------------------------------------------------------

    def sync_notify(self, event: E, *, timeout: float | None = None) -> None:
        """Deliver ``event`` to every handler and return once all have handled it (OTP's
        ``sync_notify``). A handler crashing on it does not change the result. ``timeout=0``
        delivers it without waiting and raises :class:`CallTimeout`."""
        if timeout is not None:
            timeout = check_timeout(timeout)
        srv = self._srv
        if srv.inline and timeout != 0.0:
            self._check_caller("sync_notify")
            if srv.enter_inline():
                t0 = _monotonic()
                srv.core.requests += 1
                try:
                    srv.dispatch(event)
                except FATAL:
                    srv.interrupt()
                    raise
                finally:
                    srv.leave_inline()
                if timeout is not None and _monotonic() - t0 > timeout:
                    raise CallTimeout("sync_notify", timeout, queued_ahead=0)
                return
        self._request(_SYNC_NOTIFY, (event,), "sync_notify", timeout)

    def sync_notify_future(self, event: E) -> concurrent.futures.Future[None]:
        """As :meth:`sync_notify`, without blocking: the future is done once every handler has
        handled ``event``. Wait with ``f.result(timeout)`` or ``await asyncio.wrap_future(f)``."""
        return self._submit(_SYNC_NOTIFY, (event,), "sync_notify")

    async def async_sync_notify(self, event: E, *, timeout: float | None = None) -> None:
        """Coroutine form of :meth:`sync_notify` for asyncio code: awaits the answer without
        blocking the event loop."""
        timeout = check_timeout(timeout)
        ahead = len(self._srv.mailbox)
        fut = self._submit(_SYNC_NOTIFY, (event,), "sync_notify")
        await _await(fut, self._srv, "sync_notify", timeout, ahead)

    def call(
        self, handler: HandlerRef[Any, Req, Rep], request: Req, timeout: float | None = 5.0
    ) -> Rep:
        """Ask one handler: its ``handle_call(request)`` reply (OTP's ``call``, default timeout
        5 s; ``None`` or ``math.inf``: no timeout). Raises :class:`HandlerNotFound`,
        :class:`HandlerCrashed`, :class:`HandlerBadReturn`, :class:`CallNotSupported`,
        :class:`CallTimeout`, :class:`InvalidHandler` or :class:`ManagerNotRunning`. A
        timed-out request is still handled; its reply dropped. ``timeout=0`` always times out
        (as in OTP): the request is delivered and handled in its turn, and the caller gets
        :class:`CallTimeout` at once."""
        if timeout.__class__ is not float or not 0.0 < timeout < _FOREVER:
            timeout = check_timeout(timeout)
            if timeout == 0.0:  # never inline: delivered, and the caller times out at once
                check_ref(handler)
                return self._request(_CALL, (handler, request), "call", timeout)  # type: ignore[no-any-return]
        srv = self._srv
        if srv.inline:
            self._check_caller("call")
            if srv.enter_inline():
                t0 = _monotonic()
                srv.core.requests += 1
                try:
                    reply = srv.call(handler, request)
                except GenEventError:
                    if timeout is not None and _monotonic() - t0 > timeout:
                        raise srv.timeout_error("call", timeout, 0, (handler,)) from None
                    raise
                except FATAL:
                    srv.interrupt()
                    raise
                finally:
                    srv.leave_inline()
                if timeout is not None and _monotonic() - t0 > timeout:
                    raise srv.timeout_error("call", timeout, 0, (handler,))
                return reply  # type: ignore[no-any-return]
        try:  # an installed reference needs no check
            known = handler in srv.core.by_ref
        except TypeError:
            known = False
        if not known:
            check_ref(handler)
        # _request, inlined (a queued call is the round trip the benchmarks hold to the floor)
        ident = _get_ident()
        if (
            ident == srv.ident  # noqa: PLR1714 - compared one by one: no tuple built
            or ident == srv.inline_ident
            or (srv.lanes and srv.on_lane(ident))
        ):
            raise CallingSelf(self, "call")
        args = (handler, request)
        req = _Request(_CALL, args, "call")
        lock = req.lock = _allocate_lock()
        lock.acquire()
        ahead = len(srv.mailbox)
        srv.post(req, self)
        if timeout is None:
            lock.acquire()
        elif not lock.acquire(True, timeout):  # timeout 0 took _request's path above
            raise srv.timeout_error("call", timeout, ahead, args)
        error = req.error
        if error is not None:
            raise error
        return req.value  # type: ignore[no-any-return]

    def call_future(
        self, handler: HandlerRef[Any, Req, Rep], request: Req
    ) -> concurrent.futures.Future[Rep]:
        """As :meth:`call`, without blocking (OTP's ``send_request``): many calls may be in
        flight. The future holds the reply or the error :meth:`call` would raise. Wait with
        ``f.result(timeout)`` or ``await asyncio.wrap_future(f)``."""
        return self._submit(_CALL, (handler, request), "call")

    async def acall(
        self, handler: HandlerRef[Any, Req, Rep], request: Req, timeout: float | None = 5.0
    ) -> Rep:
        """Coroutine form of :meth:`call` for asyncio code: awaits the reply without blocking
        the event loop. Raises :class:`CallTimeout` after ``timeout`` seconds."""
        timeout = check_timeout(timeout)
        check_ref(handler)
        ahead = len(self._srv.mailbox)
        fut = self._submit(_CALL, (handler, request), "call")
        return await _await(fut, self._srv, "call", timeout, ahead, (handler,))  # type: ignore[no-any-return]

    def add_handler(
        self,
        handler: HandlerRef[E, Any, Any],
        args: Any = None,
        *,
        timeout: float | None = None,
        restart: RestartPolicy = "temporary",
        max_restarts: int = 3,
        restart_period: float = 5.0,
        isolation: bool = False,
        maxsize: int | None = None,
        overflow: LaneOverflow = "drop_oldest",
        stop_timeout: float = STOP_TIMEOUT,
    ) -> None:
        """Create the handler, ``init(args)`` it and install it first (OTP's ``add_handler``).
        Raises :class:`HandlerExists`, :class:`HandlerInitFailed` or :class:`InvalidHandler`
        (also for a handler with coroutine methods: this runtime runs them synchronously).
        ``restart`` (``"temporary"``: gen_event's behaviour; ``"transient"``: added
        again after a crash or a bad return; ``"permanent"``: also after it removed itself)
        re-adds it at the front with the same class and ``args``, at most ``max_restarts``
        times within ``restart_period`` seconds, then lets it go for good.

        ``isolation=True`` runs the handler in a thread of its own with a mailbox of its own,
        so a handler that blocks delays no other handler. It keeps gen_event's meaning (see
        the README, "when to isolate a handler"); its mailbox holds at most ``maxsize`` events
        (None: unbounded), dropping under ``overflow`` (``"drop_oldest"`` or
        ``"drop_newest"``, counted and logged), and ``stop`` waits ``stop_timeout`` seconds
        for it, then leaves its thread behind as a daemon (logged, counted in
        :attr:`left_behind`). A handler swapped in for it, or restarted, stays isolated."""
        timeout = check_timeout(timeout)
        check_ref(handler)
        spec = restart_spec(restart, args, max_restarts, restart_period)
        lane = self._new_lane(handler, isolation, maxsize, overflow, stop_timeout)
        self._request(
            self._srv.core.add_handler,
            (handler, args, None, None, spec, lane),
            "add_handler",
            timeout,
        )

    def add_sup_handler(
        self,
        handler: HandlerRef[E, Any, Any],
        args: Any = None,
        *,
        on_exit: Callable[[HandlerExit], object],
        owner: threading.Thread | None = None,
        timeout: float | None = None,
        restart: RestartPolicy = "temporary",
        max_restarts: int = 3,
        restart_period: float = 5.0,
        isolation: bool = False,
        maxsize: int | None = None,
        overflow: LaneOverflow = "drop_oldest",
        stop_timeout: float = STOP_TIMEOUT,
    ) -> None:
        """As :meth:`add_handler`, and tie the handler to ``owner`` (default: the calling
        thread).

        When the handler leaves, ``on_exit(HandlerExit(handler, reason, manager))`` is called on
        the manager's thread, after ``terminate`` ran (``queue.SimpleQueue().put`` fits; it must
        not block on this manager). When the owner thread ends, the handler is terminated with
        :class:`~genevent.OwnerExited` (``reason`` None, or the exception the thread died of).
        ``owner`` must be a started :class:`threading.Thread`, ``on_exit`` callable (or None:
        no notices); else :class:`InvalidOwner`."""
        timeout = check_timeout(timeout)
        check_ref(handler)
        spec = restart_spec(restart, args, max_restarts, restart_period)
        check_on_exit(on_exit)
        lane = self._new_lane(handler, isolation, maxsize, overflow, stop_timeout)
        self._check_caller("add_sup_handler")
        owner_thread, reg = _check_owner(owner)
        self._request(
            self._srv.core.add_handler,
            (handler, args, owner_thread, on_exit, spec, lane),
            "add_sup_handler",
            timeout,
            reg,
        )

    def delete_handler(
        self, handler: HandlerRef[E, Any, Any], args: Any = None, *, timeout: float | None = None
    ) -> Any:
        """Terminate the handler with :class:`~genevent.Deleted` ``(args)``, remove it, and
        return what its ``terminate`` returned (OTP's ``delete_handler``). Raises
        :class:`HandlerNotFound`, or :class:`TerminateFailed` if terminate raised."""
        timeout = check_timeout(timeout)
        check_ref(handler)
        return self._request(
            self._srv.core.delete_handler, (handler, args), "delete_handler", timeout
        )

    def swap_handler(
        self,
        old: HandlerRef[E, Any, Any],
        args1: Any,
        new: HandlerRef[E, Any, Any],
        args2: Any = None,
        *,
        timeout: float | None = None,
    ) -> None:
        """Terminate ``old`` with :class:`~genevent.Swapped` ``(args1, ...)`` and install
        ``new`` first with ``init(args2, handoff=<old terminate result>)``; the owner carries
        over (OTP's ``swap_handler``). If ``old`` is not installed ``new`` is installed anyway
        with ``handoff=NO_HANDOFF``; if ``new``'s init fails, ``old`` is gone all the same and
        :class:`HandlerInitFailed` is raised."""
        timeout = check_timeout(timeout)
        check_ref(old)
        check_ref(new)
        self._request(
            _swap_proc,
            (self._srv.core, old, args1, new, args2, False, None, None),
            "swap_handler",
            timeout,
        )

    def swap_sup_handler(
        self,
        old: HandlerRef[E, Any, Any],
        args1: Any,
        new: HandlerRef[E, Any, Any],
        args2: Any = None,
        *,
        on_exit: Callable[[HandlerExit], object],
        owner: threading.Thread | None = None,
        timeout: float | None = None,
    ) -> None:
        """As :meth:`swap_handler`, but the calling thread (or ``owner``) becomes the new
        handler's owner, told through ``on_exit`` (OTP's ``swap_sup_handler``)."""
        timeout = check_timeout(timeout)
        check_ref(old)
        check_ref(new)
        check_on_exit(on_exit)
        self._check_caller("swap_sup_handler")
        owner_thread, reg = _check_owner(owner)
        self._request(
            _swap_proc,
            (self._srv.core, old, args1, new, args2, True, owner_thread, on_exit),
            "swap_sup_handler",
            timeout,
            reg,
        )

    @overload
    def subscribe(
        self,
        fn: Callable[[E], object],
        event_type: None = None,
        *,
        where: Callable[[E], object] | None = None,
        id: Hashable | None = None,
        timeout: float | None = None,
        restart: RestartPolicy = "temporary",
        isolation: bool = False,
        maxsize: int | None = None,
        overflow: LaneOverflow = "drop_oldest",
        stop_timeout: float = STOP_TIMEOUT,
    ) -> HandlerRef[E, Any, Any]: ...

    @overload
    def subscribe(
        self,
        fn: Callable[[T], object],
        event_type: type[T],
        *,
        where: Callable[[T], object] | None = None,
        id: Hashable | None = None,
        timeout: float | None = None,
        restart: RestartPolicy = "temporary",
        isolation: bool = False,
        maxsize: int | None = None,
        overflow: LaneOverflow = "drop_oldest",
        stop_timeout: float = STOP_TIMEOUT,
    ) -> HandlerRef[E, Any, Any]: ...

    def subscribe(
        self,
        fn: Callable[[Any], object],
        event_type: type[Any] | None = None,
        *,
        where: Callable[[Any], object] | None = None,
        id: Hashable | None = None,
        timeout: float | None = None,
        restart: RestartPolicy = "temporary",
        isolation: bool = False,
        maxsize: int | None = None,
        overflow: LaneOverflow = "drop_oldest",
        stop_timeout: float = STOP_TIMEOUT,
    ) -> HandlerRef[E, Any, Any]:
        """Install the plain function ``fn`` as a handler of every event of ``event_type``
        (``isinstance``; ``None``: every event) for which ``where(event)`` is true, and return
        its reference, ``(FunctionHandler, id or fn)``, for :meth:`delete_handler`. It is an
        ordinary handler: it shows in :meth:`which_handlers`, and if it raises it is removed
        and reported. Its return value is ignored, except that ``Remove()`` unsubscribes it.
        Subscribing the same function twice needs a distinct ``id``; ``restart``,
        ``isolation``, ``maxsize``, ``overflow`` and ``stop_timeout`` are :meth:`add_handler`'s."""
        ref = _functions.reference(fn, id)
        _functions.check_filter(event_type, where)
        self.add_handler(
            ref,
            Args(fn, event_type, where),
            timeout=timeout,
            restart=restart,
            isolation=isolation,
            maxsize=maxsize,
            overflow=overflow,
            stop_timeout=stop_timeout,
        )
        return ref

    def on(
        self,
        event_type: type[Any] | None = None,
        *,
        where: Callable[[Any], object] | None = None,
        id: Hashable | None = None,
        restart: RestartPolicy = "temporary",
    ) -> Callable[[F], F]:
        """Decorator form of :meth:`subscribe`: ``@mgr.on(OrderPlaced)`` subscribes the
        function (blocking until it is installed, raising as ``subscribe`` does) and returns
        it unchanged."""

        def register(fn: F) -> F:
            self.subscribe(fn, event_type, where=where, id=id, restart=restart)
            return fn

        return register

    @overload
    def stream(
        self,
        event_type: None = None,
        *,
        where: Callable[[E], object] | None = None,
        maxsize: int | None = 10_000,
        overflow: OverflowPolicy = "drop_oldest",
        timeout: float | None = None,
    ) -> EventStream[E]: ...

    @overload
    def stream(
        self,
        event_type: type[T],
        *,
        where: Callable[[T], object] | None = None,
        maxsize: int | None = 10_000,
        overflow: OverflowPolicy = "drop_oldest",
        timeout: float | None = None,
    ) -> EventStream[T]: ...

    def stream(
        self,
        event_type: type[Any] | None = None,
        *,
        where: Callable[[Any], object] | None = None,
        maxsize: int | None = 10_000,
        overflow: OverflowPolicy = "drop_oldest",
        timeout: float | None = None,
    ) -> EventStream[Any]:
        """``for event in mgr.stream(OrderPlaced):`` every event of ``event_type``
        (``isinstance``; ``None``: all) for which ``where(event)`` is true, notified once this
        returns (it installs the stream's feed first), buffered up to ``maxsize`` under the
        ``overflow`` policy (default: drop the oldest, counted in ``stream.counts``;
        ``"block"`` stalls the whole manager until the consumer catches up). It ends when the
        manager stops or the consumer leaves its loop (``with mgr.stream() as events:``)."""
        return EventStream(self, event_type, where, maxsize, overflow, timeout)

    def _remove_stream(self, stream: EventStream[Any]) -> None:
        srv = self._srv
        with contextlib.suppress(ManagerNotRunning):  # nobody waits: gone already is fine
            srv.post(_Request(srv.core.delete_handler, (stream.ref, None), "stream close"), self)

    def which_handlers(self, *, timeout: float | None = None) -> list[Any]:
        """The installed handlers, newest first (OTP's ``which_handlers``)."""
        timeout = check_timeout(timeout)
        srv = self._srv
        self._check_caller("which_handlers")
        if (
            timeout != 0.0 and srv.enter_inline()
        ):  # runs no handler code: fine whatever ``inline`` says
            try:
                return srv.core.which_handlers()
            finally:
                srv.leave_inline()
        return self._request(_which_proc, (self._srv.core,), "which_handlers", timeout)  # type: ignore[no-any-return]

    def get_state(self, *, timeout: float | None = None) -> list[tuple[Any, Any]]:
        """``[(handler, state)]``, newest first (OTP's ``sys:get_state``): each handler's
        ``format_status()`` if it has one, else a copy of its attributes, taken in order with
        the other messages."""
        timeout = check_timeout(timeout)
        return self._request(self._srv.core.get_state, (), "get_state", timeout)  # type: ignore[no-any-return]

    def stop(self, *, drain: bool = True, timeout: float | None = None) -> None:
        """Terminate every handler, newest first, with :class:`~genevent.Stopped`, tell their
        owners, then stop and join the manager's thread (OTP's ``stop``). New events and
        requests are refused from the call on. With ``drain=True`` (the default) everything
        accepted before is handled first; ``drain=False`` drops the events and infos still
        queued (counted in ``stats().dropped`` and logged) and answers the queued requests with
        :class:`ManagerNotRunning`, so that the handlers are terminated as soon as the callback
        running now returns. Requests queued behind the stop are answered with
        :class:`ManagerNotRunning`; the name is free once this returns. Raises
        :class:`CallingSelf` on the manager's own thread. ``timeout=0`` requests the stop
        without waiting for it (and raises :class:`CallTimeout`)."""
        timeout = check_timeout(timeout)
        if drain.__class__ is not bool:
            raise TypeError(f"drain must be True or False, not {short(drain)}")
        deadline = None if timeout is None else time.monotonic() + timeout
        if drain:
            self._request(_STOP, (), "stop", timeout)
        else:
            self._stop_dropping(timeout)
        self._finalizer.detach()
        _wait_ended(self._srv, "stop", None if deadline is None else deadline - time.monotonic())

    def _stop_dropping(self, timeout: float | None) -> None:
        """``stop(drain=False)`` up to the stop's answer."""
        srv = self._srv
        fut = self._submit(_STOP, (), "stop")  # CallingSelf here; ManagerNotRunning in fut
        if not fut.done():  # posted: this stop closed the manager, and drops what is queued
            events, requests = srv.drop_backlog()
            log_backlog(self, events, requests, "at stop(drain=False)")
        try:
            fut.result(timeout)
        except concurrent.futures.TimeoutError:
            raise srv.timeout_error("stop", timeout or 0.0, 0) from None

    def stop_future(self) -> concurrent.futures.Future[None]:
        """As :meth:`stop`, without blocking: the future is done once every handler was
        terminated and the name freed (the thread ends right after; :meth:`wait_stopped` joins
        it). The future fails with :class:`ManagerNotRunning` if the manager already stopped."""
        return self._submit(_STOP, (), "stop")

    def __enter__(self) -> EventManager[E]:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._srv.closed:
            self.wait_stopped()
            return
        try:
            # leaving by an exception: surface it now, not after the whole backlog
            self.stop(drain=exc_type is None)
        except ManagerNotRunning:  # stopped meanwhile by another thread
            self.wait_stopped()


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
        raise srv.timeout_error(what, timeout, None)


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


class _BoundedEventManager(EventManager[E]):
    """An :class:`EventManager` with a bounded mailbox (``start(maxsize=...)``): only
    ``notify``, ``send`` and ``notify_wait`` differ, so that an unbounded manager's ``notify``
    pays nothing for bounds. Room is found without a lock (see :mod:`genevent._mailbox`); a
    full mailbox is handled by :meth:`_Server.put_full` under the bound's lock."""

    def __init__(self, name: str | None, *, inline: bool, timing: bool, bound: Bound) -> None:
        self._maxsize = bound.maxsize
        super().__init__(name, inline=inline, timing=timing, bound=bound)

    def notify(self, event: E) -> None:
        srv = self._srv
        if srv.closed:
            srv.refused += 1
            raise ManagerNotRunning(self)
        if len(srv.mailbox) < self._maxsize:
            self._append(event)
        elif not srv.put_full(event, self, None):
            return
        if srv.closed:  # stop was requested meanwhile: accepted only if it will be handled
            srv.late(event, self)
        if srv.sleeping:
            srv.wake()

    def notify_wait(self, event: E, *, timeout: float | None = None) -> None:
        if timeout is not None:
            timeout = check_timeout(timeout)
        srv = self._srv
        if srv.closed:
            srv.refused += 1
            raise ManagerNotRunning(self)
        if len(srv.mailbox) < self._maxsize:
            self._append(event)
        elif not srv.put_full(event, self, timeout):
            return
        if srv.closed:
            srv.late(event, self)
        if srv.sleeping:
            srv.wake()

    def send(self, message: Any) -> None:
        srv = self._srv
        if srv.closed:
            srv.refused += 1
            raise ManagerNotRunning(self)
        req = _Request(srv.core.info, (message,), "info")
        if len(srv.mailbox) < self._maxsize:
            self._append(req)
        elif not srv.put_full(req, self, None):
            return
        if srv.closed:
            srv.late(req, self)
        if srv.sleeping:
            srv.wake()


def start(
    name: str | None = None,
    *,
    inline: bool = False,
    timing: bool = False,
    maxsize: int | None = None,
    overflow: OverflowPolicy = "block",
) -> EventManager[Any]:
    """Start an event manager on a new daemon thread (OTP's ``start``/``start_link``).

    With ``name``, it is registered so that :func:`genevent.whereis` finds it; a second manager
    under a taken name raises :class:`~genevent.NameTaken`. ``with start() as mgr:`` links it
    to the block: it stops when the block exits, normally or by an exception.
    Annotate to type the events: ``mgr: EventManager[MyEvent] = start()``.

    ``inline=True`` lets an idle manager's ``call`` and ``sync_notify`` run in the caller's
    thread (see the module documentation): far lower latency, but handler callbacks are then
    not confined to the manager's thread. ``timing=True`` times every plain
    ``handle_event`` into per-handler histograms that :meth:`EventManager.stats` reports (it
    costs about as much as the hot path itself, so it is off by default).

    ``maxsize`` bounds the mailbox (default None: unbounded, as gen_event): an event or info
    that finds ``maxsize`` messages queued is treated by ``overflow``: ``"block"`` (the
    default: ``notify`` and ``send`` block until there is room; ``notify_wait(event,
    timeout=...)`` blocks for at most ``timeout``, then raises :class:`~genevent.MailboxFull`),
    ``"drop_newest"``, ``"drop_oldest"`` (counted in ``stats().dropped`` and logged at most
    once a second) or ``"raise"`` (:class:`~genevent.MailboxFull`, counted in
    ``stats().refused``). Control requests are never dropped or refused for room. A bad
    ``maxsize`` or ``overflow`` raises :class:`TypeError` / :class:`ValueError`."""
    bound = check_mailbox(maxsize, overflow)
    if bound is None:
        return EventManager(name, inline=inline, timing=timing)
    return _BoundedEventManager(name, inline=inline, timing=timing, bound=bound)
