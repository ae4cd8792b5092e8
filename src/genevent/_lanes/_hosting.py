"""The manager's side of its lanes, written once for both runtimes.

A runtime's manager parks and wakes in its own way (an awaited future, a lock), and has its
own clock and request class; what it decides around its lanes is the same. So the shared
parts are decisions and *step generators*: a generator makes every decision and yields
where the runtime must act in its own way (apply a message, park until woken); the runtime
drives it with a plain ``for`` loop, ``await``-ing in the loop's body if it is asyncio. A
runtime's manager server is a :class:`Hosting`.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Generator, Iterable, Iterator
from typing import Any, Protocol

from .._core import COUNTED, LANE_RESULTS, Kind, ManagerCore
from ._lane import Lane, Order
from ._outcomes import leave_behind
from ._requests import takes_its_place

__all__ = ("Hosting", "abandon", "holding", "in_order", "settling", "still_busy", "takes_turn")


class Hosting(Protocol):
    """What the shared hosting of lanes needs of a runtime's manager server."""

    core: ManagerCore
    mailbox: deque[Any]
    lanes: dict[Lane, None]
    left_behind: int
    #: when the stop began waiting for lanes (None: not stopping)
    stop_started: float | None

    def label(self) -> Any:
        """The manager as its log lines and errors name it."""
        ...


def abandon(host: Hosting, lane: Lane) -> None:
    """Stopping, ``lane`` did not finish within its stop timeout: it is left behind (counted
    once), and nothing is restarted any more."""
    if leave_behind(host.label(), lane):
        host.left_behind += 1
    host.core.begin_stop(True)


def takes_turn(core: ManagerCore, order: Order, lanes: Iterable[Lane], req: Any, args: Any) -> bool:
    """A request that must see the table gen_event would show: True if it waits for the
    isolated handlers to get past what was queued before it (it is then counted, if it
    counts, and marked caught up; the runtime holds the messages behind it), False if it
    runs now."""
    what = req.what
    if not takes_its_place(core, what, args) or order.take_place(lanes, req):
        return False
    if what in COUNTED:
        core.count_request()
    req.caught_up = True
    return True


def in_order(order: Order, lanes: Iterable[Lane], req: Any) -> Iterator[Any]:
    """What isolated handlers brought back (``req``: an outcome, or a lane passed a place an
    outcome waits for): the outcomes that may be applied now, in mailbox order (see
    :class:`Order`); the runtime applies each before asking for the next."""
    if req.what is not Kind.LANE_ORDER:
        lane, seq = req.via
        if order.admit(lanes, seq, lane, req):
            yield req
    while order:
        ready = order.ready(lanes)
        if not ready:
            return
        yield from ready


def holding(
    host: Hosting, order: Order, req: Any, request: type[Any], stop: object
) -> Generator[Any, None, None]:
    """``req`` waits for its turn among what the isolated handlers bring back: yields each
    message the runtime applies meanwhile (what lanes bring back, of class ``request``), or
    None when the runtime must park until its mailbox gets a message (it re-checks the
    mailbox once it is ready to be woken). Every other message is held, in order, until
    ``req`` ran; then they are back at the front of the mailbox. A stop (a request whose
    ``proc`` is ``stop``) ends the hold. Close the generator when done (it puts the held
    messages back)."""
    held: deque[Any] = deque()
    mailbox = host.mailbox
    try:
        while order.holds(req):
            if not mailbox:
                yield None
                continue
            msg = mailbox.popleft()
            if msg.__class__ is request and msg.what in LANE_RESULTS:
                yield msg
                continue
            held.append(msg)
            if msg.__class__ is request and msg.proc is stop:
                return
    finally:
        mailbox.extendleft(reversed(held))


def settling(
    host: Hosting,
    now: Callable[[], float],
    recheck: Callable[[], None],
    give_up: Callable[[], float | None] | None = None,
) -> Generator[tuple[list[Lane], float], None, bool]:
    """Stopping: wait until every isolated handler handled what it was given, each for at
    most its ``stop_timeout`` from when it is told to stop (then it is left behind and
    ``recheck`` called: outcomes waiting for it wait no more). Yields ``(busy, timeout)``
    when the runtime must park for at most ``timeout`` seconds or until a lane wakes it; the
    runtime re-checks, once ready to be woken, that its mailbox is empty and one of ``busy``
    is busy still (else it does not park). Returns True if the mailbox got messages (the
    caller drains it and comes back), False once every lane is idle or left behind, or
    once ``give_up()``'s time (if any) passed."""
    if host.stop_started is None:
        host.stop_started = now()
    while True:
        if host.mailbox:
            return True
        busy = [lane for lane in host.lanes if not lane.idle()]
        if not busy:
            return False
        t = now()
        until = give_up() if give_up is not None else None
        if until is not None and t >= until:
            return False
        late = [lane for lane in busy if t >= lane.stop_by(t)]
        for lane in late:
            abandon(host, lane)
        if late:
            recheck()
            continue
        yield busy, min(lane.stop_by(t) for lane in busy) - t


def still_busy(host: Hosting, busy: list[Lane]) -> bool:
    """The re-check before parking in :func:`settling`: the mailbox is empty and one of
    ``busy`` is busy still."""
    return not host.mailbox and not all(lane.idle() for lane in busy)
