"""What a handler callback may return besides "go on" (``None``) or a reply."""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass
from typing import Any, Final, Generic, TypeVar

__all__ = ("NO_HANDOFF", "NoHandoff", "Remove", "Swap")

R = TypeVar("R")


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
    is handed to the new handler's ``init(args2, handoff=result)``. The owner is kept. From
    ``handle_call``, ``reply`` goes to the caller after the swap."""

    args1: Any
    handler: type[Any] | tuple[type[Any], Hashable]
    args2: Any = None
    reply: R | None = None


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
