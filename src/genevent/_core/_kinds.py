"""The kinds of request a manager's mailbox holds besides events, and how each is treated.

Both runtimes tag every request they queue with a :class:`Kind` and classify it with the sets
below, so a request is counted, ordered against isolated handlers, or dropped by a stop the
same way on every runtime. A :class:`Kind` is a ``str`` (its value is the operation's name), so
error messages read ``"... handling call"``.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Final

__all__ = (
    "CONCERNED",
    "COUNTED",
    "DROPPABLE",
    "LANE_RESULTS",
    "ORDERED",
    "TABLE_EDITS",
    "Kind",
    "caught_up_detail",
)


class Kind(StrEnum):
    """What a queued request is."""

    # what callers ask (counted in ``requests``)
    CALL = "call"
    SYNC_NOTIFY = "sync_notify"
    WHICH_HANDLERS = "which_handlers"
    GET_STATE = "get_state"
    ADD_HANDLER = "add_handler"
    ADD_SUP_HANDLER = "add_sup_handler"
    DELETE_HANDLER = "delete_handler"
    SWAP_HANDLER = "swap_handler"
    SWAP_SUP_HANDLER = "swap_sup_handler"
    SUBSCRIBE = "subscribe"  # add_handler of a function (subscribe, on)
    STREAM = "stream"  # add_handler of a stream's handler
    STOP = "stop"
    # what the manager posts to itself (not counted)
    INFO = "info"  # an info message: dropped by a stop that drops the backlog, as events are
    OWNER_DOWN = "owner_down"
    STREAM_CLOSE = "stream close"
    RESTART = "restart"  # a restart's retry, on the runtime's clock
    SETTLE = "settle"  # a marker: every isolated handler passed this point of the mailbox
    LANE = "lane"  # what an isolated handler's callback brought back
    LANE_CALL = "lane call"  # what an isolated handler's handle_call brought back
    LANE_ORDER = "lane order"  # a lane's turn in the order of outcomes came


LANE_RESULTS: Final = frozenset({Kind.LANE, Kind.LANE_CALL, Kind.LANE_ORDER})
"""What isolated handlers' lanes bring back to the manager: applied even by a stop that drops
the backlog."""

COUNTED: Final = (
    frozenset(Kind)
    - {
        Kind.INFO,
        Kind.OWNER_DOWN,
        Kind.STREAM_CLOSE,
        Kind.RESTART,
        Kind.SETTLE,
    }
    - LANE_RESULTS
)
"""The requests a caller made: each counted once in ``stats().requests`` when it is handled
(a ``sync_notify`` also counts its event), not again when it comes back after waiting for
isolated handlers."""

CONCERNED: Final = frozenset(
    {
        Kind.CALL,
        Kind.SYNC_NOTIFY,
        Kind.WHICH_HANDLERS,
        Kind.GET_STATE,
        Kind.DELETE_HANDLER,
        Kind.ADD_HANDLER,
        Kind.ADD_SUP_HANDLER,
        Kind.SWAP_HANDLER,
        Kind.SWAP_SUP_HANDLER,
        Kind.OWNER_DOWN,
    }
)
"""Requests that may concern isolated handlers: the runtime looks at these before it runs them
(a call goes to the handler's lane, the others may wait for lanes to catch up)."""

ORDERED: Final = frozenset(
    {
        Kind.WHICH_HANDLERS,
        Kind.GET_STATE,
        Kind.DELETE_HANDLER,
        Kind.SWAP_HANDLER,
        Kind.SWAP_SUP_HANDLER,
        Kind.OWNER_DOWN,
    }
)
"""Requests that read or change the handler table: with isolated handlers, each takes its
place in mailbox order among what they bring back (it runs once every isolated handler is past
what was queued before it), so it sees and changes the table gen_event would show. An
``add_handler`` waits only when its id is installed, a ``call`` only when its handler is not
isolated (a call to an isolated handler goes to that handler's lane)."""

TABLE_EDITS: Final = frozenset(
    {
        Kind.ADD_HANDLER,
        Kind.ADD_SUP_HANDLER,
        Kind.DELETE_HANDLER,
        Kind.SWAP_HANDLER,
        Kind.SWAP_SUP_HANDLER,
        Kind.SUBSCRIBE,
        Kind.STREAM,
    }
)
"""Requests whose procedure is one of the core's table edits (add, delete, swap): a runtime
may drive it itself, without its general driver, for as long as every effect is a plain
callback run in the manager (an :class:`Invoke`, nothing to await, no lane), and hand the rest
of the procedure to its general driver at the first other effect. What the procedure does is
the same either way."""

DROPPABLE: Final = frozenset({Kind.INFO})
"""Requests a stop that drops the backlog drops (and counts) as it drops events; every other
request is answered with the typed "not running" error instead."""


def caught_up_detail(kind: str, caught_up: bool) -> str:
    """The detail of the "not running" error a queued request gets from a stop that drops
    the backlog; ``caught_up``: it was waiting for isolated handlers to catch up (a
    ``sync_notify`` whose event the others had handled, dropped from the isolated ones'
    mailboxes)."""
    if caught_up:
        return (
            f" (it stopped before its isolated handlers caught up with {kind},"
            " dropping their backlogs)"
        )
    return f" (it stopped before {kind})"
