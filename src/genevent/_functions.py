"""Plain functions as handlers: ``subscribe`` installs one of these classes with the function.

A thin layer over the handler model, not a second dispatcher: a subscribed function is an
ordinary installed handler (its reference is ``(FunctionHandler, key)``), so it shows in
``which_handlers``, can be deleted, crashes and is reported like any handler, and owners,
ordering and every other rule apply unchanged.

Routing by event type follows one rule everywhere in genevent (:func:`matches`): an event is of
type ``T`` when ``isinstance(event, T)``. Tuples such as ``("broadcast", text)`` are of type
``tuple``; tell them apart inside the function, or with ``where=``.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable, Hashable
from typing import Any

from ._core import Remove
from ._errors import InvalidHandler
from ._handler import EventHandler

__all__ = ("AsyncFunctionHandler", "FunctionHandler", "matches", "reference")


def matches(event: object, event_type: type[Any] | tuple[type[Any], ...] | None) -> bool:
    """Whether ``event`` is of ``event_type`` (``None``: every event): ``isinstance``."""
    return event_type is None or isinstance(event, event_type)


class FunctionHandler(EventHandler[Any, Any, Any]):
    """The handler that :meth:`subscribe` installs for a plain function.

    For each event of its ``event_type`` (every event when ``None``) that passes its ``where``
    predicate, it calls the function. The function's return value is ignored, except that
    returning :class:`~genevent.Remove` ``()`` unsubscribes it. A function that raises is
    removed and reported, like any handler."""

    fn: Callable[[Any], Any]
    event_type: type[Any] | tuple[type[Any], ...] | None
    where: Callable[[Any], object] | None

    def init(
        self,
        fn: Callable[[Any], Any],
        event_type: type[Any] | tuple[type[Any], ...] | None = None,
        where: Callable[[Any], object] | None = None,
        /,
    ) -> None:
        """Keep the function, the event type and the predicate."""
        self.fn = fn
        self.event_type = event_type
        self.where = where

    def handle_event(self, event: Any, /) -> Remove[Any] | None:
        """Call the function if the event is wanted."""
        et = self.event_type
        if (et is None or isinstance(event, et)) and (self.where is None or self.where(event)):
            result = self.fn(event)
            if result.__class__ is Remove:
                return result
        return None

    def format_status(self) -> dict[str, Any]:
        """What crash reports show: the function and its filter."""
        return {
            "function": getattr(self.fn, "__qualname__", repr(self.fn)),
            "event_type": self.event_type,
        }


class AsyncFunctionHandler(FunctionHandler):
    """:class:`FunctionHandler` for a coroutine function (asyncio runtime only)."""

    async def handle_event(self, event: Any, /) -> Remove[Any] | None:  # type: ignore[override]
        """Await the function if the event is wanted."""
        et = self.event_type
        if (et is None or isinstance(event, et)) and (self.where is None or self.where(event)):
            result = await self.fn(event)
            if result.__class__ is Remove:
                return result
        return None


def reference(fn: object, key: Hashable | None) -> tuple[type[FunctionHandler], Hashable]:
    """The handler reference ``subscribe`` installs ``fn`` under: ``(FunctionHandler, key)``,
    the key being the function itself unless one is given. Raises :class:`InvalidHandler`."""
    if not callable(fn) or isinstance(fn, type):
        raise InvalidHandler(f"{fn!r} is not a function: subscribe takes a callable")
    if key is None:
        key = fn
        try:
            hash(key)
        except TypeError as exc:
            raise InvalidHandler(f"{fn!r} is not hashable: pass id= to subscribe it") from exc
    is_async = inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(
        getattr(fn, "__call__", None)  # noqa: B004 - a callable object's async __call__
    )
    cls = AsyncFunctionHandler if is_async else FunctionHandler
    return (cls, key)


def check_filter(event_type: object, where: object) -> None:
    """Refuse an ``event_type`` that ``isinstance`` cannot take, or a ``where`` that is not
    callable, before anything is installed."""
    if event_type is not None:
        try:
            isinstance(None, event_type)  # type: ignore[arg-type]
        except TypeError as exc:
            raise InvalidHandler(
                f"event_type {event_type!r} is not a class (or a tuple of classes)"
            ) from exc
    if where is not None and not callable(where):
        raise InvalidHandler(f"where={where!r} is not callable")


def log_failure(fut: Any, fn: object) -> None:
    """Done callback of a queued subscription: log why it failed, if it did."""
    if fut.cancelled():
        return
    exc = fut.exception()
    if exc is not None:
        logging.getLogger("genevent").error("subscribing %r failed: %s", fn, exc)
