"""The asyncio face's ``notify_many``: a batch of events queued by one ``deque.extend`` and one
wake-up, with the meaning of one ``notify`` per event, in order (see
:meth:`genevent.aio.EventManager.notify_many`). The bounded face's variant is
:func:`._bounded.notify_many`."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from threading import get_ident
from typing import Any

from .._driver import take_back_many
from .._errors import ManagerNotRunning
from .._mailbox import as_batch
from ._common import _seal_lock
from ._server import _Face, _Server


def notify_many(face: _Face, events: Iterable[Any]) -> None:
    """Queue ``events``, in order, on an unbounded mailbox."""
    batch = as_batch(events)
    srv = face._srv
    if face._closed:
        srv.refused += len(batch)
        raise ManagerNotRunning(face)
    if not batch:
        return
    face._mailbox.extend(batch)
    if face._closed:  # stop was requested meanwhile: accepted only if it will be handled
        late(srv, batch)
    wake(face, srv)


def late(srv: _Server, queued: Sequence[Any]) -> None:
    """``queued`` (a batch's events) were appended and the manager was found stopping
    afterwards: they stay if the manager will still drain them, else they are taken back and
    refused. (One ``extend`` puts them in at once, so the manager either drains them all or
    had sealed its mailbox before any arrived.)"""
    with _seal_lock:
        if not srv.sealed:
            return
        taken = take_back_many(srv.mailbox, queued)
        srv.refused += taken
    if taken:
        raise ManagerNotRunning(srv.face)


def wake(face: _Face, srv: _Server) -> None:
    """Wake the parked manager, if it is parked (from its loop's thread or another)."""
    if face._waiter is not None:
        if get_ident() == srv.thread_id:
            srv.wake()
        else:
            srv.wake_from_thread()
