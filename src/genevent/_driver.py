"""What both runtimes do with the core's effects: run user code, tell owners, log reports."""

from __future__ import annotations

import inspect
import logging
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from types import FrameType
from typing import Any

from ._core import (
    BadReturn,
    Invoke,
    Procedure,
    Raised,
    Report,
    Retry,
    Returned,
    Settle,
    StartFailed,
    TellOwner,
    Unwatch,
    Watch,
    misuse_hint,
)
from ._errors import GenEventError, WrongRuntime, _name, _returns_hint
from ._text import MAX_TEXT, cut, short
from ._tracing import Carried

__all__ = (
    "CRASHES",
    "FATAL",
    "awaited_frames",
    "callback_in",
    "drive_sync",
    "log",
    "report",
    "stack_frames",
    "state_of",
    "take_back",
    "take_back_many",
    "tell_owner",
)

CRASHES = BaseException
"""What a callback may raise and be removed for: anything. ``asyncio.CancelledError``, a user's
own ``BaseException`` subclass or ``GeneratorExit`` raised by a callback is a crash of that
handler, like any ``Exception``. The exceptions in :data:`FATAL` are crashes too (the handler is
removed), but once the request they interrupted is finished they go on: callers catch
``CRASHES``, then test ``isinstance(exc, FATAL)``."""

FATAL = (KeyboardInterrupt, SystemExit)
"""What a callback may raise that stops the program: the request it interrupted is finished
first (every terminate, every owner notice, every waiting caller answered), then it
propagates."""

log = logging.getLogger("genevent")
"""genevent's logger: crash reports (ERROR), missing ``handle_info`` (WARNING)."""


def state_of(instance: Any) -> str:
    """A short description of a handler's state: its ``format_status()`` if it has one (a
    raising ``format_status`` hides the state), else a shortened repr of ``vars(instance)``."""
    if instance is None:
        return "<not started>"
    fmt = getattr(instance, "format_status", None)
    if fmt is not None:
        try:
            status = fmt()
        except FATAL:
            raise
        except BaseException as exc:  # whatever it is, the report goes out without the state
            return f"<state could not be formatted: format_status raised {type(exc).__name__}>"
        if inspect.isawaitable(status):
            if inspect.iscoroutine(status):
                status.close()
            return "<format_status must be a plain method; state hidden>"
        return cut(status, 4 * MAX_TEXT) if isinstance(status, str) else short(status)
    try:
        return short(vars(instance))
    except TypeError:
        return short(instance)


def report(manager: Any, eff: Report) -> None:
    """Log a :class:`Report` on the ``genevent`` logger, in OTP's words. Every piece of user
    data in the text is shortened (``extra`` carries the objects themselves); the traceback of
    the exception behind the report, if any, goes in ``exc_info``."""
    name = getattr(manager, "name", None) or short(manager)
    message = eff.message
    if message.__class__ is Carried:  # a traced manager's envelope: the message itself
        message = message.message
    extra = {
        "genevent": {
            "kind": eff.kind,
            "handler": eff.handler,
            "manager": name,
            "message": message,
            "reason": eff.reason,
            "callback": eff.callback,
        }
    }
    if eff.kind == "no_handle_info":
        log.warning(
            "** Undefined handle_info in %s\n** Unhandled message: %s",
            _name(eff.handler),
            short(message),
            extra=extra,
        )
        return
    if eff.kind == "restarted":
        log.warning(
            "** genevent handler %s restarted in %s (restart %s) after %s",
            _name(eff.handler),
            name,
            eff.message,
            short(eff.reason),
            extra=extra,
        )
        return
    if eff.kind == "restart_limit":
        intensity = eff.message.intensity
        log.error(
            "** genevent handler %s reached its restart limit in %s (%s restarts within %s s); "
            "removed for good\n** Last reason == %s",
            _name(eff.handler),
            name,
            intensity.max_restarts,
            intensity.period,
            short(eff.reason),
            extra=extra,
        )
        return
    state = state_of(eff.instance)
    extra["genevent"]["state"] = state
    reason = eff.reason
    # the exception behind the report: a crash's, or the one a swap target's init raised
    exc = reason.cause if type(reason) is StartFailed else getattr(reason, "exception", None)
    if exc is None and eff.kind == "terminate_raised":
        exc = reason
    callback = eff.callback
    if eff.kind == "terminate_raised":
        what = "terminate raised"
    elif type(reason) is BadReturn:
        what = f"returned a bad value from {callback or 'a callback'}"
    elif type(reason) is StartFailed:
        what = (
            "failed to restart (its init failed)"
            if eff.kind == "restart_failed"
            else "failed to start in a swap (its init failed)"
        )
    else:
        what = f"crashed in {callback}" if callback else "crashed"
    hint = ""
    if type(reason) is BadReturn and callback is not None:
        hint = f"\n** {_returns_hint(callback, reason.value, misuse_hint(reason.value))}"
    log.error(
        "** genevent handler %s %s.\n** Was installed in %s\n** Last message was: %s\n"
        "** When handler state == %s\n** Reason == %s%s",
        _name(eff.handler),
        what,
        name,
        short(message),
        state,
        short(reason),
        hint,
        exc_info=exc if isinstance(exc, BaseException) else None,
        extra=extra,
    )


def tell_owner(eff: TellOwner, spawn: Callable[[Any], object] | None = None) -> None:
    """Deliver an owner notice. A raising callback is logged, never propagated; an awaitable
    result is handed to ``spawn`` (asyncio schedules it), else closed with an error."""
    try:
        result = eff.on_exit(eff.notice)
    except FATAL:
        raise
    except BaseException:  # the manager goes on, whatever the callback raised
        log.exception("owner callback %s raised on %s", short(eff.on_exit), short(eff.notice))
        return
    if inspect.isawaitable(result):
        if spawn is not None:
            spawn(result)
        else:
            if inspect.iscoroutine(result):
                result.close()
            log.error(
                "owner callback %s returned an awaitable; use a plain function",
                short(eff.on_exit),
            )


def drive_sync(
    proc: Procedure,
    manager: Any,
    watch: Callable[[Watch | Unwatch | Retry | Settle], None],
    tell: Callable[[TellOwner], None] = tell_owner,
    via: Callable[[Invoke], Raised | Returned] | None = None,
) -> Any:
    """Run a core procedure to its end without an event loop; return its reply (or raise the
    typed error it raises). A ``KeyboardInterrupt`` or ``SystemExit`` from user code is a
    crash of that handler for the procedure, and is re-raised once the procedure finished.
    ``manager`` labels reports; ``watch`` performs :class:`Watch`/:class:`Unwatch`/:class:`Retry`
    effects;
    ``tell`` delivers notices; ``via`` runs an isolated handler's invocation (``eff.via`` set)
    in its lane and returns the outcome."""
    send: Any = None
    interrupted: BaseException | None = None
    while True:
        try:
            eff = proc.send(send)
        except StopIteration as stop:
            if interrupted is not None:
                raise interrupted from None
            return stop.value
        except GenEventError:
            if interrupted is not None:
                raise interrupted from None
            raise
        send = None
        if type(eff) is Invoke:
            if eff.via is not None and via is not None:
                send = via(eff)
                if send.__class__ is Raised and isinstance(send.exception, FATAL):
                    interrupted = interrupted or send.exception
                continue
            if eff.is_async:
                fn_name = getattr(eff.fn, "__qualname__", None) or short(eff.fn)
                send = Raised(WrongRuntime(f"{fn_name} is a coroutine and cannot run here"))
                continue
            try:
                value = eff.fn(*eff.args, **eff.kwargs) if eff.kwargs else eff.fn(*eff.args)
            except CRASHES as exc:
                if isinstance(exc, FATAL) and interrupted is None:
                    # finish the procedure, so that the table, the terminates and the owner
                    # notices stay consistent, then let it go on
                    interrupted = exc
                send = Raised(exc)
            else:
                send = Returned(value)
        elif type(eff) is TellOwner or type(eff) is Report:
            try:
                if type(eff) is Report:
                    report(manager, eff)
                else:
                    tell(eff)  # type: ignore[arg-type]
            except FATAL as exc:  # from an owner callback or a format_status: as above
                if interrupted is None:
                    interrupted = exc
        elif (
            type(eff) is Watch or type(eff) is Unwatch or type(eff) is Retry or type(eff) is Settle
        ):
            try:
                watch(eff)  # the manager's own business
            except FATAL as exc:  # from what a Settle applied meanwhile: finish first, as above
                if interrupted is None:
                    interrupted = exc


_PACKAGE = __name__.rpartition(".")[0]  # "genevent" (wherever it is installed, or vendored)
_PUBLIC_RUNTIMES = frozenset({"aio", "threads"})


def _is_runtime_module(name: object) -> bool:
    """True for a module of genevent's runtimes and core: its private modules (the core
    included), ``aio`` and ``threads``; not its examples, demo, exporters or transport, whose
    callbacks run as user code does. Told by module name, never by file name, so that moving
    a file changes nothing."""
    if type(name) is not str or not name.startswith(_PACKAGE + "."):
        return False
    first = name[len(_PACKAGE) + 1 :].partition(".")[0]
    return first in _PUBLIC_RUNTIMES or (first.startswith("_") and first != "__main__")


def stack_frames(frame: FrameType | None) -> list[FrameType]:
    """The frames of the stack whose innermost frame is ``frame``, outermost first."""
    frames = []
    while frame is not None:
        frames.append(frame)
        frame = frame.f_back
    frames.reverse()
    return frames


def awaited_frames(awaitable: Any) -> list[FrameType]:
    """The frames of a suspended coroutine (or generator) and of what it awaits, outermost
    first."""
    frames: list[FrameType] = []
    while awaitable is not None and len(frames) < 1000:
        frame = getattr(awaitable, "cr_frame", None) or getattr(awaitable, "gi_frame", None)
        if frame is None:
            break
        frames.append(frame)
        awaitable = getattr(awaitable, "cr_await", None) or getattr(awaitable, "gi_yieldfrom", None)
    return frames


def callback_in(frames: Iterable[FrameType]) -> str | None:
    """The handler callback running in a stack, as ``"Class.method"``: the outermost code that
    genevent's own code called (``frames`` run from the outermost inwards; see
    :func:`stack_frames` and :func:`awaited_frames`). None when no user code called by
    genevent is on the stack."""
    caller_is_runtime = False
    for frame in frames:
        is_runtime = _is_runtime_module(frame.f_globals.get("__name__"))
        if caller_is_runtime and not is_runtime:
            # a class defined in a function: "make.<locals>.Slow.handle_event" -> "Slow...."
            return frame.f_code.co_qualname.rpartition("<locals>.")[2]
        caller_is_runtime = is_runtime
    return None


def take_back(mailbox: deque[Any], item: Any) -> None:
    """Remove ``item`` (found by identity, from the newest end) from ``mailbox`` if it is
    there. The caller holds the lock that keeps the manager off the mailbox."""
    for i in range(len(mailbox) - 1, -1, -1):
        if mailbox[i] is item:
            del mailbox[i]
            return


def take_back_many(mailbox: deque[Any], items: Sequence[Any]) -> int:
    """Remove ``items`` (queued by one ``notify_many``) from ``mailbox`` as :func:`take_back`
    does, the newest first, and return how many were still there. The caller holds the lock
    that keeps the manager off the mailbox."""
    taken = 0
    end = len(mailbox)
    for item in reversed(items):
        # the batch's items sit together near the newest end: each search starts where the
        # last one found its item, so taking a whole batch back costs one pass
        for i in range(min(end, len(mailbox)) - 1, -1, -1):
            if mailbox[i] is item:
                del mailbox[i]
                taken += 1
                end = i
                break
    return taken
