"""OpenTelemetry tracing for a traced manager (``start(..., tracing=True)``, or
:func:`genevent.tracing.enable` before it starts): what both runtimes' traced faces share.

How the context travels: a traced face wraps what it posts (an event, an info, a call's
request) in a :class:`Carried` envelope that holds the OpenTelemetry context of the span that
was current (or the "send" span it opened). The envelope goes through the mailbox, the drain
loop and any isolated handler's lane as a plain message: no runtime path looks inside it, so an
untraced manager runs exactly the code it ran before tracing existed. The handlers of a traced
manager are instances of a subclass of their class (:func:`traced_class`, made once per class
and manager) whose callbacks unwrap the envelope and run the user's method inside a "process"
span whose parent is the carried context, in whatever task or thread the callback runs in.

``opentelemetry-api`` is imported only here, and only when a traced manager starts.
"""

from __future__ import annotations

import functools
import inspect
import sys
import weakref
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any, Final

from ._errors import InvalidHandler

__all__ = (
    "CALLBACKS",
    "Carried",
    "Tracing",
    "choice",
    "incoming",
    "outgoing",
    "set_default",
    "traced_class",
)

#: the handler callbacks a traced manager opens a span for
CALLBACKS: Final = ("init", "handle_event", "handle_call", "handle_info", "terminate")
#: those of them that receive an envelope (the others run with the current context)
_CARRYING: Final = frozenset({"handle_event", "handle_call", "handle_info"})
#: messaging.operation.type per callback (None: the callback is not a message's processing)
_OPERATION: Final = {
    "handle_event": "process",
    "handle_call": "process",
    "handle_info": "process",
    "init": None,
    "terminate": None,
}

# the process-wide choice (genevent.tracing.enable / disable): (enabled, tracer provider)
_default: list[Any] = [False, None]


def set_default(enabled: bool, provider: Any = None) -> None:
    """Set the process-wide choice read when a manager starts without ``tracing=``."""
    _default[0] = enabled
    _default[1] = provider


def choice(tracing: bool | None) -> tuple[bool, Any]:
    """Whether a manager started with ``tracing=`` is traced, and its tracer provider (None:
    OpenTelemetry's global one): ``tracing`` if given, else the process-wide choice."""
    if tracing is None:
        return bool(_default[0]), _default[1]
    return bool(tracing), _default[1]


class Carried:
    """A message (event, info or request) with the OpenTelemetry context it was posted in."""

    __slots__ = ("context", "message")

    def __init__(self, message: Any, context: Any) -> None:
        self.message = message
        self.context = context

    def __repr__(self) -> str:  # crash reports and logs show the message itself
        return repr(self.message)


def _version() -> str | None:
    """The package's version (read from the loaded package: importing it here would make
    a ring)."""
    version = getattr(sys.modules.get("genevent"), "__version__", None)
    return version if isinstance(version, str) else None


def _handler_name(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


class Tracing:
    """One traced manager's tracer, attributes and handler subclasses."""

    def __init__(self, face: Any, provider: Any = None) -> None:
        from opentelemetry import context, trace  # noqa: PLC0415 - the tracing extra
        from opentelemetry.trace import Status, StatusCode  # noqa: PLC0415

        self.trace = trace
        self.tracer = trace.get_tracer("genevent", _version(), tracer_provider=provider)
        self.current = context.get_current
        self.attach = context.attach
        self.detach = context.detach
        self.in_context = trace.set_span_in_context
        self._status = functools.partial(Status, StatusCode.ERROR)
        self._face = weakref.ref(face)  # a manager nobody references is still collected
        self._classes: dict[type, type] = {}

    @property
    def destination(self) -> str:
        """The manager's name (read each time: a NATS node names its managers after they
        started, before any handler is added), or ``(anonymous)``."""
        face = self._face()
        name = None if face is None else face.name
        return "(anonymous)" if name is None else str(name)

    def error(self, exc: BaseException) -> Any:
        """The status of a span its callback left by raising ``exc`` (its type's name: the
        exception event recorded beside it has the message)."""
        return self._status(type(exc).__name__)

    def attributes(self) -> dict[str, Any]:
        """The attributes every span of the manager has."""
        return {"messaging.system": "genevent", "messaging.destination.name": self.destination}

    def wrap_class(self, cls: type) -> type:
        """The traced subclass of handler class ``cls`` (made once per class)."""
        traced = self._classes.get(cls)
        if traced is None:
            try:
                traced = traced_class(cls, self)
            except Exception as exc:  # its __init_subclass__ (or metaclass) refuses
                raise InvalidHandler(
                    f"{_handler_name(cls)} cannot be traced: making a subclass of it raised "
                    f"{type(exc).__name__}: {exc}"
                ) from exc
            self._classes[cls] = traced
        return traced

    def carry(self, message: Any) -> Carried:
        """``message`` in an envelope with the current context (no span of its own: a
        ``notify`` costs a context read). One already in an envelope (a face method that
        calls another, as ``notify_wait`` calls ``notify``) is left as it is."""
        if message.__class__ is Carried:
            return message
        return Carried(message, self.current())

    def carry_many(self, events: Iterable[Any]) -> list[Carried]:
        """Each of ``events`` (a list or tuple, checked by the caller) in an envelope with the
        current context (``notify_many``: one context for the batch)."""
        context = self.current()
        return [e if e.__class__ is Carried else Carried(e, context) for e in events]

    @contextmanager
    def send(self, operation: str) -> Iterator[Any]:
        """A client span around a request that waits for its answer (``call``,
        ``sync_notify``); yields the context to carry: the new span's."""
        attributes = {
            **self.attributes(),
            "messaging.operation.type": "send",
            "messaging.operation.name": operation,
        }
        with self.tracer.start_as_current_span(
            f"send {self.destination}", kind=self.trace.SpanKind.CLIENT, attributes=attributes
        ) as span:
            yield self.in_context(span)

    def opener(self, callback: str, handler: str) -> Callable[[Any], Any]:
        """What starts the span ``callback`` of ``handler`` runs in, under a context (None:
        the current one); its name and attributes are made once, here."""
        trace = self.trace
        operation = _OPERATION[callback]
        attributes = {**self.attributes(), "genevent.handler": handler, "code.function": callback}
        if operation is None:
            kind = trace.SpanKind.INTERNAL
            name = f"{callback} {self.destination}"
        else:
            kind = trace.SpanKind.CONSUMER
            name = f"{operation} {self.destination}"
            attributes["messaging.operation.type"] = operation
            attributes["messaging.operation.name"] = callback
        return functools.partial(self.tracer.start_span, name, kind=kind, attributes=attributes)


def traced_class(cls: type, tracing: Tracing) -> type:
    """A subclass of ``cls`` whose callbacks (those ``cls`` has) run in spans; what it adds
    lives on the class, so an instance's attributes are the user's alone."""
    handler = _handler_name(cls)
    namespace: dict[str, Any] = {"__module__": cls.__module__, "__qualname__": cls.__qualname__}
    if "__slots__" in cls.__dict__ or not hasattr(cls, "__dict__"):
        namespace["__slots__"] = ()
    traced = type(cls.__name__, (cls,), namespace)
    # set after the class is made: a base's __init_subclass__ (EventHandler's routing by type)
    # may give it methods of its own, which these wrap
    for callback in CALLBACKS:
        method = getattr(traced, callback, None)
        if method is None or not callable(method):
            continue
        # the attribute as stored: a function, or a staticmethod or classmethod, bound per call
        descriptor = inspect.getattr_static(traced, callback)
        wrapped = _wrap(descriptor, method, callback, tracing.opener(callback, handler), tracing)
        setattr(traced, callback, wrapped)
    return traced


def _wrap(
    descriptor: Any,
    method: Callable[..., Any],
    callback: str,
    opener: Callable[[Any], Any],
    tracing: Tracing,
) -> Any:
    """``method`` (``descriptor`` as the class stores it) run in a span: current while it
    runs, with an exception that escapes recorded on it (status ERROR). Written out, not
    ``with start_as_current_span``: a callback's span is the hot path's cost."""
    carrying = callback in _CARRYING
    bind = descriptor.__get__
    cls = type
    attach, detach, in_context, error = (
        tracing.attach,
        tracing.detach,
        tracing.in_context,
        tracing.error,
    )

    def begin(args: tuple[Any, ...]) -> tuple[Any, Any, tuple[Any, ...]]:
        """The span (started and made current), the token to detach it, the arguments."""
        context = None
        if carrying and args and args[0].__class__ is Carried:
            context = args[0].context
            args = (args[0].message, *args[1:])
        span = opener(context)
        return span, attach(in_context(span)), args

    def end(span: Any, token: Any, exc: BaseException | None) -> None:
        if exc is not None:
            try:
                span.set_status(error(exc))
                span.record_exception(exc)
            except Exception:  # an exception whose str raises: the crash stays the user's
                pass
        detach(token)
        span.end()

    if inspect.iscoroutinefunction(method):

        @functools.wraps(method)
        async def traced_async(self: Any, *args: Any, **kwargs: Any) -> Any:
            span, token, args = begin(args)
            try:
                result = await bind(self, cls(self))(*args, **kwargs)
            except BaseException as exc:
                end(span, token, exc)
                raise
            end(span, token, None)
            return result

        return traced_async

    @functools.wraps(method)
    def traced(self: Any, *args: Any, **kwargs: Any) -> Any:
        span, token, args = begin(args)
        try:
            result = bind(self, cls(self))(*args, **kwargs)
        except BaseException as exc:
            end(span, token, exc)
            raise
        end(span, token, None)
        return result

    return traced


def outgoing() -> dict[str, str] | None:
    """The current trace context as message headers (W3C ``traceparent``, by the globally
    configured propagator), or None if there is none (or no ``opentelemetry-api``)."""
    try:
        from opentelemetry import propagate  # noqa: PLC0415 - the tracing extra
    except ImportError:
        return None
    headers: dict[str, str] = {}
    propagate.inject(headers)
    return headers or None


@contextmanager
def incoming(headers: dict[str, str]) -> Iterator[None]:
    """Run the block in the trace context that ``headers`` carry (nothing without
    ``opentelemetry-api``)."""
    try:
        from opentelemetry import context, propagate  # noqa: PLC0415 - the tracing extra
    except ImportError:
        yield
        return
    token = context.attach(propagate.extract(headers))
    try:
        yield
    finally:
        context.detach(token)
