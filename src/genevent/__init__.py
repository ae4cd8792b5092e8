"""genevent: Erlang/OTP's ``gen_event`` for Python, on asyncio and on threads.

An *event manager* owns an ordered list of *handlers*; you ``notify`` events to all of them,
``call`` one of them, and add, delete and swap them while it runs. A handler that fails is
removed, its ``terminate`` told why, and every other handler carries on.

==========================  ==================================================
manager API                 handler callback
==========================  ==================================================
add_handler, add_sup_...    ``init(args)``
notify, sync_notify         ``handle_event(event)``
call                        ``handle_call(request)``
send (any other message)    ``handle_info(message)``
delete_handler              ``terminate(Deleted(args))``
swap_handler                old ``terminate(Swapped(...))``, new ``init(args2, handoff=...)``
stop                        ``terminate(Stopped())`` for each handler
==========================  ==================================================

Runtimes: :mod:`genevent.aio` (asyncio) and :mod:`genevent.threads` (one thread per manager).
"""

from ._core import (
    NO_ARGS,
    NO_HANDOFF,
    Args,
    BadReturn,
    Crashed,
    Deleted,
    ExitReason,
    HandlerExit,
    NoArgs,
    NoHandoff,
    OwnerExited,
    Remove,
    RemovedItself,
    RestartPolicy,
    StartFailed,
    Stopped,
    Swap,
    Swapped,
)
from ._errors import (
    CallingSelf,
    CallNotSupported,
    CallTimeout,
    Departure,
    GenEventError,
    HandlerBadReturn,
    HandlerCrashed,
    HandlerExists,
    HandlerInitFailed,
    HandlerNotFound,
    InvalidHandler,
    InvalidName,
    InvalidOwner,
    MailboxFull,
    ManagerNotRunning,
    NameTaken,
    TerminateFailed,
    WrongRuntime,
)
from ._functions import AsyncFunctionHandler, FunctionHandler
from ._handler import EventHandler, HandlerRef, Instruction
from ._lanes import Isolation, LaneOverflow
from ._metrics import HandlerStats, ManagerStats
from ._overflow import OverflowPolicy
from ._registry import whereis
from ._routing import handles
from ._streams import AsyncEventStream, EventStream, StreamFeed

__all__ = (
    "NO_ARGS",
    "NO_HANDOFF",
    "Args",
    "AsyncEventStream",
    "AsyncFunctionHandler",
    "BadReturn",
    "CallNotSupported",
    "CallTimeout",
    "CallingSelf",
    "Crashed",
    "Deleted",
    "Departure",
    "EventHandler",
    "EventStream",
    "ExitReason",
    "FunctionHandler",
    "GenEventError",
    "HandlerBadReturn",
    "HandlerCrashed",
    "HandlerExists",
    "HandlerExit",
    "HandlerInitFailed",
    "HandlerNotFound",
    "HandlerRef",
    "HandlerStats",
    "Instruction",
    "InvalidHandler",
    "InvalidName",
    "InvalidOwner",
    "Isolation",
    "LaneOverflow",
    "MailboxFull",
    "ManagerNotRunning",
    "ManagerStats",
    "NameTaken",
    "NoArgs",
    "NoHandoff",
    "OverflowPolicy",
    "OwnerExited",
    "Remove",
    "RemovedItself",
    "RestartPolicy",
    "StartFailed",
    "Stopped",
    "StreamFeed",
    "Swap",
    "Swapped",
    "TerminateFailed",
    "WrongRuntime",
    "handles",
    "whereis",
)
__version__ = "0.1.0"
