"""Isolated handlers: a handler with a mailbox and a task or thread of its own (a *lane*).

The manager keeps the handler in its table as usual, but the entry's ``handle_event`` /
``handle_info`` are the lane's :meth:`Lane.post` / :meth:`Lane.post_info`, which only queue.
The lane runs the handler's callbacks one at a time, in the order the manager queued them:

* a plain ``None`` from ``handle_event``/``handle_info`` and a plain reply from ``handle_call``
  are the end of it (the reply goes to the caller directly);
* anything that changes the table (it raised, ``Remove``, ``Swap``, a bad return) is posted
  back to the manager's mailbox, which applies it in order; meanwhile the lane holds its queue
  (the handler sees nothing after the event it left on), and goes on once the manager served
  it again (a swap or a restart keeps the lane, with the events queued behind) or closes it;
* the manager's own invocations (the class, ``init``, ``terminate``, ``format_status``) are
  *jobs*: run before anything queued, the manager waiting for their outcome;
* a *mark* tells a :class:`Barrier` that the lane handled everything queued before it: the
  runtime answers ``sync_notify``, ``which_handlers``, ``delete_handler``... only once every
  isolated handler concerned has caught up, so they see what gen_event would show.

Each runtime is the lane's *host* (see :class:`Host`); this module holds what both share.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import contextvars
import heapq
import inspect
import itertools
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any, Final, Literal, Protocol, TypeAlias

from ._core import (
    Entry,
    Invoke,
    ManagerCore,
    Procedure,
    Raised,
    Report,
    Returned,
    is_plain_reply,
)
from ._driver import CRASHES, FATAL, awaited_frames, callback_in, log, report, stack_frames
from ._errors import CallNotSupported, HandlerNotFound, ManagerNotRunning, _name
from ._mailbox import log_backlog
from ._overflow import Action, Counts, check_bound

__all__ = (
    "CAUGHT_UP",
    "CONCERNED",
    "LANE_OVERFLOW",
    "LANE_RESULTS",
    "STOP_TIMEOUT",
    "Barrier",
    "Host",
    "Isolation",
    "Lane",
    "LaneOverflow",
    "Order",
    "TaskLane",
    "ThreadLane",
    "applied",
    "call_applied",
    "check_isolation",
    "drop_backlogs",
    "left_behind",
    "reap",
    "running_lane",
    "stopped_before",
    "takes_its_place",
)

Isolation: TypeAlias = Literal["task", "thread"]
"""How an asyncio handler is isolated (``add_handler(..., isolation=...)``): ``"task"``, a
task of its own in the manager's loop (for slow coroutine handlers), or ``"thread"``, a thread
of its own (for plain handlers that block). On :mod:`genevent.threads`, ``isolation=True``."""

LaneOverflow: TypeAlias = Literal["drop_oldest", "drop_newest"]
"""What a full isolated handler's mailbox (``maxsize=``) does with an arriving event or info
message: drop the oldest queued one, or the arriving one; either way counted (in
``HandlerStats.dropped`` and ``ManagerStats.lane_dropped``) and logged at most once a second."""

LANE_OVERFLOW: Final[tuple[LaneOverflow, ...]] = ("drop_oldest", "drop_newest")

STOP_TIMEOUT: Final = 5.0
"""Default ``stop_timeout`` of an isolated handler: how long ``stop`` waits for it."""

_BUDGET: Final = 1024  # a task lane gives its loop a turn after this many items in a row
_LOG_EVERY: Final = 1.0  # drops are logged at most once a second per handler


class _Info:
    __slots__ = ("message",)

    def __init__(self, message: Any) -> None:
        self.message = message


class _Call:
    __slots__ = ("ref", "req", "request")

    def __init__(self, request: Any, req: Any, ref: Any) -> None:
        self.request = request
        self.req = req
        #: the handler it was made to: a handler swapped in under another id does not answer
        self.ref = ref


class _Mark:
    __slots__ = ("barrier",)

    def __init__(self, barrier: Barrier) -> None:
        self.barrier = barrier


class _Job:
    __slots__ = ("eff", "fut")

    def __init__(self, eff: Invoke, fut: Any) -> None:
        self.eff = eff
        self.fut = fut


_SPECIAL: Final = frozenset({_Info, _Call, _Mark})
_NOTHING: Final = object()  # nothing to run now (None is an event like any other)
_IDLE: Final = float("inf")  # the place in mailbox order of a lane with nothing to run

# the lane whose task or thread this is (set in the lane's own context: a task's copy, or
# the lane thread's), so that a manager tells its lanes' callers apart without a scan
_RUNNING: Final[contextvars.ContextVar[Lane | None]] = contextvars.ContextVar(
    "genevent_lane", default=None
)


def running_lane() -> Lane | None:
    """The lane running the calling code (in its thread or task), or None. A task or thread
    the handler starts may inherit it: callers check ``lane.task``/``lane.thread`` too."""
    return _RUNNING.get()


class Barrier:
    """Counts lanes down to zero, then calls ``done`` once (from whichever thread got there
    last)."""

    __slots__ = ("_count", "_done", "_lock")

    def __init__(self, count: int, done: Callable[[], None]) -> None:
        self._count = count
        self._done = done
        self._lock = threading.Lock()

    def reach(self) -> None:
        """One lane caught up."""
        with self._lock:
            self._count -= 1
            last = self._count == 0
        if last:
            self._done()


def _not_found(host: Any, ref: Any) -> HandlerNotFound:
    """The :class:`HandlerNotFound` a lane answers a call with once its handler left: the
    manager's core says how it left (read from the lane's thread: no suggestion, which would
    walk the manager's table)."""
    core = getattr(host, "core", None) or getattr(host, "_core", None)
    if isinstance(core, ManagerCore):
        return core.not_found(ref, suggest=False)
    return HandlerNotFound(ref)


class Host(Protocol):
    """What a lane needs from the manager that runs it (every method safe from any thread)."""

    def lane_outcome(
        self,
        lane: Lane,
        entry: Entry,
        out: Raised | Returned,
        message: Any,
        callback: str,
        seq: float,
    ) -> None:
        """Post ``core.event_result(entry, out, message, callback)`` to the manager (``seq``:
        the place in mailbox order of the message that caused it, see :class:`Order`)."""

    def lane_call_outcome(
        self, lane: Lane, req: Any, entry: Entry, out: Raised | Returned, request: Any, seq: float
    ) -> None:
        """Post ``core.call_result(entry, out, request)`` to the manager, answering ``req``."""

    def lane_recheck(self) -> None:
        """A lane passed the place in mailbox order an outcome waits for (see
        :class:`Order`): have the manager look at its waiting outcomes again."""

    @property
    def _lane_order(self) -> Order:
        """The order of what is queued to the manager's lanes and what they bring back."""

    def lane_reply(self, req: Any, value: Any) -> None:
        """Answer the call ``req`` with a plain reply."""

    def lane_fail(self, req: Any, exc: BaseException) -> None:
        """Answer the call ``req`` with an error."""

    def lane_wake(self) -> None:
        """The lane went idle: wake the manager if it waits for that (stop)."""


def check_isolation(
    maxsize: int | None, overflow: str, stop_timeout: float, isolated: bool
) -> None:
    """Refuse bad ``maxsize``/``overflow``/``stop_timeout`` keywords of an isolated handler
    (and any of them on a handler that is not isolated)."""
    if not isolated:
        if maxsize is not None:
            raise ValueError("maxsize= applies to an isolated handler only (pass isolation=)")
        return
    check_bound(maxsize, "drop_oldest")
    if overflow not in LANE_OVERFLOW:
        raise ValueError(
            f"an isolated handler's overflow must be one of {', '.join(map(repr, LANE_OVERFLOW))}"
            f", not {overflow!r} (its mailbox is fed by the manager, which neither waits for "
            "one handler nor has a producer to refuse)"
        )
    if isinstance(stop_timeout, bool) or not isinstance(stop_timeout, (int, float)):
        raise TypeError(f"stop_timeout must be a number of seconds, not {stop_timeout!r}")
    if not stop_timeout >= 0.0:
        raise ValueError(f"stop_timeout must be >= 0, not {stop_timeout!r}")


class Lane:
    """The mailbox and runner of one isolated handler (and of whatever replaces it by a swap
    or a restart). Subclasses run it in a task or a thread.

    Each queued item has its place in the manager's mailbox order (counted by the host's
    :class:`Order`) in ``seqs``, beside it in ``fifo`` (ints in a deque of their own, not a
    tuple per item: tuples are tracked by the garbage collector, and a burst of them made it
    run over and over), so that what the lanes bring back to the manager is
    applied in that order whichever lane finished first (see :class:`Order`)."""

    kind = ""

    # slots: a manager may have thousands of isolated handlers (memory per handler counts)
    __slots__ = (
        "_cached",
        "_event",
        "_event_async",
        "_fifo_append",
        "_logged_at",
        "_logged_drops",
        "_next_seq",
        "_pop_lock",
        "_seqs_append",
        "abandoned",
        "busy",
        "calling",
        "closed",
        "counts",
        "current",
        "entry",
        "fifo",
        "host",
        "jobs",
        "maxsize",
        "overflow",
        "pending",
        "posted",
        "ref",
        "seqs",
        "started",
        "stop_at",
        "stop_timeout",
        "vacant",
        "watch",
    )

    def __init__(
        self,
        host: Host,
        ref: Any,
        maxsize: int | None = None,
        overflow: LaneOverflow = "drop_oldest",
        stop_timeout: float = STOP_TIMEOUT,
    ) -> None:
        self.host = host
        self.ref = ref
        self.maxsize = maxsize
        self.overflow = overflow
        self.stop_timeout = float(stop_timeout)
        self.fifo: deque[Any] = deque()
        #: each queued item's place in mailbox order: appended before the item and taken after
        #: it, so it never has fewer entries than ``fifo`` (and a reader that finds one more at
        #: its head, the item being taken, reads a place too early, never too late)
        self.seqs: deque[int] = deque()
        self.jobs: deque[_Job] = deque()
        #: the table entry it serves (None before its first handler is installed)
        self.entry: Entry | None = None
        #: the entry whose outcome was posted to the manager and not yet applied
        self.pending: Entry | None = None
        self.closed = False
        #: its handler waits for another restart attempt: what is queued is answered as if
        #: closed (the handler is not installed), and the lane stays for that attempt
        self.vacant = False
        self.abandoned = False
        self.busy = False
        self.started = False
        #: counted for a bounded mailbox only (``dropped``: always)
        self.counts = Counts()
        #: the place in mailbox order of the item it runs (or ran last), or :data:`_IDLE`
        self.current: float = _IDLE
        #: an outcome waits until this lane is past this place (see :class:`Order`), or None
        self.watch: float | None = None
        #: the place of an outcome it posted that the manager has not taken yet (:data:`_IDLE`
        #: when there is none): until then the lane is not past it
        self.posted: float = _IDLE
        #: when ``stop`` told it to stop (its ``stop_timeout`` counts from there), or None
        self.stop_at: float | None = None
        #: the call running now (answered at once if the lane is left behind)
        self.calling: _Call | None = None
        # bound once: post() runs on the manager's hot path, once per event and lane
        self._next_seq = host._lane_order.seq.__next__
        self._seqs_append = self.seqs.append
        self._fifo_append = self.fifo.append
        #: taken by the lane to take an item, and by a drop of the oldest (bounded lanes only)
        self._pop_lock = threading.Lock() if maxsize is not None else None
        self._logged_at = -_LOG_EVERY
        self._logged_drops = 0
        self._cached: Entry | None = None
        self._event: Callable[[Any], Any] | None = None
        self._event_async = False

    def __repr__(self) -> str:
        return f"<{self.kind} lane of {_name(self.ref)} queued={len(self.fifo)}>"

    # -- the manager's side -------------------------------------------------------------------

    def post(self, event: Any) -> None:
        """Queue an event (the entry's ``event_fn``: called by the manager, returns None)."""
        if self.maxsize is not None and not self._room():
            return
        self._seqs_append(self._next_seq())
        self._fifo_append(event)
        self._wake()

    def post_info(self, message: Any) -> None:
        """Queue an info message (the entry's ``info_fn``)."""
        if self.maxsize is not None and not self._room():
            return
        self.seqs.append(self._next_seq())
        self.fifo.append(_Info(message))
        self._wake()

    def post_call(self, request: Any, req: Any, ref: Any = None) -> None:
        """Queue a call to ``ref`` (None: to whichever handler the lane serves then); the
        reply (or error) goes to the host's request ``req``."""
        self.seqs.append(self._next_seq())
        self.fifo.append(_Call(request, req, ref))
        self._wake()

    def mark(self, barrier: Barrier) -> None:
        """``barrier`` is reached once everything queued before is handled (at once, without
        waking the lane, when it has: see :meth:`caught_up`)."""
        if self.closed or self.caught_up():
            barrier.reach()
            return
        self.seqs.append(self._next_seq())
        self.fifo.append(_Mark(barrier))
        self._wake()

    def caught_up(self) -> bool:  # pragma: no cover - per runner
        """Called by the manager: True when the lane handled everything queued for it and has
        no outcome waiting to be applied (a mark would be reached at once). False when unsure:
        the caller then queues a mark."""
        return self.closed

    def serve(self, entry: Entry) -> None:
        """``entry`` (in the table) is the handler this lane runs from now on."""
        self.entry = entry
        self.vacant = False
        pending = self.pending
        if pending is not None and pending is entry and entry.alive:
            return  # its outcome is still to be applied: hold on
        self.pending = None
        self._wake()

    def close(self) -> None:
        """No handler uses this lane any more: answer what is queued (here, in the manager:
        a request waiting for it is back in the mailbox before anything else happens), then
        end."""
        self.closed = True
        self._drain_closed()
        self._wake()

    def vacate(self) -> None:
        """Its handler waits for another restart attempt (see :attr:`vacant`)."""
        if not self.vacant:
            self.vacant = True
            self._wake()

    def idle(self) -> bool:
        """Nothing queued and nothing running (or left behind)."""
        return self.abandoned or (not self.busy and not self.fifo and not self.jobs)

    def stop_by(self, now: float, afresh: bool = False) -> float:
        """Stopping: the time by which it must be done, ``stop_timeout`` after it was first
        told to stop (``now``, the first time, or when told ``afresh``: an idle lane given a
        last job)."""
        if self.stop_at is None or afresh:
            self.stop_at = now
        return self.stop_at + self.stop_timeout

    def head(self) -> float:
        """The place in mailbox order of the first item it has not finished (:data:`_IDLE`
        when there is none). Read from the manager's side while the lane runs: it may be
        too early (then the lane wakes the manager once it passes a watched place), never too
        late."""
        if self.closed:
            return self.posted
        current = self.current
        if current == _IDLE:
            try:
                current = self.seqs[0]
            except IndexError:
                current = _IDLE
        posted = self.posted
        return posted if posted < current else current

    def drop_backlog(self, why: str) -> int:
        """A stop that drops the backlog (or this lane is left behind): take out everything
        queued; events and infos are dropped (counted in ``counts.dropped``), calls answered
        with :class:`ManagerNotRunning`, marks reached. Returns the events and infos dropped."""
        dropped = 0
        fifo = self.fifo
        while True:
            try:
                item = fifo.popleft()
            except IndexError:
                break
            self._forget_seq()
            cls = item.__class__
            if cls is _Call:
                self.host.lane_fail(item.req, ManagerNotRunning(self.host, why))
            elif cls is _Mark:
                item.barrier.reach()
            else:
                dropped += 1
        self.counts.dropped += dropped
        return dropped

    def running_callback(self) -> str | None:  # pragma: no cover - per runner
        """The handler callback the lane runs now (``"Class.method"``), if any."""
        return None

    def left_behind_outcome(self, eff: Invoke) -> Raised | Returned:
        """What the manager's invocation ``eff`` gives once the lane is left behind: nothing
        runs in it any more, so a handler cannot start there (its class or ``init``: an
        error), and a ``terminate`` or a state snapshot gives None."""
        if isinstance(eff.fn, type) or getattr(eff.fn, "__name__", None) == "init":
            return Raised(
                ManagerNotRunning(self.host, f" ({_name(self.ref)} was left behind at stop)")
            )
        return Returned(None)

    def _room(self) -> bool:
        assert self.maxsize is not None
        queued = len(self.fifo)
        action = self.counts.offer(queued, self.maxsize, self.overflow)
        if action is Action.ACCEPT:
            return True
        if action is Action.DROP_OLDEST:
            if not self._drop_oldest():  # only calls and marks queued: nothing to drop
                self.counts.dropped -= 1
                return True
            self._log_drop()
            return True
        self._log_drop()
        return False

    def _drop_oldest(self) -> bool:
        """Drop the oldest queued event or info (calls and marks are never dropped); the lane
        takes items under the same lock when it is bounded."""
        assert self._pop_lock is not None
        with self._pop_lock:
            for i, item in enumerate(self.fifo):
                if item.__class__ is not _Call and item.__class__ is not _Mark:
                    del self.fifo[i]
                    del self.seqs[i]
                    return True
        return False

    def _log_drop(self) -> None:
        self._logged_drops += 1
        now = time.monotonic()
        if now - self._logged_at >= _LOG_EVERY:
            log.warning(
                "genevent isolated handler %s: its mailbox is full (maxsize %s); "
                "%d events dropped (%s) since the last report, %d in all",
                _name(self.ref),
                self.maxsize,
                self._logged_drops,
                self.overflow,
                self.counts.dropped,
            )
            self._logged_at = now
            self._logged_drops = 0

    def _wake(self) -> None:  # pragma: no cover - per runner
        raise NotImplementedError

    # -- the lane's side ----------------------------------------------------------------------

    def _serving(self) -> Entry | None:
        entry = self.entry
        if entry is not None and entry.alive and self.pending is None:
            return entry
        return None

    def _next(self) -> Any:
        """The next thing to run: a job first; an item while serving; else ``_NOTHING``."""
        if self.jobs:
            return self.jobs.popleft()
        fifo = self.fifo
        if fifo and (self.closed or self.vacant or self._serving() is not None):
            lock = self._pop_lock
            if lock is not None:
                with lock:
                    return self._take(fifo)
            return self._take(fifo)
        return _NOTHING

    def _forget_seq(self) -> None:
        """An item was taken out to be dropped or answered: its place goes too."""
        try:  # noqa: SIM105 - never empty here: see ``seqs``
            self.seqs.popleft()
        except IndexError:  # pragma: no cover - defensive
            pass

    def _take(self, fifo: deque[Any]) -> Any:
        try:
            self.current = self.seqs[0]  # before it leaves the queue: never seen too late
            item = fifo.popleft()
            seq = self.seqs.popleft()
        except IndexError:  # dropped meanwhile (a stop)
            self.current = _IDLE
            return _NOTHING
        self.current = seq
        return item

    def _passed(self) -> None:
        """The item it ran is finished (its outcome, if any, posted): move on, and wake the
        manager if an outcome waits for this lane to get past a place (see :class:`Order`)."""
        self.current = _IDLE
        watch = self.watch
        if watch is not None and self.head() > watch:
            self.watch = None
            self.host.lane_recheck()

    def _load(self, entry: Entry) -> None:
        self._cached = entry
        self._event = entry.instance.handle_event
        self._event_async = inspect.iscoroutinefunction(self._event)

    def _closed_item(self, item: Any) -> None:
        """An item found queued after the lane was closed (its handler is gone)."""
        cls = item.__class__
        if cls is _Call:
            self.host.lane_fail(item.req, _not_found(self.host, self.ref))
        elif cls is _Mark:
            item.barrier.reach()

    def _drain_closed(self) -> None:
        while True:
            try:
                item = self.fifo.popleft()
            except IndexError:
                return
            self._forget_seq()
            self._closed_item(item)

    def _settle(self, entry: Entry, out: Raised | Returned, message: Any, cb: str) -> None:
        if self.maxsize is not None:
            self.counts.handled += 1
        if out.__class__ is Returned and out.value is None:
            return
        self.pending = entry
        self.posted = self.current
        self.host.lane_outcome(self, entry, out, message, cb, self.current)

    def _no_info(self, entry: Entry, item: _Info) -> bool:
        """An info queued to a handler that has no ``handle_info`` (one swapped in after it
        was queued): it is dropped with the warning the manager gives for it. True then."""
        if entry.info.has_info:
            return False
        report(self.host, Report("no_handle_info", entry.ref, entry.instance, item.message, None))
        return True

    def _answers(self, entry: Entry, item: _Call) -> Callable[[Any], Any] | None:
        """``entry``'s ``handle_call`` if it answers the call ``item``; else None, the caller
        answered: a call made to another id (the handler it was made to swapped itself away
        meanwhile) gets :class:`HandlerNotFound`, one to a handler without ``handle_call``
        :class:`CallNotSupported`, as from the manager."""
        if item.ref is not None and item.ref != entry.ref:
            self.host.lane_fail(item.req, _not_found(self.host, item.ref))
            return None
        fn = entry.call_fn
        if fn is None:
            self.host.lane_fail(item.req, CallNotSupported(entry.ref))
        return fn

    def _settle_call(self, entry: Entry, item: _Call, out: Raised | Returned) -> None:
        self.calling = None
        if self.abandoned:
            return  # answered when it was left behind
        if out.__class__ is Returned and is_plain_reply(out.value):
            self.host.lane_reply(item.req, out.value)
            return
        self.pending = entry
        self.posted = self.current
        self.host.lane_call_outcome(self, item.req, entry, out, item.request, self.current)

    def _abandon_calls(self) -> None:
        """Left behind: the caller of the call running now (if any) and those queued are
        answered at once; the rest of the backlog is dropped (counted)."""
        calling = self.calling
        self.calling = None
        why = f" ({_name(self.ref)} was left behind at stop)"
        if calling is not None:
            self.host.lane_fail(calling.req, ManagerNotRunning(self.host, why))
        self.drop_backlog(why)


def _outcome(fn: Callable[..., Any], args: tuple[Any, ...], kwargs: Any) -> Raised | Returned:
    try:
        return Returned(fn(*args, **kwargs) if kwargs else fn(*args))
    except CRASHES as exc:
        return Raised(exc)


class ThreadLane(Lane):
    """A lane run by a daemon thread of its own (started at its first job)."""

    kind = "thread"
    __slots__ = ("_token", "sleeping", "thread")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.sleeping = False
        self._token = threading.Lock()
        self._token.acquire()
        self.thread: threading.Thread | None = None

    def post(self, event: Any) -> None:
        """Queue an event (as :meth:`Lane.post`, the wake-up inlined: the manager's hot path)."""
        if self.maxsize is not None and not self._room():
            return
        self._seqs_append(self._next_seq())
        self._fifo_append(event)
        if self.sleeping:
            self._wake()

    def _wake(self) -> None:
        if self.sleeping:
            self.sleeping = False
            try:  # noqa: SIM105 - cheaper than contextlib.suppress on the notify path
                self._token.release()
            except RuntimeError:  # woken already
                pass

    def start(self) -> None:
        """Start the thread (once)."""
        if not self.started:
            self.started = True
            self.thread = threading.Thread(
                target=self._main, name=f"genevent-lane:{_name(self.ref)}", daemon=True
            )
            self.thread.start()

    def _main(self) -> None:
        _RUNNING.set(self)
        self._run()

    def caught_up(self) -> bool:
        # parked (``sleeping`` is set only once nothing it may run is left, and cleared by
        # whoever queues), with nothing queued (the manager is the one that queues, and the one
        # asking) and no outcome of it waiting in the manager's mailbox
        return self.closed or (
            self.sleeping and not self.fifo and not self.jobs and self.pending is None
        )

    def job(self, eff: Invoke) -> concurrent.futures.Future[Raised | Returned]:
        """Run the manager's invocation ``eff`` in the lane, before anything queued."""
        fut: concurrent.futures.Future[Raised | Returned] = concurrent.futures.Future()
        if self.abandoned:
            fut.set_result(self.left_behind_outcome(eff))
            return fut
        self.start()
        self.jobs.append(_Job(eff, fut))
        self._wake()
        return fut

    def abandon(self) -> None:
        """Leave the thread behind (it is a daemon); nothing more runs in it."""
        self.abandoned = self.closed = True
        self._abandon_calls()
        self._wake()

    def on_thread(self, ident: int) -> bool:
        """True on this lane's thread."""
        thread = self.thread
        return thread is not None and thread.ident == ident

    def running_callback(self) -> str | None:
        thread = self.thread
        frame = sys._current_frames().get(thread.ident) if thread and thread.ident else None
        return callback_in(stack_frames(frame))

    def _run(self) -> None:
        host = self.host
        while not self.abandoned:
            # busy from before it takes an item (the manager never sees it idle with an item
            # in hand) until it finds nothing to run
            self.busy = True
            item = self._next()
            if item is _NOTHING:
                if self.closed and not self.jobs:
                    self._drain_closed()
                    self._passed()
                    self.busy = False
                    host.lane_wake()
                    return
                self.sleeping = True
                if self._next_ready():
                    self.sleeping = False
                    continue
                self._passed()
                self.busy = False
                host.lane_wake()
                self._token.acquire()
                continue
            cls = item.__class__
            if cls not in _SPECIAL and cls is not _Job and self.maxsize is None:
                entry = self.entry
                if not self.closed and not self.vacant and entry is not None:
                    self._drain(entry, item)  # the hot path: plain events in a row
                    self._passed()
                    continue
            self._do(item)
            if cls is not _Job:
                self._passed()

    def _drain(self, entry: Entry, item: Any) -> None:
        """Plain events in a row, while nothing else is queued before them (no method call
        per event: the lane's thread competes for the interpreter with the manager's)."""
        if entry is not self._cached:
            self._load(entry)
        fn = self._event
        assert fn is not None
        fifo = self.fifo
        seqs = self.seqs
        jobs = self.jobs
        while True:
            try:
                value = fn(item)
            except CRASHES as exc:
                self._settle(entry, Raised(exc), item, "handle_event")
                return
            if value is not None:
                self._settle(entry, Returned(value), item, "handle_event")
                return
            if not fifo or fifo[0].__class__ in _SPECIAL or jobs or self.watch is not None:
                return  # something else is next, or an outcome waits for this lane to move on
            if self.closed or self.vacant or not entry.alive:
                return
            item = fifo.popleft()
            self.current = seqs.popleft()

    def _next_ready(self) -> bool:
        return (
            bool(self.jobs)
            or self.closed
            or (bool(self.fifo) and (self.vacant or self._serving() is not None))
        )

    def _do(self, item: Any) -> None:
        cls = item.__class__
        if cls is _Job:
            eff = item.eff
            out = _outcome(eff.fn, eff.args, eff.kwargs)
            # the manager may have stopped waiting (a stop timed out on it: on asyncio its
            # wait cancels the future)
            with contextlib.suppress(concurrent.futures.InvalidStateError):
                item.fut.set_result(out)
            return
        if self.closed or self.vacant:
            self._closed_item(item)
            return
        entry = self.entry
        assert entry is not None
        if cls is _Mark:
            item.barrier.reach()
        elif cls is _Call:
            fn = self._answers(entry, item)
            if fn is None:
                return
            self.calling = item
            self._settle_call(entry, item, _outcome(fn, (item.request,), None))
        elif cls is _Info:
            if self._no_info(entry, item):
                return
            out = _outcome(entry.instance.handle_info, (item.message,), None)
            self._settle(entry, out, item.message, "handle_info")
        else:
            if entry is not self._cached:
                self._load(entry)
            out = _outcome(self._event, (item,), None)  # type: ignore[arg-type]
            self._settle(entry, out, item, "handle_event")


class TaskLane(Lane):
    """A lane run by an asyncio task of its own, in the manager's loop (started at its first
    job). Its coroutine callbacks are awaited there, so a slow ``await`` delays nobody else."""

    kind = "task"
    __slots__ = ("loop", "task", "waiter")

    def __init__(self, *args: Any, loop: asyncio.AbstractEventLoop, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.loop = loop
        self.waiter: asyncio.Future[None] | None = None
        self.task: asyncio.Task[None] | None = None

    def post(self, event: Any) -> None:
        """Queue an event (as :meth:`Lane.post`, the wake-up inlined: the manager's hot path)."""
        if self.maxsize is not None and not self._room():
            return
        self._seqs_append(self._next_seq())
        self._fifo_append(event)
        if self.waiter is not None:
            self._wake()

    def _wake(self) -> None:
        waiter = self.waiter
        if waiter is not None:
            self.waiter = None
            if not waiter.done():
                waiter.set_result(None)

    def start(self) -> None:
        """Start the task (once)."""
        if not self.started:
            self.started = True
            self.task = asyncio.Task(self._main(), loop=self.loop)

    async def _main(self) -> None:
        _RUNNING.set(self)  # in the task's own copy of the context
        await self._run()

    def caught_up(self) -> bool:
        # waiting for work (``waiter`` is set only then, and taken by whoever wakes it), with
        # nothing queued and no outcome waiting in the manager's mailbox
        return self.closed or (
            self.waiter is not None and not self.fifo and not self.jobs and self.pending is None
        )

    def job(self, eff: Invoke) -> asyncio.Future[Raised | Returned]:
        """Run the manager's invocation ``eff`` in the lane, before anything queued. Once its
        task was cancelled (its loop shuts down), the invocation runs in a task of its own:
        a handler whose callback received that cancellation is still terminated."""
        fut: asyncio.Future[Raised | Returned]
        if self.abandoned:
            fut = self.loop.create_future()
            fut.set_result(self.left_behind_outcome(eff))
            return fut
        task = self.task
        if task is not None and task.done():
            return asyncio.ensure_future(self._call(eff.fn, eff.args, eff.kwargs), loop=self.loop)
        fut = self.loop.create_future()
        self.start()
        self.jobs.append(_Job(eff, fut))
        self._wake()
        return fut

    def abandon(self) -> None:
        """Cancel the task: nothing more runs in it."""
        self.abandoned = self.closed = True
        self._abandon_calls()
        if self.task is not None:
            self.task.cancel()

    def running_callback(self) -> str | None:
        task = self.task
        if task is None or task.done():
            return None
        return callback_in(awaited_frames(task.get_coro()))

    async def _call(self, fn: Callable[..., Any], args: Any, kwargs: Any) -> Raised | Returned:
        try:
            value = fn(*args, **kwargs) if kwargs else fn(*args)
            if inspect.isawaitable(value):
                value = await value
        except asyncio.CancelledError as exc:
            task = self.task
            if task is not None and task.cancelling() and task is asyncio.current_task():
                raise  # the lane itself is cancelled (left behind, or its loop closes)
            return Raised(exc)
        except CRASHES as exc:
            return Raised(exc)
        return Returned(value)

    async def _run(self) -> None:
        host = self.host
        spent = 0
        try:
            while True:
                item = self._next()
                if item is _NOTHING:
                    if self.closed and not self.jobs:
                        self._drain_closed()
                        self._passed()
                        host.lane_wake()
                        return
                    self._passed()
                    self.waiter = self.loop.create_future()
                    host.lane_wake()
                    await self.waiter
                    continue
                cls = item.__class__
                if cls not in _SPECIAL and cls is not _Job and self.maxsize is None:
                    # the hot path: plain events to a plain handle_event, in a batch
                    entry = self.entry
                    if not self.closed and not self.vacant and entry is not None:
                        if entry is not self._cached:
                            self._load(entry)
                        if not self._event_async:
                            spent = await self._drain(entry, item, spent)
                            self._passed()
                            continue
                spent += 1
                if spent >= _BUDGET:  # fairness: the loop's other tasks get a turn
                    spent = 0
                    if item.__class__ is _Job:
                        self.jobs.appendleft(item)
                    else:
                        self.seqs.appendleft(int(self.current))
                        self.fifo.appendleft(item)
                    self.current = _IDLE
                    await asyncio.sleep(0)
                    continue
                self.busy = True
                try:
                    await self._do(item)
                finally:
                    self.busy = False
                if item.__class__ is not _Job:
                    self._passed()
        finally:
            self.closed = True
            self.current = _IDLE
            while self.jobs:  # cancelled with jobs waiting: they run in tasks of their own
                job = self.jobs.popleft()
                if not job.fut.done():
                    self._job_elsewhere(job)
            self._drain_closed()
            self.busy = False
            if self.watch is not None:
                self.watch = None
                host.lane_recheck()
            host.lane_wake()  # a stop may wait for it

    def _job_elsewhere(self, job: _Job) -> None:
        eff = job.eff
        done = asyncio.ensure_future(self._call(eff.fn, eff.args, eff.kwargs), loop=self.loop)

        def _copy(task: asyncio.Future[Raised | Returned]) -> None:
            if not job.fut.done():
                if task.cancelled():
                    job.fut.set_result(Raised(asyncio.CancelledError()))
                else:
                    job.fut.set_result(task.result())

        done.add_done_callback(_copy)

    async def _drain(self, entry: Entry, item: Any, spent: int) -> int:
        """Plain events in a row, while nothing else is queued before them. The places in
        mailbox order of the events it takes are brought up to date before anything else can
        read them (the manager runs in this thread: only at an await, or an outcome), not per
        event."""
        fn = self._event
        assert fn is not None
        fifo = self.fifo
        taken = 0  # events taken since the place was last brought up to date
        self.busy = True
        try:
            while True:
                try:
                    value = fn(item)
                except CRASHES as exc:
                    taken = self._catch_up(taken)
                    self._settle(entry, Raised(exc), item, "handle_event")
                    return spent
                if value is not None:
                    taken = self._catch_up(taken)
                    self._settle(entry, Returned(value), item, "handle_event")
                    return spent
                spent += 1
                if spent >= _BUDGET:
                    taken = self._catch_up(taken)
                    await asyncio.sleep(0)
                    spent = 0
                    if self.pending is not None or not entry.alive or self.jobs:
                        return spent
                    if self.watch is not None:
                        return spent  # an outcome waits for this lane to move on: say so
                if not fifo or fifo[0].__class__ in _SPECIAL or self.jobs:
                    return spent
                item = fifo.popleft()
                taken += 1
        finally:
            self._catch_up(taken)
            self.busy = False

    def _catch_up(self, taken: int) -> int:
        """``taken`` events left the queue since ``current`` was set: their places go, and
        ``current`` is the last one's. Returns 0."""
        if taken:
            seqs = self.seqs
            if taken > 1:  # in C: popleft called taken - 1 times, the results dropped
                deque(itertools.islice(iter(seqs.popleft, None), taken - 1), maxlen=0)
            self.current = seqs.popleft()
        return 0

    async def _do(self, item: Any) -> None:
        cls = item.__class__
        if cls is _Job:
            eff = item.eff
            out = await self._call(eff.fn, eff.args, eff.kwargs)
            if not item.fut.done():
                item.fut.set_result(out)
            return
        if self.closed or self.vacant:
            self._closed_item(item)
            return
        entry = self.entry
        assert entry is not None
        if cls is _Mark:
            item.barrier.reach()
        elif cls is _Call:
            fn = self._answers(entry, item)
            if fn is None:
                return
            self.calling = item
            self._settle_call(entry, item, await self._call(fn, (item.request,), None))
        elif cls is _Info:
            if self._no_info(entry, item):
                return
            out = await self._call(entry.instance.handle_info, (item.message,), None)
            self._settle(entry, out, item.message, "handle_info")
        else:
            if entry is not self._cached:
                self._load(entry)
            fn = self._event
            assert fn is not None
            if self._event_async:
                out = await self._call(fn, (item,), None)
            else:
                try:
                    value = fn(item)
                except CRASHES as exc:
                    out = Raised(exc)
                else:
                    if value is None:
                        if self.maxsize is not None:
                            self.counts.handled += 1
                        return
                    out = Returned(value)
            self._settle(entry, out, item, "handle_event")


class Order:
    """What isolated handlers bring back to the manager (an outcome that changes the table) is
    applied in the mailbox order of the message that caused it, whichever lane finished first:
    an outcome from ``seq`` waits until every other lane is past ``seq`` (each lane's queued
    items carry their place in that order, see :class:`Lane`). A lane that passes a watched
    place wakes the manager (:meth:`Host.lane_recheck`), which then takes the outcomes that
    are ready (:meth:`ready`), in order. Only changes to the table wait: an isolated
    handler's plain event handling never waits for its siblings."""

    __slots__ = ("_count", "_waiting", "seq")

    def __init__(self) -> None:
        #: numbers what is queued to the lanes: its place in mailbox order
        self.seq = itertools.count()
        self._waiting: list[tuple[float, int, Any]] = []
        self._count = itertools.count()

    def __bool__(self) -> bool:
        return bool(self._waiting)

    def admit(self, lanes: Iterable[Lane], seq: float, source: Lane | None, what: Any) -> bool:
        """An outcome ``what`` from ``seq`` came back from ``source`` (or a request takes its
        place ``seq``: ``source`` None): True if it may be applied now (then the caller
        applies it, then whatever :meth:`ready` gives, as it does after a False); else it
        waits here."""
        if source is not None and source.posted == seq:  # taken: the manager knows of it
            source.posted = _IDLE
        if not self._waiting and self._clear(lanes, seq, source):
            return True
        heapq.heappush(self._waiting, (seq, next(self._count), (source, what)))
        self._watch(lanes)
        return False

    def ready(self, lanes: Iterable[Lane]) -> list[Any]:
        """The waiting outcomes that may be applied now, in order (taken out)."""
        out: list[Any] = []
        waiting = self._waiting
        while waiting:
            seq, _, (source, what) = waiting[0]
            if not self._clear(lanes, seq, source):
                break
            heapq.heappop(waiting)
            out.append(what)
        if waiting:
            self._watch(lanes)
        return out

    def take_place(self, lanes: Iterable[Lane], what: Any) -> bool:
        """A request (or a marker) takes the next place in mailbox order: True if every lane is
        past what was queued before it (it runs now); else it waits here (see :meth:`admit`)."""
        return self.admit(lanes, next(self.seq), None, what)

    def holds(self, what: Any) -> bool:
        """Whether ``what`` still waits here."""
        return any(item[2][1] is what for item in self._waiting)

    def take_all(self) -> list[Any]:
        """Every waiting outcome, in order (a stop: no lane will move any more)."""
        waiting = sorted(self._waiting)
        self._waiting = []
        return [what for _, _, (_, what) in waiting]

    def _watch(self, lanes: Iterable[Lane]) -> None:
        seq = self._waiting[0][0]
        for lane in lanes:
            if lane.head() < seq:
                lane.watch = seq
                if lane.head() > seq:  # passed meanwhile: it may not have seen the watch
                    lane.watch = None
                    lane.host.lane_recheck()

    @staticmethod
    def _clear(lanes: Iterable[Lane], seq: float, source: Lane | None) -> bool:
        return all(lane is source or lane.abandoned or lane.head() > seq for lane in lanes)


# -- what the manager does around its requests ---------------------------------------------------

CONCERNED: Final = frozenset(
    {
        "call",
        "sync_notify",
        "which_handlers",
        "get_state",
        "delete_handler",
        "add_handler",
        "add_sup_handler",
        "swap_handler",
        "swap_sup_handler",
        "owner_down",
    }
)
"""Requests that may concern isolated handlers (the runtime looks at these before it runs
them: a call goes to the handler's lane, the others may wait for lanes to catch up)."""

LANE_RESULTS: Final = frozenset({"lane", "lane call", "lane order"})
"""The kinds of the messages that bring isolated handlers' outcomes back to the manager (and
wake it when a lane passed a place an outcome waits for): applied in mailbox order (see
:class:`Order`), never dropped by a stop, never held."""

CAUGHT_UP: Final = " (isolated handlers caught up)"
"""Appended to a request's name when it comes back to the mailbox after its barrier."""


def stopped_before(what: str) -> str:
    """The detail of the :class:`ManagerNotRunning` a queued request gets from a stop that
    drops the backlog (a ``sync_notify`` waiting for isolated handlers: its event was
    handled by the others, and dropped from the isolated ones' mailboxes)."""
    if what.endswith(CAUGHT_UP):
        return (
            f" (it stopped before its isolated handlers caught up with {what[: -len(CAUGHT_UP)]}"
            ", dropping their backlogs)"
        )
    return f" (it stopped before {what})"


_ORDERED: Final = frozenset(
    {
        "which_handlers",
        "get_state",
        "delete_handler",
        "swap_handler",
        "swap_sup_handler",
        "owner_down",
    }
)


def takes_its_place(core: ManagerCore, what: str, args: tuple[Any, ...]) -> bool:
    """Whether a request must take its place in mailbox order among what the isolated handlers
    bring back (see :class:`Order`): it is applied once every isolated handler is past the
    messages queued before it, so that it sees and changes the table gen_event would show
    (a deleted handler sees no later event, ``which_handlers`` shows what came before it and
    nothing after, an owner's notices come in order). Those that read or change the table do;
    an ``add_handler`` of an id not installed (nothing to wait for but an isolated handler's
    swap into that very id, a race of its own) and a call to an installed
    handler that is not isolated do not. ``args``: the request's arguments, the handler
    reference first (``old, args1, new`` for the swaps)."""
    if not core.isolated:
        return False
    if what in _ORDERED:
        return True
    if what in ("add_handler", "add_sup_handler", "call"):
        return core.find(args[0]) is None if what == "call" else core.find(args[0]) is not None
    return False


def applied(
    core: ManagerCore, entry: Entry, out: Raised | Returned, message: Any, callback: str
) -> Procedure:
    """Apply an isolated handler's outcome (``core.event_result``); a KeyboardInterrupt or
    SystemExit it raised then goes on, as from a handler that is not isolated. The lane is
    served again afterwards (see :func:`reap`) even if the table did not change."""
    core.note_lane(entry)
    yield from core.event_result(entry, out, message, callback)
    if out.__class__ is Raised and isinstance(out.exception, FATAL):
        raise out.exception


def call_applied(
    core: ManagerCore, entry: Entry, out: Raised | Returned, request: Any
) -> Procedure:
    """Apply an isolated handler's call outcome (``core.call_result``); a KeyboardInterrupt or
    SystemExit its ``handle_call`` raised goes on once it is applied (the caller is then told
    the manager was interrupted, as for a handler that is not isolated). The lane is served
    again afterwards, as by :func:`applied`."""
    core.note_lane(entry)
    try:
        return (yield from core.call_result(entry, out, request))
    finally:
        if out.__class__ is Raised and isinstance(out.exception, FATAL):
            raise out.exception  # on purpose: it wins over the caller's error


def reap(core: ManagerCore, lanes: dict[Lane, None], fresh: list[Lane]) -> int:
    """After the table changed: each lane concerned serves the entry that uses it now; a lane
    no entry uses is closed and forgotten (taken out of ``lanes``, the manager's started
    lanes), unless its handler waits for another restart attempt (then it stays, vacant).
    The lanes concerned are those of the entries in ``core.lane_edits`` (installed, removed,
    or whose outcome was applied) and the ``fresh`` ones (started since: a lane whose handler
    failed to start is closed); both lists are emptied, so the cost is that of the edits, not
    of the lanes there are. Returns how many events the closed lanes' mailboxes dropped (the
    manager counts them from then on)."""
    users: dict[Lane, Entry | None] = dict.fromkeys(fresh)
    fresh.clear()
    edits = core.lane_edits
    if edits:
        core.lane_edits = None
        for entry in edits:
            lane = entry.lane
            if entry.alive:  # at most one entry in the table uses a lane
                users[lane] = entry
            elif users.get(lane) is None:
                users[lane] = None
    dropped = 0
    waiting: set[int] | None = None
    for lane, edited in users.items():
        if lane not in lanes:
            continue
        user = edited
        if user is None:
            current = lane.entry  # the entry it served last, if that is still in the table
            if current is not None and current.alive:
                user = current
        if user is not None:
            lane.serve(user)
            continue
        if core.retrying:  # its handler may wait for another restart attempt: it stays
            if waiting is None:
                waiting = {id(e.lane) for e, _ in core.retrying.values() if e.lane is not None}
            if id(lane) in waiting:
                lane.vacate()
                continue
        lane.close()
        del lanes[lane]
        dropped += lane.counts.dropped
    return dropped


def pass_call(core: ManagerCore, handler: Any, request: Any, req: Any) -> bool:
    """A call to an isolated handler goes to its lane, not through the manager: True when
    ``req`` (the caller's request, answered by the lane) was passed on."""
    entry = core.find(handler)
    if entry is not None and entry.lane is not None:  # in order: its lane answers, or says
        core.requests += 1  # CallNotSupported in its turn
        entry.lane.post_call(request, req, entry.ref)
        return True
    return False


def when_caught_up(lanes: list[Lane], then: Callable[[], None]) -> None:
    """Run ``then`` once every lane in ``lanes`` handled what it was given (at once if none
    is behind: a lane that caught up is not woken)."""
    behind = [lane for lane in lanes if not lane.caught_up()]
    if not behind:
        then()
        return
    barrier = Barrier(len(behind), then)
    for lane in behind:
        lane.mark(barrier)


def drop_backlogs(manager: Any, lanes: Iterable[Lane]) -> int:
    """A stop that drops the backlog: so do the isolated handlers' mailboxes (their drops
    counted on each handler; logged for ``manager``). Returns how many events and infos they
    dropped."""
    lost = sum(lane.drop_backlog(" (it stopped, dropping its backlog)") for lane in list(lanes))
    if lost:
        log_backlog(manager, lost, 0, "from isolated handlers' mailboxes at stop")
    return lost


def leave_behind(manager: Any, lane: Lane) -> bool:
    """Stopping, ``lane`` did not finish within its stop timeout: log it and let it go. False
    if it was left behind already."""
    if lane.abandoned:
        return False
    left_behind(manager, lane)
    lane.abandon()  # type: ignore[attr-defined]
    return True


def left_behind(manager: Any, lane: Lane) -> None:
    """Log that ``lane`` did not finish within its stop timeout."""
    log.error(
        "genevent manager %s: isolated handler %s did not finish within its stop timeout "
        "(%s s; running %s); left behind: %s, its terminate not run",
        getattr(manager, "name", None) or manager,
        _name(lane.ref),
        lane.stop_timeout,
        lane.running_callback() or "nothing",
        "its task cancelled" if lane.kind == "task" else "its thread left running as a daemon",
    )
