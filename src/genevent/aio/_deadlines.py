"""The deadlines of a manager's queued requests: one watchdog timer for all of them, armed
only while the manager's work is suspended in an await (see ``_Server.suspend``)."""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from ._common import _Request

_Expire = Callable[[asyncio.Future[Any], str, float, int, tuple[Any, ...]], None]


class _Pending(deque[_Request]):
    """A manager's requests with a deadline, in mailbox order until answered, with what
    watches them: one timer (the watchdog), armed at the earliest deadline only while the
    manager's work is suspended in an await. Made on first use; kept on one attribute of the
    server, since the server's instance dictionary stays compact (and small) only while its
    attributes are few.

    There is no timer per request: a request with a deadline joins the pending ones, which
    the manager drops once answered, and the watchdog expires what is due when it fires (a
    blocked loop fires no timer at all)."""

    __slots__ = ("expire", "loop", "sorted", "time", "watchdog", "watchdog_at")

    def __init__(self, loop: asyncio.AbstractEventLoop, expire: _Expire) -> None:
        super().__init__()
        self.loop = loop
        #: fails a request's future with its CallTimeout (the server's ``expire``)
        self.expire = expire
        #: whether the deadlines are in mailbox order (they are, unless timeouts differ)
        self.sorted = True
        self.watchdog: asyncio.TimerHandle | None = None
        self.watchdog_at = 0.0
        # the loop's clock (deadlines are compared with it); the default loop's is
        # time.monotonic itself, called without the method in between
        self.time: Callable[[], float] = (
            time.monotonic if type(loop).time is asyncio.BaseEventLoop.time else loop.time
        )

    def add(self, req: _Request, ahead: int, timeout: float, suspended: bool) -> None:
        """Give ``req`` its deadline: it joins the pending requests (and the watchdog is armed
        now if the manager's work is ``suspended``)."""
        req.ahead = ahead
        req.timeout = timeout
        req.deadline = at = self.time() + timeout
        if not self:
            self.sorted = True
        elif at < self[-1].deadline:
            self.sorted = False
        self.append(req)
        if suspended and (self.watchdog is None or at < self.watchdog_at):
            self.arm(at)

    def arm(self, at: float) -> None:
        if self.watchdog is not None:
            self.watchdog.cancel()
        self.watchdog = self.loop.call_at(at, self.expire_due)
        self.watchdog_at = at

    def watch(self) -> None:
        """Arm the watchdog at the earliest deadline still pending, if it is not armed."""
        self.answered()
        if self and self.watchdog is None:
            self.arm(min(r.deadline for r in self) if not self.sorted else self[0].deadline)

    def expire_due(self) -> None:
        """The watchdog: fail every pending request whose deadline has passed, then re-arm at
        the earliest deadline still pending (if any)."""
        self.watchdog = None
        if not self:
            return
        now = self.time()
        sorted_ = self.sorted
        earliest: float | None = None
        for req in self:  # expire only schedules callbacks: nothing changes the list here
            if req.fut is None or req.fut.done():
                continue
            if req.deadline <= now:
                self.expire(req.fut, req.what, req.timeout, req.ahead, req.args)
            elif earliest is None or req.deadline < earliest:
                earliest = req.deadline
                if sorted_:  # deadlines in mailbox order: the rest come later
                    break
        if earliest is not None:
            self.arm(earliest)

    def answered(self) -> None:
        """Drop the answered requests from the front of the list. Requests are answered in
        mailbox order, except a call passed on to an isolated handler: it stays (its deadline
        watched) until its lane answers, and those behind it until then."""
        while self and self[0].fut.done():  # type: ignore[union-attr]
            self.popleft()

    def cancel(self) -> None:
        """Every request was answered (the manager stopped): the watchdog goes."""
        if self.watchdog is not None:
            self.watchdog.cancel()
