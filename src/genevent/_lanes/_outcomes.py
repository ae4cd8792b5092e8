"""What isolated handlers bring back to the manager and how it applies it, the lanes it
serves or closes after the table changed, and the lanes a stop drops or leaves behind.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .._core import Entry, ManagerCore, Procedure, Raised, Returned
from .._driver import FATAL, log
from .._errors import _name
from .._mailbox import log_backlog
from ._lane import Lane

__all__ = (
    "applied",
    "call_applied",
    "drop_backlogs",
    "leave_behind",
    "left_behind",
    "reap",
)


def applied(
    core: ManagerCore, entry: Entry, out: Raised | Returned, message: Any, callback: str
) -> Procedure:
    """Apply an isolated handler's outcome (``core.event_result``); a KeyboardInterrupt or
    SystemExit it raised then goes on, as from a handler that is not isolated. The lane is
    served again afterwards (see :func:`reap`) even if the table did not change."""
    core.note_lane(entry)
    yield from core.event_result(entry, out, message, callback)
    if out.__class__ is Raised and isinstance(out.exception, FATAL):
        raise out.exception


def call_applied(
    core: ManagerCore, entry: Entry, out: Raised | Returned, request: Any
) -> Procedure:
    """Apply an isolated handler's call outcome (``core.call_result``); a KeyboardInterrupt or
    SystemExit its ``handle_call`` raised goes on once it is applied (the caller is then told
    the manager was interrupted, as for a handler that is not isolated). The lane is served
    again afterwards, as by :func:`applied`."""
    core.note_lane(entry)
    try:
        return (yield from core.call_result(entry, out, request))
    finally:
        if out.__class__ is Raised and isinstance(out.exception, FATAL):
            raise out.exception  # on purpose: it wins over the caller's error


def reap(core: ManagerCore, lanes: dict[Lane, None], fresh: list[Lane]) -> int:
    """After the table changed: each lane concerned serves the entry that uses it now; a lane
    no entry uses is closed and forgotten (taken out of ``lanes``, the manager's started
    lanes), unless its handler waits for another restart attempt (then it stays, vacant).
    The lanes concerned are those of the entries in ``core.lane_edits`` (installed, removed,
    or whose outcome was applied) and the ``fresh`` ones (started since: a lane whose handler
    failed to start is closed); both lists are emptied, so the cost is that of the edits, not
    of the lanes there are. Returns how many events the closed lanes' mailboxes dropped (the
    manager counts them from then on)."""
    users: dict[Lane, Entry | None] = dict.fromkeys(fresh)
    fresh.clear()
    edits = core.lane_edits
    if edits:
        core.lane_edits = None
        for entry in edits:
            lane = entry.lane
            if entry.alive:  # at most one entry in the table uses a lane
                users[lane] = entry
            elif users.get(lane) is None:
                users[lane] = None
    dropped = 0
    waiting: set[int] | None = None
    for lane, edited in users.items():
        if lane not in lanes:
            continue
        user = edited
        if user is None:
            current = lane.entry  # the entry it served last, if that is still in the table
            if current is not None and current.alive:
                user = current
        if user is not None:
            lane.serve(user)
            continue
        if core.retrying:  # its handler may wait for another restart attempt: it stays
            if waiting is None:
                waiting = {id(e.lane) for e, _ in core.retrying.values() if e.lane is not None}
            if id(lane) in waiting:
                lane.vacate()
                continue
        lane.close()
        del lanes[lane]
        dropped += lane.counts.dropped
    return dropped


def drop_backlogs(manager: Any, lanes: Iterable[Lane]) -> int:
    """A stop that drops the backlog: so do the isolated handlers' mailboxes (their drops
    counted on each handler; logged for ``manager``). Returns how many events and infos they
    dropped."""
    lost = sum(lane.drop_backlog(" (it stopped, dropping its backlog)") for lane in list(lanes))
    if lost:
        log_backlog(manager, lost, 0, "from isolated handlers' mailboxes at stop")
    return lost


def leave_behind(manager: Any, lane: Lane) -> bool:
    """Stopping, ``lane`` did not finish within its stop timeout: log it and let it go. False
    if it was left behind already."""
    if lane.abandoned:
        return False
    left_behind(manager, lane)
    lane.abandon()  # type: ignore[attr-defined]
    return True


def left_behind(manager: Any, lane: Lane) -> None:
    """Log that ``lane`` did not finish within its stop timeout."""
    log.error(
        "genevent manager %s: isolated handler %s did not finish within its stop timeout "
        "(%s s; running %s); left behind: %s, its terminate not run",
        getattr(manager, "name", None) or manager,
        _name(lane.ref),
        lane.stop_timeout,
        lane.running_callback() or "nothing",
        "its task cancelled" if lane.kind == "task" else "its thread left running as a daemon",
    )
