"""The thread runtime's stop: refuse new messages, drain what was accepted (or drop it), let
the isolated handlers settle, terminate every handler, free the name, answer the stops. As
functions of the manager's server (``_server._Server``, whose thread calls them)."""

from __future__ import annotations

import contextlib
import threading
import warnings
import weakref
from collections.abc import Callable
from typing import Any, NoReturn, Protocol

from .. import _registry
from .._core import Entry, Kind, Procedure, Raised, Returned
from .._driver import CRASHES, FATAL, log
from .._errors import ManagerNotRunning
from .._lanes import (
    AtStop,
    at_stop,
    drop_backlogs,
    leftovers,
    refusal,
    split_backlog,
    unanswered,
)
from .._mailbox import Bound, log_backlog, take_backlog
from . import _lanes_host, _state
from ._lanes_host import _Host
from ._owners import _OwnerWatch
from ._requests import (
    _STOP,
    _answer,
    _droppable,
    _fail,
    _monotonic,
    _Request,
)


class _Stopping(_Host, Protocol):
    """What the stop needs of the manager's server, besides what hosting isolated handlers
    does (defined here: the server's module sits above this one, which it imports)."""

    name: str | None
    bound: Bound | None
    sealed: bool
    dropping: bool
    dropped: int
    lane_dropped: int
    post_lock: threading.Lock
    seal_lock: threading.Lock
    stopped: threading.Event
    public: Callable[[], Any]
    watched: dict[Any, _OwnerWatch | None]
    retries: set[threading.Timer]
    streams: weakref.WeakSet[Any] | None

    def wake(self) -> None: ...
    def room(self) -> None: ...
    def post(self, req: _Request, who: Any) -> None: ...
    def streams_stopping(self) -> None: ...
    def drive(self, proc: Procedure) -> Any: ...
    def owner_down(self, owner: Any, reason: BaseException | None) -> None: ...


def stop(srv: _Stopping, req: _Request) -> None:
    interrupted = finish(srv, [req], None)
    if interrupted is not None:
        log.error(
            "genevent manager %r: %s while stopping",
            srv.label(),
            type(interrupted).__name__,
            exc_info=interrupted,
        )


def finish(srv: _Stopping, stops: list[_Request], interrupted: BaseException | None) -> Any:
    """Stop: refuse new messages, handle every message accepted before (a notify that
    races this is either handled here or refused), terminate every handler, free the name
    and answer ``stops``. Returns the first KeyboardInterrupt/SystemExit met, if any."""
    with srv.post_lock:
        srv.closed = True
    srv.streams_stopping()
    srv.core.begin_stop(srv.dropping)  # see there: which restarts still happen
    for timer in list(srv.retries):
        timer.cancel()
    srv.retries.clear()
    mailbox = srv.mailbox
    late = 0
    while True:
        while mailbox:
            msg = mailbox.popleft()
            try:
                todo = at_stop(msg, _Request, _STOP, srv.dropping)
                if todo is AtStop.DROP:  # raced stop(drain=False): dropped
                    late += 1
                elif todo is AtStop.DISPATCH:
                    srv.dispatch(msg)
                elif todo is AtStop.STOP:
                    stops.append(msg)
                elif todo is AtStop.REFUSE:
                    _fail(msg, refusal(srv.label(), msg))
                else:  # what isolated handlers bring back is applied even then
                    srv.handle(msg)
            except BaseException as exc:  # the message was finished; remember, go on
                interrupted = interrupted or exc
        if srv.lanes:
            if srv.dropping:  # what the last event gave the lanes is dropped too
                drop_lanes(srv)
            if _lanes_host.settle_lanes(srv):
                continue
        with srv.seal_lock:
            if not mailbox:
                srv.sealed = True
                srv.dropped += late
                break
    if late:
        log_backlog(srv.label(), late, 0, "that raced stop(drain=False)")
    if srv._lane_order:
        interrupted = _lanes_host.flush_lane_results(srv) or interrupted
    if not srv.core.stopped:
        if srv.lanes and srv.stop_started is None:
            srv.stop_started = _monotonic()
        try:
            srv.drive(srv.core.stop())
        except BaseException as exc:
            interrupted = interrupted or exc
    _lanes_host.await_deferred(srv)
    shutdown(srv)
    for req in stops:
        _answer(req, None)
    return interrupted


def shutdown(srv: _Stopping) -> None:
    with srv.post_lock, srv.seal_lock:
        srv.closed = True
        drained = srv.sealed
        srv.sealed = True
        pending = list(srv.mailbox)
        srv.mailbox.clear()
    lost, requests = leftovers(srv.label(), pending, _Request, drained)
    srv.dropped += lost
    if srv.bound is not None:
        srv.room()
        srv.bound.flush_log(srv.label())
    if srv.name is not None:
        mgr = srv.public()
        if mgr is not None:
            _registry.unregister(srv.name, mgr)
    for reg in srv.watched.values():
        if reg is not None:
            reg.unsubscribe(srv)
    srv.watched.clear()
    for lane in srv.lanes:
        srv.lane_dropped += lane.counts.dropped
        lane.close()
    srv.lanes = {}
    for stream in list(srv.streams or ()):  # every stream opened on it ends
        stream.manager_stopped()
    srv.streams = None
    srv.fresh.clear()
    srv.core.lane_edits = None
    _state.discard_live(srv)
    for msg in requests:
        _fail(msg, unanswered(srv.label(), msg))
    srv.stopped.set()


def drop_backlog(srv: _Stopping) -> tuple[int, int]:
    """Drop what is queued (a stop that does not drain, or the exit hook): the events and
    infos are counted in ``dropped``, the queued requests answered with
    :class:`ManagerNotRunning`, a queued stop kept. Returns ``(events, requests)``."""
    srv.dropping = True
    events, rest = take_backlog(srv.mailbox, _droppable)
    with srv.seal_lock:
        srv.dropped += events
    # a stop, and what isolated handlers brought back, stay (a crash stays a crash)
    kept, refuse = split_backlog(rest, _STOP)
    with srv.post_lock:
        srv.mailbox.extend(kept)
    for msg in refuse:
        _fail(msg, refusal(srv.label(), msg))
    refused = len(refuse)
    drop_lanes(srv)
    srv.room()
    if srv.sleeping:
        srv.wake()
    return events, refused


def drop_lanes(srv: _Stopping) -> int:
    """A stop that drops the backlog: so do the isolated handlers' mailboxes (their drops
    counted on each handler). Returns how many events and infos they dropped."""
    return drop_backlogs(srv.label(), srv.lanes)


def abandoned(server: _Stopping) -> None:
    """The public manager was collected while running: stop it (weakref.finalize callback)."""
    if server.closed:
        return
    with contextlib.suppress(ManagerNotRunning):
        server.post(_Request(_STOP, (), Kind.STOP), server)  # it drains what it accepted first
    # after the stop is posted: under ``-W error`` the warning raises (and is printed)
    warnings.warn(
        f"genevent manager {server!r} was garbage collected while running; stopping it "
        "(call stop() or use 'with threads.start() as mgr:')",
        ResourceWarning,
        stacklevel=1,
    )


def interrupted(srv: Any, entry: Entry, exc: BaseException, event: Any) -> NoReturn:
    """``entry``'s handle_event raised KeyboardInterrupt or SystemExit on ``event``: it is
    removed as crashed, the handlers after it still get ``event``, then ``exc`` goes on (and
    the manager stops, as by stop)."""
    core = srv.core
    try:
        rest = core.entries[core.entries.index(entry) + 1 :]
    except ValueError:
        rest = []
    with contextlib.suppress(*FATAL):
        srv.drive(core.event_result(entry, Raised(exc), event))
    for later in rest:
        if not later.alive:
            continue
        try:
            result = later.event_fn(event)
        except CRASHES as other:
            outcome: Raised | Returned = Raised(other)
        else:
            if result is None:
                continue
            outcome = Returned(result)
        with contextlib.suppress(*FATAL):
            srv.drive(core.event_result(later, outcome, event))
    raise exc
