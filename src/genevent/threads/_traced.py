"""The thread runtime's traced faces (``start(..., tracing=True)``): ``notify``,
``notify_many``, ``send``, ``sync_notify`` and ``call`` (and their future and coroutine
forms) post their message in an envelope with the OpenTelemetry context (see
:mod:`genevent._tracing`), then do what the untraced face does. Only a traced manager has
these classes: an untraced manager's ``notify`` is the same code as ever."""

from __future__ import annotations

import concurrent.futures
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, TypeVar

from .._handler import HandlerRef
from .._mailbox import Bound, as_batch
from .._tracing import Carried, Tracing
from ._bounded import _BoundedEventManager
from ._manager import EventManager

__all__ = ("traced_manager",)

E = TypeVar("E")
Req = TypeVar("Req")
Rep = TypeVar("Rep")

if TYPE_CHECKING:
    _Face = EventManager[Any]
else:
    _Face = object


class _Traced(_Face):
    """What a traced face adds, before the face it is mixed into."""

    _tracing: Tracing

    def notify(self, event: Any) -> None:
        super().notify(self._tracing.carry(event))

    def notify_many(self, events: Iterable[Any]) -> None:
        super().notify_many(self._tracing.carry_many(as_batch(events)))

    def send(self, message: Any) -> None:
        super().send(self._tracing.carry(message))

    def notify_wait(self, event: Any, *, timeout: float | None = None) -> None:
        super().notify_wait(self._tracing.carry(event), timeout=timeout)

    def sync_notify(self, event: Any, *, timeout: float | None = None) -> None:
        with self._tracing.send("sync_notify") as context:
            super().sync_notify(Carried(event, context), timeout=timeout)

    def call(
        self, handler: HandlerRef[Any, Req, Rep], request: Req, timeout: float | None = 5.0
    ) -> Rep:
        with self._tracing.send("call") as context:
            carried: Any = Carried(request, context)
            return super().call(handler, carried, timeout)

    def sync_notify_future(self, event: Any) -> concurrent.futures.Future[None]:
        return super().sync_notify_future(self._tracing.carry(event))

    def call_future(
        self, handler: HandlerRef[Any, Req, Rep], request: Req
    ) -> concurrent.futures.Future[Rep]:
        carried: Any = self._tracing.carry(request)
        return super().call_future(handler, carried)

    async def async_sync_notify(self, event: Any, *, timeout: float | None = None) -> None:
        with self._tracing.send("sync_notify") as context:
            await super().async_sync_notify(Carried(event, context), timeout=timeout)

    async def acall(
        self, handler: HandlerRef[Any, Req, Rep], request: Req, timeout: float | None = 5.0
    ) -> Rep:
        with self._tracing.send("call") as context:
            carried: Any = Carried(request, context)
            return await super().acall(handler, carried, timeout)


class _TracedEventManager(_Traced, EventManager[E]):
    """A traced :class:`EventManager`."""


class _TracedBoundedEventManager(_Traced, _BoundedEventManager[E]):
    """A traced :class:`EventManager` with a bounded mailbox."""


def traced_manager(
    name: str | None, inline: bool, timing: bool, bound: Bound | None, provider: Any
) -> EventManager[Any]:
    """A new traced manager (its tracer set before any handler can be added)."""
    mgr: _Traced
    if bound is None:
        mgr = _TracedEventManager(name, inline=inline, timing=timing)
    else:
        mgr = _TracedBoundedEventManager(name, inline=inline, timing=timing, bound=bound)
    mgr._tracing = tracing = Tracing(mgr, provider)
    mgr._srv.core.wrap_class = tracing.wrap_class
    return mgr
