"""The asyncio runtime: an event manager is one task with one mailbox.

Which calls are safe from where:

* ``notify`` and ``send`` are plain methods that never block or wait; they are safe from the
  manager's loop, from any other thread, from a handler of this manager (the message is queued)
  and from plain synchronous code.
* Every other request is a coroutine that must be awaited *in the manager's own event loop*.
  From another thread use ``asyncio.run_coroutine_threadsafe(mgr.call(...), mgr.loop)``;
  awaiting from a foreign loop raises :class:`~genevent.WrongRuntime`.
* A handler callback that awaits a request on its own manager gets
  :class:`~genevent.CallingSelf` at once instead of a deadlock.

Messages are handled one at a time in arrival order, for at most one slice of time in a row
(the interpreter's switch interval, 5 ms by default): then the manager gives its event loop a
turn, as an Erlang process is preempted once it spent its reductions. A
mailbox that never empties (a producer thread, a handler notifying its own manager) therefore
holds the loop for one slice at a time, and the loop's other tasks, timers and timeouts still
run. When the manager is idle (its mailbox is empty and its task is parked) and every handler
is a plain (non-coroutine) handler, ``call``, ``sync_notify`` and ``which_handlers`` run inline
in the caller, without a context switch: the result and every ordering guarantee are those of
the queued path (a manager between two slices is not idle).

Arguments are checked at the call, before anything is queued or run, the same way on the queued
and the inline path: ``timeout`` must be None (wait as long as it takes), ``math.inf`` (the
same) or a number of seconds >= 0 (else :class:`TypeError` / :class:`ValueError`); a handler
reference must be a handler class or ``(class, id)`` (else :class:`~genevent.InvalidHandler`);
``on_exit`` must be callable (else :class:`~genevent.InvalidOwner`). ``timeout=0`` never
waits, as in OTP: the request is delivered and handled in its turn, and the caller gets
:class:`~genevent.CallTimeout` at once (the reply is dropped).
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Coroutine, Hashable
from types import CodeType, TracebackType
from typing import Any, Final, Generic, NoReturn, TypeVar, overload

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
    Report,
    RestartPolicy,
    Returned,
    Swap,
    TellOwner,
    Unwatch,
    Watch,
    restart_spec,
)
from ._driver import CRASHES, FATAL, callback_in, log, report, take_back, tell_owner
from ._errors import (
    CallingSelf,
    CallTimeout,
    GenEventError,
    InvalidHandler,
    InvalidOwner,
    ManagerNotRunning,
    WrongRuntime,
    _name,
)
from ._handler import HandlerRef
from ._lanes import (
    CAUGHT_UP,
    CONCERNED,
    STOP_TIMEOUT,
    Barrier,
    Isolation,
    Lane,
    LaneOverflow,
    TaskLane,
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
from ._streams import AsyncEventStream
from ._text import short

__all__ = ("EventManager", "start")

E = TypeVar("E")
Req = TypeVar("Req")
Rep = TypeVar("Rep")
T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])

try:  # the running task, cheaply: 3.11's asyncio.current_task is Python code (~300 ns);
    # the dict behind it is C, and eager tasks (3.12+) keep it up to date too
    from asyncio.tasks import _current_tasks  # type: ignore[attr-defined]  # private, C

    _task_of: Callable[[asyncio.AbstractEventLoop], asyncio.Task[Any] | None] = _current_tasks.get
except ImportError:  # pragma: no cover - a Python without it has a C current_task
    _task_of = asyncio.current_task

_running_loop = asyncio._get_running_loop  # C; None outside a running loop (public twin raises)
_FOREVER: Final = threading.TIMEOUT_MAX  # timeouts this long or longer mean "no timeout"
_LIVE: set[EventManager[Any]] = set()  # running managers stay alive until they stop, like
# Erlang processes: a manager nobody references is still a running manager, not garbage
_STOP: Final = object()
_INTERNAL: Final = frozenset({"info", "owner_down", "stream close", "lane", "lane call"})
_CONCERNED: Final = CONCERNED
"""Requests that may concern isolated handlers (see ``EventManager._isolated``)."""
_CAUGHT_UP: Final = CAUGHT_UP  # a request re-posted after a barrier
# request kinds the manager answers without the core's generator when the reply is plain
_CALL: Final = object()
_SYNC: Final = object()
_WHICH: Final = object()
_CALL_OUTCOME: Final = object()  # a queued call whose handle_call ran: (entry, outcome, request)
_SYNC_REST: Final = object()  # a queued sync_notify from its first handler that did more
_seal_lock = threading.Lock()  # shared: taken only by a notify that raced a stop, and at seal

_BUDGET: Final = 1024
"""How many messages the manager task handles between two looks at the clock (counted per
batch of messages known to be in the mailbox, so the count costs nothing per message; a clock
read per message would add about 45 ns to a drain of about 125 ns per event)."""

_SLICE: Final = sys.getswitchinterval()
"""The fairness slice, like OTP's reductions: once the manager task has been draining for this
long (checked every :data:`_BUDGET` messages), it gives its event loop a turn (a ``sleep(0)``),
so that a mailbox that never empties (a producer thread, a handler notifying its own manager)
cannot starve the loop's other tasks, timers and timeouts. The runtime's, not the user's.

It is the interpreter's own thread switch interval (5 ms by default), measured against shorter
slices: a turn of the loop polls for I/O and so releases the GIL, and a producer thread that
takes it keeps it for a whole switch interval. A slice as long as that interval keeps the
manager and a flooding producer thread alternating as the interpreter alternates threads (the
flood's throughput within a few % of a manager that never yields); slices of 1024 messages
(about 130 µs) gave the producer nearly all the time and cost a quarter of that throughput."""
_yield = asyncio.sleep
_clock = time.monotonic


class _Fatal:
    """What inline work returns when a KeyboardInterrupt or SystemExit ran through it."""

    __slots__ = ("exc",)

    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


class _Request:
    """A control message in the mailbox. Events from ``notify`` go in as themselves.

    A request with a deadline also carries ``deadline`` (the loop's clock), ``timeout`` and
    ``ahead`` (the messages queued ahead of it when it was posted); the others leave them
    unset."""

    __slots__ = ("ahead", "args", "deadline", "fut", "proc", "timeout", "what")
    ahead: int
    deadline: float
    timeout: float

    def __init__(
        self,
        proc: Callable[..., Procedure] | object,
        args: tuple[Any, ...],
        fut: asyncio.Future[Any] | None,
        what: str,
    ) -> None:
        self.proc = proc
        self.args = args
        self.fut = fut
        self.what = what


def _resolve(fut: asyncio.Future[Any] | None, value: Any) -> None:
    if fut is not None and not fut.done():
        fut.set_result(value)


def _fail(fut: asyncio.Future[Any] | None, exc: BaseException) -> None:
    if fut is not None and not fut.done():
        fut.set_exception(exc)


def _awaited_codes(awaitable: Any) -> list[Any]:
    """The code objects of a coroutine and of what it awaits, outermost first."""
    codes: list[CodeType] = []
    while awaitable is not None and len(codes) < 1000:
        code = getattr(awaitable, "cr_code", None) or getattr(awaitable, "gi_code", None)
        if code is None:
            break
        codes.append(code)
        awaitable = getattr(awaitable, "cr_await", None) or getattr(awaitable, "gi_yieldfrom", None)
    return codes


class _Pending(deque[_Request]):
    """A manager's requests with a deadline, in mailbox order until answered, with what
    watches them: one timer (the watchdog), armed at the earliest deadline only while the
    manager's work is suspended in an await (see ``EventManager._suspend``). Made on first
    use; kept on one attribute, since the manager's instance dictionary stays compact (and
    small) only while its attributes are few."""

    __slots__ = ("sorted", "time", "watchdog", "watchdog_at")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__()
        #: whether the deadlines are in mailbox order (they are, unless timeouts differ)
        self.sorted = True
        self.watchdog: asyncio.TimerHandle | None = None
        self.watchdog_at = 0.0
        # the loop's clock (deadlines are compared with it); the default loop's is
        # time.monotonic itself, called without the method in between
        self.time: Callable[[], float] = (
            time.monotonic if type(loop).time is asyncio.BaseEventLoop.time else loop.time
        )


def _consume_outcome(fut: asyncio.Future[Any]) -> None:
    if not fut.cancelled():
        fut.exception()


def _is_control(msg: Any) -> bool:
    """A control request (never dropped), as opposed to an event or an info message."""
    return msg.__class__ is _Request and msg.what != "info"


def _droppable(msg: Any) -> bool:
    return not _is_control(msg)


class EventManager(Generic[E]):
    """An asyncio event manager (OTP's ``gen_event`` process). Create it with :func:`start`.

    ``EventManager[Event]`` accepts only handlers of ``Event``; ``notify`` only ``Event``.
    Use it as ``async with aio.start() as mgr:`` to stop it (every handler terminated) when the
    block exits: normally after handling everything queued, by an exception without (see
    :meth:`stop`'s ``drain``).
    """

    # set on the few managers that need them (an idle manager must stay small)
    _bound: Bound | None = None
    _room: asyncio.Future[None] | None = None
    _dropping = False
    _late_dropped = 0

    def __init__(self, name: str | None = None, *, timing: bool = False) -> None:
        """Internal: use :func:`start`."""
        self._loop = asyncio.get_running_loop()
        self._thread_id = threading.get_ident()
        #: the name it is registered under, or None
        self.name = name
        self._core = ManagerCore(self, clock=self._loop.time)
        # metrics the core does not keep (it counts the rest)
        self._high_water = 0
        self._dropped = 0
        self._refused = 0
        self._timings: Timings | None = None
        if timing:
            self._timings = Timings(time.perf_counter_ns)
            self._core.wrap_event = self._timings.wrap
        self._mailbox: deque[Any] = deque()
        self._waiter: asyncio.Future[None] | None = None
        self._wake_pending = False
        #: set when stop is requested (new messages refused from then on)
        self._closed = False
        #: set once the stopping manager found its mailbox empty (see _late)
        self._sealed = False
        #: while stopping: a CancelledError from a callback is its crash, never the manager's
        self._finishing = False
        self._dispatch_task: object = None
        self._inline_done: asyncio.Future[None] | None = None
        # requests with a deadline until answered, and their watchdog (see _enqueue); made
        # on first use (an idle manager's attributes stay few: see _Pending)
        self._pending: _Pending | None = None
        #: how many awaits the manager's work is suspended in (a coroutine callback, a turn
        #: given to the loop, an inline request's work): only then can a deadline pass before
        #: the manager gets to the request, so only then is the watchdog armed
        self._suspended = 0
        # created on first use: an idle manager must stay small (benchmarks: <= 4 KB)
        self._watched: set[Any] | None = None
        self._spawned: set[asyncio.Future[Any]] | None = None
        #: the lanes of isolated handlers (started ones)
        self._lanes: list[Lane] = []
        self._left_behind = 0
        self._lane_dropped = 0  # by the bounded mailboxes of isolated handlers that are gone
        self._settling = False
        self._stop_started: float | None = None
        if name is not None:
            _registry.register(name, self)
        _LIVE.add(self)
        try:
            # asyncio.Task, not create_task: a task factory (say eager_task_factory on 3.12+)
            # must not start the manager before self._task exists
            self._task: asyncio.Task[None] = asyncio.Task(self._run(), loop=self._loop)
        except BaseException:
            _LIVE.discard(self)
            if name is not None:
                _registry.unregister(name, self)
            raise

    def __repr__(self) -> str:
        state = "stopped" if self._closed else "running"
        label = f" {self.name!r}" if self.name else f" at {id(self):#x}"
        return (
            f"<aio.EventManager{label} {state} handlers={len(self._core.entries)} "
            f"queued={len(self._mailbox)}>"
        )

    # -- properties ---------------------------------------------------------------------------

    @property
    def queued(self) -> int:
        """How many messages (events, infos and requests) wait in the mailbox, not counting the
        one being handled: a snapshot, which other tasks and threads may change at once."""
        return len(self._mailbox)

    @property
    def maxsize(self) -> int | None:
        """The mailbox's bound (``start(maxsize=...)``), or None: unbounded."""
        bound = self._bound
        return None if bound is None else bound.maxsize

    def stats(self) -> ManagerStats:
        """What the manager and its handlers did (events, infos, requests, mailbox depth and
        high-water mark, drops, refusals, crashes, restarts, per-handler counts and, with
        ``start(timing=True)``, ``handle_event`` durations), read without stopping it. Safe
        from any thread."""
        bound = self._bound
        return build_stats(
            self._core,
            name=self.name,
            ident=id(self),
            running=self.is_running,
            queued=len(self._mailbox),
            queued_events=count_events(self._mailbox, _Request),
            high_water=self._high_water,
            dropped=self._dropped + (bound.counts.dropped if bound is not None else 0),
            refused=self._refused + (bound.counts.refused if bound is not None else 0),
            timings=self._timings,
            lane_dropped=self._lane_dropped,
        )

    @property
    def left_behind(self) -> int:
        """How many isolated handlers ``stop`` left behind because they did not finish within
        their ``stop_timeout`` (each logged: a task is cancelled, a thread left running)."""
        return self._left_behind

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        """The event loop the manager runs in."""
        return self._loop

    @property
    def is_running(self) -> bool:
        """False once the manager has stopped (or is stopping), or its event loop was closed."""
        return not self._closed and not self._gone()

    def _gone(self) -> bool:
        """True if the manager's event loop was closed under it; it is then marked stopped,
        its name freed, and what it never handled counted in a log line. Checked lazily (off
        the notify path): requests, ``is_running``, name lookups."""
        if not self._loop.is_closed():
            return False
        if self._task.done() or self._sealed:
            return True
        self._closed = self._sealed = True
        with _seal_lock:
            lost = len(self._mailbox)
            self._mailbox.clear()
        self._pending = None  # the loop is closed: its timers never fire
        self._dropped += lost
        log.error(
            "genevent manager %r: its event loop was closed while it was running; %d queued "
            "messages not handled, handlers not terminated: %s",
            self,
            lost,
            ", ".join(repr(e.ref) for e in self._core.entries) or "none",
        )
        self._shutdown()
        # the task can never run again: let it go quietly
        self._task._log_destroy_pending = False  # type: ignore[attr-defined]
        close = getattr(self._task.get_coro(), "close", None)
        if close is not None:
            close()
        return True

    async def wait_stopped(self) -> None:
        """Wait until the manager has stopped and every handler was terminated."""
        current = asyncio.current_task()
        if current is self._task or (current is not None and current is self._dispatch_task):
            raise CallingSelf(self, "wait_stopped")
        if not self._task.done() and not self._gone():
            await asyncio.wait((self._task,))

    # -- the mailbox --------------------------------------------------------------------------

    def _wake(self) -> None:
        self._wake_pending = False
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            if not waiter.done():
                try:
                    waiter.set_result(None)
                except RuntimeError:  # the loop is closed: nobody will run this manager again
                    if self._gone():
                        raise ManagerNotRunning(self, " (its event loop is closed)") from None
                    raise

    def _wake_from_thread(self) -> None:
        if not self._wake_pending:
            self._wake_pending = True
            try:
                self._loop.call_soon_threadsafe(self._wake)
            except RuntimeError as exc:  # the loop is closed: nobody will run this manager again
                self._wake_pending = False
                self._gone()
                raise ManagerNotRunning(self, " (its event loop is closed)") from exc

    def _post(self, item: Any) -> None:
        self._mailbox.append(item)
        if self._waiter is not None:
            if threading.get_ident() == self._thread_id:
                self._wake()
            else:
                self._wake_from_thread()

    def notify(self, event: E) -> None:
        """Queue ``event`` for every handler's ``handle_event`` and return at once (OTP's
        ``notify``). Safe from any thread. Raises :class:`ManagerNotRunning` once stopped."""
        if self._closed:
            self._refused += 1
            raise ManagerNotRunning(self)
        self._mailbox.append(event)
        if self._closed:  # stop was requested meanwhile: accepted only if it will be handled
            self._late(event)
        if self._waiter is not None:
            if threading.get_ident() == self._thread_id:
                self._wake()
            else:
                self._wake_from_thread()

    def send(self, message: Any) -> None:
        """Queue an info ``message`` for every handler's ``handle_info`` (OTP: any other message
        sent to the manager). Safe from any thread."""
        if self._closed:
            self._refused += 1
            raise ManagerNotRunning(self)
        req = _Request(self._core.info, (message,), None, "info")
        self._mailbox.append(req)
        if self._closed:
            self._late(req)
        if self._waiter is not None:
            if threading.get_ident() == self._thread_id:
                self._wake()
            else:
                self._wake_from_thread()

    async def notify_wait(self, event: E, *, timeout: float | None = None) -> None:
        """As :meth:`notify`, for a producer that accepts to wait: under
        ``start(maxsize=..., overflow="block")``, when the mailbox is full, wait for room for
        at most ``timeout`` seconds (None: as long as it takes), then raise
        :class:`~genevent.MailboxFull` (counted as refused). It waits only in the manager's
        loop (elsewhere :class:`~genevent.WrongRuntime`), and never in a handler of this
        manager (which the manager would have to finish first: ``MailboxFull`` at once).
        On an unbounded mailbox, one with room, or under another policy it never waits:
        it is :meth:`notify`."""
        if timeout is not None:
            check_timeout(timeout)
        self.notify(event)

    def _wake_room(self) -> None:
        """Wake the producers waiting for room (``notify_wait``): after each batch, and at
        stop (they are then refused)."""
        room = self._room
        self._room = None
        if room is not None and not room.done():
            with contextlib.suppress(RuntimeError):  # its loop is closed: nobody waits
                room.set_result(None)

    def _drop_backlog(self) -> None:
        """``stop(drain=False)``: take the backlog out of the mailbox now; its events and infos
        are dropped (counted and logged), its requests answered with
        :class:`ManagerNotRunning`."""
        self._dropping = True
        dropped, rest = take_backlog(self._mailbox, _droppable)
        self._dropped += dropped
        refused = 0
        for msg in rest:
            if msg.proc is _STOP:
                self._mailbox.append(msg)
            else:
                refused += msg.fut is not None
                _fail(msg.fut, ManagerNotRunning(self, f" (it stopped before {msg.what})"))
        log_backlog(self, dropped, refused, "at stop(drain=False)")

    def _late(self, item: Any) -> None:
        """``item`` was appended and the manager was found stopping afterwards: accept it if the
        manager will still drain it, else take it back and refuse it."""
        with _seal_lock:
            if not self._sealed:
                return
            take_back(self._mailbox, item)
            self._refused += 1
        raise ManagerNotRunning(self)

    def _check_caller(self, what: str) -> None:
        if self._closed or self._gone():
            raise ManagerNotRunning(self)
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        if loop is not self._loop:
            raise WrongRuntime(
                f"{what} on {short(self)} must be awaited in the manager's own event loop; from "
                "another thread use asyncio.run_coroutine_threadsafe(..., manager.loop) "
                "or the thread-safe notify()"
            )
        dispatching = self._dispatch_task
        if dispatching is not None and dispatching is _task_of(self._loop):
            raise CallingSelf(self, what)
        if self._lanes:  # an isolated handler's task waiting on its own manager
            current = _task_of(self._loop)
            if any(getattr(lane, "task", None) is current for lane in self._lanes):
                raise CallingSelf(self, what)

    def _can_inline(self) -> bool:
        return (
            self._waiter is not None
            and not self._mailbox
            and not self._core.async_count
            and not self._core.isolated
            and self._dispatch_task is None
        )

    def _enqueue(
        self,
        proc: Callable[..., Procedure] | object,
        args: tuple[Any, ...],
        what: str,
        timeout: float | None,
    ) -> asyncio.Future[Any]:
        """Queue a request (from the manager's loop) and return the future of its answer,
        failed with :class:`CallTimeout` once ``timeout`` has passed (0: at once).

        There is no timer per request: a request with a deadline joins the pending ones, which
        the manager drops once answered, and one timer (the watchdog), armed at the earliest
        pending deadline while the manager's work is suspended in an await, expires what is
        due when it fires (see :meth:`_suspend`; a blocked loop fires no timer at all)."""
        fut: asyncio.Future[Any] = self._loop.create_future()
        mailbox = self._mailbox
        req = _Request(proc, args, fut, what)
        ahead = len(mailbox)
        mailbox.append(req)
        if self._waiter is not None:  # _check_caller ran: this is the manager's own thread
            self._wake()
        if timeout is not None:
            if not timeout:  # delivered, but not waited for (OTP: a call with timeout 0)
                self._expire(fut, what, timeout, ahead, args)
                return fut
            self._deadline(req, ahead, timeout)
        return fut

    def _deadline(self, req: _Request, ahead: int, timeout: float) -> None:
        """Give ``req`` its deadline: it joins the pending requests (and the watchdog is armed
        now if the manager's work is suspended)."""
        pending = self._pending
        if pending is None:
            pending = self._pending = _Pending(self._loop)
        req.ahead = ahead
        req.timeout = timeout
        req.deadline = at = pending.time() + timeout
        if not pending:
            pending.sorted = True
        elif at < pending[-1].deadline:
            pending.sorted = False
        pending.append(req)
        if self._suspended and (pending.watchdog is None or at < pending.watchdog_at):
            self._arm(at)

    def _arm(self, at: float) -> None:
        pending = self._pending
        assert pending is not None
        if pending.watchdog is not None:
            pending.watchdog.cancel()
        pending.watchdog = self._loop.call_at(at, self._expire_due)
        pending.watchdog_at = at

    def _suspend(self) -> None:
        """The manager's work is about to await something other than its mailbox: from now
        on the loop runs other callbacks, timers included, before the pending requests are
        answered, so the watchdog watches their deadlines. (While the manager task runs or is
        about to, the loop fires no timer before it answered what is queued: a request's
        deadline can pass then only if the loop is blocked, when no timer fires either.)"""
        self._suspended += 1
        if self._pending:
            self._watch_pending()

    def _watch_pending(self) -> None:
        """Arm the watchdog at the earliest deadline still pending, if it is not armed."""
        self._answered()
        pending = self._pending
        if pending and pending.watchdog is None:
            self._arm(
                min(r.deadline for r in pending) if not pending.sorted else pending[0].deadline
            )

    def _expire_due(self) -> None:
        """The watchdog: fail every pending request whose deadline has passed, then re-arm at
        the earliest deadline still pending (if any)."""
        pending = self._pending
        if pending is None:
            return
        pending.watchdog = None
        if not pending:
            return
        now = pending.time()
        sorted_ = pending.sorted
        earliest: float | None = None
        for req in pending:  # _expire only schedules callbacks: nothing changes pending here
            if req.fut is None or req.fut.done():
                continue
            if req.deadline <= now:
                self._expire(req.fut, req.what, req.timeout, req.ahead, req.args)
            elif earliest is None or req.deadline < earliest:
                earliest = req.deadline
                if sorted_:  # deadlines in mailbox order: the rest come later
                    break
        if earliest is not None:
            self._arm(earliest)

    def _answered(self) -> None:
        """Drop the answered requests from the front of the pending list. Requests are
        answered in mailbox order, except a call passed on to an isolated handler: it stays
        (its deadline watched) until its lane answers, and those behind it until then."""
        pending = self._pending
        while pending and pending[0].fut.done():  # type: ignore[union-attr]
            pending.popleft()

    async def _answer(
        self,
        fut: asyncio.Future[Any],
        what: str,
        timeout: float | None,
        ahead: int,
        args: tuple[Any, ...] = (),
    ) -> Any:
        """Await a queued request's answer for at most ``timeout`` seconds (0: not at all)."""
        if timeout is None:
            return await fut
        if not timeout:  # delivered, but not waited for (OTP: a call with timeout 0)
            self._expire(fut, what, timeout, ahead, args)
            return await fut
        handle = self._loop.call_later(timeout, self._expire, fut, what, timeout, ahead, args)
        try:
            return await fut
        finally:
            handle.cancel()

    def _expire(
        self,
        fut: asyncio.Future[Any],
        what: str,
        timeout: float,
        ahead: int,
        args: tuple[Any, ...] = (),
    ) -> None:
        if not fut.done():
            fut.set_exception(self._timeout_error(what, timeout, ahead, args))

    def _timeout_error(
        self, what: str, timeout: float, ahead: int, args: tuple[Any, ...] = ()
    ) -> CallTimeout:
        label = f"call to {_name(args[0])}" if what == "call" and args else what
        running = None
        if what == "call" and args and self._core.isolated:
            entry = self._core.find(args[0])
            if entry is not None and entry.lane is not None:
                label = f"call to isolated handler {_name(args[0])}"
                running = entry.lane.running_callback()
        return CallTimeout(
            label, timeout, queued_ahead=ahead, running=running or self._running_callback()
        )

    def _running_callback(self) -> str | None:
        """The handler callback the manager is awaiting right now (``"Class.method"``), if any:
        read from the coroutines its task (or an inline request's task) is suspended in."""
        for task in (self._dispatch_task, self._task):
            if isinstance(task, asyncio.Task) and not task.done():
                name = callback_in(_awaited_codes(task.get_coro()))
                if name is not None:
                    return name
        return None

    # -- requests -----------------------------------------------------------------------------

    async def sync_notify(self, event: E, *, timeout: float | None = None) -> None:
        """Deliver ``event`` to every handler and return once all have handled it (OTP's
        ``sync_notify``). A handler crashing on it does not change the result. ``timeout=0``
        delivers it without waiting and raises :class:`CallTimeout`."""
        if timeout is not None:
            timeout = check_timeout(timeout)
        self._check_caller("sync_notify")
        if timeout != 0.0 and self._can_inline():
            core = self._core
            core.requests += 1
            core.events += 1
            targets = core.cached_targets or core.event_targets
            caller = self._dispatch_task = _task_of(self._loop)
            try:
                for entry, fn in targets:
                    try:
                        result = fn(event)
                    except CRASHES as exc:
                        outcome: Raised | Returned = Raised(exc)
                    else:
                        if result is None:
                            continue
                        outcome = Returned(result)
                    rest = targets[targets.index((entry, fn)) + 1 :]
                    fatal = await self._finish_inline(
                        self._finish_dispatch(entry, outcome, event, rest), "sync_notify", timeout
                    )
                    if fatal is not None:
                        self._inline_fatal(fatal)
                    return
            finally:
                if self._dispatch_task is caller:
                    self._inline_finished(None)
            return
        await self._enqueue(_SYNC, (event,), "sync_notify", timeout)

    async def call(
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
                self._check_caller("call")
                return await self._queued_call(handler, request, timeout)  # type: ignore[no-any-return]
        if (
            self._waiter is None  # busy: it will not run inline (the queued path, kept lean)
            and self._dispatch_task is None
            and not self._closed
            and _running_loop() is self._loop  # running, so not closed
        ):
            try:  # an installed reference needs no check
                known = handler in self._core.by_ref
            except TypeError:
                known = False
            if not known:
                check_ref(handler)
            # _enqueue, inlined: the waiter is None (nothing to wake) and timeout is not 0
            fut = self._loop.create_future()
            mailbox = self._mailbox
            req = _Request(_CALL, (handler, request), fut, "call")
            if timeout is not None:  # _deadline, inlined
                pending = self._pending
                if pending is None:
                    pending = self._pending = _Pending(self._loop)
                req.ahead = len(mailbox)
                req.timeout = timeout
                req.deadline = at = pending.time() + timeout
                if pending:
                    if at < pending[-1].deadline:
                        pending.sorted = False
                else:
                    pending.sorted = True
                pending.append(req)
                if self._suspended and (pending.watchdog is None or at < pending.watchdog_at):
                    self._arm(at)
            mailbox.append(req)
            return await fut  # type: ignore[no-any-return]
        self._check_caller("call")
        if self._can_inline():
            core = self._core
            entry = core.find(handler)
            if entry is not None and entry.info.has_call:
                core.requests += 1
                caller = self._dispatch_task = _task_of(self._loop)
                try:
                    try:
                        reply = entry.instance.handle_call(request)
                    except CRASHES as exc:
                        if isinstance(exc, FATAL):  # finish the request, then let it go on
                            with contextlib.suppress(GenEventError):
                                await self._finish_inline(
                                    self._drive(core.call_result(entry, Raised(exc), request)),
                                    "call",
                                    timeout,
                                )
                            self._inline_fatal(exc)
                        outcome: Raised | Returned = Raised(exc)
                    else:
                        cls = reply.__class__
                        # a class as reply may be Remove or Swap (a forgotten "()"): the core
                        # tells those from a real reply
                        if cls is not Remove and cls is not Swap and cls is not type:
                            return reply  # type: ignore[no-any-return]
                        outcome = Returned(reply)
                    return await self._finish_inline(  # type: ignore[no-any-return]
                        self._drive(core.call_result(entry, outcome, request)),
                        "call",
                        timeout,
                        (handler,),
                    )
                finally:
                    if self._dispatch_task is caller:
                        self._inline_finished(None)
        if self._core.find(handler) is None:  # an installed reference needs no check
            check_ref(handler)
        return await self._enqueue(_CALL, (handler, request), "call", timeout)  # type: ignore[no-any-return]

    async def _queued_call(self, handler: Any, request: Any, timeout: float | None) -> Any:
        check_ref(handler)
        return await self._enqueue(_CALL, (handler, request), "call", timeout)

    async def add_handler(
        self,
        handler: HandlerRef[E, Any, Any],
        args: Any = None,
        *,
        timeout: float | None = None,
        restart: RestartPolicy = "temporary",
        max_restarts: int = 3,
        restart_period: float = 5.0,
        isolation: Isolation | None = None,
        maxsize: int | None = None,
        overflow: LaneOverflow = "drop_oldest",
        stop_timeout: float = STOP_TIMEOUT,
    ) -> None:
        """Create the handler, ``init(args)`` it and install it first (OTP's ``add_handler``).
        Raises :class:`HandlerExists`, :class:`HandlerInitFailed` or :class:`InvalidHandler`.
        ``restart`` (``"temporary"``: gen_event's behaviour; ``"transient"``: added
        again after a crash or a bad return; ``"permanent"``: also after it removed itself)
        re-adds it at the front with the same class and ``args``, at most ``max_restarts``
        times within ``restart_period`` seconds, then lets it go for good.

        ``isolation="task"`` runs the handler in a task of its own with a mailbox of its own
        (a slow ``await`` in it delays no other handler); ``isolation="thread"`` in a thread
        of its own (for blocking plain code; coroutine methods are refused). Such a handler
        keeps gen_event's meaning (see the README, "when to isolate a handler"); its mailbox
        holds at most ``maxsize`` events (None: unbounded), dropping under ``overflow``
        (``"drop_oldest"`` or ``"drop_newest"``, counted and logged), and ``stop`` waits
        ``stop_timeout`` seconds for it, then leaves it behind (logged, counted in
        :attr:`left_behind`). A handler swapped in for it, or restarted, stays isolated."""
        timeout = check_timeout(timeout)
        check_ref(handler)
        spec = restart_spec(restart, args, max_restarts, restart_period)
        lane = self._new_lane(handler, isolation, maxsize, overflow, stop_timeout)
        self._check_caller("add_handler")
        await self._enqueue(
            self._core.add_handler,
            (handler, args, None, None, spec, lane),
            "add_handler",
            timeout,
        )

    async def add_sup_handler(
        self,
        handler: HandlerRef[E, Any, Any],
        args: Any = None,
        *,
        on_exit: Callable[[HandlerExit], object],
        owner: Any = None,
        timeout: float | None = None,
        restart: RestartPolicy = "temporary",
        max_restarts: int = 3,
        restart_period: float = 5.0,
        isolation: Isolation | None = None,
        maxsize: int | None = None,
        overflow: LaneOverflow = "drop_oldest",
        stop_timeout: float = STOP_TIMEOUT,
    ) -> None:
        """As :meth:`add_handler`, and tie the handler to ``owner`` (default: the current task).

        When the handler leaves, ``on_exit(HandlerExit(handler, reason, manager))`` is called (in
        the manager's loop, after ``terminate`` ran; ``asyncio.Queue.put_nowait`` fits). When
        the owner ends, the handler is terminated with :class:`~genevent.OwnerExited`.
        ``owner`` may be any asyncio task or future. ``on_exit`` must be callable (or None: no
        notices), else :class:`InvalidOwner`."""
        timeout = check_timeout(timeout)
        check_ref(handler)
        spec = restart_spec(restart, args, max_restarts, restart_period)
        check_on_exit(on_exit)
        lane = self._new_lane(handler, isolation, maxsize, overflow, stop_timeout)
        self._check_caller("add_sup_handler")
        owner = self._owner(owner)
        await self._enqueue(
            self._core.add_handler,
            (handler, args, owner, on_exit, spec, lane),
            "add_sup_handler",
            timeout,
        )

    async def delete_handler(
        self, handler: HandlerRef[E, Any, Any], args: Any = None, *, timeout: float | None = None
    ) -> Any:
        """Terminate the handler with :class:`~genevent.Deleted` ``(args)``, remove it, and
        return what its ``terminate`` returned (OTP's ``delete_handler``). Raises
        :class:`HandlerNotFound`, or :class:`TerminateFailed` if terminate raised."""
        timeout = check_timeout(timeout)
        check_ref(handler)
        self._check_caller("delete_handler")
        return await self._enqueue(
            self._core.delete_handler, (handler, args), "delete_handler", timeout
        )

    async def swap_handler(
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
        self._check_caller("swap_handler")
        await self._enqueue(
            self._swap_proc, (old, args1, new, args2, False, None, None), "swap_handler", timeout
        )

    async def swap_sup_handler(
        self,
        old: HandlerRef[E, Any, Any],
        args1: Any,
        new: HandlerRef[E, Any, Any],
        args2: Any = None,
        *,
        on_exit: Callable[[HandlerExit], object],
        owner: Any = None,
        timeout: float | None = None,
    ) -> None:
        """As :meth:`swap_handler`, but the caller (or ``owner``) becomes the new handler's
        owner, told through ``on_exit`` (OTP's ``swap_sup_handler``)."""
        timeout = check_timeout(timeout)
        check_ref(old)
        check_ref(new)
        check_on_exit(on_exit)
        self._check_caller("swap_sup_handler")
        owner = self._owner(owner)
        await self._enqueue(
            self._swap_proc,
            (old, args1, new, args2, True, owner, on_exit),
            "swap_sup_handler",
            timeout,
        )

    def _swap_proc(
        self,
        old: Any,
        args1: Any,
        new: Any,
        args2: Any,
        sup: bool,
        owner: Any,
        on_exit: Callable[[HandlerExit], object] | None,
    ) -> Procedure:
        return self._core.swap_handler(
            old, args1, new, args2, sup=sup, owner=owner, on_exit=on_exit
        )

    @overload
    async def subscribe(
        self,
        fn: Callable[[E], object],
        event_type: None = None,
        *,
        where: Callable[[E], object] | None = None,
        id: Hashable | None = None,
        timeout: float | None = None,
        restart: RestartPolicy = "temporary",
        isolation: Isolation | None = None,
        maxsize: int | None = None,
        overflow: LaneOverflow = "drop_oldest",
        stop_timeout: float = STOP_TIMEOUT,
    ) -> HandlerRef[E, Any, Any]: ...

    @overload
    async def subscribe(
        self,
        fn: Callable[[T], object],
        event_type: type[T],
        *,
        where: Callable[[T], object] | None = None,
        id: Hashable | None = None,
        timeout: float | None = None,
        restart: RestartPolicy = "temporary",
        isolation: Isolation | None = None,
        maxsize: int | None = None,
        overflow: LaneOverflow = "drop_oldest",
        stop_timeout: float = STOP_TIMEOUT,
    ) -> HandlerRef[E, Any, Any]: ...

    async def subscribe(
        self,
        fn: Callable[[Any], object],
        event_type: type[Any] | None = None,
        *,
        where: Callable[[Any], object] | None = None,
        id: Hashable | None = None,
        timeout: float | None = None,
        restart: RestartPolicy = "temporary",
        isolation: Isolation | None = None,
        maxsize: int | None = None,
        overflow: LaneOverflow = "drop_oldest",
        stop_timeout: float = STOP_TIMEOUT,
    ) -> HandlerRef[E, Any, Any]:
        """Install the plain or coroutine function ``fn`` as a handler of every event of
        ``event_type`` (``isinstance``; ``None``: every event) for which ``where(event)`` is
        true, and return its reference, ``(FunctionHandler, id or fn)``, for
        :meth:`delete_handler`. It is an ordinary handler: it shows in :meth:`which_handlers`,
        and if it raises it is removed and reported. Its return value is ignored, except that
        ``Remove()`` unsubscribes it. Subscribing the same function twice needs a distinct
        ``id``. ``isolation``, ``maxsize``, ``overflow`` and ``stop_timeout`` are those of
        :meth:`add_handler`."""
        self._check_caller("subscribe")
        ref = _functions.reference(fn, id)
        _functions.check_filter(event_type, where)
        await self.add_handler(
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
        """Decorator form of :meth:`subscribe`, usable where nothing can be awaited (say, at
        import time; safe from any thread): the subscription is queued, so every event
        notified after it reaches the function, and the function is returned unchanged. A
        subscription that fails (the same function twice) is logged on the ``genevent``
        logger; use :meth:`subscribe` to get the error instead. (On the thread runtime,
        ``on`` blocks until the function is installed and raises as ``subscribe`` does.)
        ``@mgr.on(OrderPlaced)`` / ``def audit(event: OrderPlaced) -> None: ...``"""

        def register(fn: F) -> F:
            ref = _functions.reference(fn, id)
            _functions.check_filter(event_type, where)
            spec = restart_spec(restart, Args(fn, event_type, where))
            if self._closed:
                raise ManagerNotRunning(self)
            fut: asyncio.Future[Any] = self._loop.create_future()
            fut.add_done_callback(lambda f: _functions.log_failure(f, fn))
            args = (ref, Args(fn, event_type, where), None, None, spec)
            self._post(_Request(self._core.add_handler, args, fut, "subscribe"))
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
    ) -> AsyncEventStream[E]: ...

    @overload
    def stream(
        self,
        event_type: type[T],
        *,
        where: Callable[[T], object] | None = None,
        maxsize: int | None = 10_000,
        overflow: OverflowPolicy = "drop_oldest",
    ) -> AsyncEventStream[T]: ...

    def stream(
        self,
        event_type: type[Any] | None = None,
        *,
        where: Callable[[Any], object] | None = None,
        maxsize: int | None = 10_000,
        overflow: OverflowPolicy = "drop_oldest",
    ) -> AsyncEventStream[Any]:
        """``async for event in mgr.stream(OrderPlaced):`` every event of ``event_type``
        (``isinstance``; ``None``: all) for which ``where(event)`` is true, notified from now
        on (nothing notified after this call is missed), buffered up to ``maxsize`` under the
        ``overflow`` policy (default: drop the oldest, counted in ``stream.counts``;
        ``"block"`` stalls the whole manager until the consumer catches up). Iterate it in the
        manager's loop. It ends when the manager stops or the consumer leaves its loop
        (``async with mgr.stream() as events:`` closes it at once)."""
        if self._closed:
            raise ManagerNotRunning(self)
        return AsyncEventStream(self, event_type, where, maxsize, overflow)

    def _install_stream(self, stream: AsyncEventStream[Any]) -> None:
        fut: asyncio.Future[Any] = self._loop.create_future()
        fut.add_done_callback(lambda f: _functions.log_failure(f, stream))
        args = (stream.ref, Args(stream), None, None)
        self._post(_Request(self._core.add_handler, args, fut, "stream"))

    def _remove_stream(self, stream: AsyncEventStream[Any]) -> None:
        if self._closed or self._loop.is_closed():
            return
        fut: asyncio.Future[Any] = self._loop.create_future()
        fut.add_done_callback(_consume_outcome)  # gone already (the stream ended): fine
        self._post(_Request(self._core.delete_handler, (stream.ref, None), fut, "stream close"))

    async def which_handlers(self, *, timeout: float | None = None) -> list[Any]:
        """The installed handlers, newest first (OTP's ``which_handlers``)."""
        timeout = check_timeout(timeout)
        self._check_caller("which_handlers")
        if timeout != 0.0 and self._can_inline():
            self._core.requests += 1
            return self._core.which_handlers()
        return await self._enqueue(_WHICH, (), "which_handlers", timeout)  # type: ignore[no-any-return]

    async def get_state(self, *, timeout: float | None = None) -> list[tuple[Any, Any]]:
        """``[(handler, state)]``, newest first (OTP's ``sys:get_state``): each handler's
        ``format_status()`` if it has one, else a copy of its attributes, taken in order with
        the other messages."""
        timeout = check_timeout(timeout)
        self._check_caller("get_state")
        return await self._enqueue(self._core.get_state, (), "get_state", timeout)  # type: ignore[no-any-return]

    async def stop(self, *, drain: bool = True, timeout: float | None = None) -> None:
        """Terminate every handler, newest first, with :class:`~genevent.Stopped`, tell their
        owners, then stop (OTP's ``stop``). New events and requests are refused from the call
        on. With ``drain=True`` (the default) everything accepted before is handled first;
        ``drain=False`` drops the events and infos still queued (counted in
        ``stats().dropped`` and logged) and answers the queued requests with
        :class:`ManagerNotRunning`, so that the handlers are terminated as soon as the
        callback running now returns. Requests queued behind the stop are answered with
        :class:`ManagerNotRunning`; the name is free once this returns. ``timeout=0`` requests
        the stop without waiting for it (and raises :class:`CallTimeout`)."""
        timeout = check_timeout(timeout)
        if drain.__class__ is not bool:
            raise TypeError(f"drain must be True or False, not {short(drain)}")
        self._check_caller("stop")
        fut: asyncio.Future[Any] = self._loop.create_future()
        ahead = len(self._mailbox)
        self._closed = True  # from now on refuse; everything accepted before is handled first
        if not drain:
            self._drop_backlog()
            ahead = 0
        if self._room is not None:
            self._wake_room()
        self._post(_Request(_STOP, (), fut, "stop"))
        await self._answer(fut, "stop", timeout, ahead)

    async def __aenter__(self) -> EventManager[E]:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if not self._closed:
            with contextlib.suppress(ManagerNotRunning):  # someone else stopped it meanwhile
                # leaving by an exception: surface it now, not after the whole backlog
                await self.stop(drain=exc_type is None)
        await self.wait_stopped()

    # -- owners -------------------------------------------------------------------------------

    def _owner(self, owner: Any) -> Any:
        if owner is None:
            owner = asyncio.current_task()
            if owner is None:  # pragma: no cover - _check_caller ran inside a task
                raise InvalidOwner("add_sup_handler needs a current task (or owner=)")
        elif not asyncio.isfuture(owner):
            raise InvalidOwner(
                f"owner {short(owner)} cannot be watched: pass an asyncio task or future"
            )
        if not isinstance(owner, Hashable):
            raise InvalidOwner(f"owner {short(owner)} is not hashable")
        return owner

    def _watch(self, eff: Any) -> None:
        owner = eff.owner
        watched = self._watched
        if watched is None:
            watched = self._watched = set()
        if eff.__class__ is Watch:
            if owner not in watched:
                watched.add(owner)
                owner.add_done_callback(self._owner_done)
        elif eff.__class__ is Unwatch and owner in watched:
            watched.discard(owner)
            owner.remove_done_callback(self._owner_done)

    def _owner_done(self, owner: Any) -> None:
        reason: BaseException | None = (
            asyncio.CancelledError() if owner.cancelled() else owner.exception()
        )
        if not self._closed:
            self._post(_Request(self._core.owner_down, (owner, reason), None, "owner_down"))

    # -- isolated handlers --------------------------------------------------------------------

    def _new_lane(
        self,
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
            return TaskLane(self, handler, maxsize, overflow, stop_timeout, loop=self._loop)
        if isolation == "thread":
            cls = handler if isinstance(handler, type) else handler[0]
            if _has_coroutines(cls):
                raise InvalidHandler(
                    f"{cls.__qualname__} has coroutine methods: isolation='thread' runs plain "
                    "methods in a thread of their own (use isolation='task' for coroutines)"
                )
            return ThreadLane(self, handler, maxsize, overflow, stop_timeout)
        raise ValueError(f"isolation must be None, 'task' or 'thread', not {isolation!r}")

    def _lane_post(self, req: _Request) -> None:
        """Post a lane's message to the mailbox (any thread); refused only once sealed."""
        with _seal_lock:
            if self._sealed:
                _fail_threadsafe(self._loop, req.fut, ManagerNotRunning(self))
                return
            self._mailbox.append(req)
        if self._waiter is not None:
            if threading.get_ident() == self._thread_id:
                self._wake()
            else:
                with contextlib.suppress(ManagerNotRunning, RuntimeError):
                    self._wake_from_thread()

    def lane_outcome(
        self, lane: Lane, entry: Entry, out: Raised | Returned, message: Any, callback: str
    ) -> None:
        """Host side of an isolated handler (see :mod:`genevent._lanes`)."""
        self._lane_post(
            _Request(applied, (self._core, entry, out, message, callback), None, "lane")
        )

    def lane_call_outcome(
        self, lane: Lane, req: Any, entry: Entry, out: Raised | Returned, request: Any
    ) -> None:
        """Host side of an isolated handler: a call's outcome that changes the table."""
        self._lane_post(
            _Request(call_applied, (self._core, entry, out, request), req.fut, "lane call")
        )

    def lane_reply(self, req: Any, value: Any) -> None:
        """Host side of an isolated handler: a plain reply, straight to the caller."""
        if threading.get_ident() == self._thread_id:
            _resolve(req.fut, value)
        else:
            with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits
                self._loop.call_soon_threadsafe(_resolve, req.fut, value)

    def lane_fail(self, req: Any, exc: BaseException) -> None:
        """Host side of an isolated handler: the call could not be answered."""
        _fail_threadsafe(self._loop, req.fut, exc)

    def lane_wake(self) -> None:
        """Host side of an isolated handler: it went idle (``stop`` may wait for that)."""
        if self._settling and self._waiter is not None:
            if threading.get_ident() == self._thread_id:
                self._wake()
            else:
                with contextlib.suppress(ManagerNotRunning, RuntimeError):
                    self._wake_from_thread()

    async def _isolated(self, req: _Request) -> bool:
        """Requests that isolated handlers concern: a call to one is passed on to it; a request
        that must see what they did (``lanes_to_wait_for``) waits for them, without holding
        the manager, and comes back to the mailbox. True when ``req`` was taken care of."""
        what = req.what
        core = self._core
        if what == "call":
            entry = core.find(req.args[0])
            if entry is not None and entry.lane is not None and entry.call_fn is not None:
                core.requests += 1
                entry.lane.post_call(req.args[1], req)
                return True
        if what == "sync_notify":
            core.requests += 1
            core.events += 1
            try:
                await self._drive(core.notify(*req.args))
            except GenEventError as exc:  # pragma: no cover - notify raises nothing typed
                _fail(req.fut, exc)
                return True
            self._reap()
            lanes = [e.lane for e in core.entries if e.lane is not None]
            self._after(lanes, _Request(_nothing, (), req.fut, what + _CAUGHT_UP))
            return True
        lanes = lanes_to_wait_for(core, what, req.args)
        if not lanes:
            return False
        if what not in _INTERNAL:
            core.requests += 1
        self._after(lanes, _Request(req.proc, req.args, req.fut, what + _CAUGHT_UP))
        return True

    def _after(self, lanes: list[Lane], then: _Request) -> None:
        """Post ``then`` to the mailbox once every lane in ``lanes`` caught up."""
        if not lanes:
            self._lane_post(then)
            return
        barrier = Barrier(len(lanes), lambda: self._lane_post(then))
        for lane in lanes:
            lane.mark(barrier)

    def _reap(self) -> None:
        if self._lanes:
            before = list(self._lanes)
            reap(self._core, self._lanes)
            if len(before) != len(self._lanes):
                kept = {id(lane) for lane in self._lanes}
                self._lane_dropped += sum(
                    lane.counts.dropped for lane in before if id(lane) not in kept
                )

    async def _lane_job(self, eff: Invoke) -> Raised | Returned:
        lane: Lane = eff.via
        if not lane.started:
            self._lanes.append(lane)
        fut = lane.job(eff)  # type: ignore[attr-defined]
        waiting: Any = fut if lane.kind == "task" else asyncio.wrap_future(fut)
        if self._stop_started is None:
            return await waiting  # type: ignore[no-any-return]
        remaining = self._stop_started + lane.stop_timeout - self._loop.time()
        try:
            return await asyncio.wait_for(waiting, max(remaining, 0.0))
        except TimeoutError:
            self._abandon(lane)
            return Returned(None)

    def _abandon(self, lane: Lane) -> None:
        if not lane.abandoned:
            left_behind(self, lane)
            lane.abandon()  # type: ignore[attr-defined]
            self._left_behind += 1

    async def _settle_lanes(self) -> bool:
        """Stopping: wait until every isolated handler handled what it was given, each for at
        most its ``stop_timeout`` (then it is left behind). True if the mailbox got messages
        meanwhile (their outcomes): the caller drains it and comes back."""
        loop = self._loop
        if self._stop_started is None:
            self._stop_started = loop.time()
        start = self._stop_started
        while True:
            busy = [lane for lane in self._lanes if not lane.idle()]
            if self._mailbox:
                return True
            if not busy:
                return False
            now = loop.time()
            late = [lane for lane in busy if now >= start + lane.stop_timeout]
            for lane in late:
                self._abandon(lane)
            if late:
                continue
            waiter = self._waiter = loop.create_future()
            self._settling = True
            try:
                if not any(not lane.idle() for lane in busy) or self._mailbox:
                    continue
                await asyncio.wait(
                    (waiter,), timeout=min(start + lane.stop_timeout for lane in busy) - now
                )
            finally:
                self._settling = False
                self._waiter = None

    # -- the manager task ---------------------------------------------------------------------

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
                        for i in range(batch):
                            try:
                                msg = popleft()
                            except IndexError:  # taken by stop(drain=False) or drop_oldest
                                batch = i
                                break
                            if msg.__class__ is _Request:
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
                                    core.events = base + i + 1 - requests
                                    await self._drive(core.notify(msg))
                                    continue
                                targets = core.cached_targets or core.event_targets
                            for entry, fn in targets:
                                try:
                                    result = fn(msg)
                                except CRASHES as exc:
                                    core.events = base + i + 1 - requests
                                    if isinstance(exc, FATAL):
                                        await self._interrupted(entry, exc, msg)
                                    await self._drive(core.event_result(entry, Raised(exc), msg))
                                    targets = None
                                else:
                                    if result is not None:
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
            # every handler is terminated with Stopped before the manager goes (after an inline
            # request's pending work, if any, is cancelled too, and what was accepted handled)
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
        if self._core.isolated and req.what in _CONCERNED and await self._isolated(req):
            return
        try:
            await self._handle_request(req)
        finally:
            self._reap()

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
            cls = result.__class__
            # a class as reply may be Remove or Swap (a forgotten "()"): the core tells them
            if cls is Remove or cls is Swap or cls is type:
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
                    elif dropping:
                        _fail(msg.fut, ManagerNotRunning(self, f" (it stopped before {msg.what})"))
                    else:
                        await self._handle(msg)
                except BaseException as exc:  # the message was finished: remember, go on
                    fatal = fatal or exc
            if self._lanes and await self._settle_lanes():
                continue
            with _seal_lock:
                if not mailbox:
                    self._sealed = True
                    break
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
        for lane in self._lanes:
            self._lane_dropped += lane.counts.dropped
            lane.close()
        self._lanes = []
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


def _nothing() -> Procedure:
    return None
    yield  # pragma: no cover - makes this a generator


def _has_coroutines(cls: type) -> bool:
    return any(
        inspect.iscoroutinefunction(getattr(cls, name, None))
        for name in ("init", "handle_event", "handle_call", "handle_info", "terminate")
    )


def _fail_threadsafe(
    loop: asyncio.AbstractEventLoop, fut: asyncio.Future[Any] | None, exc: BaseException
) -> None:
    if fut is None:
        return
    try:
        running = asyncio.get_running_loop()
    except RuntimeError:
        running = None
    if running is loop:
        _fail(fut, exc)
    else:
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits
            loop.call_soon_threadsafe(_fail, fut, exc)


class _BoundedEventManager(EventManager[E]):
    """An :class:`EventManager` with a bounded mailbox (``start(maxsize=...)``): only
    ``notify``, ``send`` and ``notify_wait`` differ, so that an unbounded manager's ``notify``
    pays nothing for bounds. Room is found without a lock (see :mod:`genevent._mailbox`);
    a full mailbox is handled by :meth:`Bound.put_full` under its lock."""

    def __init__(self, name: str | None, *, timing: bool, bound: Bound) -> None:
        self._bound = bound
        self._maxsize = bound.maxsize
        super().__init__(name, timing=timing)

    def notify(self, event: E) -> None:
        if self._closed:
            self._refused += 1
            raise ManagerNotRunning(self)
        mailbox = self._mailbox
        if len(mailbox) < self._maxsize:
            mailbox.append(event)
        elif not self._put_full(event):
            return
        if self._closed:  # stop was requested meanwhile: accepted only if it will be handled
            self._late(event)
        if self._waiter is not None:
            if threading.get_ident() == self._thread_id:
                self._wake()
            else:
                self._wake_from_thread()

    def send(self, message: Any) -> None:
        if self._closed:
            self._refused += 1
            raise ManagerNotRunning(self)
        req = _Request(self._core.info, (message,), None, "info")
        mailbox = self._mailbox
        if len(mailbox) < self._maxsize:
            mailbox.append(req)
        elif not self._put_full(req):
            return
        if self._closed:
            self._late(req)
        if self._waiter is not None:
            if threading.get_ident() == self._thread_id:
                self._wake()
            else:
                self._wake_from_thread()

    async def notify_wait(self, event: E, *, timeout: float | None = None) -> None:
        if timeout is not None:
            timeout = check_timeout(timeout)
        if self._closed:
            self._refused += 1
            raise ManagerNotRunning(self)
        mailbox = self._mailbox
        if len(mailbox) < self._maxsize:
            mailbox.append(event)
        elif not await self._put_waiting(event, timeout):
            return
        if self._closed:
            self._late(event)
        if self._waiter is not None:
            if threading.get_ident() == self._thread_id:
                self._wake()
            else:
                self._wake_from_thread()

    def _put_full(self, item: Any) -> bool:
        """``item`` met a full mailbox: the policy decides (a plain ``notify`` or ``send``
        cannot wait: under ``"block"`` it is refused)."""
        bound: Bound = self._bound  # type: ignore[assignment]
        with bound.lock:
            queued = bound.put_full(self._mailbox, item, self, _is_control)
            if queued is None:
                raise bound.refuse(self)
        return queued

    async def _put_waiting(self, item: Any, timeout: float | None) -> bool:
        """``item`` met a full mailbox, and its producer accepts to wait (``notify_wait``)."""
        bound: Bound = self._bound  # type: ignore[assignment]
        loop = self._loop
        deadline = None if timeout is None else loop.time() + timeout
        checked = False
        while True:
            with bound.lock:
                if self._closed:  # stopped while it waited
                    bound.counts.refused += 1
                    raise ManagerNotRunning(self)
                queued = bound.put_full(self._mailbox, item, self, _is_control)
                if queued is not None:
                    return queued
                remaining = None if deadline is None else deadline - loop.time()
                if remaining is not None and remaining <= 0.0:
                    raise bound.refuse(self)
            if not checked:
                try:
                    running = asyncio.get_running_loop()
                except RuntimeError:  # pragma: no cover - a coroutine runs in a loop
                    running = None
                if running is not loop:
                    raise WrongRuntime(
                        f"notify_wait on {short(self)} can wait for room only in the "
                        "manager's own event loop"
                    )
                if self._dispatch_task is not None and self._dispatch_task is _task_of(loop):
                    with bound.lock:  # its own handler: the manager cannot make room
                        raise bound.refuse(self)
                checked = True
            room = self._room
            if room is None:
                room = self._room = loop.create_future()
            try:
                if remaining is None:
                    await asyncio.shield(room)
                else:
                    await asyncio.wait_for(asyncio.shield(room), remaining)
            except TimeoutError:
                pass  # offered once more: refused unless room appeared meanwhile


async def _guarded(work: Coroutine[Any, Any, Any]) -> Any:
    """Inline work, run in a task of its own: a KeyboardInterrupt or SystemExit comes back as
    a value, so that it goes on from the caller's task once the request is finished."""
    try:
        return await work
    except FATAL as exc:
        return _Fatal(exc)


def start(
    name: str | None = None,
    *,
    timing: bool = False,
    maxsize: int | None = None,
    overflow: OverflowPolicy = "block",
) -> EventManager[Any]:
    """Start an event manager in the running event loop (OTP's ``start``/``start_link``).

    With ``name``, it is registered so that :func:`genevent.whereis` finds it; a second manager
    under a taken name raises :class:`~genevent.NameTaken`. ``async with start() as mgr:``
    links it to the block: it stops when the block exits, normally (after handling what is
    queued) or by an exception (dropping what is queued: ``stop(drain=False)``).
    Annotate to type the events: ``mgr: EventManager[MyEvent] = start()``. ``timing=True``
    times every plain ``handle_event`` into per-handler histograms that
    :meth:`EventManager.stats` reports (it costs about as much as the hot path itself, so it is
    off by default).

    ``maxsize`` bounds the mailbox (default None: unbounded, as gen_event): an event or info
    that finds ``maxsize`` messages queued is treated by ``overflow``: ``"block"`` (the
    default: ``await mgr.notify_wait(event)`` waits for room; a plain ``notify`` or ``send``
    raises :class:`~genevent.MailboxFull`), ``"drop_newest"``, ``"drop_oldest"`` (counted in
    ``stats().dropped`` and logged at most once a second) or ``"raise"``
    (:class:`~genevent.MailboxFull`, counted in ``stats().refused``). Control requests are
    never dropped or refused for room. A bad ``maxsize`` or ``overflow`` raises
    :class:`TypeError` / :class:`ValueError`."""
    bound = check_mailbox(maxsize, overflow)
    if bound is None:
        return EventManager(name, timing=timing)
    return _BoundedEventManager(name, timing=timing, bound=bound)
