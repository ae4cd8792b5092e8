"""What the manager does around its requests while it has isolated handlers: which requests
concern them, which take their place in mailbox order, a call passed to a lane, a wait for
lanes to catch up.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

from .._core import ORDERED, Kind, ManagerCore
from ._items import Barrier
from ._lane import Lane

__all__ = (
    "pass_call",
    "takes_its_place",
    "when_caught_up",
)


_MAYBE_ORDERED: Final = frozenset({Kind.ADD_HANDLER, Kind.ADD_SUP_HANDLER, Kind.CALL})


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
    if what in ORDERED:
        return True
    if what in _MAYBE_ORDERED:
        return core.find(args[0]) is None if what == Kind.CALL else core.find(args[0]) is not None
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
