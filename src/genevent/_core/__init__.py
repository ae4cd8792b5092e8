"""genevent's sans-I/O core: the handler set as a pure, synchronous state machine.

This package is the only thing runtimes and transports import from the core. It never imports
asyncio, threading, logging, time or a transport (see ``_manager.py``'s rules, which hold
for every module of it).
"""

from ._classes import handler_key
from ._effects import (
    Effect,
    Invoke,
    Outcome,
    Procedure,
    Raised,
    Report,
    Retry,
    Returned,
    Settle,
    TellOwner,
    Unwatch,
    Watch,
)
from ._entry import Entry
from ._hot import needs_attention, sole_target
from ._instructions import (
    MAYBE_INSTRUCTION,
    NO_ARGS,
    NO_HANDOFF,
    Args,
    NoArgs,
    NoHandoff,
    Remove,
    Swap,
    is_plain_reply,
    misuse_hint,
)
from ._kinds import (
    CONCERNED,
    COUNTED,
    DROPPABLE,
    LANE_RESULTS,
    ORDERED,
    TABLE_EDITS,
    Kind,
    caught_up_detail,
)
from ._manager import ManagerCore
from ._plain import plain_add
from ._reasons import (
    BadReturn,
    Crashed,
    Deleted,
    ExitReason,
    HandlerExit,
    OwnerExited,
    RemovedItself,
    StartFailed,
    Stopped,
    Swapped,
)
from ._restart import RESTART_POLICIES, Intensity, Restart, RestartPolicy, restart_spec

__all__ = (
    "CONCERNED",
    "COUNTED",
    "DROPPABLE",
    "LANE_RESULTS",
    "MAYBE_INSTRUCTION",
    "NO_ARGS",
    "NO_HANDOFF",
    "ORDERED",
    "RESTART_POLICIES",
    "TABLE_EDITS",
    "Args",
    "BadReturn",
    "Crashed",
    "Deleted",
    "Effect",
    "Entry",
    "ExitReason",
    "HandlerExit",
    "Intensity",
    "Invoke",
    "Kind",
    "ManagerCore",
    "NoArgs",
    "NoHandoff",
    "Outcome",
    "OwnerExited",
    "Procedure",
    "Raised",
    "Remove",
    "RemovedItself",
    "Report",
    "Restart",
    "RestartPolicy",
    "Retry",
    "Returned",
    "Settle",
    "StartFailed",
    "Stopped",
    "Swap",
    "Swapped",
    "TellOwner",
    "Unwatch",
    "Watch",
    "caught_up_detail",
    "handler_key",
    "is_plain_reply",
    "misuse_hint",
    "needs_attention",
    "plain_add",
    "restart_spec",
    "sole_target",
)
