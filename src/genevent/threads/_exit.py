"""What the thread runtime does to its managers at interpreter exit (drain for a while, then
drop the rest, counted) and in a forked child (mark every copy stopped)."""

from __future__ import annotations

import atexit
import contextlib
import os
import threading
import time
from typing import Final

from .. import _registry
from .._core import Kind
from .._driver import log
from .._errors import (
    ManagerNotRunning,
    _name,
)
from .._mailbox import log_backlog
from .._text import short
from . import _state
from ._requests import _STOP, _allocate_lock, _Request
from ._server import _Server
from ._stop import drop_backlog

EXIT_TIMEOUT: Final = 2.0
"""At interpreter exit, how long (seconds, in all) the exit hook waits for running managers to
terminate their handlers."""

_EXIT_DRAIN_SHARE: Final = 0.75
"""The share of :data:`EXIT_TIMEOUT` the exit hook lets managers drain their mailboxes; then
it drops what is left (counted) so that their handlers are terminated in the rest."""


@atexit.register
def _stop_all_at_exit() -> None:
    stop_at_exit(_state.live_servers(), EXIT_TIMEOUT)


def stop_at_exit(servers: list[_Server], timeout: float) -> None:
    """The exit hook's work: owner threads that end from now on are not reported (their
    managers are being stopped), then :func:`_stop_servers`. Tests rehearse it on the servers
    they name, then call ``_state.set_exiting(False)``."""
    _state.set_exiting(True)
    _stop_servers(servers, timeout)


def _stop_servers(servers: list[_Server], timeout: float) -> None:
    """Ask each manager to stop and wait ``timeout`` seconds in all for their threads: for
    most of it (:data:`_EXIT_DRAIN_SHARE`) while they drain their mailboxes; then what is left
    queued is dropped (counted in ``stats().dropped``) so that their handlers are terminated
    in the rest of the time. Log (as an error) what each one that did not make it leaves
    undone: the events dropped, and its handlers, which get no ``terminate``."""
    here = threading.current_thread()
    start = time.monotonic()
    for server in servers:
        # isolated handlers inside a callback are waited for last (see _lanes_host.lane_job)
        server.exit_drain_until = start + timeout * _EXIT_DRAIN_SHARE
        server.exit_until = start + timeout
        with contextlib.suppress(ManagerNotRunning):
            server.post(_Request(_STOP, (), Kind.STOP), server)
    deadline = start + timeout
    for server in servers:
        if server.thread is not here:
            server.thread.join(max(0.0, start + timeout * _EXIT_DRAIN_SHARE - time.monotonic()))
    late = [s for s in servers if s.thread is not here and s.thread.is_alive()]
    dropped = {server: drop_backlog(server) for server in late}
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
    _state.forget_watches()
    for server in _state.take_live():
        _forked(server)


def _forked(srv: _Server) -> None:
    """This is a forked child's copy of a running manager: it is stopped here."""
    srv.post_lock = _allocate_lock()  # another thread may have held them at the fork
    srv.seal_lock = _allocate_lock()
    srv.run_lock = _allocate_lock()
    srv.closed = srv.sealed = srv.core.stopped = True
    srv.mailbox.clear()
    srv.watched.clear()
    srv.ident = srv.inline_ident = None
    if srv.name is not None:
        mgr = srv.public()
        if mgr is not None:
            _registry.unregister(srv.name, mgr)
    srv.stopped._at_fork_reinit()  # type: ignore[attr-defined]
    srv.stopped.set()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
