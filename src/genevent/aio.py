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
import threading
from collections.abc import Callable, Hashable
from types import TracebackType
from typing import Any, TypeVar, overload

from . import _functions
from ._aio_base import (
    _CALL,
    _FOREVER,
    _STOP,
    _SYNC,
    _WHICH,
    Rep,
    Req,
    _is_control,
    _Pending,
    _Request,
    _running_loop,
    _task_of,
)
from ._aio_engine import _ManagerEngine
from ._checks import check_add, check_on_exit, check_ref, check_subscribe, check_timeout
from ._core import (
    MAYBE_INSTRUCTION,
    NO_ARGS,
    HandlerExit,
    Raised,
    RestartPolicy,
    Returned,
    restart_spec,
)
from ._driver import CRASHES, FATAL
from ._errors import (
    CallingSelf,
    GenEventError,
    ManagerNotRunning,
    WrongRuntime,
)
from ._handler import HandlerRef
from ._lanes import (
    STOP_TIMEOUT,
    Isolation,
    LaneOverflow,
    running_lane,
)
from ._mailbox import Bound, check_mailbox
from ._metrics import ManagerStats, build_stats
from ._overflow import OverflowPolicy
from ._streams import AsyncEventStream
from ._text import short

__all__ = ("EventManager", "start")

E = TypeVar("E")
T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])


class EventManager(_ManagerEngine[E]):
    """An asyncio event manager (OTP's ``gen_event`` process). Create it with :func:`start`.

    ``EventManager[Event]`` accepts only handlers of ``Event``; ``notify`` only ``Event``.
    Use it as ``async with aio.start() as mgr:`` to stop it (every handler terminated) when the
    block exits: normally after handling everything queued, by an exception without (see
    :meth:`stop`'s ``drain``).
    """

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
        return build_stats(
            self._core,
            name=self.name,
            ident=id(self),
            running=self.is_running,
            mailbox=self._mailbox,
            request_class=_Request,
            high_water=self._high_water,
            dropped=self._dropped,
            refused=self._refused,
            bound=self._bound,
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

    async def wait_stopped(self) -> None:
        """Wait until the manager has stopped and every handler was terminated."""
        current = asyncio.current_task()
        if (
            current is self._task
            or (current is not None and current is self._dispatch_task)
            or (self._lanes and _on_own_lane_thread(self))
        ):
            raise CallingSelf(self, "wait_stopped")
        if not self._task.done() and not self._gone():
            await asyncio.wait((self._task,))

    # -- the mailbox --------------------------------------------------------------------------

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
                        # the core's rule, its cheap form (see MAYBE_INSTRUCTION)
                        if reply.__class__ not in MAYBE_INSTRUCTION:
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

    async def add_handler(
        self,
        handler: HandlerRef[E, Any, Any],
        args: Any = NO_ARGS,
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
        With no ``args`` given, ``init()`` is called without arguments, so its defaults apply
        (an ``init`` parameter without a default refuses the handler with
        :class:`HandlerInitFailed`, before it is created); ``args=None`` passes ``None``.
        Raises :class:`HandlerExists`, :class:`HandlerInitFailed` or :class:`InvalidHandler`.
        ``restart`` (``"temporary"``: gen_event's behaviour; ``"transient"``: added
        again after a crash or a bad return; ``"permanent"``: also after it removed itself)
        re-adds it at the front with the same class and ``args``, at most ``max_restarts``
        times within ``restart_period`` seconds, then lets it go for good.

        ``isolation="task"`` runs the handler in a task of its own with a mailbox of its own
        (a slow ``await`` in it delays no other handler); ``isolation="thread"`` in a thread
        of its own (for blocking plain code; coroutine methods are refused). Such a handler
        keeps gen_event's meaning (see docs/how-to/isolation-and-overflow.md); its mailbox
        holds at most ``maxsize`` events (None: unbounded), dropping under ``overflow``
        (``"drop_oldest"`` or ``"drop_newest"``, counted and logged), and ``stop`` waits
        ``stop_timeout`` seconds for it, then leaves it behind (logged, counted in
        :attr:`left_behind`). A handler swapped in for it, or restarted, stays isolated."""
        timeout, spec = check_add(handler, args, timeout, restart, max_restarts, restart_period)
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
        args: Any = NO_ARGS,
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
        timeout, spec = check_add(
            handler, args, timeout, restart, max_restarts, restart_period, on_exit
        )
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
        args2: Any = NO_ARGS,
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
        args2: Any = NO_ARGS,
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
        max_restarts: int = 3,
        restart_period: float = 5.0,
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
        max_restarts: int = 3,
        restart_period: float = 5.0,
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
        max_restarts: int = 3,
        restart_period: float = 5.0,
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
        ``id``. ``restart``, ``max_restarts``, ``restart_period``, ``isolation``, ``maxsize``,
        ``overflow`` and ``stop_timeout`` are those of :meth:`add_handler`."""
        self._check_caller("subscribe")
        ref, args = check_subscribe(fn, event_type, where, id)
        await self.add_handler(
            ref,
            args,
            timeout=timeout,
            restart=restart,
            max_restarts=max_restarts,
            restart_period=restart_period,
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
        max_restarts: int = 3,
        restart_period: float = 5.0,
    ) -> Callable[[F], F]:
        """Decorator form of :meth:`subscribe`, usable where nothing can be awaited (say, at
        import time; safe from any thread): the subscription is queued, so every event
        notified after it reaches the function, and the function is returned unchanged. A
        subscription that fails (the same function twice) is logged on the ``genevent``
        logger; use :meth:`subscribe` to get the error instead. (On the thread runtime,
        ``on`` blocks until the function is installed and raises as ``subscribe`` does.)
        ``restart``, ``max_restarts`` and ``restart_period`` are checked at once, as
        :meth:`add_handler` checks them.
        ``@mgr.on(OrderPlaced)`` / ``def audit(event: OrderPlaced) -> None: ...``"""

        def register(fn: F) -> F:
            ref, fn_args = check_subscribe(fn, event_type, where, id)
            spec = restart_spec(restart, fn_args, max_restarts, restart_period)
            if self._closed:
                raise ManagerNotRunning(self)
            fut: asyncio.Future[Any] = self._loop.create_future()
            fut.add_done_callback(lambda f: _functions.log_failure(f, fn))
            args = (ref, fn_args, None, None, spec)
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
        self._streams_stopping()
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

    # -- isolated handlers --------------------------------------------------------------------

    # -- the manager task ---------------------------------------------------------------------


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
    :class:`TypeError` / :class:`ValueError`; a call outside a running event loop
    :class:`~genevent.WrongRuntime` (a :class:`RuntimeError`)."""
    if _running_loop() is None:
        raise WrongRuntime(
            "genevent.aio.start() needs a running event loop: call it inside async code "
            "(async def main(): async with aio.start() as mgr: ...; then asyncio.run(main())), "
            "or use the thread runtime (genevent.threads.start()) from plain code"
        )
    bound = check_mailbox(maxsize, overflow)
    if bound is None:
        return EventManager(name, timing=timing)
    return _BoundedEventManager(name, timing=timing, bound=bound)


def _on_own_lane_thread(mgr: EventManager[Any]) -> bool:
    """True in the thread of one of ``mgr``'s isolated handlers (or in a coroutine that thread
    handed to the loop): waiting there for the manager would wait for itself."""
    lane = running_lane()
    return lane is not None and lane.kind == "thread" and lane in mgr._lanes
