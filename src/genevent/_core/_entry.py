"""One installed handler of the core's table (:class:`Entry`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeAlias

from ._classes import ClassInfo
from ._reasons import HandlerExit
from ._restart import Restart

__all__ = ("Entry", "OnExit")

OnExit: TypeAlias = Callable[[HandlerExit], object]
"""What tells a supervised handler's owner that it left."""


class Entry:
    """One installed handler: its reference, instance, owner and bound ``handle_event``.

    What is the same for every handler of a class (which callbacks exist, which are
    coroutines) is read from the class's shared ``info``; only ``handle_event``, the hot
    path's callback, is kept bound. Memory per handler counts (the benchmarks' "memory per
    handler"): the other bound callbacks are made when used."""

    __slots__ = (
        "alive",
        "event_fn",
        "events_at",
        "info",
        "instance",
        "lane",
        "on_exit",
        "owner",
        "ref",
        "restart",
    )

    def __init__(
        self,
        ref: Any,
        instance: Any,
        info: ClassInfo,
        owner: Any,
        on_exit: OnExit | None,
        lane: Any = None,
    ) -> None:
        self.ref = ref
        self.instance = instance
        self.info = info
        self.owner = owner
        self.on_exit = on_exit
        self.alive = True
        #: its restart policy and intensity (None: temporary, gen_event's behaviour)
        self.restart: Restart | None = None
        #: the manager's event count when it was installed (its own count is derived)
        self.events_at = 0
        self.event_fn: Callable[[Any], Any] = instance.handle_event
        #: the lane of an isolated handler (see the module documentation), or None
        self.lane = lane
        if lane is not None:  # the manager only queues: nothing of it is awaited there
            self.event_fn = lane.post

    @property
    def is_async(self) -> bool:
        """Whether the manager awaits any of its callbacks (never for an isolated handler:
        the manager only queues to its lane)."""
        return self.lane is None and self.info.is_async

    @property
    def event_is_async(self) -> bool:
        """Whether the manager awaits ``handle_event`` (a coroutine, not isolated)."""
        return self.lane is None and self.info.event_is_async

    @property
    def call_fn(self) -> Callable[[Any], Any] | None:
        """The bound ``handle_call``, or None."""
        return self.instance.handle_call if self.info.has_call else None

    @property
    def call_is_async(self) -> bool:
        """Whether ``handle_call`` is a coroutine function."""
        return self.info.call_is_async

    @property
    def info_fn(self) -> Callable[[Any], Any] | None:
        """The bound ``handle_info`` (an isolated handler's lane's ``post_info``), or None."""
        if not self.info.has_info:
            return None
        fn: Callable[[Any], Any] = (
            self.instance.handle_info if self.lane is None else self.lane.post_info
        )
        return fn

    @property
    def info_is_async(self) -> bool:
        """Whether the manager awaits ``handle_info`` (a coroutine, not isolated)."""
        return self.lane is None and self.info.info_is_async

    @property
    def terminate_fn(self) -> Callable[[Any], Any] | None:
        """The bound ``terminate``, or None."""
        return self.instance.terminate if self.info.has_terminate else None

    @property
    def terminate_is_async(self) -> bool:
        """Whether ``terminate`` is a coroutine function."""
        return self.info.terminate_is_async

    def __repr__(self) -> str:
        return f"<Entry {self.ref!r} owner={self.owner!r}>"
