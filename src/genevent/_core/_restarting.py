"""Restarting a handler that left, as its restart policy (:mod:`._restart`) says: the
procedures :class:`~genevent._core.ManagerCore` runs when a handler with a policy leaves, when
a :class:`Retry` it scheduled comes due, and when it stops.

They read and edit the core's table through :class:`Table` (what they need of the core; the
core passes itself), and keep the core's rule: the table is consistent before every ``yield``.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from typing import Any, Protocol

from .._errors import HandlerInitFailed
from ._callbacks import start, tell
from ._departures import left_for
from ._effects import Effect, Procedure, Report, Retry
from ._entry import Entry
from ._instructions import NO_HANDOFF
from ._reasons import BadReturn, ExitReason, StartFailed
from ._restart import Restart

__all__ = ("Table", "give_up_retries", "gone_for_good", "restart", "retry_restart")


class Table(Protocol):
    """What the restart procedures use of the core (see :class:`ManagerCore` for each)."""

    manager: Any
    allow_async: bool
    clock: Callable[[], float] | None
    wrap_class: Callable[[type], type] | None
    stopping: bool
    restarts_off: bool
    restarts: int
    retrying: dict[Any, tuple[Entry, ExitReason]]
    crashes_by_ref: dict[Any, int] | None

    def find(self, ref: Any) -> Entry | None:
        """The entry installed under ``ref``, or None."""

    def note_lane(self, entry: Entry) -> None:
        """``entry``'s lane is looked at next time."""

    def _insert(self, index: int, entry: Entry) -> Generator[Effect, Any, None]:
        """Put ``entry`` in the table at ``index``."""

    def _release_owner(self, owner: Any) -> Generator[Effect, Any, None]:
        """One handler fewer for ``owner``."""

    def _note_left(self, ref: Any, how: str, summary: str) -> None:
        """Remember that ``ref`` left."""


def restart(
    core: Table, entry: Entry, policy: Restart, reason: ExitReason
) -> Generator[Effect, Any, tuple[bool, ExitReason]]:
    """Add ``entry``'s handler again, at the front, with its original arguments, while its
    restart intensity allows; return whether it is back (or a retry is scheduled), and the
    reason it last left for. The first attempt happens at once; when its ``init`` fails
    (counted as a restart, and reported), the next attempt is scheduled on the runtime's
    clock (:class:`Retry`: the manager serves other messages meanwhile, see
    :func:`retry_restart`), after :meth:`Restart.delay`."""
    clock = core.clock
    ref = entry.ref
    if clock is None or core.restarts_off:
        return False, reason
    if core.find(ref) is not None:
        return False, reason  # added again meanwhile: no restart (none counted)
    if not policy.intensity.allow(clock()):
        yield Report("restart_limit", ref, None, policy, reason)
        return False, reason
    policy.restarts += 1
    core.restarts += 1
    try:
        instance, info = yield from start(
            ref, policy.args, NO_HANDOFF, False, entry.lane, core.allow_async, wrap=core.wrap_class
        )
    except HandlerInitFailed as failed:
        cause = failed.cause if failed.cause is not None else BadReturn(failed.returned)
        reason = StartFailed(cause)
        yield Report("restart_failed", ref, None, None, reason, "init")
        if core.stopping or core.find(ref) is not None:
            return False, reason
        policy.failures += 1
        earlier = core.retrying.pop(ref, None)
        if earlier is not None:  # the id was added again meanwhile, and left: the earlier
            yield from gone_for_good(core, *earlier)  # one waits no more
        core.retrying[ref] = (entry, reason)
        yield Retry(ref, policy.delay())
        return True, reason
    if core.find(ref) is not None:  # re-added meanwhile by re-entrant code
        return False, reason
    policy.failures = 0
    new = Entry(ref, instance, info, entry.owner, entry.on_exit, entry.lane)
    new.restart = policy
    yield from core._insert(0, new)
    yield from core._release_owner(entry.owner)  # _insert counted the owner again
    yield Report("restarted", ref, instance, policy.restarts, reason)
    return True, reason


def retry_restart(core: Table, ref: Any) -> Procedure:
    """The time for another attempt to restart ``ref`` came (a :class:`Retry` the runtime
    scheduled): try again, or give up for good (the intensity limit, a stop, or the same
    reference added meanwhile), telling the owner the reason it last left for."""
    waiting = core.retrying.pop(ref, None)
    if waiting is None:
        return  # given up meanwhile (stop, owner gone)
    entry, reason = waiting
    policy = entry.restart
    assert policy is not None
    restarted, reason = yield from restart(core, entry, policy, reason)
    if not restarted:
        yield from gone_for_good(core, entry, reason)


def gone_for_good(
    core: Table, entry: Entry, reason: ExitReason, callback: str | None = None
) -> Generator[Effect, Any, None]:
    """``entry`` left for ``reason`` and will not be back: remember how (unless its id was
    added again meanwhile), let go of its lane, tell and release its owner."""
    how, summary = left_for(reason, callback)
    policy = entry.restart
    if policy is not None and policy.wants(reason) and not core.stopping:
        intensity = policy.intensity
        how = "restart_limit"
        summary += (
            f"; not restarted: its restart limit was reached ({intensity.max_restarts} "
            f"restarts in {intensity.period:g} s)"
        )
    if core.find(entry.ref) is None:  # (an id added again meanwhile did not leave)
        core._note_left(entry.ref, how, summary)
    if core.crashes_by_ref:  # the totals keep counting
        core.crashes_by_ref.pop(entry.ref, None)
    if entry.lane is not None:  # a lane kept for a restart attempt is let go
        core.note_lane(entry)
    if entry.on_exit is not None:  # (no generator made for an unsupervised handler)
        yield from tell(entry, reason, core.manager)
    if entry.owner is not None:
        yield from core._release_owner(entry.owner)


def give_up_retries(core: Table) -> Generator[Effect, Any, None]:
    """Stopping: the handlers waiting for another restart attempt are gone for good; each
    owner is told the reason its handler last left for."""
    while core.retrying:
        ref = next(iter(core.retrying))
        entry, reason = core.retrying.pop(ref)
        yield from gone_for_good(core, entry, reason)
