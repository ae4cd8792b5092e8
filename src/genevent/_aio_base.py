"""The asyncio runtime's manager, its lower half: the mailbox and its wake-ups, requests
and their deadlines, owners, and the host side of isolated handlers. Shared helpers of the
asyncio runtime live here too. The public :class:`genevent.aio.EventManager` builds on it
(through :mod:`genevent._aio_engine`, its drain loop)."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import sys
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable, Hashable
from typing import TYPE_CHECKING, Any, Final, Generic, TypeVar

from . import _functions, _registry
from ._checks import check_ref
from ._core import (
    Args,
    Entry,
    HandlerExit,
    Invoke,
    ManagerCore,
    Procedure,
    Raised,
    Retry,
    Returned,
    Unwatch,
    Watch,
)
from ._driver import awaited_frames, callback_in, log, take_back
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
from ._lanes import (
    CAUGHT_UP,
    CONCERNED,
    LANE_RESULTS,
    Lane,
    Order,
    TaskLane,
    ThreadLane,
    applied,
    call_applied,
    check_isolation,
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
from ._streams import AsyncEventStream
from ._text import short

E = TypeVar("E")
Req = TypeVar("Req")
Rep = TypeVar("Rep")

try:  # the running task, cheaply: 3.11's asyncio.current_task is Python code (~300 ns);
    # the dict behind it is C, and eager tasks (3.12+) keep it up to date too
    from asyncio.tasks import _current_tasks  # type: ignore[attr-defined]  # private, C

    _task_of: Callable[[asyncio.AbstractEventLoop], asyncio.Task[Any] | None] = _current_tasks.get
except ImportError:  # pragma: no cover - a Python without it has a C current_task
    _task_of = asyncio.current_task

_running_loop = asyncio._get_running_loop  # C; None outside a running loop (public twin raises)
_FOREVER: Final = threading.TIMEOUT_MAX  # timeouts this long or longer mean "no timeout"
_LIVE: set[_ManagerBase[Any]] = set()  # running managers stay alive until they stop, like
# Erlang processes: a manager nobody references is still a running manager, not garbage
_STOP: Final = object()
_LANE_RESULTS: Final = LANE_RESULTS
_INTERNAL: Final = frozenset({"info", "owner_down", "stream close", "restart"} | _LANE_RESULTS)
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

    __slots__ = ("ahead", "args", "deadline", "fut", "proc", "timeout", "via", "what")
    ahead: int
    deadline: float
    timeout: float
    #: an isolated handler's outcome: its lane, and the place in mailbox order it is from
    via: tuple[Lane, float]

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


class _ManagerBase(Generic[E]):
    """The state and plumbing of :class:`genevent.aio.EventManager` (see there)."""

    # set on the few managers that need them (an idle manager must stay small)
    _bound: Bound | None = None
    _room: asyncio.Future[None] | None = None
    _dropping = False
    _late_dropped = 0
    _order: Order | None = None  # made with the first lane
    _streams: weakref.WeakSet[AsyncEventStream[Any]] | None = None  # opened on it
    _retries: set[asyncio.TimerHandle] | None = None  # restarts waiting for another attempt
    _fresh: list[Lane] | None = None  # lanes started since the last _reap

    if TYPE_CHECKING:  # defined by the drain loop's half, genevent._aio_engine._ManagerEngine

        async def _run(self) -> None: ...
        async def _drive(self, proc: Procedure) -> Any: ...
        async def _handle(self, req: _Request) -> None: ...
        def _shutdown(self) -> None: ...

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
        #: the lanes of isolated handlers (started ones), in order
        self._lanes: dict[Lane, None] = {}
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
            if msg.proc is _STOP or msg.what in _LANE_RESULTS:
                # a stop, and what isolated handlers brought back (a crash stays a crash)
                self._mailbox.append(msg)
            else:
                refused += msg.fut is not None
                _fail(msg.fut, ManagerNotRunning(self, stopped_before(msg.what)))
        log_backlog(self, dropped, refused, "at stop(drain=False)")
        self._drop_lanes()

    def _drop_lanes(self) -> None:
        """A stop that drops the backlog: so do the isolated handlers' mailboxes."""
        drop_backlogs(self, self._lanes)

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
        if self._lanes:  # an isolated handler's task, or its thread, waiting on its manager
            lane = running_lane()
            if (
                lane is not None
                and lane.host is self
                and lane in self._lanes
                and (lane.kind == "thread" or getattr(lane, "task", None) is _task_of(self._loop))
            ):
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
                name = callback_in(awaited_frames(task.get_coro()))
                if name is not None:
                    return name
        return None

    async def _queued_call(self, handler: Any, request: Any, timeout: float | None) -> Any:
        check_ref(handler)
        return await self._enqueue(_CALL, (handler, request), "call", timeout)

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

    def _install_stream(self, stream: AsyncEventStream[Any]) -> None:
        streams = self._streams
        if streams is None:
            streams = self._streams = weakref.WeakSet()
        streams.add(stream)
        fut: asyncio.Future[Any] = self._loop.create_future()
        fut.add_done_callback(lambda f: _functions.log_failure(f, stream))
        args = (stream.ref, Args(stream), None, None)
        self._post(_Request(self._core.add_handler, args, fut, "stream"))

    def _streams_stopping(self) -> None:
        """A stop began: a ``"block"`` stream stops waiting for room (see the stream)."""
        for stream in list(self._streams or ()):
            stream.manager_stopping()

    def _end_streams(self) -> None:
        """The manager stopped: every stream opened on it ends, even one whose feed was not
        installed yet (its subscription was refused by the stop)."""
        for stream in list(self._streams or ()):
            stream.manager_stopped()
        self._streams = None

    def _remove_stream(self, stream: AsyncEventStream[Any]) -> None:
        if self._closed or self._loop.is_closed():
            return
        fut: asyncio.Future[Any] = self._loop.create_future()
        fut.add_done_callback(_consume_outcome)  # gone already (the stream ended): fine
        self._post(_Request(self._core.delete_handler, (stream.ref, None), fut, "stream close"))

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
        if eff.__class__ is Retry:
            self._schedule_retry(eff)
            return
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

    def _schedule_retry(self, eff: Retry) -> None:
        """A restart's ``init`` failed: its next attempt comes in ``eff.delay`` seconds, as a
        message of the mailbox (the manager serves the others meanwhile)."""
        retries = self._retries
        if retries is None:
            retries = self._retries = set()
        handle: asyncio.TimerHandle | None = None

        def due() -> None:
            retries.discard(handle)
            if not self._closed:
                self._post(_Request(self._core.retry_restart, (eff.handler,), None, "restart"))

        handle = self._loop.call_later(eff.delay, due)
        retries.add(handle)

    def _cancel_retries(self) -> None:
        for handle in self._retries or ():
            handle.cancel()
        self._retries = None

    def _owner_done(self, owner: Any) -> None:
        reason: BaseException | None = (
            asyncio.CancelledError() if owner.cancelled() else owner.exception()
        )
        if not self._closed:
            self._post(_Request(self._core.owner_down, (owner, reason), None, "owner_down"))

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

    @property
    def _lane_order(self) -> Order:
        """The order of what is queued to the lanes and of what they bring back."""
        order = self._order
        if order is None:
            order = self._order = Order()
        return order

    def lane_outcome(
        self,
        lane: Lane,
        entry: Entry,
        out: Raised | Returned,
        message: Any,
        callback: str,
        seq: float,
    ) -> None:
        """Host side of an isolated handler (see :mod:`genevent._lanes`)."""
        req = _Request(applied, (self._core, entry, out, message, callback), None, "lane")
        req.via = (lane, seq)
        self._lane_post(req)

    def lane_call_outcome(
        self, lane: Lane, req: Any, entry: Entry, out: Raised | Returned, request: Any, seq: float
    ) -> None:
        """Host side of an isolated handler: a call's outcome that changes the table."""
        then = _Request(call_applied, (self._core, entry, out, request), req.fut, "lane call")
        then.via = (lane, seq)
        self._lane_post(then)

    def lane_recheck(self) -> None:
        """Host side of an isolated handler: it passed a place an outcome waits for."""
        self._lane_post(_Request(_nothing, (), None, "lane order"))

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
        """Requests that isolated handlers concern: a call to one is passed on to it; a
        ``sync_notify`` is answered once they handled its event too; a request that must see
        the table gen_event would show (``takes_its_place``) waits until they are past what
        was queued before it, the manager holding the messages behind it meanwhile (see
        :meth:`_hold_until`). True when ``req`` was taken care of (False: run it now)."""
        what = req.what
        core = self._core
        if what == "call" and pass_call(core, req.args[0], req.args[1], req):
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
        if not takes_its_place(core, what, req.args):
            return False
        order = self._lane_order
        if order.take_place(self._lanes, req):
            return False  # every isolated handler is past it: it runs now
        if what not in _INTERNAL:
            core.requests += 1
        req.what = what + _CAUGHT_UP
        if not self._closed:  # stopping: it runs in its turn, the stop handles the rest
            await self._hold_until(req)
        return True

    async def _settle(self) -> None:
        """The core's ``Settle``: the isolated handlers get past what was queued before the
        message being handled (what they bring back is applied meanwhile, in order); the
        manager holds its other messages until then. Not while stopping."""
        marker = _Request(_nothing, (), None, "settle")
        if not self._lane_order.take_place(self._lanes, marker) and not self._closed:
            await self._hold_until(marker)

    async def _hold_until(self, req: _Request) -> None:
        """``req`` waits for its turn among what the isolated handlers bring back: meanwhile
        the manager applies those (the messages that do not wait), and holds every other
        message, in order, until ``req`` ran; then they are back at the front of the mailbox.
        A stop ends the hold (the request then runs in its turn while the manager stops)."""
        held: deque[Any] = deque()
        mailbox = self._mailbox
        order = self._lane_order
        try:
            while order.holds(req):
                if mailbox:
                    msg = mailbox.popleft()
                    if msg.__class__ is _Request and msg.what in _LANE_RESULTS:
                        await self._handle(msg)
                        continue
                    held.append(msg)
                    if msg.__class__ is _Request and msg.proc is _STOP:
                        return
                    continue
                waiter = self._waiter = self._loop.create_future()
                if mailbox:  # re-check: a thread may have posted before seeing the waiter
                    self._waiter = None
                    continue
                self._suspend()
                try:
                    await waiter
                finally:
                    self._suspended -= 1
                    if self._waiter is waiter:
                        self._waiter = None
        finally:
            mailbox.extendleft(reversed(held))

    def _after(self, lanes: list[Lane], then: _Request) -> None:
        """Post ``then`` to the mailbox once every lane in ``lanes`` caught up."""
        when_caught_up(lanes, lambda: self._lane_post(then))

    def _reap(self) -> None:
        fresh = self._fresh
        if fresh or self._core.lane_edits:
            self._lane_dropped += reap(self._core, self._lanes, fresh or [])

    async def _lane_job(self, eff: Invoke) -> Raised | Returned:
        lane: Lane = eff.via
        if not lane.started:
            self._lanes[lane] = None
            if self._fresh is None:
                self._fresh = []
            self._fresh.append(lane)
        idle = lane.idle()
        fut = lane.job(eff)  # type: ignore[attr-defined]
        waiting: Any = fut if lane.kind == "task" else asyncio.wrap_future(fut)
        if self._stop_started is None:
            return await waiting  # type: ignore[no-any-return]
        now = self._loop.time()
        by = lane.stop_by(now, afresh=idle)  # its stop timeout counts from when it is told
        try:
            return await asyncio.wait_for(waiting, max(by - now, 0.0))
        except TimeoutError:
            self._abandon(lane)
            return lane.left_behind_outcome(eff)

    def _abandon(self, lane: Lane) -> None:
        if leave_behind(self, lane):
            self._left_behind += 1
        self._core.begin_stop(True)  # the stop timed out: nothing is restarted any more

    async def _settle_lanes(self) -> bool:
        """Stopping: wait until every isolated handler handled what it was given, each for at
        most its ``stop_timeout`` (then it is left behind). True if the mailbox got messages
        meanwhile (their outcomes): the caller drains it and comes back."""
        loop = self._loop
        if self._stop_started is None:
            self._stop_started = loop.time()
        while True:
            busy = [lane for lane in self._lanes if not lane.idle()]
            if self._mailbox:
                return True
            if not busy:
                return False
            now = loop.time()
            late = [lane for lane in busy if now >= lane.stop_by(now)]
            for lane in late:
                self._abandon(lane)
            if late:
                if self._order:  # outcomes waiting for a lane left behind wait no more
                    self.lane_recheck()
                continue
            waiter = self._waiter = loop.create_future()
            self._settling = True
            try:
                if not any(not lane.idle() for lane in busy) or self._mailbox:
                    continue
                until = min(lane.stop_by(now) for lane in busy)
                await asyncio.wait((waiter,), timeout=until - now)
            finally:
                self._settling = False
                self._waiter = None
