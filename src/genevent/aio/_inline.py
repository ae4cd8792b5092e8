"""Inline requests of the asyncio runtime: a ``call`` or ``sync_notify`` to an idle manager
runs in the caller (see :class:`genevent.aio.EventManager`); what its handler did beyond a
plain reply is finished here, in a task that stands for the manager task meanwhile."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, NoReturn

from .._driver import FATAL
from .._errors import ManagerNotRunning
from ._common import _STOP, _Request
from ._requests import timeout_error
from ._server import _Server


class _Fatal:
    """What inline work returns when a KeyboardInterrupt or SystemExit ran through it."""

    __slots__ = ("exc",)

    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


async def _guarded(work: Coroutine[Any, Any, Any]) -> Any:
    """Inline work, run in a task of its own: a KeyboardInterrupt or SystemExit comes back as
    a value, so that it goes on from the caller's task once the request is finished."""
    try:
        return await work
    except FATAL as exc:
        return _Fatal(exc)


async def finish_inline(
    srv: _Server,
    work: Coroutine[Any, Any, Any],
    what: str,
    timeout: float | None,
    args: tuple[Any, ...] = (),
) -> Any:
    """Finish an inline request whose handler did more than return (it raised, or asked
    to be removed or swapped): that work may await (a swap to a coroutine handler), so it
    runs in a task of its own, which becomes the dispatching task (the manager task waits
    for it, and a handler calling back into the manager still gets CallingSelf). The
    caller waits for it as for a queued request: its cancellation or timeout does not
    interrupt the work, whose result is then dropped."""
    task = asyncio.Task(_guarded(work), loop=srv.loop)  # never started eagerly
    srv.dispatch_task = task
    task.add_done_callback(srv.inline_finished)
    try:
        if timeout is None:
            result = await asyncio.shield(task)
        else:
            result = await asyncio.wait_for(asyncio.shield(task), timeout)
        if result.__class__ is _Fatal:
            inline_fatal(srv, result.exc)
        return result
    except TimeoutError:
        assert timeout is not None
        raise timeout_error(srv, what, timeout, 0, args) from None
    except asyncio.CancelledError:
        if task.cancelled():  # the manager was cancelled under it, not the caller
            caller = asyncio.current_task()
            if caller is None or not caller.cancelling():
                raise ManagerNotRunning(srv.face, f" (it stopped while answering {what})") from None
        raise


def inline_fatal(srv: _Server, exc: BaseException) -> NoReturn:
    """A KeyboardInterrupt or SystemExit ran through an inline request, which is finished:
    the manager stops as by stop (at its next turn), and ``exc`` goes on in the caller."""
    if not srv.face._closed:
        srv.face._closed = True
        srv.post(_Request(_STOP, (), None, "stop"))
    raise exc
