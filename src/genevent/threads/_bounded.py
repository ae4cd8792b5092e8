"""The thread runtime's manager with a bounded mailbox (``start(maxsize=...)``): its
``notify``, ``send`` and ``notify_wait``, and what a full mailbox does to them."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, TypeVar

from .._checks import check_timeout
from .._core import Kind
from .._errors import MailboxFull, ManagerNotRunning
from .._mailbox import Bound, as_batch
from ._manager import EventManager
from ._many import late
from ._requests import _get_ident, _is_control, _monotonic, _Request
from ._server import _Server

E = TypeVar("E")


class _BoundedEventManager(EventManager[E]):
    """An :class:`EventManager` with a bounded mailbox (``start(maxsize=...)``): only
    ``notify``, ``notify_many``, ``send`` and ``notify_wait`` differ, so that an unbounded
    manager's ``notify`` pays nothing for bounds. Room is found without a lock (see
    :mod:`genevent._mailbox`); a full mailbox is handled by :func:`_put_full` under the
    bound's lock."""

    def __init__(self, name: str | None, *, inline: bool, timing: bool, bound: Bound) -> None:
        self._maxsize = bound.maxsize
        super().__init__(name, inline=inline, timing=timing, bound=bound)

    def notify(self, event: E) -> None:
        srv = self._srv
        if srv.closed:
            srv.refused += 1
            raise ManagerNotRunning(self)
        if len(srv.mailbox) < self._maxsize:
            self._append(event)
        elif not _put_full(srv, event, self, None):
            return
        if srv.closed:  # stop was requested meanwhile: accepted only if it will be handled
            srv.late(event, self)
        if srv.sleeping:
            srv.wake()

    def notify_many(self, events: Iterable[E]) -> None:
        batch = as_batch(events)
        srv = self._srv
        if srv.closed:
            srv.refused += len(batch)
            raise ManagerNotRunning(self)
        mailbox = srv.mailbox
        room = self._maxsize - len(mailbox)
        refusal: MailboxFull | ManagerNotRunning | None = None
        if len(batch) <= room:
            mailbox.extend(batch)
            queued = batch
        else:
            queued = list(batch[: max(room, 0)])
            mailbox.extend(queued)
            for i in range(len(queued), len(batch)):
                if srv.sleeping:  # it makes the room the next event may wait for
                    srv.wake()
                try:
                    if _put_full(srv, batch[i], self, None):
                        queued.append(batch[i])
                except (MailboxFull, ManagerNotRunning) as exc:  # counted: so is the rest
                    bound: Bound = srv.bound  # type: ignore[assignment]
                    with bound.lock:
                        bound.counts.refused += len(batch) - i - 1
                    exc.accepted = i
                    refusal = exc
                    break
        if srv.closed:  # stop was requested meanwhile: accepted only if it will be handled
            late(srv, queued=queued, who=self)
        if srv.sleeping:
            srv.wake()
        if refusal is not None:
            raise refusal

    def notify_wait(self, event: E, *, timeout: float | None = None) -> None:
        if timeout is not None:
            timeout = check_timeout(timeout)
        srv = self._srv
        if srv.closed:
            srv.refused += 1
            raise ManagerNotRunning(self)
        if len(srv.mailbox) < self._maxsize:
            self._append(event)
        elif not _put_full(srv, event, self, timeout):
            return
        if srv.closed:
            srv.late(event, self)
        if srv.sleeping:
            srv.wake()

    def send(self, message: Any) -> None:
        srv = self._srv
        if srv.closed:
            srv.refused += 1
            raise ManagerNotRunning(self)
        req = _Request(srv.core.info, (message,), Kind.INFO)
        if len(srv.mailbox) < self._maxsize:
            self._append(req)
        elif not _put_full(srv, req, self, None):
            return
        if srv.closed:
            srv.late(req, self)
        if srv.sleeping:
            srv.wake()


def _put_full(srv: _Server, item: Any, who: Any, timeout: float | None) -> bool:
    """``item`` (an event or info) met a full bounded mailbox: carry out the policy. Under
    ``"block"`` wait for room for at most ``timeout`` seconds (None: as long as it takes;
    never on the manager's own thread, which would wait for itself), then refuse it with
    :class:`~genevent.MailboxFull`. Returns whether it was queued."""
    bound: Bound = srv.bound  # type: ignore[assignment]
    deadline: float | None = None
    with bound.room:
        while True:
            if srv.closed:  # stopped (maybe while it waited)
                bound.counts.refused += 1
                raise ManagerNotRunning(who)
            queued = bound.put_full(srv.mailbox, item, who, _is_control)
            if queued is not None:
                return queued
            ident = _get_ident()
            if ident in (srv.ident, srv.inline_ident) or timeout == 0.0:
                raise bound.refuse(who)
            remaining = None
            if timeout is not None:
                now = _monotonic()
                if deadline is None:
                    deadline = now + timeout
                remaining = deadline - now
                if remaining <= 0.0:
                    raise bound.refuse(who)
            bound.waiting += 1
            try:
                bound.room.wait(remaining)
            finally:
                bound.waiting -= 1
