"""Why a handler left: the closed set of reasons given to ``terminate`` and to owners.

OTP passes ``terminate`` one of ``Args``, ``remove_handler``, ``Args1`` (swap), ``stop``,
``{stop, Reason}``, ``{error, {'EXIT', R}}`` or ``{error, Term}``, and tells owners
``normal``, ``shutdown``, ``{swapped, New, Owner}`` or the error. genevent names each case
with a frozen dataclass, so ``match reason: case Crashed(exc): ...`` reads naturally, and
uses the same objects for both audiences (an owner sees ``Deleted``/``RemovedItself`` where
OTP says ``normal``, and ``Stopped`` where OTP says ``shutdown``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = (
    "BadReturn",
    "Crashed",
    "Deleted",
    "ExitReason",
    "HandlerExit",
    "OwnerExited",
    "RemovedItself",
    "StartFailed",
    "Stopped",
    "Swapped",
)


@dataclass(frozen=True, slots=True)
class Deleted:
    """``delete_handler(handler, args)`` removed it; ``args`` are the delete arguments."""

    args: Any


@dataclass(frozen=True, slots=True)
class RemovedItself:
    """A callback returned :class:`~genevent.Remove` (OTP's ``remove_handler``)."""


@dataclass(frozen=True, slots=True)
class Swapped:
    """It was swapped out for ``new_handler``; ``args`` are the swap's first arguments.

    ``new_owner`` is the owner of the new handler (None when unsupervised)."""

    args: Any
    new_handler: Any
    new_owner: Any = None


@dataclass(frozen=True, slots=True)
class Stopped:
    """The manager stopped (OTP: ``stop`` to terminate, ``shutdown`` to the owner)."""


@dataclass(frozen=True, slots=True)
class OwnerExited:
    """Its owner ended; ``reason`` is None for a normal end, else the exception
    (``asyncio.CancelledError`` for a cancelled task). Owners are not told (they are gone)."""

    reason: BaseException | None = None


@dataclass(frozen=True, slots=True)
class Crashed:
    """A callback raised ``exception`` (OTP's ``{error, {'EXIT', R}}``)."""

    exception: BaseException


@dataclass(frozen=True, slots=True)
class BadReturn:
    """A callback returned ``value``, which it may not (OTP's ``{error, Value}``)."""

    value: Any


@dataclass(frozen=True, slots=True)
class StartFailed:
    """Owner-only: a handler that a swap-by-return was to install failed to start
    (its ``init`` raised ``cause``, or returned a value other than None)."""

    cause: Any


ExitReason = (
    Deleted | RemovedItself | Swapped | Stopped | OwnerExited | Crashed | BadReturn | StartFailed
)
"""Every reason a handler can leave for."""


@dataclass(frozen=True, slots=True)
class HandlerExit:
    """The notice a supervised handler's owner receives (OTP's ``{gen_event_EXIT, H, Reason}``),
    always after the handler's ``terminate`` ran."""

    handler: Any
    reason: ExitReason
    manager: Any
