"""The thread runtime's public face: :class:`EventManager`, over one server
(:class:`._server._Server`, its manager thread) that it holds as ``_srv``."""

from __future__ import annotations

import concurrent.futures
import threading
import time
import weakref
from collections.abc import Callable, Iterable
from types import TracebackType
from typing import Any, TypeVar

from .. import _registry
from .._checks import check_add, check_on_exit, check_ref, check_timeout
from .._core import (
    NO_ARGS,
    HandlerExit,
    Kind,
    RestartPolicy,
)
from .._driver import FATAL
from .._errors import (
    CallingSelf,
    CallTimeout,
    GenEventError,
    ManagerNotRunning,
)
from .._handler import HandlerRef
from .._lanes import (
    STOP_TIMEOUT,
    Lane,
    LaneOverflow,
    ThreadLane,
    check_isolation,
)
from .._mailbox import Bound
from .._metrics import ManagerStats, build_stats
from .._text import short
from . import _many, _state
from ._calls import (
    _await,
    _check_caller,
    _request,
    _stop_dropping,
    _submit,
    _timeout_error,
    _wait_ended,
)
from ._owners import _check_owner
from ._requests import (
    _CALL,
    _FOREVER,
    _STOP,
    _SYNC_NOTIFY,
    _allocate_lock,
    _get_ident,
    _monotonic,
    _Request,
    _swap_proc,
    _which_proc,
)
from ._server import _Server
from ._stop import abandoned as _abandoned
from ._subscribing import _Subscribing

E = TypeVar("E")
Req = TypeVar("Req")
Rep = TypeVar("Rep")
T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])


# -- the public manager ----------------------------------------------------------------------


class EventManager(_Subscribing[E]):
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
        _state.add_live(srv)
        self._finalizer = weakref.finalize(self, _abandoned, srv)
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
        return build_stats(
            srv.core,
            name=self.name,
            ident=id(self),
            running=not srv.closed,
            mailbox=srv.mailbox,
            request_class=_Request,
            high_water=srv.high_water,
            dropped=srv.dropped,
            refused=srv.refused,
            bound=srv.bound,
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
        _check_caller(self._srv, self, "wait_stopped")
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

    def notify_many(self, events: Iterable[E]) -> None:
        """:meth:`notify` each of ``events``, in order, with one append and one wake-up for the
        whole batch. Safe from any thread. Raises :class:`ManagerNotRunning` once stopped
        (nothing queued). On a bounded mailbox each event that finds it full meets the policy
        as its own ``notify`` would (``"block"`` waits for room, event by event); a refusal
        mid-batch (:class:`~genevent.MailboxFull`, or :class:`ManagerNotRunning` from a stop
        met while waiting) refuses the rest of the batch too, and its ``accepted`` counts the
        events taken before it."""
        _many.notify_many(self._srv, self, events)

    def send(self, message: Any) -> None:
        """Queue an info ``message`` for every handler's ``handle_info`` (OTP: any other message
        sent to the manager). Safe from any thread."""
        srv = self._srv
        try:
            srv.post(_Request(srv.core.info, (message,), Kind.INFO), self)
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

    def sync_notify(self, event: E, *, timeout: float | None = None) -> None:
        """Deliver ``event`` to every handler and return once all have handled it (OTP's
        ``sync_notify``). A handler crashing on it does not change the result. ``timeout=0``
        delivers it without waiting and raises :class:`CallTimeout`."""
        if timeout is not None:
            timeout = check_timeout(timeout)
        srv = self._srv
        if srv.inline and timeout != 0.0:
            _check_caller(self._srv, self, "sync_notify")
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
        _request(self._srv, self, _SYNC_NOTIFY, (event,), Kind.SYNC_NOTIFY, timeout)

    def sync_notify_future(self, event: E) -> concurrent.futures.Future[None]:
        """As :meth:`sync_notify`, without blocking: the future is done once every handler has
        handled ``event``. Wait with ``f.result(timeout)`` or ``await asyncio.wrap_future(f)``."""
        return _submit(self._srv, self, _SYNC_NOTIFY, (event,), Kind.SYNC_NOTIFY)

    async def async_sync_notify(self, event: E, *, timeout: float | None = None) -> None:
        """Coroutine form of :meth:`sync_notify` for asyncio code: awaits the answer without
        blocking the event loop."""
        timeout = check_timeout(timeout)
        ahead = len(self._srv.mailbox)
        fut = _submit(self._srv, self, _SYNC_NOTIFY, (event,), Kind.SYNC_NOTIFY)
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
                return _request(self._srv, self, _CALL, (handler, request), Kind.CALL, timeout)  # type: ignore[no-any-return]
        srv = self._srv
        if srv.inline:
            _check_caller(self._srv, self, "call")
            if srv.enter_inline():
                t0 = _monotonic()
                srv.core.requests += 1
                try:
                    reply = srv.call(handler, request)
                except GenEventError:
                    if timeout is not None and _monotonic() - t0 > timeout:
                        raise _timeout_error(srv, "call", timeout, 0, (handler,)) from None
                    raise
                except FATAL:
                    srv.interrupt()
                    raise
                finally:
                    srv.leave_inline()
                if timeout is not None and _monotonic() - t0 > timeout:
                    raise _timeout_error(srv, "call", timeout, 0, (handler,))
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
        req = _Request(_CALL, args, Kind.CALL)
        lock = req.lock = _allocate_lock()
        lock.acquire()
        ahead = len(srv.mailbox)
        srv.post(req, self)
        if timeout is None:
            lock.acquire()
        elif not lock.acquire(True, timeout):  # timeout 0 took _request's path above
            raise _timeout_error(srv, "call", timeout, ahead, args)
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
        return _submit(self._srv, self, _CALL, (handler, request), Kind.CALL)

    async def acall(
        self, handler: HandlerRef[Any, Req, Rep], request: Req, timeout: float | None = 5.0
    ) -> Rep:
        """Coroutine form of :meth:`call` for asyncio code: awaits the reply without blocking
        the event loop. Raises :class:`CallTimeout` after ``timeout`` seconds."""
        timeout = check_timeout(timeout)
        check_ref(handler)
        ahead = len(self._srv.mailbox)
        fut = _submit(self._srv, self, _CALL, (handler, request), Kind.CALL)
        return await _await(fut, self._srv, "call", timeout, ahead, (handler,))  # type: ignore[no-any-return]

    def add_handler(
        self,
        handler: HandlerRef[E, Any, Any],
        args: Any = NO_ARGS,
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
        With no ``args`` given, ``init()`` is called without arguments, so its defaults apply
        (an ``init`` parameter without a default refuses the handler with
        :class:`HandlerInitFailed`, before it is created); ``args=None`` passes ``None``.
        Raises :class:`HandlerExists`, :class:`HandlerInitFailed` or :class:`InvalidHandler`
        (also for a handler with coroutine methods: this runtime runs them synchronously).
        ``restart`` (``"temporary"``: gen_event's behaviour; ``"transient"``: added
        again after a crash or a bad return; ``"permanent"``: also after it removed itself)
        re-adds it at the front with the same class and ``args``, at most ``max_restarts``
        times within ``restart_period`` seconds, then lets it go for good.

        ``isolation=True`` runs the handler in a thread of its own with a mailbox of its own,
        so a handler that blocks delays no other handler. It keeps gen_event's meaning (see
        docs/how-to/isolation-and-overflow.md); its mailbox holds at most ``maxsize`` events
        (None: unbounded), dropping under ``overflow`` (``"drop_oldest"`` or
        ``"drop_newest"``, counted and logged), and ``stop`` waits ``stop_timeout`` seconds
        for it, then leaves its thread behind as a daemon (logged, counted in
        :attr:`left_behind`). A handler swapped in for it, or restarted, stays isolated."""
        timeout, spec = check_add(handler, args, timeout, restart, max_restarts, restart_period)
        lane = self._new_lane(handler, isolation, maxsize, overflow, stop_timeout)
        _request(
            self._srv,
            self,
            self._srv.core.add_handler,
            (handler, args, None, None, spec, lane),
            Kind.ADD_HANDLER,
            timeout,
        )

    def add_sup_handler(
        self,
        handler: HandlerRef[E, Any, Any],
        args: Any = NO_ARGS,
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
        timeout, spec = check_add(
            handler, args, timeout, restart, max_restarts, restart_period, on_exit
        )
        lane = self._new_lane(handler, isolation, maxsize, overflow, stop_timeout)
        _check_caller(self._srv, self, "add_sup_handler")
        owner_thread, reg = _check_owner(owner)
        _request(
            self._srv,
            self,
            self._srv.core.add_handler,
            (handler, args, owner_thread, on_exit, spec, lane),
            Kind.ADD_SUP_HANDLER,
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
        return _request(
            self._srv,
            self,
            self._srv.core.delete_handler,
            (handler, args),
            Kind.DELETE_HANDLER,
            timeout,
        )

    def swap_handler(
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
        _request(
            self._srv,
            self,
            _swap_proc,
            (self._srv.core, old, args1, new, args2, False, None, None),
            Kind.SWAP_HANDLER,
            timeout,
        )

    def swap_sup_handler(
        self,
        old: HandlerRef[E, Any, Any],
        args1: Any,
        new: HandlerRef[E, Any, Any],
        args2: Any = NO_ARGS,
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
        _check_caller(self._srv, self, "swap_sup_handler")
        owner_thread, reg = _check_owner(owner)
        _request(
            self._srv,
            self,
            _swap_proc,
            (self._srv.core, old, args1, new, args2, True, owner_thread, on_exit),
            Kind.SWAP_SUP_HANDLER,
            timeout,
            reg,
        )

    def which_handlers(self, *, timeout: float | None = None) -> list[Any]:
        """The installed handlers, newest first (OTP's ``which_handlers``)."""
        timeout = check_timeout(timeout)
        srv = self._srv
        _check_caller(self._srv, self, "which_handlers")
        if (
            timeout != 0.0 and srv.enter_inline()
        ):  # runs no handler code: fine whatever ``inline`` says
            try:
                return srv.core.which_handlers()
            finally:
                srv.leave_inline()
        found: list[Any] = _request(
            self._srv, self, _which_proc, (self._srv.core,), Kind.WHICH_HANDLERS, timeout
        )
        return found

    def get_state(self, *, timeout: float | None = None) -> list[tuple[Any, Any]]:
        """``[(handler, state)]``, newest first (OTP's ``sys:get_state``): each handler's
        ``format_status()`` if it has one, else a copy of its attributes, taken in order with
        the other messages."""
        timeout = check_timeout(timeout)
        return _request(self._srv, self, self._srv.core.get_state, (), Kind.GET_STATE, timeout)  # type: ignore[no-any-return]

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
            _request(self._srv, self, _STOP, (), Kind.STOP, timeout)
        else:
            _stop_dropping(self._srv, self, timeout)
        self._finalizer.detach()
        _wait_ended(self._srv, "stop", None if deadline is None else deadline - time.monotonic())

    def stop_future(self) -> concurrent.futures.Future[None]:
        """As :meth:`stop`, without blocking: the future is done once every handler was
        terminated and the name freed (the thread ends right after; :meth:`wait_stopped` joins
        it). The future fails with :class:`ManagerNotRunning` if the manager already stopped."""
        return _submit(self._srv, self, _STOP, (), Kind.STOP)

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
