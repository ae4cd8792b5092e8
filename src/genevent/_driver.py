"""What both runtimes do with the core's effects: run user code, tell owners, log reports."""

from __future__ import annotations

import asyncio
import inspect
import logging
import reprlib
from collections.abc import Callable
from typing import Any

from ._core import Invoke, Procedure, Raised, Report, Returned, TellOwner, Unwatch, Watch
from ._errors import GenEventError, WrongRuntime, _name

__all__ = ("CRASHES", "drive_sync", "log", "report", "state_of", "tell_owner")

CRASHES = (Exception, asyncio.CancelledError)
"""What a callback may raise and be removed for. ``asyncio.CancelledError`` is a
``BaseException``, but a plain callback that raises it (say, by reading a cancelled future's
result) has crashed: it was not cancelled. Other ``BaseException``s (``KeyboardInterrupt``,
``SystemExit``) stop the manager, as they stop the program."""

log = logging.getLogger("genevent")
"""genevent's logger: crash reports (ERROR), missing ``handle_info`` (WARNING)."""

_repr = reprlib.Repr()
_repr.maxstring = 80
_repr.maxother = 80
_repr.maxlevel = 3


def state_of(instance: Any) -> str:
    """A short description of a handler's state: its ``format_status()`` if it has one (a
    raising ``format_status`` hides the state), else a shortened repr of ``vars(instance)``."""
    if instance is None:
        return "<not started>"
    fmt = getattr(instance, "format_status", None)
    if fmt is not None:
        try:
            status = fmt()
        except Exception as exc:
            return f"<format_status raised {type(exc).__name__}; state hidden>"
        if inspect.isawaitable(status):
            if inspect.iscoroutine(status):
                status.close()
            return "<format_status must be a plain method; state hidden>"
        return status if isinstance(status, str) else _repr.repr(status)
    try:
        return _repr.repr(vars(instance))
    except TypeError:
        return _repr.repr(instance)


def report(manager: Any, eff: Report) -> None:
    """Log a :class:`Report` on the ``genevent`` logger, in OTP's words."""
    name = getattr(manager, "name", None) or repr(manager)
    extra = {
        "genevent": {
            "kind": eff.kind,
            "handler": eff.handler,
            "manager": name,
            "message": eff.message,
            "reason": eff.reason,
        }
    }
    if eff.kind == "no_handle_info":
        log.warning(
            "** Undefined handle_info in %s\n** Unhandled message: %s",
            _name(eff.handler),
            _repr.repr(eff.message),
            extra=extra,
        )
        return
    state = state_of(eff.instance)
    extra["genevent"]["state"] = state
    reason = eff.reason
    exc = getattr(reason, "exception", None)
    if exc is None and eff.kind == "terminate_raised":
        exc = reason
    what = "terminate raised" if eff.kind == "terminate_raised" else "crashed"
    log.error(
        "** genevent handler %s %s.\n** Was installed in %s\n** Last message was: %s\n"
        "** When handler state == %s\n** Reason == %r",
        _name(eff.handler),
        what,
        name,
        _repr.repr(eff.message),
        state,
        reason,
        exc_info=exc if isinstance(exc, BaseException) else None,
        extra=extra,
    )


def tell_owner(eff: TellOwner, spawn: Callable[[Any], object] | None = None) -> None:
    """Deliver an owner notice. A raising callback is logged, never propagated; an awaitable
    result is handed to ``spawn`` (asyncio schedules it), else closed with an error."""
    try:
        result = eff.on_exit(eff.notice)
    except Exception:
        log.exception("owner callback %r raised on %r", eff.on_exit, eff.notice)
        return
    if inspect.isawaitable(result):
        if spawn is not None:
            spawn(result)
        else:
            if inspect.iscoroutine(result):
                result.close()
            log.error("owner callback %r returned an awaitable; use a plain function", eff.on_exit)


def drive_sync(
    proc: Procedure,
    manager: Any,
    watch: Callable[[Watch | Unwatch], None],
    tell: Callable[[TellOwner], None] = tell_owner,
) -> Any:
    """Run a core procedure to its end without an event loop; return its reply (or raise the
    typed error it raises). A ``KeyboardInterrupt`` (or another non-crash ``BaseException``)
    from user code is re-raised once the procedure has finished. ``manager`` labels reports;
    ``watch`` performs :class:`Watch`/:class:`Unwatch` effects; ``tell`` delivers notices."""
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
            if eff.is_async:
                send = Raised(WrongRuntime(f"{eff!r} is a coroutine and cannot run here"))
                continue
            try:
                value = eff.fn(*eff.args, **eff.kwargs) if eff.kwargs else eff.fn(*eff.args)
            except CRASHES as exc:
                send = Raised(exc)
            except BaseException as exc:
                # KeyboardInterrupt and the like: finish the procedure, so that the table, the
                # terminates and the owner notices stay consistent, then let it go on
                interrupted = exc
                send = Raised(exc)
            else:
                send = Returned(value)
        elif type(eff) is TellOwner:
            tell(eff)
        elif type(eff) is Report:
            report(manager, eff)
        elif isinstance(eff, (Watch, Unwatch)):
            watch(eff)
