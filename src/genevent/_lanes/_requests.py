"""What the manager does around its requests while it has isolated handlers: which requests
concern them, which take their place in mailbox order, a call passed to a lane, a wait for
lanes to catch up.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

from .._core import ManagerCore
from ._items import Barrier
from ._lane import Lane

__all__ = (
    "CAUGHT_UP",
    "CONCERNED",
    "pass_call",
    "stopped_before",
    "takes_its_place",
    "when_caught_up",
)


CONCERNED: Final = frozenset(
    {
        "call",
        "sync_notify",
        "which_handlers",
        "get_state",
        "delete_handler",
        "add_handler",
        "add_sup_handler",
        "swap_handler",
        "swap_sup_handler",
        "owner_down",
    }
)
"""Requests that may concern isolated handlers (the runtime looks at these before it runs
them: a call goes to the handler's lane, the others may wait for lanes to catch up)."""


CAUGHT_UP: Final = " (isolated handlers caught up)"
"""Appended to a request's name when it comes back to the mailbox after its barrier."""


def stopped_before(what: str) -> str:
    """The detail of the :class:`ManagerNotRunning` a queued request gets from a stop that
    drops the backlog (a ``sync_notify`` waiting for isolated handlers: its event was
    handled by the others, and dropped from the isolated ones' mailboxes)."""
    if what.endswith(CAUGHT_UP):
        return (
            f" (it stopped before its isolated handlers caught up with {what[: -len(CAUGHT_UP)]}"
            ", dropping their backlogs)"
        )
    return f" (it stopped before {what})"


_ORDERED: Final = frozenset(
    {
        "which_handlers",
        "get_state",
        "delete_handler",
        "swap_handler",
        "swap_sup_handler",
        "owner_down",
    }
)


def takes_its_place(core: ManagerCore, what: str, args: tuple[Any, ...]) -> bool:
    """Whether a request must take its place in mailbox order among what the isolated handlers
    bring back (see :class:`Order`): it is applied once every isolated handler is past the
    messages queued before it, so that it sees and changes the table gen_event would show
    (a deleted handler sees no later event, ``which_handlers`` shows what came before it and
    nothing after, an owner's notices come in order). Those that read or change the table do;
    an ``add_handler`` of an id not installed (nothing to wait for but an isolated handler's
    swap into that very id, a race of its own) and a call to an installed
    handler that is not isolated do not. ``args``: the request's arguments, the handler
    reference first (``old, args1, new`` for the swaps)."""
    if not core.isolated:
        return False
    if what in _ORDERED:
        return True
    if what in ("add_handler", "add_sup_handler", "call"):
        return core.find(args[0]) is None if what == "call" else core.find(args[0]) is not None
    return False


def pass_call(core: ManagerCore, handler: Any, request: Any, req: Any) -> bool:
    """A call to an isolated handler goes to its lane, not through the manager: True when
    ``req`` (the caller's request, answered by the lane) was passed on."""
    entry = core.find(handler)
    if entry is not None and entry.lane is not None:  # in order: its lane answers, or says
        core.count_request()  # CallNotSupported in its turn
        entry.lane.post_call(request, req, entry.ref)
        return True
    return False


def when_caught_up(lanes: list[Lane], then: Callable[[], None]) -> None:
    """Run ``then`` once every lane in ``lanes`` handled what it was given (at once if none
    is behind: a lane that caught up is not woken)."""
    behind = [lane for lane in lanes if not lane.caught_up()]
    if not behind:
        then()
        return
    barrier = Barrier(len(behind), then)
    for lane in behind:
        lane.mark(barrier)
