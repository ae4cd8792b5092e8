"""What the core reads from a handler class (once per class), and handler references.

Reading a class runs no user code: ``inspect`` and ``weakref`` only.
"""

from __future__ import annotations

import inspect
import weakref
from typing import Any

from .._errors import InvalidHandler
from .._text import short

__all__ = ("ClassInfo", "check_class", "constructor_hint", "handler_key", "info_of")


class ClassInfo:
    """What the core needs to know about a handler class, read once per class."""

    __slots__ = (
        "async_methods",
        "call_is_async",
        "event_is_async",
        "has_call",
        "has_info",
        "has_terminate",
        "info_is_async",
        "init_handoff",
        "init_required",
        "is_async",
        "plain_call",
        "terminate_is_async",
    )

    def __init__(self, cls: type) -> None:
        handle_event = getattr(cls, "handle_event", None)
        if not callable(handle_event):
            raise InvalidHandler(f"{cls.__qualname__} has no handle_event method")
        self.has_call = callable(getattr(cls, "handle_call", None))
        self.has_info = callable(getattr(cls, "handle_info", None))
        self.has_terminate = callable(getattr(cls, "terminate", None))
        self.async_methods = frozenset(
            name
            for name in ("init", "handle_event", "handle_call", "handle_info", "terminate")
            if inspect.iscoroutinefunction(getattr(cls, name, None))
        )
        self.init_handoff = _accepts_handoff(getattr(cls, "init", None))
        #: the parameters of ``init`` (besides ``self`` and ``handoff``) without a default:
        #: with no ``args`` given, the handler is refused before it is created
        self.init_required = _required_params(getattr(cls, "init", None))
        self.call_is_async = "handle_call" in self.async_methods
        self.event_is_async = "handle_event" in self.async_methods
        self.is_async = bool(self.async_methods)
        self.info_is_async = "handle_info" in self.async_methods
        self.terminate_is_async = "terminate" in self.async_methods
        #: a plain ``handle_call``: runtimes may call it themselves on their fast paths
        self.plain_call = self.has_call and not self.call_is_async


def _accepts_handoff(init: Any) -> bool:
    if init is None:
        return False
    try:
        params = inspect.signature(init).parameters.values()
    except (TypeError, ValueError):  # builtins without a signature
        return False
    return any(
        p.kind is p.VAR_KEYWORD
        or (p.name == "handoff" and p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD))
        for p in params
    )


def _required_params(init: Any) -> tuple[str, ...]:
    if init is None:
        return ()
    try:
        params = list(inspect.signature(init).parameters.values())
    except (TypeError, ValueError):  # builtins without a signature
        return ()
    if inspect.isfunction(init) and params and params[0].kind is not params[0].KEYWORD_ONLY:
        params = params[1:]  # read from the class: the plain function's self
    return tuple(
        p.name
        for p in params
        if p.default is p.empty
        and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
        and p.name != "handoff"
    )


_class_info: weakref.WeakKeyDictionary[type, ClassInfo] = weakref.WeakKeyDictionary()


_last_info: tuple[weakref.ref[type], ClassInfo] | None = None
"""The class read last and its info: adding, finding and checking handlers of one class in a
row (the usual case) skips the weak dictionary's lookup (it makes a weak reference per call)."""


def info_of(cls: type) -> ClassInfo:
    global _last_info  # a one-entry cache, replaced whole (thread-safe)
    last = _last_info
    if last is not None and last[0]() is cls:
        return last[1]
    info = _class_info.get(cls)
    if info is None:
        info = _class_info[cls] = ClassInfo(cls)
    _last_info = (weakref.ref(cls), info)
    return info


def handler_key(ref: Any) -> type:
    """Check that ``ref`` is a handler reference (a class, or a ``(class, id)`` pair with a
    hashable id) and return its class. Raises :class:`InvalidHandler` otherwise."""
    if isinstance(ref, type):
        cls = ref
    elif isinstance(ref, tuple) and len(ref) == 2 and isinstance(ref[0], type):
        cls = ref[0]
        try:  # what is not Hashable raises here too (cheaper than the ABC's isinstance)
            hash(ref[1])
        except Exception as exc:
            raise InvalidHandler(f"handler id {short(ref[1])} is not hashable") from exc
    else:
        raise InvalidHandler(
            f"{short(ref)} is not a handler reference: pass a handler class or (class, id)"
        )
    try:
        hash(cls)
    except Exception as exc:  # a metaclass that makes its classes unhashable
        raise InvalidHandler(
            f"handler class {short(cls)} is not hashable (its metaclass "
            f"{short(type(cls))} defines __eq__ without __hash__)"
        ) from exc
    info_of(cls)
    return cls


def check_class(cls: type, allow_async: bool) -> ClassInfo:
    """``cls``'s :class:`ClassInfo`; :class:`InvalidHandler` if it has coroutine methods and
    the runtime (``allow_async`` False) runs handlers synchronously."""
    info = info_of(cls)
    if info.async_methods and not allow_async:
        raise InvalidHandler(
            f"{cls.__qualname__} has coroutine methods "
            f"({', '.join(sorted(info.async_methods))}); this runtime runs handlers "
            "synchronously (use the asyncio runtime for coroutine handlers)"
        )
    return info


def constructor_hint(cls: type, exc: BaseException) -> str:
    """What to say when creating ``cls()`` raised ``exc``: if its ``__init__`` requires
    arguments, that the manager passes ``args`` to ``init`` instead."""
    if not isinstance(exc, TypeError):
        return ""
    try:
        params = inspect.signature(cls).parameters.values()
    except (TypeError, ValueError):
        return ""
    required = [
        p.name
        for p in params
        if p.default is p.empty and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
    ]
    if not required:
        return ""
    return (
        f" (its __init__ requires {', '.join(required)}); the manager creates the class "
        f"without arguments, {cls.__qualname__}(), and passes add_handler's args to its init(): "
        "take them in init, not __init__"
    )
