"""Tracing with OpenTelemetry: the spans a traced manager records (the SDK's in-memory
exporter), their parents across tasks, threads and isolated lanes, crashes on spans, and that
an untraced manager is the plain one."""

from __future__ import annotations

import asyncio
import threading
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, ClassVar

import pytest

pytest.importorskip("opentelemetry.sdk")

from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from genevent import EventHandler, HandlerCrashed, InvalidHandler, aio, handles, threads, tracing
from genevent.aio._manager import EventManager as AioManager
from genevent.examples import BroadcastEventHandler
from genevent.threads._manager import EventManager as ThreadManager

HANDLER = "genevent.examples.BroadcastEventHandler"


@contextmanager
def recording() -> Iterator[tuple[InMemorySpanExporter, TracerProvider]]:
    """An in-memory exporter behind a provider that :func:`tracing.enable` makes the default
    while the block runs."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracing.enable(tracer_provider=provider)
    try:
        yield exporter, provider
    finally:
        tracing.disable()
        provider.shutdown()


@pytest.fixture
def spans() -> Iterator[tuple[InMemorySpanExporter, TracerProvider]]:
    """See :func:`recording`."""
    with recording() as both:
        yield both


def _by_name(exporter: InMemorySpanExporter, name: str) -> list[ReadableSpan]:
    return [s for s in exporter.get_finished_spans() if s.name == name]


def _attr(span: Any, key: str) -> Any:
    assert span.attributes is not None
    return span.attributes[key]


def _parent_id(span: ReadableSpan) -> int | None:
    return None if span.parent is None else span.parent.span_id


def _check_seed_session(exporter: InMemorySpanExporter, outer: Any) -> None:
    """The seed session's trace, under the span ``outer`` that was current: each notify's
    ``handle_event`` span a child of it; the call a client span, child of it, with the
    handler's ``handle_call`` span as its child."""
    origin = outer.get_span_context()
    (call,) = _by_name(exporter, "send seed")
    assert _attr(call, "messaging.operation.name") == "call"
    assert call.kind is SpanKind.CLIENT
    assert _parent_id(call) == origin.span_id
    processes = _by_name(exporter, "process seed")
    events = [s for s in processes if _attr(s, "messaging.operation.name") == "handle_event"]
    (answer,) = [s for s in processes if _attr(s, "messaging.operation.name") == "handle_call"]
    assert [_parent_id(s) for s in events] == [origin.span_id, origin.span_id]
    assert _parent_id(answer) == call.context.span_id
    for span in [*events, answer]:
        assert span.kind is SpanKind.CONSUMER
        assert span.context.trace_id == origin.trace_id
        assert _attr(span, "messaging.system") == "genevent"
        assert _attr(span, "messaging.destination.name") == "seed"
        assert _attr(span, "messaging.operation.type") == "process"
        assert _attr(span, "genevent.handler") == HANDLER
    (init,) = _by_name(exporter, "init seed")
    assert init.kind is SpanKind.INTERNAL


def test_the_seed_session_on_asyncio(spans: tuple[InMemorySpanExporter, TracerProvider]) -> None:
    exporter, provider = spans
    tracer = provider.get_tracer("test")

    async def main() -> tuple[list[str], Any]:
        async with aio.start(name="seed") as mgr:
            await mgr.add_handler(BroadcastEventHandler)
            with tracer.start_as_current_span("session") as outer:
                mgr.notify(("broadcast", "I dare you!"))
                mgr.notify(("broadcast", "Meetup at 10 o'clock"))
                return await mgr.call(BroadcastEventHandler, "broadcasts"), outer

    got, outer = asyncio.run(main())
    assert got == ["Meetup at 10 o'clock", "I dare you!"]
    _check_seed_session(exporter, outer)


def test_the_seed_session_on_threads(spans: tuple[InMemorySpanExporter, TracerProvider]) -> None:
    exporter, provider = spans
    tracer = provider.get_tracer("test")
    with threads.start(name="seed") as mgr:
        mgr.add_handler(BroadcastEventHandler)
        with tracer.start_as_current_span("session") as outer:
            mgr.notify(("broadcast", "I dare you!"))
            mgr.notify(("broadcast", "Meetup at 10 o'clock"))
            got = mgr.call(BroadcastEventHandler, "broadcasts")
    assert got == ["Meetup at 10 o'clock", "I dare you!"]
    _check_seed_session(exporter, outer)


def test_sync_notify_is_a_client_span_under_the_current_one(
    spans: tuple[InMemorySpanExporter, TracerProvider],
) -> None:
    exporter, provider = spans
    tracer = provider.get_tracer("test")
    with threads.start(name="seed") as mgr:
        mgr.add_handler(BroadcastEventHandler)
        with tracer.start_as_current_span("request") as outer:
            mgr.sync_notify(("broadcast", "there"))
    (sync,) = _by_name(exporter, "send seed")
    assert _attr(sync, "messaging.operation.name") == "sync_notify"
    assert sync.kind is SpanKind.CLIENT
    assert _parent_id(sync) == outer.get_span_context().span_id
    (process,) = _by_name(exporter, "process seed")
    assert _parent_id(process) == sync.context.span_id


class Recorder(EventHandler[Any, Any, Any]):
    """Records the thread each event ran in and the span that was current there."""

    def init(self, seen: list[tuple[int, int]], /) -> None:
        self.seen = seen

    def handle_event(self, event: Any, /) -> None:
        span = trace.get_current_span().get_span_context().span_id
        self.seen.append((threading.get_ident(), span))


def _check_isolated(
    exporter: InMemorySpanExporter, seen: list[tuple[int, int]], outer: Any
) -> None:
    (process,) = [
        s
        for s in _by_name(exporter, "process lanes")
        if _parent_id(s) == outer.get_span_context().span_id
    ]
    assert _attr(process, "messaging.operation.name") == "handle_event"
    assert seen == [(seen[0][0], process.context.span_id)]  # current in the handler itself


@pytest.mark.parametrize("isolation", ["task", "thread"])
def test_an_isolated_handler_on_asyncio(
    spans: tuple[InMemorySpanExporter, TracerProvider], isolation: Any
) -> None:
    exporter, provider = spans
    tracer = provider.get_tracer("test")
    seen: list[tuple[int, int]] = []

    async def main() -> Any:
        async with aio.start(name="lanes") as mgr:
            await mgr.add_handler(Recorder, seen, isolation=isolation)
            with tracer.start_as_current_span("producer") as outer:
                mgr.notify("event")
            await mgr.sync_notify("barrier")
            return outer

    outer = asyncio.run(main())
    seen = seen[:1]
    _check_isolated(exporter, seen, outer)
    if isolation == "thread":
        assert seen[0][0] != threading.get_ident()


def test_an_isolated_handler_on_threads(
    spans: tuple[InMemorySpanExporter, TracerProvider],
) -> None:
    exporter, provider = spans
    seen: list[tuple[int, int]] = []
    with threads.start(name="lanes") as mgr:
        mgr.add_handler(Recorder, seen, isolation=True)
        with provider.get_tracer("test").start_as_current_span("producer") as outer:
            mgr.notify("event")
        mgr.sync_notify("barrier")
    _check_isolated(exporter, seen[:1], outer)
    assert seen[0][0] != threading.get_ident()


class Crasher(EventHandler[Any, Any, Any]):
    """Raises on every event; records its ``terminate`` reason."""

    def handle_event(self, event: Any, /) -> None:
        raise RuntimeError(f"cannot handle {event!r}")

    def terminate(self, reason: Any, /) -> None:
        return None


@pytest.mark.filterwarnings("ignore")
def test_a_crash_is_recorded_on_the_handlers_span(
    spans: tuple[InMemorySpanExporter, Any], caplog: pytest.LogCaptureFixture
) -> None:
    exporter, _ = spans
    with threads.start(name="crash") as mgr:
        mgr.add_handler(Crasher)
        mgr.sync_notify("boom")
        assert mgr.which_handlers() == []  # removed, as without tracing
    (process,) = _by_name(exporter, "process crash")
    assert process.status.status_code is StatusCode.ERROR
    (exception,) = [e for e in process.events if e.name == "exception"]
    assert exception.attributes is not None
    assert _attr(exception, "exception.type") == "RuntimeError"
    assert "cannot handle 'boom'" in str(_attr(exception, "exception.message"))
    (terminate,) = _by_name(exporter, "terminate crash")
    assert terminate.status.status_code is not StatusCode.ERROR
    assert "cannot handle 'boom'" in caplog.text  # the crash report shows the event itself
    (record,) = [r for r in caplog.records if hasattr(r, "genevent")]
    assert record.genevent["message"] == "boom"


class NoStr(Exception):
    """An exception whose text cannot be made."""

    def __str__(self) -> str:
        raise RuntimeError("no str")


class Static(EventHandler[Any, Any, Any]):
    """Its callbacks are a staticmethod and a classmethod."""

    seen: ClassVar[list[Any]] = []

    @staticmethod
    def handle_event(event: Any, /) -> None:
        Static.seen.append(event)

    @classmethod
    def handle_call(cls, request: Any, /) -> Any:
        if request == "raise":
            raise NoStr
        return list(cls.seen)


@pytest.mark.filterwarnings("ignore")
def test_static_and_class_methods_and_an_exception_without_text(
    spans: tuple[InMemorySpanExporter, Any],
) -> None:
    exporter, _ = spans
    with threads.start(name="static") as mgr:
        mgr.add_handler(Static)
        mgr.notify("e")
        assert mgr.call(Static, "get") == ["e"]
        with pytest.raises(HandlerCrashed) as crashed:
            mgr.call(Static, "raise")
        assert isinstance(crashed.value.__cause__, NoStr)  # the user's exception, unchanged
    failed = [s for s in _by_name(exporter, "process static") if not s.status.is_ok]
    assert [s.status.description for s in failed] == ["NoStr"]


def test_a_handler_state_is_the_users_own(spans: tuple[InMemorySpanExporter, Any]) -> None:
    with threads.start(name="state") as mgr:
        mgr.add_handler(BroadcastEventHandler)
        mgr.sync_notify(("broadcast", "kept"))
        assert mgr.get_state() == [(BroadcastEventHandler, {"broadcasts": ["kept"]})]


def test_off_by_default_and_untraced_managers_are_the_plain_faces() -> None:
    assert not tracing.is_enabled()
    with threads.start() as mgr:
        assert type(mgr) is ThreadManager

    async def main() -> None:
        async with aio.start() as amgr:
            assert type(amgr) is AioManager

    asyncio.run(main())


def test_tracing_false_leaves_one_manager_untraced(
    spans: tuple[InMemorySpanExporter, Any],
) -> None:
    exporter, _ = spans
    with threads.start(name="one") as traced, threads.start(name="two", tracing=False) as plain:
        traced.add_handler(BroadcastEventHandler)
        plain.add_handler(BroadcastEventHandler)
        traced.sync_notify(("broadcast", "a"))
        plain.sync_notify(("broadcast", "b"))
    assert {_attr(s, "messaging.destination.name") for s in exporter.get_finished_spans()} == {
        "one"
    }
    assert type(plain) is ThreadManager


def test_the_future_and_coroutine_forms_carry_the_context(
    spans: tuple[InMemorySpanExporter, TracerProvider],
) -> None:
    exporter, provider = spans
    tracer = provider.get_tracer("test")
    with threads.start(name="forms") as mgr:
        mgr.add_handler(BroadcastEventHandler)
        with tracer.start_as_current_span("outer") as outer:
            mgr.sync_notify_future(("broadcast", "a")).result(5)
            assert mgr.call_future(BroadcastEventHandler, "broadcasts").result(5) == ["a"]

            async def forms() -> None:
                await mgr.async_sync_notify(("broadcast", "b"))
                assert await mgr.acall(BroadcastEventHandler, "broadcasts") == ["b"]

            asyncio.run(forms())
    trace_id = outer.get_span_context().trace_id
    processes = _by_name(exporter, "process forms")
    assert len(processes) == 4
    assert {s.context.trace_id for s in processes} == {trace_id}


@pytest.mark.parametrize("maxsize", [None, 4])
def test_bounded_and_inline_managers_are_traced(
    spans: tuple[InMemorySpanExporter, Any], maxsize: int | None
) -> None:
    exporter, _ = spans
    with threads.start(name="t", maxsize=maxsize, inline=True) as mgr:
        mgr.add_handler(BroadcastEventHandler)
        mgr.notify(("broadcast", "x"))
        assert mgr.call(BroadcastEventHandler, "broadcasts") == ["x"]

    async def main() -> None:
        async with aio.start(name="a", maxsize=maxsize) as amgr:
            await amgr.add_handler(BroadcastEventHandler)
            await amgr.notify_wait(("broadcast", "y"))
            assert await amgr.call(BroadcastEventHandler, "broadcasts") == ["y"]

    asyncio.run(main())
    names = sorted(
        (_attr(s, "messaging.destination.name"), _attr(s, "code.function"))
        for s in exporter.get_finished_spans()
        if s.name.startswith("process")
    )
    assert names == [
        ("a", "handle_call"),
        ("a", "handle_event"),
        ("t", "handle_call"),
        ("t", "handle_event"),
    ]


@dataclass
class Placed:
    """An event routed by type."""

    order: int


class Routed(EventHandler[Any, Any, Any]):
    """Routes by type (``@handles``), with a coroutine method: its routing is traced too."""

    def init(self, args: Any = None, /) -> None:
        self.seen: list[Any] = []

    @handles(Placed)
    async def placed(self, event: Placed) -> None:
        self.seen.append(event.order)

    @handles(int)
    def number(self, event: int) -> None:
        self.seen.append(event)

    def handle_call(self, request: Any, /) -> list[Any]:
        return self.seen


def test_a_handler_routing_by_type(spans: tuple[InMemorySpanExporter, Any]) -> None:
    exporter, _ = spans

    async def main() -> list[Any]:
        async with aio.start(name="routed") as mgr:
            await mgr.add_handler(Routed)
            for e in (Placed(1), 2, "ignored", Placed(3)):
                mgr.notify(e)
            return await mgr.call(Routed, "get")

    assert asyncio.run(main()) == [1, 2, 3]
    events = [
        s
        for s in _by_name(exporter, "process routed")
        if _attr(s, "code.function") == "handle_event"
    ]
    assert len(events) == 4


def test_a_traced_manager_nobody_references_is_collected(
    spans: tuple[InMemorySpanExporter, Any],
) -> None:
    mgr = threads.start()
    mgr.add_handler(BroadcastEventHandler)
    ref = weakref.ref(mgr)
    with pytest.warns(ResourceWarning, match="garbage collected while running"):  # noqa: PT031
        del mgr
        assert ref() is None


class Unsubclassable(EventHandler[Any, Any, Any]):
    """Refuses subclasses: it cannot be traced."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        raise TypeError("no subclasses")

    def handle_event(self, event: Any, /) -> None:
        return None


def test_a_handler_that_cannot_be_subclassed_is_refused(
    spans: tuple[InMemorySpanExporter, Any],
) -> None:
    with threads.start(name="refuses") as mgr:
        with pytest.raises(InvalidHandler, match=r"cannot be traced: .*no subclasses"):
            mgr.add_handler(Unsubclassable)
        assert mgr.which_handlers() == []
        mgr.add_handler(BroadcastEventHandler)  # the manager carries on
        assert mgr.call(BroadcastEventHandler, "broadcasts") == []


def test_notify_many_carries_one_context_for_the_batch(
    spans: tuple[InMemorySpanExporter, TracerProvider],
) -> None:
    exporter, provider = spans
    tracer = provider.get_tracer("test")
    with threads.start(name="many") as mgr:
        mgr.add_handler(BroadcastEventHandler)
        with pytest.raises(TypeError, match="use notify"):
            mgr.notify_many("not a batch")
        with tracer.start_as_current_span("batch") as outer:
            mgr.notify_many(("broadcast", str(i)) for i in range(3))
        assert mgr.call(BroadcastEventHandler, "broadcasts") == ["2", "1", "0"]

    async def main() -> None:
        async with aio.start(name="many") as amgr:
            await amgr.add_handler(BroadcastEventHandler)
            with tracer.start_as_current_span("batch") as aouter:
                amgr.notify_many([("broadcast", "a"), ("broadcast", "b")])
            assert await amgr.call(BroadcastEventHandler, "broadcasts") == ["b", "a"]
            outers.append(aouter)

    outers = [outer]
    asyncio.run(main())
    events = [
        s for s in _by_name(exporter, "process many") if _attr(s, "code.function") == "handle_event"
    ]
    expected = [o.get_span_context().span_id for o in outers]
    assert sorted(_parent_id(s) or 0 for s in events) == sorted(
        [expected[0]] * 3 + [expected[1]] * 2
    )
