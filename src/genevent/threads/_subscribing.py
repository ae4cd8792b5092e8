"""The thread runtime's subscriptions: :meth:`~genevent.threads.EventManager.subscribe`,
:meth:`~genevent.threads.EventManager.on` and :meth:`~genevent.threads.EventManager.stream`,
built on the face's ``add_handler`` (a base of :class:`genevent.threads.EventManager`)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Hashable
from typing import TYPE_CHECKING, Any, Generic, TypeVar, overload

from .._checks import check_subscribe
from .._core import (
    Kind,
    RestartPolicy,
)
from .._errors import ManagerNotRunning
from .._handler import HandlerRef
from .._lanes import STOP_TIMEOUT, LaneOverflow
from .._overflow import OverflowPolicy
from .._streams import EventStream
from ._requests import _Request
from ._server import _Server

E = TypeVar("E")
T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])


class _Subscribing(Generic[E]):
    """The subscriptions of a thread-runtime manager, over ``add_handler`` and ``_srv`` (its
    server), which :class:`genevent.threads.EventManager` defines."""

    _srv: _Server

    if TYPE_CHECKING:  # the face's (see EventManager.add_handler)
        add_handler: Callable[..., None]

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
            srv.post(_Request(srv.core.delete_handler, (stream.ref, None), Kind.STREAM_CLOSE), self)
