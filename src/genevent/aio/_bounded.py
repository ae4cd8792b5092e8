"""The bounded face's ``notify``, ``send`` and ``notify_wait`` (``start(maxsize=...)``): room
is found without a lock (see :mod:`genevent._mailbox`); a full mailbox is handled by
:meth:`Bound.put_full` under its lock (see ``_Server.put_full``)."""

from __future__ import annotations

from threading import get_ident
from typing import Any, Protocol

from .._checks import check_timeout
from .._errors import ManagerNotRunning
from ._common import _Request
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


def send(face: _BoundedFace, message: Any) -> None:
    """As the unbounded ``send``, within the mailbox's bound."""
    srv = face._srv
    if face._closed:
        srv.refused += 1
        raise ManagerNotRunning(face)
    req = _Request(srv.core.info, (message,), None, "info")
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
