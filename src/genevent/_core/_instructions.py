"""What a handler callback may return besides "go on" (``None``) or a reply."""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass
from typing import Any, Final, Generic, TypeVar

__all__ = (
    "MAYBE_INSTRUCTION",
    "NO_ARGS",
    "NO_HANDOFF",
    "Args",
    "NoArgs",
    "NoHandoff",
    "Remove",
    "Swap",
    "is_plain_reply",
    "misuse_hint",
)

R = TypeVar("R")


class NoArgs:
    """Type of :data:`NO_ARGS`."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "NO_ARGS"

    def __reduce__(self) -> str:
        return "NO_ARGS"


NO_ARGS: Final = NoArgs()
"""The default ``args`` of ``add_handler``, ``add_sup_handler`` and the new handler of a swap:
no arguments were given, so ``init()`` is called without any (its parameters' defaults apply;
a parameter without a default refuses the handler with :class:`~genevent.HandlerInitFailed`
before it is created). ``args=None`` still passes ``None``."""


@dataclass(frozen=True, slots=True)
class Remove(Generic[R]):
    """Remove this handler (OTP's ``remove_handler``); its ``terminate`` gets
    :class:`~genevent.RemovedItself`. From ``handle_call``, ``reply`` is returned to the caller
    after the removal (OTP's ``{remove_handler, Reply}``)."""

    reply: R | None = None


@dataclass(frozen=True, slots=True)
class Swap(Generic[R]):
    """Replace this handler by ``handler`` in its place (OTP's ``swap_handler`` return).

    This handler's ``terminate`` gets :class:`~genevent.Swapped` carrying ``args1``; its result
    is handed to the new handler's ``init(args2, handoff=result)`` (``init(handoff=result)``
    when no ``args2`` is given, see :data:`NO_ARGS`). The owner is kept. From
    ``handle_call``, ``reply`` goes to the caller after the swap."""

    args1: Any
    handler: type[Any] | tuple[type[Any], Hashable]
    args2: Any = NO_ARGS
    reply: R | None = None


class Args:
    """Several arguments for a handler's ``init``: ``add_handler(H, Args(a, b, key=c))`` calls
    ``init(a, b, key=c)`` instead of ``init(args)``. Anything else passed as ``args`` (a tuple
    included) is handed to ``init`` as its one argument, as in OTP. Works wherever ``args``
    reaches an ``init``: ``add_handler``, ``add_sup_handler``, the new handler of a swap.
    A swapped-in handler still gets ``handoff=`` as a keyword."""

    __slots__ = ("args", "kwargs")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.args = args
        self.kwargs = kwargs

    def __repr__(self) -> str:
        parts = [repr(a) for a in self.args] + [f"{k}={v!r}" for k, v in self.kwargs.items()]
        return f"Args({', '.join(parts)})"

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not Args:
            return NotImplemented
        assert isinstance(other, Args)
        return self.args == other.args and self.kwargs == other.kwargs

    __hash__ = None  # type: ignore[assignment]


class NoHandoff:
    """Type of :data:`NO_HANDOFF`."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "NO_HANDOFF"

    def __reduce__(self) -> str:
        return "NO_HANDOFF"


NO_HANDOFF: Final = NoHandoff()
"""The ``handoff`` a swapped-in handler's ``init`` gets when there was no old handler
(OTP passes ``error``)."""


def is_plain_reply(value: Any) -> bool:
    """The rule for what ``handle_call`` returned: a plain reply (given to the caller, nothing
    else happens) unless it is a :class:`Remove` or :class:`Swap` instruction, or one of those
    classes itself (a forgotten ``()``: a bad return, never a reply)."""
    cls = value.__class__
    return cls is not Remove and cls is not Swap and value is not Remove and value is not Swap


MAYBE_INSTRUCTION: Final = frozenset({Remove, Swap, type})
"""The classes of what ``handle_call`` may return that need :func:`is_plain_reply` (and then
the core's ``call_result``) to be told apart: a fast path gives any other value to the caller
as it is (``reply.__class__ not in MAYBE_INSTRUCTION``: as cheap as a test of its own, and
the rule stays here). Conservative: every class is in it through ``type``."""


def misuse_hint(value: Any) -> str:
    """A guess at what a callback that returned ``value`` meant, when ``value`` misuses
    :class:`Remove` or :class:`Swap` (a forgotten ``()``, a swap to a handler already
    installed); ``""`` otherwise. Appended to the error's and the report's hint."""
    if value is Remove:
        return "; did you mean Remove()?"
    if value is Swap:
        return "; did you mean Swap(args1, Handler, args2)?"
    if type(value) is Swap:
        return "; a Swap must name a handler class, or (class, id), that is not installed"
    return ""
