"""The thread runtime's ``notify_many``: a batch of events queued by one ``deque.extend`` and
one wake-up, with the meaning of one ``notify`` per event, in order (see
:meth:`genevent.threads.EventManager.notify_many`). The bounded manager's variant is in
:mod:`._bounded`."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from .._driver import take_back_many
from .._errors import ManagerNotRunning
from .._mailbox import as_batch
from ._server import _Server


def notify_many(srv: _Server, who: Any, events: Iterable[Any]) -> None:
    """Queue ``events``, in order, on an unbounded mailbox (``who``: the public manager)."""
    batch = as_batch(events)
    if srv.closed:
        srv.refused += len(batch)
        raise ManagerNotRunning(who)
    if not batch:
        return
    srv.mailbox.extend(batch)
    if srv.closed:  # stop was requested meanwhile: accepted only if it will be handled
        late(srv, queued=batch, who=who)
    if srv.sleeping:
        srv.wake()


def late(srv: _Server, *, queued: Sequence[Any], who: Any) -> None:
    """``queued`` (a batch's events) were appended without the lock and the manager was found
    closed afterwards: they stay if the manager will still drain them, else they are taken
    back and refused. (One ``extend`` puts them in at once, so the manager either drains them
    all or had sealed its mailbox before any arrived.)"""
    with srv.seal_lock:
        if not srv.sealed:
            return
        taken = take_back_many(srv.mailbox, queued)
        srv.refused += taken
    if taken:
        raise ManagerNotRunning(who)
