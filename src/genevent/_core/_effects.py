"""Effects the core asks its runtime to perform, and the outcomes the runtime sends back.

The core's procedures are generators: each yields effects and, for :class:`Invoke`, receives a
:class:`Returned` or :class:`Raised` in return. All other effects receive ``None``.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from typing import Any, TypeAlias

from .._text import short
from ._reasons import HandlerExit

__all__ = (
    "Effect",
    "Invoke",
    "Outcome",
    "Procedure",
    "Raised",
    "Report",
    "Retry",
    "Returned",
    "Settle",
    "TellOwner",
    "Unwatch",
    "Watch",
)


class Invoke:
    """Call user code: ``fn(*args, **kwargs)``; await the result when ``is_async``. ``via`` is
    the lane (the own mailbox and task or thread) of an isolated handler whose code this is:
    the runtime runs it there and waits for its outcome; None: run it in the manager."""

    __slots__ = ("args", "fn", "is_async", "kwargs", "via")

    def __init__(
        self,
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        is_async: bool = False,
        kwargs: dict[str, Any] | None = None,
        via: Any = None,
    ) -> None:
        self.fn = fn
        self.args = args
        self.is_async = is_async
        self.kwargs = kwargs
        self.via = via

    def __repr__(self) -> str:
        return f"Invoke({getattr(self.fn, '__qualname__', self.fn)!r}, {short(self.args)})"


class TellOwner:
    """Deliver ``notice`` to a supervised handler's owner through its ``on_exit`` callback."""

    __slots__ = ("notice", "on_exit")

    def __init__(self, on_exit: Callable[[HandlerExit], object], notice: HandlerExit) -> None:
        self.on_exit = on_exit
        self.notice = notice

    def __repr__(self) -> str:
        return f"TellOwner({short(self.notice)})"


class Watch:
    """Start watching ``owner`` so that its end is reported to the core (``owner_down``)."""

    __slots__ = ("owner",)

    def __init__(self, owner: Any) -> None:
        self.owner = owner

    def __repr__(self) -> str:
        return f"Watch({self.owner!r})"


class Unwatch:
    """``owner`` owns no handler any more: stop watching it."""

    __slots__ = ("owner",)

    def __init__(self, owner: Any) -> None:
        self.owner = owner

    def __repr__(self) -> str:
        return f"Unwatch({self.owner!r})"


class Report:
    """Something to log. ``kind`` is ``"crash"`` (an error report: a callback raised or returned
    a bad value, or a swap target failed to start), ``"terminate_raised"`` (error),
    ``"no_handle_info"`` (warning), ``"restarted"`` (warning; ``message`` is the restart count),
    ``"restart_failed"`` (error: a restart's init failed) or ``"restart_limit"`` (error;
    ``message`` is the handler's restart state). ``instance`` is the handler object (for its state);
    ``callback`` names the callback that failed (``"handle_event"``, ``"init"``, ...) when
    known."""

    __slots__ = ("callback", "handler", "instance", "kind", "message", "reason")

    def __init__(
        self,
        kind: str,
        handler: Any,
        instance: Any,
        message: Any,
        reason: Any,
        callback: str | None = None,
    ) -> None:
        self.kind = kind
        self.handler = handler
        self.instance = instance
        self.message = message
        self.reason = reason
        self.callback = callback

    def __repr__(self) -> str:
        return f"Report({self.kind!r}, {short(self.handler)}, {short(self.reason)})"


class Retry:
    """Schedule another attempt to restart ``handler`` (whose restart ``init`` failed) in
    ``delay`` seconds, on the runtime's clock: the runtime then runs
    :meth:`ManagerCore.retry_restart` as a message of the manager's mailbox, so that the
    manager serves other requests meanwhile."""

    __slots__ = ("delay", "handler")

    def __init__(self, handler: Any, delay: float) -> None:
        self.handler = handler
        self.delay = delay

    def __repr__(self) -> str:
        return f"Retry({short(self.handler)}, {self.delay:g})"


class Settle:
    """Before a handler that is not isolated changes the table: let the isolated handlers get
    past what was queued to them before the message being handled, applying what they bring
    back first (in mailbox order). The runtime performs it by waiting (holding its other
    messages) until they are; a runtime with no isolated handler never sees it."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "Settle()"


class Returned:
    """User code returned ``value``."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value

    def __repr__(self) -> str:
        return f"Returned({short(self.value)})"


class Raised:
    """User code raised ``exception``."""

    __slots__ = ("exception",)

    def __init__(self, exception: BaseException) -> None:
        self.exception = exception

    def __repr__(self) -> str:
        return f"Raised({short(self.exception)})"


Effect = Invoke | TellOwner | Watch | Unwatch | Report | Retry | Settle
Outcome = Returned | Raised

Procedure: TypeAlias = Generator[Effect, Outcome | None, Any]
"""A core procedure: yields effects, receives outcomes of :class:`Invoke`, returns the reply."""
