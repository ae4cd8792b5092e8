"""Routing by event type inside a handler class: one method per event type.

::

    class Orders(EventHandler[OrderEvent, None, None]):
        @handles(OrderPlaced)
        def placed(self, event: OrderPlaced) -> None: ...

        @handles(PaymentFailed)
        async def failed(self, event: PaymentFailed) -> None: ...  # asyncio runtime

A class with ``@handles`` methods and no ``handle_event`` of its own gets one that picks the
method by the event's class: ``isinstance`` (genevent's one rule for event types), the most
specific class in the event's MRO winning, as with :func:`functools.singledispatch`. An event no
method takes goes to ``handle_other(event)`` when the class defines it, and is otherwise
ignored. What a routed method returns is what ``handle_event`` returns (``None``, ``Remove()``,
``Swap(...)``). Routes are inherited and may be overridden by a subclass.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any, TypeVar, overload

__all__ = ("handles", "install_routing")

S = TypeVar("S")
T = TypeVar("T")
T2 = TypeVar("T2")
T3 = TypeVar("T3")
R = TypeVar("R")

_ROUTES = "__genevent_routes__"
_TYPES = "__genevent_handles__"


@overload
def handles(t1: type[T], /) -> Callable[[Callable[[S, T], R]], Callable[[S, T], R]]: ...


@overload
def handles(
    t1: type[T], t2: type[T2], /
) -> Callable[[Callable[[S, T | T2], R]], Callable[[S, T | T2], R]]: ...


@overload
def handles(
    t1: type[T], t2: type[T2], t3: type[T3], /
) -> Callable[[Callable[[S, T | T2 | T3], R]], Callable[[S, T | T2 | T3], R]]: ...


@overload
def handles(
    *event_types: type[Any],
) -> Callable[[Callable[[S, Any], R]], Callable[[S, Any], R]]: ...


def handles(*event_types: type[Any]) -> Callable[[Callable[[S, Any], R]], Callable[[S, Any], R]]:
    """Mark a handler method as the one for events of ``event_types`` (``isinstance``). The
    type checker checks that the method accepts those types."""
    if not event_types:
        raise TypeError("handles() needs at least one event type")
    for t in event_types:
        if not isinstance(t, type):
            raise TypeError(f"handles() takes classes, not {t!r}")

    def mark(method: Callable[[S, Any], R]) -> Callable[[S, Any], R]:
        setattr(method, _TYPES, (*getattr(method, _TYPES, ()), *event_types))
        return method

    return mark


def install_routing(cls: type) -> None:
    """Build ``cls``'s route table from its ``@handles`` methods (and its bases') and, unless
    it defines ``handle_event`` itself, give it a dispatching one. Called for every subclass of
    :class:`~genevent.EventHandler`."""
    routes: dict[type, str] = {}
    for klass in reversed(cls.__mro__):
        routes.update(getattr(klass, _ROUTES, {}) if klass is not cls else {})
    own: dict[type, str] = {}
    for name, member in vars(cls).items():
        for t in getattr(member, _TYPES, ()):
            own[t] = name
    if not own and not routes:
        return
    routes.update(own)
    setattr(cls, _ROUTES, routes)
    if "handle_event" in vars(cls) and not getattr(vars(cls)["handle_event"], "_routed", False):
        return  # the class routes by hand
    names = [*routes.values(), "handle_other"]
    is_async = any(inspect.iscoroutinefunction(getattr(cls, name, None)) for name in names)
    cache: dict[type, str | None] = {}

    def method_for(event_cls: type) -> str | None:
        try:
            return cache[event_cls]
        except KeyError:
            pass
        name = next((routes[k] for k in event_cls.__mro__ if k in routes), None)
        cache[event_cls] = name
        return name

    if is_async:

        async def handle_event(self: Any, event: Any, /) -> Any:
            name = method_for(event.__class__)
            if name is None:
                other = getattr(self, "handle_other", None)
                result = other(event) if other is not None else None
            else:
                result = getattr(self, name)(event)
            if inspect.isawaitable(result):
                result = await result
            return result

        handler: Callable[..., Any] = handle_event
    else:

        def handle_event_sync(self: Any, event: Any, /) -> Any:
            name = method_for(event.__class__)
            if name is None:
                other = getattr(self, "handle_other", None)
                return other(event) if other is not None else None
            return getattr(self, name)(event)

        handler = handle_event_sync
    handler.__name__ = handler.__qualname__ = "handle_event"
    handler.__doc__ = f"Route each event to {cls.__qualname__}'s @handles methods."
    handler._routed = True  # type: ignore[attr-defined]
    cls.handle_event = handler  # type: ignore[attr-defined]
