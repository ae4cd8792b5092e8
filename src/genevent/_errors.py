"""The exceptions genevent raises, all under one root.

::

    GenEventError
     +-- InvalidHandler (TypeError)        not a handler class / malformed handler reference
     +-- HandlerExists (ValueError)        adding an id that is already installed
     +-- HandlerNotFound (LookupError)     call/delete of an id that is not installed
     +-- HandlerInitFailed                 init raised or returned something other than None
     +-- HandlerCrashed                    the called handler's handle_call raised (cause chained)
     +-- HandlerBadReturn                  the called handler returned a malformed instruction
     +-- CallNotSupported (TypeError)      no handle_call (the handler stays installed)
     +-- TerminateFailed                   delete_handler: terminate raised (the handler is gone)
     +-- ManagerNotRunning (RuntimeError)  the manager is stopped (or stopped before answering)
     +-- NameTaken (ValueError)            a second manager under a registered name
     +-- CallTimeout (TimeoutError)        a synchronous request was not answered in time
     +-- CallingSelf (RuntimeError)        a handler made a synchronous request to its own manager
     +-- InvalidOwner (TypeError)          an owner= the runtime cannot watch
     +-- WrongRuntime (RuntimeError)       a blocking/awaiting request from a place that cannot wait
                                           (another event loop, a coroutine handler on threads, ...)

Each error subclasses the builtin that fits, so ``except LookupError`` or
``except TimeoutError`` keep working.
"""

from __future__ import annotations

from typing import Any

__all__ = (
    "CallNotSupported",
    "CallTimeout",
    "CallingSelf",
    "GenEventError",
    "HandlerBadReturn",
    "HandlerCrashed",
    "HandlerExists",
    "HandlerInitFailed",
    "HandlerNotFound",
    "InvalidHandler",
    "InvalidOwner",
    "ManagerNotRunning",
    "NameTaken",
    "TerminateFailed",
    "WrongRuntime",
)


class GenEventError(Exception):
    """Root of every error genevent raises on purpose."""


class InvalidHandler(GenEventError, TypeError):
    """A handler reference is not a handler class or a ``(class, id)`` pair."""


class _HandlerError(GenEventError):
    """Base of the errors that concern one installed (or missing) handler."""

    def __init__(self, handler: Any, message: str) -> None:
        super().__init__(message)
        #: the handler reference (a class, or ``(class, id)``) the error is about
        self.handler = handler


class HandlerExists(_HandlerError, ValueError):
    """The handler id is already installed (genevent refuses duplicates; OTP does not)."""

    def __init__(self, handler: Any) -> None:
        super().__init__(handler, f"handler {_name(handler)} is already installed")


class HandlerNotFound(_HandlerError, LookupError):
    """No handler with that id is installed (OTP's ``bad_module`` / ``module_not_found``)."""

    def __init__(self, handler: Any) -> None:
        super().__init__(handler, f"handler {_name(handler)} is not installed")


class HandlerInitFailed(_HandlerError):
    """The handler's ``init`` raised (``__cause__`` and :attr:`cause` hold the exception)
    or returned something other than ``None``; nothing was installed."""

    def __init__(self, handler: Any, cause: BaseException | None, returned: Any = None) -> None:
        if cause is not None:
            msg = f"init of {_name(handler)} raised {cause!r}; handler not installed"
        else:
            msg = (
                f"init of {_name(handler)} returned {returned!r}; it must return None "
                "(raise to refuse); handler not installed"
            )
        super().__init__(handler, msg)
        #: the exception init raised, or None when it returned a bad value
        self.cause = cause
        #: the value init returned when it was not None
        self.returned = returned


class HandlerCrashed(_HandlerError):
    """The called handler raised in ``handle_call``; it was removed before this was raised."""

    def __init__(self, handler: Any, cause: BaseException) -> None:
        super().__init__(handler, f"handler {_name(handler)} crashed in handle_call: {cause!r}")
        #: the exception handle_call raised
        self.cause = cause


class HandlerBadReturn(_HandlerError):
    """The called handler returned a malformed instruction; it was removed."""

    def __init__(self, handler: Any, value: Any) -> None:
        super().__init__(handler, f"handler {_name(handler)} returned a bad value: {value!r}")
        #: the value it returned
        self.value = value


class CallNotSupported(_HandlerError, TypeError):
    """The called handler defines no ``handle_call``; it stays installed (OTP removes it)."""

    def __init__(self, handler: Any) -> None:
        super().__init__(handler, f"handler {_name(handler)} has no handle_call")


class TerminateFailed(_HandlerError):
    """``delete_handler``: the handler's ``terminate`` raised; the handler is removed anyway."""

    def __init__(self, handler: Any, cause: BaseException) -> None:
        super().__init__(handler, f"terminate of {_name(handler)} raised {cause!r}; removed")
        #: the exception terminate raised
        self.cause = cause


class ManagerNotRunning(GenEventError, RuntimeError):
    """The manager is stopped, or stopped before it answered this request (OTP's ``noproc``)."""

    def __init__(self, manager: Any, detail: str = "") -> None:
        super().__init__(f"{manager!r} is not running{detail}")
        #: the manager the request was for
        self.manager = manager


class NameTaken(GenEventError, ValueError):
    """A manager is already registered under that name (OTP's ``already_started``)."""

    def __init__(self, name: str, holder: Any) -> None:
        super().__init__(f"the name {name!r} is taken by {holder!r}")
        #: the name
        self.name = name
        #: the manager that holds it
        self.holder = holder


class CallTimeout(GenEventError, TimeoutError):
    """A synchronous request was not answered within its timeout.

    The manager still handles the request later; its late reply is dropped."""

    def __init__(self, what: str, timeout: float) -> None:
        super().__init__(f"{what} was not answered within {timeout} s")
        #: the timeout, in seconds
        self.timeout = timeout


class CallingSelf(GenEventError, RuntimeError):
    """A handler callback made a synchronous request to its own manager, which would deadlock.

    Use ``notify`` (asynchronous) from inside a handler instead."""

    def __init__(self, manager: Any, what: str) -> None:
        super().__init__(
            f"{what} on {manager!r} from inside one of its own handler callbacks would deadlock"
        )


class InvalidOwner(GenEventError, TypeError):
    """``owner=`` names something the runtime cannot watch (asyncio: a task or future;
    threads: a thread)."""


class WrongRuntime(GenEventError, RuntimeError):
    """The request cannot wait where it was made (another event loop, a coroutine handler in the
    thread runtime, a blocking call inside an event loop, ...). The message says which."""


def _name(handler: Any) -> str:
    if isinstance(handler, tuple) and len(handler) == 2 and isinstance(handler[0], type):
        return f"({handler[0].__qualname__}, {handler[1]!r})"
    if isinstance(handler, type):
        return handler.__qualname__
    return repr(handler)
