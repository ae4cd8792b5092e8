"""A lane's mailbox and the manager's side of it (:class:`Lane`, run by a task or a thread:
see ``_task_lane`` and ``_thread_lane``), what a lane needs of its manager (:class:`Host`),
and the mailbox order what lanes bring back is applied in (:class:`Order`).
"""

from __future__ import annotations

import contextvars
import heapq
import inspect
import itertools
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any, Final, Protocol

from .._core import Entry, Invoke, Raised, Report, Returned, is_plain_reply
from .._driver import log, report
from .._errors import CallNotSupported, ManagerNotRunning, _name
from .._overflow import Action, Counts
from ._items import (
    IDLE,
    LOG_EVERY,
    NOTHING,
    STOP_TIMEOUT,
    Barrier,
    CallItem,
    InfoItem,
    JobItem,
    LaneOverflow,
    MarkItem,
    lane_not_found,
)

__all__ = (
    "RUNNING",
    "Host",
    "Lane",
    "Order",
    "running_lane",
)


# the lane whose task or thread this is (set in the lane's own context: a task's copy, or
# the lane thread's), so that a manager tells its lanes' callers apart without a scan
RUNNING: Final[contextvars.ContextVar[Lane | None]] = contextvars.ContextVar(
    "genevent_lane", default=None
)


def running_lane() -> Lane | None:
    """The lane running the calling code (in its thread or task), or None. A task or thread
    the handler starts may inherit it: callers check ``lane.task``/``lane.thread`` too."""
    return RUNNING.get()


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
        self.jobs: deque[JobItem] = deque()
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
        #: the place in mailbox order of the item it runs (or ran last), or :data:`IDLE`
        self.current: float = IDLE
        #: an outcome waits until this lane is past this place (see :class:`Order`), or None
        self.watch: float | None = None
        #: the place of an outcome it posted that the manager has not taken yet (:data:`IDLE`
        #: when there is none): until then the lane is not past it
        self.posted: float = IDLE
        #: when ``stop`` told it to stop (its ``stop_timeout`` counts from there), or None
        self.stop_at: float | None = None
        #: the call running now (answered at once if the lane is left behind)
        self.calling: CallItem | None = None
        # bound once: post() runs on the manager's hot path, once per event and lane
        self._next_seq = host._lane_order.seq.__next__
        self._seqs_append = self.seqs.append
        self._fifo_append = self.fifo.append
        #: taken by the lane to take an item, and by a drop of the oldest (bounded lanes only)
        self._pop_lock = threading.Lock() if maxsize is not None else None
        self._logged_at = -LOG_EVERY
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
        self.fifo.append(InfoItem(message))
        self._wake()

    def post_call(self, request: Any, req: Any, ref: Any = None) -> None:
        """Queue a call to ``ref`` (None: to whichever handler the lane serves then); the
        reply (or error) goes to the host's request ``req``."""
        self.seqs.append(self._next_seq())
        self.fifo.append(CallItem(request, req, ref))
        self._wake()

    def mark(self, barrier: Barrier) -> None:
        """``barrier`` is reached once everything queued before is handled (at once, without
        waking the lane, when it has: see :meth:`caught_up`)."""
        if self.closed or self.caught_up():
            barrier.reach()
            return
        self.seqs.append(self._next_seq())
        self.fifo.append(MarkItem(barrier))
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
        """The place in mailbox order of the first item it has not finished (:data:`IDLE`
        when there is none). Read from the manager's side while the lane runs: it may be
        too early (then the lane wakes the manager once it passes a watched place), never too
        late."""
        if self.closed:
            return self.posted
        current = self.current
        if current == IDLE:
            try:
                current = self.seqs[0]
            except IndexError:
                current = IDLE
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
            if cls is CallItem:
                self.host.lane_fail(item.req, ManagerNotRunning(self.host, why))
            elif cls is MarkItem:
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
                if item.__class__ is not CallItem and item.__class__ is not MarkItem:
                    del self.fifo[i]
                    del self.seqs[i]
                    return True
        return False

    def _log_drop(self) -> None:
        self._logged_drops += 1
        now = time.monotonic()
        if now - self._logged_at >= LOG_EVERY:
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
        """The next thing to run: a job first; an item while serving; else ``NOTHING``."""
        if self.jobs:
            return self.jobs.popleft()
        fifo = self.fifo
        if fifo and (self.closed or self.vacant or self._serving() is not None):
            lock = self._pop_lock
            if lock is not None:
                with lock:
                    return self._take(fifo)
            return self._take(fifo)
        return NOTHING

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
            self.current = IDLE
            return NOTHING
        self.current = seq
        return item

    def _passed(self) -> None:
        """The item it ran is finished (its outcome, if any, posted): move on, and wake the
        manager if an outcome waits for this lane to get past a place (see :class:`Order`)."""
        self.current = IDLE
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
        if cls is CallItem:
            self.host.lane_fail(item.req, lane_not_found(self.host, self.ref))
        elif cls is MarkItem:
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

    def _no_info(self, entry: Entry, item: InfoItem) -> bool:
        """An info queued to a handler that has no ``handle_info`` (one swapped in after it
        was queued): it is dropped with the warning the manager gives for it. True then."""
        if entry.info.has_info:
            return False
        report(self.host, Report("no_handle_info", entry.ref, entry.instance, item.message, None))
        return True

    def _answers(self, entry: Entry, item: CallItem) -> Callable[[Any], Any] | None:
        """``entry``'s ``handle_call`` if it answers the call ``item``; else None, the caller
        answered: a call made to another id (the handler it was made to swapped itself away
        meanwhile) gets :class:`HandlerNotFound`, one to a handler without ``handle_call``
        :class:`CallNotSupported`, as from the manager."""
        if item.ref is not None and item.ref != entry.ref:
            self.host.lane_fail(item.req, lane_not_found(self.host, item.ref))
            return None
        fn = entry.call_fn
        if fn is None:
            self.host.lane_fail(item.req, CallNotSupported(entry.ref))
        return fn

    def _settle_call(self, entry: Entry, item: CallItem, out: Raised | Returned) -> None:
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
            source.posted = IDLE
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
