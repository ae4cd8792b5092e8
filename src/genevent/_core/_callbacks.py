"""The core's building blocks that run user code: each yields the :class:`Invoke` (or the
owner's notice) a runtime performs and reads its outcome. They touch no table: the core's
procedures call them around its table edits."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Generator
from typing import Any

from .._errors import HandlerBadReturn, HandlerCrashed, HandlerInitFailed
from ._classes import ClassInfo, check_class, constructor_hint, handler_key
from ._effects import Effect, Invoke, Outcome, Procedure, Raised, Report, Returned, TellOwner
from ._entry import Entry
from ._instructions import NO_ARGS, Args, Remove, Swap, misuse_hint
from ._reasons import ExitReason, HandlerExit

__all__ = ("get_state", "late_call_result", "start", "tell", "terminate")


def start(
    ref: Any,
    args: Any,
    handoff: Any,
    with_handoff: bool,
    lane: Any,
    allow_async: bool,
    cls: type | None = None,
    wrap: Callable[[type], type] | None = None,
) -> Generator[Effect, Any, tuple[Any, ClassInfo]]:
    """Instantiate and ``init`` a handler (in ``lane`` if given); raise
    :class:`HandlerInitFailed` if it refuses. ``cls``: ``handler_key(ref)`` when the caller
    has it already; ``allow_async``: see :func:`check_class`; ``wrap``: what makes the class
    instantiated from ``cls`` (a traced manager's subclass)."""
    if cls is None:
        cls = handler_key(ref)
    info = check_class(cls, allow_async)
    if args is NO_ARGS and info.init_required:
        raise HandlerInitFailed(ref, None, missing=info.init_required)
    out = yield Invoke(cls if wrap is None else wrap(cls), (), via=lane)
    if type(out) is Raised:
        exc = out.exception
        raise HandlerInitFailed(
            ref, exc, constructing=True, hint=constructor_hint(cls, exc)
        ) from exc
    instance = out.value
    init = getattr(instance, "init", None)
    if init is not None:
        kwargs = {"handoff": handoff} if with_handoff and info.init_handoff else None
        if args.__class__ is Args:  # several arguments: init(*args, **kwargs)
            call_args: tuple[Any, ...] = args.args
            if args.kwargs:
                kwargs = {**args.kwargs, **kwargs} if kwargs else dict(args.kwargs)
        elif args is NO_ARGS:  # none given: init(), its defaults apply
            call_args = ()
        else:
            call_args = (args,)
        out = yield Invoke(init, call_args, "init" in info.async_methods, kwargs, lane)
        if type(out) is Raised:
            raise HandlerInitFailed(ref, out.exception) from out.exception
        if out.value is not None:
            raise HandlerInitFailed(ref, None, out.value)
    return instance, info


def terminate(entry: Entry, reason: ExitReason) -> Generator[Effect, Any, tuple[bool, Any]]:
    """Run ``terminate(reason)``; return ``(ok, result-or-exception)``. Never raises."""
    if entry.terminate_fn is None:
        return True, None
    out = yield Invoke(entry.terminate_fn, (reason,), entry.terminate_is_async, via=entry.lane)
    if type(out) is Raised:
        yield Report("terminate_raised", entry.ref, entry.instance, reason, out.exception)
        return False, out.exception
    return True, out.value


def tell(entry: Entry, reason: ExitReason, manager: Any, ref: Any = None) -> Generator[Effect]:
    """Tell ``entry``'s owner (if it is supervised) that it left ``manager`` for ``reason``
    (under ``ref`` if given: a swap's new handler that failed to start)."""
    if entry.on_exit is not None:
        yield TellOwner(
            entry.on_exit, HandlerExit(entry.ref if ref is None else ref, reason, manager)
        )


def late_call_result(entry: Entry, out: Outcome | None) -> Any:
    """The caller's reply (or error) for an isolated handler's call outcome that arrived after
    the handler left by another request: nothing else happens."""
    if type(out) is Raised:
        raise HandlerCrashed(entry.ref, out.exception) from out.exception
    assert type(out) is Returned
    value = out.value
    if type(value) is Remove or type(value) is Swap:
        return value.reply
    if value is Remove or value is Swap:
        raise HandlerBadReturn(entry.ref, value, "handle_call", guess=misuse_hint(value))
    return value


def get_state(entries: list[Entry]) -> Procedure:
    """OTP's ``sys:get_state``: ``[(handler, state)]``, newest first. The state is what the
    handler's ``format_status()`` returns if it has one (redaction), else a shallow copy of
    its attributes, taken inside the manager (a consistent snapshot)."""
    states: list[tuple[Any, Any]] = []
    for entry in list(entries):
        out = yield Invoke(_snapshot, (entry.instance,), via=entry.lane)
        state: Any = None
        if type(out) is Raised:
            state = f"<format_status raised {type(out.exception).__name__}; state hidden>"
        elif type(out) is Returned:
            state = out.value
        states.append((entry.ref, state))
    return states


def _snapshot(instance: Any) -> Any:
    """A handler's state for :func:`get_state` (run by the runtime: it may call
    the handler's ``format_status``)."""
    fmt = getattr(instance, "format_status", None)
    if fmt is not None:
        status = fmt()
        if inspect.isawaitable(status):
            if inspect.iscoroutine(status):
                status.close()
            return "<format_status must be a plain method; state hidden>"
        return status
    try:
        return dict(vars(instance))
    except TypeError:  # __slots__ and no __dict__
        return {
            name: getattr(instance, name)
            for klass in type(instance).__mro__
            for name in getattr(klass, "__slots__", ())
            if hasattr(instance, name)
        }
