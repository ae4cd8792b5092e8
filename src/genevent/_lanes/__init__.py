"""Isolated handlers: a handler with a mailbox and a task or thread of its own (a *lane*).

The manager keeps the handler in its table as usual, but the entry's ``handle_event`` /
``handle_info`` are the lane's :meth:`Lane.post` / :meth:`Lane.post_info`, which only queue.
The lane runs the handler's callbacks one at a time, in the order the manager queued them:

* a plain ``None`` from ``handle_event``/``handle_info`` and a plain reply from ``handle_call``
  are the end of it (the reply goes to the caller directly);
* anything that changes the table (it raised, ``Remove``, ``Swap``, a bad return) is posted
  back to the manager's mailbox, which applies it in order; meanwhile the lane holds its queue
  (the handler sees nothing after the event it left on), and goes on once the manager served
  it again (a swap or a restart keeps the lane, with the events queued behind) or closes it;
* the manager's own invocations (the class, ``init``, ``terminate``, ``format_status``) are
  *jobs*: run before anything queued, the manager waiting for their outcome;
* a *mark* tells a :class:`Barrier` that the lane handled everything queued before it: the
  runtime answers ``sync_notify``, ``which_handlers``, ``delete_handler``... only once every
  isolated handler concerned has caught up, so they see what gen_event would show.

Each runtime is the lane's *host* (see :class:`Host`); this package holds what both share:

* ``_items``: what a lane's mailbox holds, an isolated handler's options;
* ``_lane``: :class:`Lane` (the manager's side of a lane's mailbox), :class:`Host`, :class:`Order`;
* ``_thread_lane`` / ``_task_lane``: the lanes run by a thread / an asyncio task;
* ``_requests``: what the manager does around its requests while it has isolated handlers;
* ``_outcomes``: applying what lanes bring back; serving, closing, dropping, leaving lanes behind;
* ``_hosting``: the manager's side of its lanes, as decisions and step generators each runtime
  drives with its own primitives (:class:`Hosting`: what they need of its server);
* ``_stopping``: what a stopping manager does with each message it still holds.
"""

from ._hosting import Hosting, abandon, holding, in_order, settling, still_busy, takes_turn
from ._items import LANE_OVERFLOW, STOP_TIMEOUT, Barrier, Isolation, LaneOverflow, check_isolation
from ._lane import Host, Lane, Order, running_lane
from ._outcomes import (
    applied,
    call_applied,
    drop_backlogs,
    leave_behind,
    left_behind,
    reap,
)
from ._requests import (
    pass_call,
    takes_its_place,
    when_caught_up,
)
from ._stopping import (
    AtStop,
    at_stop,
    is_kept,
    leftovers,
    refusal,
    split_backlog,
    unanswered,
)
from ._task_lane import TaskLane
from ._thread_lane import ThreadLane

__all__ = (
    "LANE_OVERFLOW",
    "STOP_TIMEOUT",
    "AtStop",
    "Barrier",
    "Host",
    "Hosting",
    "Isolation",
    "Lane",
    "LaneOverflow",
    "Order",
    "TaskLane",
    "ThreadLane",
    "abandon",
    "applied",
    "at_stop",
    "call_applied",
    "check_isolation",
    "drop_backlogs",
    "holding",
    "in_order",
    "is_kept",
    "leave_behind",
    "left_behind",
    "leftovers",
    "pass_call",
    "reap",
    "refusal",
    "running_lane",
    "settling",
    "split_backlog",
    "still_busy",
    "takes_its_place",
    "takes_turn",
    "unanswered",
    "when_caught_up",
)
