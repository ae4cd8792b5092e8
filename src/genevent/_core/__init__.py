"""genevent's sans-I/O core: the handler set as a pure, synchronous state machine.

This package is the only thing runtimes and transports import from the core. It never imports
asyncio, threading, logging, time or a transport (see ``_manager.py``'s rules).
"""

from ._effects import Effect, Invoke, Outcome, Raised, Report, Returned, TellOwner, Unwatch, Watch
from ._instructions import NO_HANDOFF, Args, NoHandoff, Remove, Swap
from ._manager import Entry, ManagerCore, Procedure, handler_key
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

__all__ = (
    "NO_HANDOFF",
    "Args",
    "BadReturn",
    "Crashed",
    "Deleted",
    "Effect",
    "Entry",
    "ExitReason",
    "HandlerExit",
    "Invoke",
    "ManagerCore",
    "NoHandoff",
    "Outcome",
    "OwnerExited",
    "Procedure",
    "Raised",
    "Remove",
    "RemovedItself",
    "Report",
    "Returned",
    "StartFailed",
    "Stopped",
    "Swap",
    "Swapped",
    "TellOwner",
    "Unwatch",
    "Watch",
    "handler_key",
)
