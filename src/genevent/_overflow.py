"""Bounded buffers: the overflow rules and the counts, once for every runtime (sans-I/O).

Every bounded buffer of genevent (an event stream's today) is bounded the same way: a
``maxsize`` (``None``: unbounded) and a policy for what happens to a message that arrives when
the buffer is full. This module decides and counts; it never waits, locks, reads a clock or
logs: each runtime does that with what :func:`decide` tells it.

Policies:

``"block"``
    back-pressure: the producer waits until there is room (a producer that cannot wait is
    refused with :class:`~genevent.MailboxFull` instead).
``"drop_newest"``
    the arriving message is dropped (counted).
``"drop_oldest"``
    the oldest queued message is dropped to make room (counted).
``"raise"``
    the producer gets :class:`~genevent.MailboxFull`; nothing is queued (counted as refused).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Literal, TypeAlias

__all__ = (
    "OVERFLOW_POLICIES",
    "Action",
    "Counts",
    "OverflowPolicy",
    "check_bound",
    "decide",
)

OverflowPolicy: TypeAlias = Literal["block", "drop_newest", "drop_oldest", "raise"]
"""How a full buffer treats an arriving event or info message."""

OVERFLOW_POLICIES: tuple[OverflowPolicy, ...] = ("block", "drop_newest", "drop_oldest", "raise")


class Action(Enum):
    """What the runtime does with an arriving message (the answer of :func:`decide`)."""

    ACCEPT = "accept"
    """Queue it."""
    DROP_NEWEST = "drop_newest"
    """Drop it; count one drop."""
    DROP_OLDEST = "drop_oldest"
    """Drop the oldest queued message, then queue it; count one drop."""
    REFUSE = "refuse"
    """Raise ``MailboxFull`` to the producer; count one refusal."""
    WAIT = "wait"
    """Wait for room (a producer that cannot wait is refused instead)."""


def check_bound(maxsize: int | None, overflow: str) -> None:
    """Refuse a bad ``maxsize`` or ``overflow`` with ``TypeError``/``ValueError`` before
    anything is started."""
    if maxsize is not None:
        if isinstance(maxsize, bool) or not isinstance(maxsize, int):
            raise TypeError(f"maxsize must be an int or None, not {type(maxsize).__name__}")
        if maxsize < 1:
            raise ValueError(f"maxsize must be at least 1 (or None: unbounded), not {maxsize}")
    if overflow not in OVERFLOW_POLICIES:
        raise ValueError(
            f"overflow must be one of {', '.join(map(repr, OVERFLOW_POLICIES))}, not {overflow!r}"
        )


def decide(queued: int, maxsize: int | None, overflow: OverflowPolicy) -> Action:
    """What to do with a message arriving at a buffer holding ``queued`` messages."""
    if maxsize is None or queued < maxsize:
        return Action.ACCEPT
    if overflow == "drop_oldest":
        return Action.DROP_OLDEST
    if overflow == "drop_newest":
        return Action.DROP_NEWEST
    if overflow == "raise":
        return Action.REFUSE
    return Action.WAIT


@dataclass(slots=True)
class Counts:
    """What happened to the events and infos offered to one buffer. Once the buffer is empty,
    ``handled + dropped + refused == sent``."""

    sent: int = 0
    """Offered by producers (accepted or not)."""
    handled: int = 0
    """Taken out of the buffer and delivered."""
    dropped: int = 0
    """Dropped by ``drop_newest`` / ``drop_oldest`` (or by a stop that drops the backlog)."""
    refused: int = 0
    """Refused to the producer (``raise``, or ``block`` for a producer that cannot wait)."""
    high_water: int = 0
    """The most messages the buffer ever held at once."""

    def offer(self, queued: int, maxsize: int | None, overflow: OverflowPolicy) -> Action:
        """Count one message offered to a buffer holding ``queued`` and decide its fate; the
        counts are updated as if the runtime carries the action out (``WAIT`` counts nothing:
        offer again when there is room, or call :meth:`refuse`)."""
        action = decide(queued, maxsize, overflow)
        if action is Action.WAIT:
            return action
        self.sent += 1
        if action is Action.ACCEPT:
            self.high_water = max(self.high_water, queued + 1)
        elif action is Action.REFUSE:
            self.refused += 1
        else:
            self.dropped += 1
        return action

    def refuse(self) -> None:
        """Count a producer that would have had to wait and could not (or timed out)."""
        self.sent += 1
        self.refused += 1
