"""The bounded face's ``notify``, ``notify_many``, ``send`` and ``notify_wait``
(``start(maxsize=...)``): room is found without a lock (see :mod:`genevent._mailbox`); a full
mailbox is handled by :meth:`Bound.put_full` under its lock (see ``_Server.put_full``)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from threading import get_ident
from typing import Any, Protocol

from .._checks import check_timeout
from .._core import Kind
from .._errors import MailboxFull, ManagerNotRunning
from .._mailbox import Bound, as_batch
from ._common import _is_control, _Request
from ._many import late, wake
from ._server import _Face


class _BoundedFace(_Face, Protocol):
    _maxsize: int


def notify(face: _BoundedFace, event: Any) -> None:
    """As the unbounded ``notify``, within the mailbox's bound."""
    if face._closed:
        face._srv.refused += 1
        raise ManagerNotRunning(face)
    mailbox = face._mailbox
    if len(mailbox) < face._maxsize:
        mailbox.append(event)
    elif not face._srv.put_full(event):
        return
    if face._closed:  # stop was requested meanwhile: accepted only if it will be handled
        face._srv.late(event)
    if face._waiter is not None:
        srv = face._srv
        if get_ident() == srv.thread_id:
            srv.wake()
        else:
            srv.wake_from_thread()


def notify_many(face: _BoundedFace, events: Iterable[Any]) -> None:
    """As the unbounded ``notify_many``, within the mailbox's bound: the events that fit are
    queued by one ``extend``; each of the others meets the policy as its own ``notify``
    would (a ``notify`` cannot wait: under ``"block"`` it is refused). The first refusal
    refuses the rest of the batch too (counted), and its :class:`~genevent.MailboxFull` says
    in ``accepted`` how many came before it."""
    batch = as_batch(events)
    srv = face._srv
    if face._closed:
        srv.refused += len(batch)
        raise ManagerNotRunning(face)
    mailbox = face._mailbox
    room = face._maxsize - len(mailbox)
    refusal: MailboxFull | None = None
    if len(batch) <= room:
        mailbox.extend(batch)
        queued = batch
    else:
        queued, refusal = _overflow(face, batch, max(room, 0))
    if face._closed:  # stop was requested meanwhile: accepted only if it will be handled
        late(srv, queued)
    wake(face, srv)
    if refusal is not None:
        raise refusal


def _overflow(
    face: _BoundedFace, batch: Sequence[Any], room: int
) -> tuple[list[Any], MailboxFull | None]:
    """Queue the first ``room`` events of ``batch``, and offer each of the others to the full
    mailbox under its bound's lock; returns the events queued (some may have been dropped
    since, under ``"drop_oldest"``) and the refusal to raise, if one came."""
    mailbox = face._mailbox
    queued = list(batch[:room])
    mailbox.extend(queued)
    bound: Bound = face._srv.bound  # type: ignore[assignment]
    with bound.lock:
        for i in range(room, len(batch)):
            item = batch[i]
            try:
                put = bound.put_full(mailbox, item, face, _is_control)
                if put is None:  # "block": a notify cannot wait
                    raise bound.refuse(face)
            except MailboxFull as exc:
                bound.counts.refused += len(batch) - i - 1  # the rest of the batch
                exc.accepted = i
                return queued, exc
            if put:
                queued.append(item)
    return queued, None


def send(face: _BoundedFace, message: Any) -> None:
    """As the unbounded ``send``, within the mailbox's bound."""
    srv = face._srv
    if face._closed:
        srv.refused += 1
        raise ManagerNotRunning(face)
    req = _Request(srv.core.info, (message,), None, Kind.INFO)
    mailbox = face._mailbox
    if len(mailbox) < face._maxsize:
        mailbox.append(req)
    elif not srv.put_full(req):
        return
    if face._closed:
        srv.late(req)
    if face._waiter is not None:
        if get_ident() == srv.thread_id:
            srv.wake()
        else:
            srv.wake_from_thread()


async def notify_wait(face: _BoundedFace, event: Any, *, timeout: float | None = None) -> None:
    """As ``notify``, waiting for room under ``overflow="block"``."""
    if timeout is not None:
        timeout = check_timeout(timeout)
    srv = face._srv
    if face._closed:
        srv.refused += 1
        raise ManagerNotRunning(face)
    mailbox = face._mailbox
    if len(mailbox) < face._maxsize:
        mailbox.append(event)
    elif not await srv.put_waiting(event, timeout):
        return
    if face._closed:
        srv.late(event)
    if face._waiter is not None:
        if get_ident() == srv.thread_id:
            srv.wake()
        else:
            srv.wake_from_thread()
