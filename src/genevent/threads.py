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

import atexit
import concurrent.futures
import contextlib
import threading
import time
import weakref
from collections.abc import Callable, Hashable
from types import TracebackType
from typing import Any, Final, Generic, TypeVar, overload

from . import _registry, _thread_owners, _thread_server
from ._checks import check_add, check_on_exit, check_ref, check_subscribe, check_timeout
from ._core import (
    NO_ARGS,
    HandlerExit,
    RestartPolicy,
)
from ._driver import FATAL
from ._errors import (
    CallingSelf,
    CallTimeout,
    GenEventError,
    ManagerNotRunning,
)
from ._handler import HandlerRef
from ._lanes import (
    STOP_TIMEOUT,
    Lane,
    LaneOverflow,
    ThreadLane,
    check_isolation,
)
from ._mailbox import Bound, check_mailbox, log_backlog
from ._metrics import ManagerStats, build_stats
from ._overflow import OverflowPolicy
from ._streams import EventStream
from ._text import short
from ._thread_exit import _stop_servers
from ._thread_owners import _check_owner, _OwnerWatch
from ._thread_server import (
    _CALL,
    _FOREVER,
    _STOP,
    _SYNC_NOTIFY,
    _abandon,
    _allocate_lock,
    _await,
    _get_ident,
    _monotonic,
    _Request,
    _Server,
    _swap_proc,
    _which_proc,
)

__all__ = ("EXIT_TIMEOUT", "EventManager", "start")

E = TypeVar("E")
Req = TypeVar("Req")
Rep = TypeVar("Rep")
T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])

EXIT_TIMEOUT: Final = 2.0
"""At interpreter exit, how long (seconds, in all) the exit hook waits for running managers to
terminate their handlers."""


# -- interpreter exit ------------------------------------------------------------------------


@atexit.register
def _stop_all_at_exit() -> None:
    _thread_owners._exiting = True
    _stop_servers(list(_thread_server._live), EXIT_TIMEOUT)


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
        _thread_server._live.add(srv)
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
        self._request(
            self._srv.core.add_handler,
            (handler, args, None, None, spec, lane),
            "add_handler",
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
        max_restarts: int = 3,
        restart_period: float = 5.0,
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
        max_restarts: int = 3,
        restart_period: float = 5.0,
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
        max_restarts: int = 3,
        restart_period: float = 5.0,
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
        ``max_restarts``, ``restart_period``, ``isolation``, ``maxsize``, ``overflow`` and
        ``stop_timeout`` are :meth:`add_handler`'s."""
        ref, args = check_subscribe(fn, event_type, where, id)
        self.add_handler(
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
        """Decorator form of :meth:`subscribe`: ``@mgr.on(OrderPlaced)`` subscribes the
        function (blocking until it is installed, raising as ``subscribe`` does; ``restart``,
        ``max_restarts`` and ``restart_period`` as there) and returns it unchanged."""

        def register(fn: F) -> F:
            self.subscribe(
                fn,
                event_type,
                where=where,
                id=id,
                restart=restart,
                max_restarts=max_restarts,
                restart_period=restart_period,
            )
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
        stream: EventStream[Any] = EventStream(self, event_type, where, maxsize, overflow, timeout)
        self._srv.track_stream(stream)
        return stream

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
