"""The asyncio runtime's public face, :class:`EventManager`, over its server: it keeps on
itself only what ``notify`` touches (the mailbox, two hot flags): composition costs nothing."""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Callable, Hashable, Iterable
from threading import get_ident
from types import TracebackType
from typing import Any, Generic, TypeVar, overload

from .._checks import check_add, check_on_exit, check_ref, check_subscribe, check_timeout
from .._core import (
    MAYBE_INSTRUCTION,
    NO_ARGS,
    HandlerExit,
    Kind,
    Raised,
    RestartPolicy,
    Returned,
    restart_spec,
)
from .._driver import CRASHES, FATAL
from .._errors import GenEventError, ManagerNotRunning
from .._handler import HandlerRef
from .._lanes import STOP_TIMEOUT, Isolation, LaneOverflow, Order
from .._mailbox import Bound
from .._metrics import ManagerStats
from .._overflow import OverflowPolicy
from .._streams import AsyncEventStream
from .._text import short
from . import _bounded, _lanes_host, _many
from ._common import _CALL, _FOREVER, _SYNC, _WHICH, _Request, _running_loop, _task_of
from ._dispatch import drive, finish_dispatch
from ._drain import launch
from ._inline import finish_inline, inline_fatal
from ._lanes_host import new_lane
from ._requests import answer, busy, call_busy, enqueue, queue_busy, swap_proc
from ._server import _Server
from ._stop import request_stop

__all__ = ("EventManager",)

E = TypeVar("E")
Req = TypeVar("Req")
Rep = TypeVar("Rep")
T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])


class EventManager(Generic[E]):
    """An asyncio event manager (OTP's ``gen_event`` process). Create it with :func:`start`.

    ``EventManager[Event]`` accepts only handlers of ``Event``; ``notify`` only ``Event``.
    Use it as ``async with aio.start() as mgr:`` to stop it (every handler terminated) when the
    block exits: normally after handling everything queued, by an exception without (see
    :meth:`stop`'s ``drain``).
    """

    # slots keep an idle manager small (a __dict__ is made only if something else is set)
    __slots__ = ("__dict__", "__weakref__", "_closed", "_mailbox", "_srv", "_waiter", "name")

    def __init__(self, name: str | None = None, *, timing: bool = False) -> None:
        """Internal: use :func:`start`."""
        #: the name it is registered under, or None
        self.name = name
        # what notify touches, kept here so that it reaches them without a hop: the mailbox
        # (the server's own deque), whether stop was requested (new messages are refused from
        # then on), and the future the parked manager task awaits (None while it runs)
        self._mailbox: deque[Any] = deque()
        self._closed = False
        self._waiter: asyncio.Future[None] | None = None
        self._srv = _Server(self, timing=timing)
        launch(self._srv)

    def __repr__(self) -> str:
        state = "stopped" if self._closed else "running"
        label = f" {self.name!r}" if self.name else f" at {id(self):#x}"
        return (
            f"<aio.EventManager{label} {state} handlers={len(self._srv.core.entries)} "
            f"queued={len(self._mailbox)}>"
        )

    @property
    def queued(self) -> int:
        """How many messages (events, infos and requests) wait in the mailbox, not counting the
        one being handled: a snapshot, which other tasks and threads may change at once."""
        return len(self._mailbox)

    @property
    def maxsize(self) -> int | None:
        """The mailbox's bound (``start(maxsize=...)``), or None: unbounded."""
        bound = self._srv.bound
        return None if bound is None else bound.maxsize

    def stats(self) -> ManagerStats:
        """What the manager and its handlers did (events, infos, requests, mailbox depth and
        high-water mark, drops, refusals, crashes, restarts, per-handler counts and, with
        ``start(timing=True)``, ``handle_event`` durations), read without stopping it. Safe
        from any thread."""
        return self._srv.stats(running=self.is_running)

    @property
    def left_behind(self) -> int:
        """How many isolated handlers ``stop`` left behind because they did not finish within
        their ``stop_timeout`` (each logged: a task is cancelled, a thread left running)."""
        return self._srv.left_behind

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        """The event loop the manager runs in."""
        return self._srv.loop

    @property
    def is_running(self) -> bool:
        """False once the manager has stopped (or is stopping), or its event loop was closed."""
        return not self._closed and not self._srv.gone()

    async def wait_stopped(self) -> None:
        """Wait until the manager has stopped and every handler was terminated."""
        await self._srv.wait_stopped()

    def notify(self, event: E) -> None:
        """Queue ``event`` for every handler's ``handle_event`` and return at once (OTP's
        ``notify``). Safe from any thread. Raises :class:`ManagerNotRunning` once stopped."""
        if self._closed:
            self._srv.refused += 1
            raise ManagerNotRunning(self)
        self._mailbox.append(event)
        if self._closed:  # stop was requested meanwhile: accepted only if it will be handled
            self._srv.late(event)
        if self._waiter is not None:
            srv = self._srv
            if get_ident() == srv.thread_id:
                srv.wake()
            else:
                srv.wake_from_thread()

    def send(self, message: Any) -> None:
        """Queue an info ``message`` for every handler's ``handle_info`` (OTP: any other message
        sent to the manager). Safe from any thread."""
        srv = self._srv
        if self._closed:
            srv.refused += 1
            raise ManagerNotRunning(self)
        req = _Request(srv.core.info, (message,), None, Kind.INFO)
        self._mailbox.append(req)
        if self._closed:
            srv.late(req)
        _many.wake(self, srv)

    def notify_many(self, events: Iterable[E]) -> None:
        """:meth:`notify` each of ``events`` in order, with one append and one wake-up for the
        batch. Once stopped: :class:`ManagerNotRunning` (nothing queued); a bounded mailbox
        refusing mid-batch: :class:`~genevent.MailboxFull`, ``accepted`` the events before."""
        _many.notify_many(self, events)

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

    async def sync_notify(self, event: E, *, timeout: float | None = None) -> None:
        """Deliver ``event`` to every handler and return once all have handled it (OTP's
        ``sync_notify``). A handler crashing on it does not change the result. ``timeout=0``
        delivers it without waiting and raises :class:`CallTimeout`."""
        if timeout is not None:
            timeout = check_timeout(timeout)
        srv = self._srv
        if self._waiter is None and timeout != 0.0 and busy(srv):  # queued: kept lean
            await queue_busy(srv, _SYNC, (event,), Kind.SYNC_NOTIFY, timeout)
            return
        srv.check_caller("sync_notify")
        if timeout != 0.0 and srv.can_inline():
            core = srv.core
            core.requests += 1
            core.events += 1
            targets = core.cached_targets or core.event_targets
            caller = srv.dispatch_task = _task_of(srv.loop)
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
                    work = finish_dispatch(srv, entry, outcome, event, rest)
                    fatal = await finish_inline(srv, work, Kind.SYNC_NOTIFY, timeout)
                    if fatal is not None:
                        inline_fatal(srv, fatal)
                    return
            finally:
                if srv.dispatch_task is caller:
                    srv.inline_finished(None)
            return
        await enqueue(srv, _SYNC, (event,), Kind.SYNC_NOTIFY, timeout)

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
        srv = self._srv
        if timeout.__class__ is not float or not 0.0 < timeout < _FOREVER:
            timeout = check_timeout(timeout)
            if timeout == 0.0:  # never inline: delivered, and the caller times out at once
                srv.check_caller("call")
                check_ref(handler)
                return await enqueue(srv, _CALL, (handler, request), Kind.CALL, timeout)  # type: ignore[no-any-return]
        if (
            self._waiter is None  # busy: it will not run inline (the queued path, kept lean)
            and srv.dispatch_task is None
            and not self._closed
            and _running_loop() is srv.loop  # running, so not closed
        ):
            try:  # an installed reference needs no check
                known = handler in srv.core.by_ref
            except TypeError:
                known = False
            if not known:
                check_ref(handler)
            return await call_busy(srv, handler, request, timeout)  # type: ignore[no-any-return]
        srv.check_caller("call")
        if srv.can_inline():
            core = srv.core
            entry = core.find(handler)
            if entry is not None and entry.info.has_call:
                core.requests += 1
                caller = srv.dispatch_task = _task_of(srv.loop)
                try:
                    try:
                        reply = entry.instance.handle_call(request)
                    except CRASHES as exc:
                        if isinstance(exc, FATAL):  # finish the request, then let it go on
                            with contextlib.suppress(GenEventError):
                                work = drive(srv, core.call_result(entry, Raised(exc), request))
                                await finish_inline(srv, work, Kind.CALL, timeout)
                            inline_fatal(srv, exc)
                        outcome: Raised | Returned = Raised(exc)
                    else:
                        # the core's rule, its cheap form (see MAYBE_INSTRUCTION)
                        if reply.__class__ not in MAYBE_INSTRUCTION:
                            return reply  # type: ignore[no-any-return]
                        outcome = Returned(reply)
                    work = drive(srv, core.call_result(entry, outcome, request))
                    return await finish_inline(srv, work, Kind.CALL, timeout, (handler,))  # type: ignore[no-any-return]
                finally:
                    if srv.dispatch_task is caller:
                        srv.inline_finished(None)
        if srv.core.find(handler) is None:  # an installed reference needs no check
            check_ref(handler)
        return await enqueue(srv, _CALL, (handler, request), Kind.CALL, timeout)  # type: ignore[no-any-return]

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
        srv = self._srv
        lane = new_lane(srv, handler, isolation, maxsize, overflow, stop_timeout)
        srv.check_caller("add_handler")
        proc_args = (handler, args, None, None, spec, lane)
        await enqueue(srv, srv.core.add_handler, proc_args, Kind.ADD_HANDLER, timeout)

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
        lane = new_lane(self._srv, handler, isolation, maxsize, overflow, stop_timeout)
        self._srv.check_caller("add_sup_handler")
        owner = self._srv.owner(owner)
        await enqueue(
            self._srv,
            self._srv.core.add_handler,
            (handler, args, owner, on_exit, spec, lane),
            Kind.ADD_SUP_HANDLER,
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
        self._srv.check_caller("delete_handler")
        return await enqueue(
            self._srv, self._srv.core.delete_handler, (handler, args), Kind.DELETE_HANDLER, timeout
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
        self._srv.check_caller("swap_handler")
        await enqueue(
            self._srv,
            swap_proc,
            (self._srv.core, old, args1, new, args2, False, None, None),
            Kind.SWAP_HANDLER,
            timeout,
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
        self._srv.check_caller("swap_sup_handler")
        owner = self._srv.owner(owner)
        await enqueue(
            self._srv,
            swap_proc,
            (self._srv.core, old, args1, new, args2, True, owner, on_exit),
            Kind.SWAP_SUP_HANDLER,
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
        self._srv.check_caller("subscribe")
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
            self._srv.subscribe_later(fn, (ref, fn_args, None, None, spec))
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
        self._srv.check_caller("which_handlers")
        if timeout != 0.0 and self._srv.can_inline():
            self._srv.core.requests += 1
            return self._srv.core.which_handlers()
        return await enqueue(self._srv, _WHICH, (), Kind.WHICH_HANDLERS, timeout)  # type: ignore[no-any-return]

    async def get_state(self, *, timeout: float | None = None) -> list[tuple[Any, Any]]:
        """``[(handler, state)]``, newest first (OTP's ``sys:get_state``): each handler's
        ``format_status()`` if it has one, else a copy of its attributes, taken in order with
        the other messages."""
        timeout = check_timeout(timeout)
        self._srv.check_caller("get_state")
        return await enqueue(self._srv, self._srv.core.get_state, (), Kind.GET_STATE, timeout)  # type: ignore[no-any-return]

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
        srv = self._srv
        srv.check_caller("stop")
        fut, ahead = request_stop(srv, drain)
        await answer(srv, fut, Kind.STOP, timeout, ahead)

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

    def _gone(self) -> bool:  # the name registry asks: was its event loop closed under it?
        return self._srv.gone()

    # -- the host side of streams and isolated handlers ----------------------------------------

    def _install_stream(self, stream: AsyncEventStream[Any]) -> None:
        self._srv.install_stream(stream)

    def _remove_stream(self, stream: AsyncEventStream[Any]) -> None:
        self._srv.remove_stream(stream)

    @property
    def _lane_order(self) -> Order:
        return self._srv.lane_order

    lane_outcome = _lanes_host.lane_outcome
    lane_call_outcome = _lanes_host.lane_call_outcome
    lane_recheck = _lanes_host.lane_recheck
    lane_reply = _lanes_host.lane_reply
    lane_fail = _lanes_host.lane_fail
    lane_wake = _lanes_host.lane_wake


class _BoundedEventManager(EventManager[E]):
    """An :class:`EventManager` with a bounded mailbox (``start(maxsize=...)``): only its
    mailbox's producers differ (see :mod:`._bounded`): an unbounded ``notify`` pays nothing."""

    __slots__ = ("_maxsize",)

    def __init__(self, name: str | None, *, timing: bool, bound: Bound) -> None:
        self._maxsize = bound.maxsize
        super().__init__(name, timing=timing)
        self._srv.bound = bound  # before its task first runs

    notify = _bounded.notify
    notify_many = _bounded.notify_many
    send = _bounded.send
    notify_wait = _bounded.notify_wait
