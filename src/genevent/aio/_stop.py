"""The asyncio runtime's stop: the manager refuses new messages, handles (or drops) what was
accepted before, waits for its isolated handlers, terminates every handler and goes."""

from __future__ import annotations

import asyncio
from typing import Any

from .._core import Kind
from .._driver import FATAL, log
from .._lanes import AtStop, at_stop, refusal, split_backlog
from .._mailbox import log_backlog, take_backlog
from ._common import _STOP, _droppable, _fail, _Request, _resolve, _seal_lock
from ._dispatch import apply_lane_result, drive, handle
from ._lanes_host import drop_lanes, settle_lanes
from ._server import _Server


async def finish(srv: _Server, stops: list[_Request]) -> BaseException | None:
    """Stop: refuse new messages, handle every event and info accepted before (a notify
    that races this is either handled here or refused), terminate every handler, free the
    name and answer ``stops``. Returns the first KeyboardInterrupt/SystemExit met."""
    srv.face._closed = True
    srv.finishing = True
    fatal: BaseException | None = None
    mailbox = srv.mailbox
    core = srv.core
    core.begin_stop(srv.dropping)  # see there: which restarts still happen
    srv.streams_stopping()
    srv.cancel_retries()
    dropping = srv.dropping
    while True:
        while mailbox:
            msg = mailbox.popleft()
            try:
                todo = at_stop(msg, _Request, _STOP, dropping)
                if todo is AtStop.DROP:  # stop(drain=False): what raced it is dropped
                    srv.dropped += 1
                    srv.late_dropped += 1
                elif todo is AtStop.DISPATCH:
                    core.events += 1
                    await drive(srv, core.notify(msg))
                elif todo is AtStop.STOP:
                    stops.append(msg)
                elif todo is AtStop.REFUSE:
                    _fail(msg.fut, refusal(srv.face, msg))
                else:  # what isolated handlers bring back is applied even then
                    await handle(srv, msg)
            except BaseException as exc:  # the message was finished: remember, go on
                fatal = fatal or exc
        if srv.lanes:
            if dropping:  # what the last event gave the lanes is dropped too
                drop_lanes(srv)
            if await settle_lanes(srv):
                continue
        with _seal_lock:
            if not mailbox:
                srv.sealed = True
                break
    if srv.order:  # no lane moves any more: what waits is applied, in order
        for req in srv.order.take_all():
            fatal = await apply_lane_result(srv, req) or fatal
    if not core.stopped:
        if srv.lanes and srv.stop_started is None:
            srv.stop_started = srv.loop.time()
        try:
            await drive(srv, core.stop())
        except BaseException as exc:
            fatal = fatal or exc
    srv.shutdown()
    if srv.late_dropped:
        log_backlog(srv.face, srv.late_dropped, 0, "that raced stop(drain=False)")
    for req in stops:
        _resolve(req.fut, None)
    if fatal is not None and not isinstance(fatal, FATAL):
        log.error("genevent manager %r: error while stopping", srv.face, exc_info=fatal)
        return None
    return fatal


def request_stop(srv: _Server, drain: bool) -> tuple[asyncio.Future[Any], int]:
    """``stop``, called in the manager's loop: refuse new messages from now on (everything
    accepted before is handled first, or dropped unless ``drain``) and queue the stop. Returns
    the future of its answer and how many messages are queued ahead of it."""
    fut: asyncio.Future[Any] = srv.loop.create_future()
    ahead = len(srv.mailbox)
    srv.face._closed = True
    srv.streams_stopping()
    if not drain:
        drop_backlog(srv)
        ahead = 0
    if srv.room is not None:
        srv.wake_room()
    srv.post(_Request(_STOP, (), fut, Kind.STOP))
    return fut, ahead


def drop_backlog(srv: _Server) -> None:
    """``stop(drain=False)``: take the backlog out of the mailbox now; its events and infos
    are dropped (counted and logged), its requests answered with
    :class:`ManagerNotRunning`."""
    srv.dropping = True
    dropped, rest = take_backlog(srv.mailbox, _droppable)
    srv.dropped += dropped
    # a stop, and what isolated handlers brought back, stay (a crash stays a crash)
    kept, refuse = split_backlog(rest, _STOP)
    srv.mailbox.extend(kept)
    refused = 0
    for msg in refuse:
        refused += msg.fut is not None
        _fail(msg.fut, refusal(srv.face, msg))
    log_backlog(srv.face, dropped, refused, "at stop(drain=False)")
    drop_lanes(srv)


async def cancel_inline(srv: _Server) -> None:
    work = srv.dispatch_task
    if isinstance(work, asyncio.Task) and work is not srv.task and not work.done():
        work.cancel()
        srv.suspend()
        try:
            await asyncio.wait((work,))
        finally:
            srv.suspended -= 1
