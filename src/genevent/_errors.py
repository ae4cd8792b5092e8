"""The exceptions genevent raises, all under one root.

::

    GenEventError
     +-- InvalidHandler (TypeError)        not a handler class / malformed handler reference
     +-- HandlerExists (ValueError)        adding an id that is already installed
     +-- HandlerNotFound (LookupError)     call/delete of an id that is not installed (says
                                           why it left, or names a close installed id)
     +-- HandlerInitFailed                 init raised or returned something other than None
     +-- HandlerCrashed                    the called handler's handle_call raised (cause chained)
     +-- HandlerBadReturn                  the called handler returned a malformed instruction
     +-- CallNotSupported (TypeError)      no handle_call (the handler stays installed)
     +-- TerminateFailed                   delete_handler: terminate raised (the handler is gone)
     +-- ManagerNotRunning (RuntimeError)  the manager is stopped (or stopped before answering)
     +-- NameTaken (ValueError)            a second manager under a registered name
     +-- InvalidName (TypeError)           a manager name that is not a non-empty str
     +-- CallTimeout (TimeoutError)        a synchronous request was not answered in time
     +-- CallingSelf (RuntimeError)        a handler made a synchronous request to its own manager
     +-- InvalidOwner (TypeError)          an owner= the runtime cannot watch
     +-- MailboxFull (RuntimeError)        a bounded mailbox or stream is full and refuses it
     +-- WrongRuntime (RuntimeError)       a blocking/awaiting request from a place that cannot wait
                                           (another event loop, a coroutine handler on threads, ...)

Each error subclasses the builtin that fits, so ``except LookupError`` or
``except TimeoutError`` keep working.

Messages stay short whatever the data: user values (a handler id, a bad return value, the
exception a callback raised) are shortened with ``reprlib``-style limits, and an error caused by
another exception chains it as ``__cause__`` (and keeps it as ``cause``) instead of embedding its
full text, so an error passed up through many managers does not grow with each of them.

A bad ``timeout`` (not None or a real number, negative, or NaN) raises the builtin
:class:`TypeError` / :class:`ValueError` at the call, before anything is queued or run.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ._text import short

__all__ = (
    "CallNotSupported",
    "CallTimeout",
    "CallingSelf",
    "Departure",
    "GenEventError",
    "HandlerBadReturn",
    "HandlerCrashed",
    "HandlerExists",
    "HandlerInitFailed",
    "HandlerNotFound",
    "InvalidHandler",
    "InvalidName",
    "InvalidOwner",
    "MailboxFull",
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


@dataclass(frozen=True, slots=True)
class Departure:
    """Why and when a handler left its manager, as :attr:`HandlerNotFound.left` tells it.

    A manager remembers this for the last few handlers that left it (see
    ``ManagerCore.DEPARTURES_KEPT``), as text only (no exception or handler state is kept
    alive). "When" is counted in the manager's events, not read from a clock: ``at_event`` is
    the number of events the manager had handled when the handler left."""

    #: the reference it was installed under
    handler: Any
    #: how it left: ``"crashed"``, ``"bad_return"``, ``"removed_itself"``, ``"swapped"``,
    #: ``"deleted"``, ``"owner_exited"``, ``"restart_limit"`` or ``"restart_failed"``
    how: str
    #: the same in words, with the exception's one-line summary when it crashed, for example
    #: ``"it crashed in handle_event (ValueError: bad input)"``
    summary: str
    #: the manager's event count when it left
    at_event: int


class HandlerNotFound(_HandlerError, LookupError):
    """No handler with that id is installed (OTP's ``bad_module`` / ``module_not_found``).

    When the id was installed a while ago, the message says how it left and how many events
    ago (:attr:`left`, :attr:`events_since`); when an installed id is close to it (the same
    class with an id that differs by a small edit, the class alone for a ``(class, id)``, or a
    different class with the same name), the message names it (:attr:`suggestion`)."""

    def __init__(
        self,
        handler: Any,
        left: Departure | None = None,
        events_since: int | None = None,
        suggestion: Any = None,
        *,
        detail: str = "",
    ) -> None:
        msg = f"handler {_name(handler)} is not installed"
        if left is not None:
            msg += f"; {left.summary}"
            if events_since is not None:
                if events_since == 0:
                    msg += ", with no event since"
                elif events_since == 1:
                    msg += ", 1 event ago"
                else:
                    msg += f", {events_since} events ago"
        if suggestion is not None:
            msg += f"; did you mean {_name_with_module(suggestion, handler)}?"
        super().__init__(handler, msg + detail)
        #: how it left (None when this manager does not remember it: never installed, or
        #: left before the last few departures it keeps)
        self.left = left
        #: events the manager handled since it left (None when :attr:`left` is None)
        self.events_since = events_since
        #: an installed reference close to the one asked for, or None
        self.suggestion = suggestion


class HandlerInitFailed(_HandlerError):
    """The handler's ``init`` (or its class's constructor, which the manager calls without
    arguments) raised (``__cause__`` and :attr:`cause` hold the exception) or returned something
    other than ``None``; nothing was installed. For a class whose ``__init__`` requires
    arguments, the message says that ``args`` go to ``init``."""

    def __init__(
        self,
        handler: Any,
        cause: BaseException | None,
        returned: Any = None,
        *,
        constructing: bool = False,
        hint: str = "",
        missing: tuple[str, ...] = (),
    ) -> None:
        if missing:
            names = ", ".join(missing)
            cls = handler[0] if isinstance(handler, tuple) else handler
            shown = _qualname(cls) if isinstance(cls, type) else short(cls)
            msg = (
                f"init of {_name(handler)} requires {names}, and no args were given: pass "
                f"add_handler({shown}, args) (Args(a, b, key=c) for several), or give "
                f"{names} a default; handler not installed"
            )
            cause = TypeError(msg)
        elif cause is not None:
            what = "creating" if constructing else "init of"
            msg = f"{what} {_name(handler)} raised {short(cause)}{hint}; handler not installed"
        else:
            msg = (
                f"init of {_name(handler)} returned {short(returned)}; it must return None "
                "(raise to refuse); handler not installed"
            )
        super().__init__(handler, msg)
        #: the exception init raised, or None when it returned a bad value (a
        #: :class:`TypeError` when no args were given and init requires some)
        self.cause = cause
        #: the parameters of ``init`` without a default, when no args were given
        self.missing = missing
        #: the value init returned when it was not None
        self.returned = returned


class HandlerCrashed(_HandlerError):
    """The called handler raised in ``handle_call``; it was removed before this was raised."""

    def __init__(self, handler: Any, cause: BaseException) -> None:
        super().__init__(
            handler, f"handler {_name(handler)} crashed in handle_call: {short(cause)}"
        )
        #: the exception handle_call raised
        self.cause = cause


class HandlerBadReturn(_HandlerError):
    """The called handler returned something it may not (a malformed instruction, or the class
    :class:`~genevent.Remove` or :class:`~genevent.Swap` itself); it was removed. The message
    names the callback and what it may return, then ``guess`` (the core's guess at what was
    meant, such as a forgotten ``()``)."""

    def __init__(
        self, handler: Any, value: Any, callback: str = "handle_call", *, guess: str = ""
    ) -> None:
        super().__init__(
            handler,
            f"handler {_name(handler)} returned a bad value from {callback}: {short(value)}; "
            f"{_returns_hint(callback, value, guess)}",
        )
        #: the value it returned
        self.value = value
        #: the callback that returned it
        self.callback = callback


class CallNotSupported(_HandlerError, TypeError):
    """The called handler defines no ``handle_call``; it stays installed (OTP removes it)."""

    def __init__(self, handler: Any) -> None:
        super().__init__(handler, f"handler {_name(handler)} has no handle_call")


class TerminateFailed(_HandlerError):
    """``delete_handler``: the handler's ``terminate`` raised; the handler is removed anyway."""

    def __init__(self, handler: Any, cause: BaseException) -> None:
        super().__init__(handler, f"terminate of {_name(handler)} raised {short(cause)}; removed")
        #: the exception terminate raised
        self.cause = cause


class ManagerNotRunning(GenEventError, RuntimeError):
    """The manager is stopped, or stopped before it answered this request (OTP's ``noproc``)."""

    def __init__(self, manager: Any, detail: str = "", *, accepted: int = 0) -> None:
        super().__init__(f"{short(manager)} is not running{detail}")
        #: the manager the request was for
        self.manager = manager
        #: from ``notify_many``: how many of the batch's events, from the first, were taken
        #: before the rest was refused (0 from anything else)
        self.accepted = accepted


class NameTaken(GenEventError, ValueError):
    """A manager is already registered under that name (OTP's ``already_started``)."""

    def __init__(self, name: str, holder: Any) -> None:
        super().__init__(f"the name {short(name)} is taken by {short(holder)}")
        #: the name
        self.name = name
        #: the manager that holds it
        self.holder = holder


class CallTimeout(GenEventError, TimeoutError):
    """A synchronous request was not answered within its timeout.

    The manager still handles the request later; its late reply is dropped. A ``timeout`` of
    0 never waits: the request is delivered and the caller gets this error at once (OTP's
    ``call`` with timeout 0 behaves the same).

    The message says what the manager was doing, for example ``call to Slow timed out after
    0.5 s; 3 messages were queued ahead of it; Slow.handle_event was running``; the same
    facts are in :attr:`queued_ahead` and :attr:`running`."""

    def __init__(
        self,
        what: str,
        timeout: float,
        *,
        queued_ahead: int | None = None,
        running: str | None = None,
    ) -> None:
        msg = f"{what} timed out after {timeout:g} s"
        if queued_ahead is not None:
            if queued_ahead == 0:
                msg += "; no message was queued ahead of it"
            elif queued_ahead == 1:
                msg += "; 1 message was queued ahead of it"
            else:
                msg += f"; {queued_ahead} messages were queued ahead of it"
        if running is not None:
            msg += f"; {running} was running"
        super().__init__(msg)
        #: what timed out (``"call to Handler"``, ``"add_handler"``, ``"stop"``, ...)
        self.what = what
        #: the timeout, in seconds
        self.timeout = timeout
        #: how many messages were in the manager's mailbox ahead of the request when it was
        #: sent (None when not known, for example for ``wait_stopped``)
        self.queued_ahead = queued_ahead
        #: the handler callback running in the manager when the timeout expired, as
        #: ``"Class.method"``; None when none was (on asyncio a plain, non-coroutine callback
        #: blocks the event loop, so the timeout can only expire after it returned)
        self.running = running


class CallingSelf(GenEventError, RuntimeError):
    """A handler callback made a synchronous request to its own manager, which would deadlock.

    Use ``notify`` (asynchronous) from inside a handler instead."""

    def __init__(self, manager: Any, what: str) -> None:
        super().__init__(
            f"{what} on {short(manager)} from inside one of its own handler callbacks would "
            "deadlock"
        )


class InvalidOwner(GenEventError, TypeError):
    """``owner=`` names something the runtime cannot watch (asyncio: a task or future;
    threads: a thread), or ``on_exit`` is neither callable nor None. Raised at the call,
    before anything is queued."""


class InvalidName(GenEventError, TypeError):
    """A manager name that is not a non-empty ``str`` (given to ``start`` or ``whereis``)."""


class WrongRuntime(GenEventError, RuntimeError):
    """The request cannot wait where it was made (another event loop, a coroutine handler in the
    thread runtime, a blocking call inside an event loop, ...). The message says which."""


class MailboxFull(GenEventError, RuntimeError):
    """A bounded buffer (a mailbox, or an event stream) is full and its overflow policy refuses
    the message: ``"raise"``, or ``"block"`` for a producer that cannot wait. Nothing was
    queued; the refusal is counted."""

    def __init__(self, where: Any, maxsize: int, *, accepted: int = 0) -> None:
        super().__init__(f"{where!r} is full ({maxsize} queued)")
        #: what was full
        self.where = where
        #: its bound
        self.maxsize = maxsize
        #: from ``notify_many``: how many of the batch's events, from the first, were taken
        #: (queued, or dropped by the policy) before the rest was refused (0 from anything else)
        self.accepted = accepted


def _name(handler: Any) -> str:
    """A handler reference for messages: its class's name, with a shortened id if any."""
    if isinstance(handler, tuple) and len(handler) == 2 and isinstance(handler[0], type):
        return f"({_qualname(handler[0])}, {short(handler[1])})"
    if isinstance(handler, type):
        return _qualname(handler)
    return short(handler)


def _name_with_module(ref: Any, asked: Any) -> str:
    """:func:`_name` of ``ref``, its class named with its module when ``asked`` names another
    class of the same name (so that the two read differently)."""
    cls = ref[0] if isinstance(ref, tuple) else ref
    other = asked[0] if isinstance(asked, tuple) else asked
    if cls is other or not isinstance(cls, type):
        return _name(ref)
    full = f"{cls.__module__}.{_qualname(cls)}"
    if isinstance(ref, tuple):
        return f"({full}, {short(ref[1])}), another class named {_qualname(cls)}"
    return f"{full}, another class named {_qualname(cls)}"


def _qualname(cls: type) -> str:
    name = getattr(cls, "__qualname__", None)
    return name if isinstance(name, str) else short(cls)


_MAY_RETURN = {
    "handle_event": "None, Remove() or Swap(args1, Handler, args2)",
    "handle_info": "None, Remove() or Swap(args1, Handler, args2)",
    "handle_call": "the reply itself, Remove(reply) or Swap(args1, Handler, args2, reply)",
    "init": "None (raise to refuse)",
}


def _returns_hint(callback: str, value: Any, guess: str = "") -> str:
    """What ``callback`` may return, then ``guess``: what was meant, as the core guesses it
    (it knows :class:`~genevent.Remove` and :class:`~genevent.Swap`; this module sits below it
    and does not)."""
    allowed = _MAY_RETURN.get(callback)
    hint = f"{callback} may return {allowed}" if allowed else f"{callback} returned it"
    return hint + guess
