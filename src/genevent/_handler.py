"""The handler base class and the type names that go with it."""

from __future__ import annotations

from collections.abc import Awaitable, Hashable
from typing import TYPE_CHECKING, Any, Generic, TypeAlias, TypeVar

from ._core import ExitReason, Remove, Swap
from ._routing import install_routing

__all__ = ("EventHandler", "HandlerRef", "Instruction")

E_contra = TypeVar("E_contra", contravariant=True)
Req_contra = TypeVar("Req_contra", contravariant=True)
Rep_co = TypeVar("Rep_co", covariant=True)
E = TypeVar("E")
Req = TypeVar("Req")
Rep = TypeVar("Rep")

Instruction: TypeAlias = "Remove[Any] | Swap[Any]"
"""What ``handle_event``/``handle_info`` may return instead of ``None``."""


class EventHandler(Generic[E_contra, Req_contra, Rep_co]):
    """Base class of event handlers, generic over the events it handles, the requests its
    ``handle_call`` takes and the replies it gives (``EventHandler[Event, Request, Reply]``).

    Subclassing is optional (any class with ``handle_event`` works) but gives type checking:
    a manager typed ``EventManager[Event]`` accepts only handlers of ``Event``, and
    ``await mgr.call(H, request)`` is typed with ``H``'s request and reply types.

    The manager creates the instance itself (``cls()``, so ``__init__`` takes no arguments) and
    then calls ``init(args)``. Keep state on ``self``. Callbacks, each optional but
    ``handle_event``, may be plain methods or (asyncio runtime only) coroutines:

    ``init(args, *, handoff=NO_HANDOFF)``
        Return ``None`` to be installed; raise to refuse. Declare ``handoff`` only if the handler
        takes part in swaps: it receives the old handler's ``terminate`` result.
    ``handle_event(event)`` / ``handle_info(message)``
        Return ``None`` to go on, :class:`~genevent.Remove` to leave, :class:`~genevent.Swap`
        to be replaced in place. Anything else, or raising, removes the handler.
    ``handle_call(request)``
        Return the reply, or ``Remove(reply)`` / ``Swap(..., reply=reply)``.
    ``terminate(reason)``
        ``reason`` is one of :data:`~genevent.ExitReason`; the result goes back to
        ``delete_handler``'s caller or to the next handler's ``init`` in a swap.
    ``format_status()``
        Optional: what crash reports show as the state (for redaction). Default: ``vars(self)``.

    Instead of one ``handle_event``, a handler may declare one method per event type with
    :func:`~genevent.handles` (routing by ``isinstance``, the most specific class winning;
    ``handle_other(event)`` gets the rest, else they are ignored).
    """

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        install_routing(cls)

    if TYPE_CHECKING:  # subclasses may require their args (``init(self, limit)``)

        def init(self, args: Any, /) -> Awaitable[None] | None:
            """Called once when the handler is added; the default accepts anything."""

    else:

        def init(self, args=None, /):
            """Called once when the handler is added; the default accepts anything (or
            nothing: with no ``args`` given to ``add_handler``, ``init()`` is called without
            arguments)."""

    if TYPE_CHECKING:
        # Declared for type checkers only: at run time a missing method means "not supported"
        # (no handle_call: calls are refused; no handle_info: infos are dropped with a warning).

        def handle_event(self, event: E_contra, /) -> Instruction | Awaitable[Any] | None: ...

        def handle_call(
            self, request: Req_contra, /
        ) -> Rep_co | Remove[Rep_co] | Swap[Rep_co] | Awaitable[Any]: ...

        def handle_info(self, message: Any, /) -> Instruction | Awaitable[Any] | None: ...

        def terminate(self, reason: ExitReason, /) -> Any: ...


HandlerRef: TypeAlias = (
    "type[EventHandler[E, Req, Rep]] | tuple[type[EventHandler[E, Req, Rep]], Hashable]"
)
"""A handler's identity: its class, or ``(class, id)`` to install one class several times."""
