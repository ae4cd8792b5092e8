"""What the thread runtime does to its managers at interpreter exit (drain for a while, then
drop the rest, counted) and in a forked child (mark every copy stopped)."""

from __future__ import annotations

import contextlib
import os
import threading
import time
from typing import Final

from ._driver import log
from ._errors import (
    ManagerNotRunning,
    _name,
)
from ._mailbox import log_backlog
from ._text import short
from ._thread_owners import _forget_watches
from ._thread_server import _STOP, _live, _Request, _Server

_EXIT_DRAIN_SHARE: Final = 0.75
"""The share of :data:`EXIT_TIMEOUT` the exit hook lets managers drain their mailboxes; then
it drops what is left (counted) so that their handlers are terminated in the rest."""


def _stop_servers(servers: list[_Server], timeout: float) -> None:
    """Ask each manager to stop and wait ``timeout`` seconds in all for their threads: for
    most of it (:data:`_EXIT_DRAIN_SHARE`) while they drain their mailboxes; then what is left
    queued is dropped (counted in ``stats().dropped``) so that their handlers are terminated
    in the rest of the time. Log (as an error) what each one that did not make it leaves
    undone: the events dropped, and its handlers, which get no ``terminate``."""
    here = threading.current_thread()
    start = time.monotonic()
    for server in servers:
        # isolated handlers inside a callback are waited for last (see _Server.lane_job)
        server.exit_drain_until = start + timeout * _EXIT_DRAIN_SHARE
        server.exit_until = start + timeout
        with contextlib.suppress(ManagerNotRunning):
            server.post(_Request(_STOP, (), "stop"), server)
    deadline = start + timeout
    for server in servers:
        if server.thread is not here:
            server.thread.join(max(0.0, start + timeout * _EXIT_DRAIN_SHARE - time.monotonic()))
    late = [s for s in servers if s.thread is not here and s.thread.is_alive()]
    dropped = {server: server.drop_backlog() for server in late}
    for server in late:
        server.thread.join(max(0.0, deadline - time.monotonic()))
    for server in late:
        events, requests = dropped[server]
        if server.thread.is_alive():
            _log_exit_backlog(server, timeout, events, requests)
        elif events or requests:
            log_backlog(server.label(), events, requests, "when the interpreter exited")


def _log_exit_backlog(server: _Server, timeout: float, events: int, requests: int) -> None:
    refs = server.core.which_handlers()
    running = server.running_callback()
    log.error(
        "genevent: gave up on manager %s at exit after %g s%s: %d queued event%s dropped%s; "
        "handlers not terminated: %s",
        short(server.label()),
        timeout,
        f" ({running} was running)" if running else "",
        events,
        "" if events == 1 else "s",
        f" (and {requests} other request{'' if requests == 1 else 's'})" if requests else "",
        ", ".join(_name(ref) for ref in refs) if refs else "none",
        extra={
            "genevent": {
                "kind": "exit_backlog",
                "manager": server.label(),
                "dropped_events": events,
                "dropped_requests": requests,
                "not_terminated": refs,
                "running": running,
            }
        },
    )


def _after_fork_in_child() -> None:
    """In a forked child the manager threads do not exist: mark every copy stopped (no
    terminate runs here: the parent still owns those handlers) and free its name."""
    _forget_watches()
    servers = list(_live)
    _live.clear()
    for server in servers:
        server.forked()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
