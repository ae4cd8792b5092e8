"""Manager mailboxes: what both runtimes share about bounding them and about dropping a backlog.

A manager's mailbox is a :class:`collections.deque` of events, info messages and control
requests. The rules of a full buffer (which policy does what, and the counts) are
:mod:`genevent._overflow`'s; this module carries them out on a mailbox, for both runtimes:

* :class:`Bound`: a bounded mailbox's ``maxsize`` and ``overflow``, the lock its slow path
  takes, the counts of what it dropped and refused, and its :class:`DropLog`. Producers find
  room without any lock (the runtimes' ``notify`` compares ``len(mailbox)`` with ``maxsize``,
  which keeps a bounded manager's hot path within a few percent of an unbounded one); only a
  producer that finds the mailbox full takes :meth:`Bound.put_full` under :attr:`Bound.lock`.
  The bound is therefore exact for producers in one thread (an asyncio manager's own loop, or
  one producer thread), and concurrent producer threads can overshoot it by at most one
  message each, at the instant they race.
* :func:`take_backlog`: a stop that drops the backlog takes every queued message out of the
  mailbox, one atomic ``popleft`` at a time, so that each message is either handled by the
  manager or dropped here, never both; the events and infos are counted and the control
  requests answered by the runtime.
* :class:`DropLog`: dropping is never silent: it is counted at once and logged at most once a
  second per mailbox, each line saying how many were dropped since the last one.

Only events and info messages are subject to the policy. Control requests (calls,
``sync_notify``, add, delete, swap, ``stop``) are never dropped or refused for lack of room: they
join the mailbox even when it is full (so it can hold ``maxsize`` plus one request per waiting
caller), and their callers wait for the answer with their own timeout, as always.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Final

from ._driver import log
from ._errors import MailboxFull
from ._overflow import Action, Counts, OverflowPolicy, check_bound, decide
from ._text import short

__all__ = (
    "LOG_INTERVAL",
    "Bound",
    "DropLog",
    "as_batch",
    "check_mailbox",
    "log_backlog",
    "take_backlog",
)

LOG_INTERVAL: Final = 1.0
"""At most one drop line per mailbox per this many seconds (the counts are always exact)."""


def check_mailbox(maxsize: Any, overflow: Any) -> Bound | None:
    """Check ``start``'s ``maxsize`` and ``overflow`` (``TypeError``/``ValueError``) and return
    the mailbox's :class:`Bound`, or None for an unbounded mailbox (``maxsize=None``)."""
    if not isinstance(overflow, str):
        raise TypeError(f"overflow must be a str, not {type(overflow).__name__}")
    check_bound(maxsize, overflow)
    return None if maxsize is None else Bound(maxsize, overflow)  # type: ignore[arg-type]


def as_batch(events: Iterable[Any]) -> Sequence[Any]:
    """``notify_many``'s events, read once: a list or a tuple as it is, anything else into a
    list (an iterable that raises meanwhile queues nothing). A string or bytes is refused with
    ``TypeError``: it is one event, not a batch of characters (use ``notify``)."""
    if events.__class__ is list or events.__class__ is tuple:
        return events
    if isinstance(events, (str, bytes, bytearray)):
        raise TypeError(
            f"notify_many takes an iterable of events, not {type(events).__name__} "
            f"{short(events)}: to notify one event, use notify"
        )
    return list(events)


class DropLog:
    """Rate-limited warnings about one mailbox's drops: the first drop is logged at once, later
    ones at most once per :data:`LOG_INTERVAL`, summed; :meth:`flush` logs what is left."""

    __slots__ = ("clock", "next_at", "unlogged")

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.next_at = 0.0
        self.unlogged = 0

    def note(self, manager: Any, count: int, why: Callable[[], str], total: int) -> None:
        """Count ``count`` more drops; log them (with what was left unlogged) unless a line was
        written less than :data:`LOG_INTERVAL` ago. ``why()`` gives the line's reason (made
        only when a line is written: a flood notes a drop per event)."""
        self.unlogged += count
        now = self.clock()
        if now < self.next_at:
            return
        self.next_at = now + LOG_INTERVAL
        self.flush(manager, why(), total)

    def flush(self, manager: Any, why: str, total: int) -> None:
        """Log the drops not logged yet, if any."""
        n, self.unlogged = self.unlogged, 0
        if n:
            log.warning(
                "genevent manager %r dropped %d event%s or info%s (%s); %d dropped in all",
                manager,
                n,
                "" if n == 1 else "s",
                "" if n == 1 else "s",
                why,
                total,
            )


class Bound:
    """A bounded mailbox: its limits, its slow path and its counts (see the module's text).

    :attr:`counts` keeps what the policy dropped and refused (exact, counted under
    :attr:`lock`); what was handled and the high-water mark are the manager's own counts."""

    __slots__ = ("counts", "drops", "lock", "maxsize", "overflow", "room", "waiting")

    def __init__(self, maxsize: int, overflow: OverflowPolicy) -> None:
        self.maxsize = maxsize
        self.overflow: OverflowPolicy = overflow
        #: taken by producers that found the mailbox full (never on the fast path)
        self.lock = threading.Lock()
        #: the thread runtime's producers under ``"block"`` wait on this for room
        self.room = threading.Condition(self.lock)
        #: producers waiting for room now (the manager wakes them after each batch)
        self.waiting = 0
        self.counts = Counts()
        self.drops = DropLog()

    def __repr__(self) -> str:
        return f"<Bound maxsize={self.maxsize} overflow={self.overflow!r}>"

    @property
    def why(self) -> str:
        """The reason a drop line gives."""
        return f"mailbox full: maxsize={self.maxsize}, overflow={self.overflow!r}"

    def _why(self) -> str:
        return self.why

    def put_full(
        self,
        mailbox: deque[Any],
        item: Any,
        who: Any,
        is_control: Callable[[Any], bool],
    ) -> bool | None:
        """Offer ``item`` (an event or info) to ``mailbox``, which a producer found full; call
        with :attr:`lock` held. Returns True if it was queued, False if it (or, under
        ``"drop_oldest"``, an older one in its place) was dropped and counted, None if the
        producer must wait for room (``"block"``: wait, then offer again, or :meth:`refuse`).
        Raises :class:`~genevent.MailboxFull` under ``"raise"`` (counted).

        ``"drop_oldest"`` drops the oldest queued message if it is an event or an info; when
        the oldest is a control request (which is never dropped), the arriving message is
        dropped instead."""
        counts = self.counts
        action = decide(len(mailbox), self.maxsize, self.overflow)
        if action is Action.DROP_OLDEST:  # first: the one a flood meets once per event
            # the manager pops from the same end without this lock, so pop and look (an
            # atomic popleft), and give a control request back its place at the head. (A
            # manager that popped the next message between these two lines would have to be
            # switched to and back within a few bytecodes of the producer getting the GIL
            # back: with a GIL, a thread keeps it for a whole switch interval unless it blocks.)
            try:
                oldest = mailbox.popleft()
            except IndexError:  # the manager emptied it meanwhile: nothing old to drop
                mailbox.append(item)
                return True
            counts.dropped += 1
            self.drops.note(who, 1, self._why, counts.dropped)
            if is_control(oldest):
                mailbox.appendleft(oldest)
                return False
            mailbox.append(item)
            return True
        if action is Action.ACCEPT:  # the manager made room meanwhile
            mailbox.append(item)
            return True
        if action is Action.WAIT:
            return None
        if action is Action.REFUSE:
            counts.refused += 1
            raise MailboxFull(who, self.maxsize)
        counts.dropped += 1
        self.drops.note(who, 1, self._why, counts.dropped)
        return False

    def refuse(self, who: Any) -> MailboxFull:
        """Count a producer that found no room and could not (or would no longer) wait, and
        return the error to raise; call with :attr:`lock` held."""
        self.counts.refused += 1
        return MailboxFull(who, self.maxsize)

    def flush_log(self, who: Any) -> None:
        """Log the drops not logged yet (at stop)."""
        with self.lock:
            self.drops.flush(who, self.why, self.counts.dropped)


def take_backlog(mailbox: deque[Any], is_droppable: Callable[[Any], bool]) -> tuple[int, list[Any]]:
    """Take every message out of ``mailbox`` for a stop that drops the backlog: returns how
    many events and infos were taken (to count as dropped) and the other messages (control
    requests, in order) for the runtime to answer. Pops one message at a time, so that a
    manager draining the same mailbox meanwhile either handled a message or left it here."""
    dropped = 0
    rest: list[Any] = []
    popleft = mailbox.popleft
    while True:
        try:
            msg = popleft()
        except IndexError:
            return dropped, rest
        if is_droppable(msg):
            dropped += 1
        else:
            rest.append(msg)


def log_backlog(manager: Any, events: int, requests: int, when: str) -> None:
    """Say (a warning on the ``genevent`` logger) what a stop that drops the backlog dropped:
    ``events`` events and infos (counted in ``stats().dropped``) and ``requests`` queued
    requests (answered with ``ManagerNotRunning``)."""
    log.warning(
        "genevent manager %r dropped %d queued event%s and info%s %s%s",
        manager,
        events,
        "" if events == 1 else "s",
        "" if events == 1 else "s",
        when,
        f" (and refused {requests} queued request{'' if requests == 1 else 's'})"
        if requests
        else "",
    )
