"""``add_handler`` for a plain handler as one plain step: the rules of
:meth:`ManagerCore.add_handler` (through :func:`._callbacks.start`) applied by calling the
handler's class and its ``init`` directly, with no effect or outcome objects, for a runtime
that runs callbacks in place (a queued request on a busy manager). It applies to a handler
with no owner, no restart policy and no lane whose ``init`` is not a coroutine; a runtime
passes anything else to the general procedure."""

from __future__ import annotations

from collections.abc import Callable, Generator
from typing import Any, NoReturn, Protocol

from .._errors import HandlerExists, HandlerInitFailed
from ._classes import check_class, constructor_hint, handler_key
from ._effects import Effect, Invoke, Outcome, Procedure, Raised
from ._entry import Entry
from ._instructions import NO_ARGS, Args

__all__ = ("PlainTable", "plain_add")


class PlainTable(Protocol):
    """What :func:`plain_add` uses of the core (see :class:`ManagerCore` for each)."""

    allow_async: bool
    wrap_class: Callable[[type], type] | None

    def find(self, ref: Any) -> Entry | None:
        """The entry installed under ``ref``, or None."""

    def _link(self, index: int, entry: Entry) -> bool:
        """Put ``entry`` in the table at ``index``."""

    def add_handler(self, ref: Any, args: Any = NO_ARGS) -> Procedure:
        """The general procedure."""


def plain_add(core: PlainTable, ref: Any, args: Any) -> Procedure | None:
    """``core.add_handler(ref, args)`` (no owner, restart or lane) run here: None once the
    handler is installed; the typed error the general procedure raises (:class:`HandlerExists`,
    :class:`HandlerInitFailed`, :class:`InvalidHandler`), raised here in the same order. What
    is left to a runtime's general driver is returned as a procedure to drive: the whole of
    it when ``init`` is a coroutine; the rest of it when the class or ``init`` raised
    something that is not an :class:`Exception` (a KeyboardInterrupt, a cancellation), whose
    first effect raises it again, so that the driver treats it as its own."""
    cls = handler_key(ref)
    if core.find(ref) is not None:
        raise HandlerExists(ref)
    info = check_class(cls, core.allow_async)
    if "init" in info.async_methods:
        return core.add_handler(ref, args)
    if args is NO_ARGS and info.init_required:
        raise HandlerInitFailed(ref, None, missing=info.init_required)
    wrap = core.wrap_class
    try:
        instance = cls() if wrap is None else wrap(cls)()
    except Exception as exc:
        raise HandlerInitFailed(
            ref, exc, constructing=True, hint=constructor_hint(cls, exc)
        ) from exc
    except BaseException as exc:
        return _rest(
            exc,
            lambda e: HandlerInitFailed(ref, e, constructing=True, hint=constructor_hint(cls, e)),
        )
    init = getattr(instance, "init", None)
    if init is not None:
        try:
            if args.__class__ is Args:  # several arguments: init(*args, **kwargs)
                value = init(*args.args, **args.kwargs) if args.kwargs else init(*args.args)
            elif args is NO_ARGS:  # none given: init(), its defaults apply
                value = init()
            else:
                value = init(args)
        except Exception as exc:
            raise HandlerInitFailed(ref, exc) from exc
        except BaseException as exc:
            return _rest(exc, lambda e: HandlerInitFailed(ref, e))
        if value is not None:
            raise HandlerInitFailed(ref, None, value)
    # init may have re-entered (a notify is queued, never run inline), so re-check.
    if core.find(ref) is not None:
        raise HandlerExists(ref)
    core._link(0, Entry(ref, instance, info, None, None, None))  # no owner: nothing to watch
    return None


def _raise(exc: BaseException) -> NoReturn:
    raise exc


def _rest(
    exc: BaseException, error: Callable[[BaseException], Exception]
) -> Generator[Effect, Any, None]:
    out: Outcome = yield Invoke(_raise, (exc,))
    assert type(out) is Raised  # as the general procedure meets it
    raise error(out.exception) from out.exception
