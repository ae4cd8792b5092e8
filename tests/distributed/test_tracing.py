"""Tracing across NATS: the W3C trace context travels in the message headers, so the spans a
traced manager on one node records are children of the span current on the node that sent
the notify or the call."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import nats
import pytest
from nats.aio.msg import Msg

pytest.importorskip("opentelemetry.sdk")

from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from genevent.examples import BroadcastEventHandler
from genevent.nats._link import sync
from genevent.nats._wire import Codec, registered
from tests.distributed.test_durable import _equals, log_of, with_log
from tests.distributed.test_nodes import node, until
from tests.test_tracing import recording


@pytest.fixture
def spans() -> Iterator[tuple[InMemorySpanExporter, TracerProvider]]:
    with recording() as both:
        yield both


def _op(span: ReadableSpan) -> Any:
    assert span.attributes is not None
    return span.attributes.get("messaging.operation.name")


async def test_a_trace_across_two_nodes(
    url: str, ns: str, spans: tuple[InMemorySpanExporter, TracerProvider]
) -> None:
    exporter, tp = spans
    tracer = tp.get_tracer("test")
    async with node(url, ns, "a") as a, node(url, ns, "b") as b:
        await a.start_manager("seed")
        seed = b.manager("seed")
        await seed.add_handler(BroadcastEventHandler)
        with tracer.start_as_current_span("on b") as outer:
            seed.notify(("broadcast", "I dare you!"))
            seed.notify(("broadcast", "Meetup at 10 o'clock"))
            assert await seed.call("BroadcastEventHandler", "broadcasts") == [
                "Meetup at 10 o'clock",
                "I dare you!",
            ]
    origin = outer.get_span_context()
    recorded = [s for s in exporter.get_finished_spans() if s.context.trace_id == origin.trace_id]
    # on node a, the hosted manager's call span is a child of b's span...
    (call,) = [s for s in recorded if s.name == "send seed"]
    assert _op(call) == "call"
    assert call.parent is not None
    assert call.parent.span_id == origin.span_id
    # ...and so are the handler's spans for the notifies; its handle_call's is the call's
    processes = [s for s in recorded if s.name == "process seed"]
    assert all(s.kind is SpanKind.CONSUMER for s in processes)
    parents = sorted((_op(s), s.parent.span_id if s.parent else None) for s in processes)
    assert parents == sorted(
        [
            ("handle_call", call.context.span_id),
            ("handle_event", origin.span_id),
            ("handle_event", origin.span_id),
        ]
    )


async def test_a_batch_frame_carries_notifies_of_one_context(
    url: str, ns: str, spans: tuple[InMemorySpanExporter, TracerProvider]
) -> None:
    _, tp = spans
    tracer = tp.get_tracer("test")
    raw = await nats.connect(url)
    frames: list[tuple[str | None, str]] = []

    async def seen(msg: Msg) -> None:
        op = Codec(registered(())).decode_request(msg.data).op
        frames.append(((msg.headers or {}).get("traceparent"), op))

    try:
        await raw.subscribe(f"ge.{ns}.mgr.seed.*", cb=seen)
        await sync(raw)  # the server has the subscription (flush() alone may overtake it)
        async with node(url, ns, "a") as a, node(url, ns, "b") as b:
            await a.start_manager("seed")
            seed = b.manager("seed")
            await seed.add_handler(BroadcastEventHandler)
            with tracer.start_as_current_span("one") as one:
                for i in range(3):
                    seed.notify(("broadcast", str(i)))
            with tracer.start_as_current_span("two") as two:
                for i in range(2):
                    seed.notify(("broadcast", str(i)))
            texts = await seed.call("BroadcastEventHandler", "broadcasts")
            assert texts == ["1", "0", "2", "1", "0"]

            async def both_batches() -> bool:  # the spy's callback runs after its reads
                return sum(op in ("notify", "batch") for _, op in frames) >= 2

            await until(both_batches, "the spy saw both batches")
    finally:
        await raw.close()
    notifies = [f for f in frames if f[1] in ("notify", "batch")]
    ids = [f"{s.get_span_context().span_id:016x}" for s in (one, two)]
    assert [(tp is not None and ids[0] in tp, op) for tp, op in notifies[:1]] == [(True, "batch")]
    assert [(tp is not None and ids[1] in tp, op) for tp, op in notifies[1:]] == [(True, "batch")]


async def test_a_durable_notify_carries_its_trace(
    url: str, ns: str, spans: tuple[InMemorySpanExporter, TracerProvider]
) -> None:
    """The trace context is stored with a durable event: on the consuming node, the delivery
    (a ``sync_notify``: a "send" span) is a child of the span current at ``notify_durable``,
    and the handler's span a child of the delivery; an event sent outside any span starts a
    trace of its own."""
    exporter, tp = spans
    tracer = tp.get_tracer("test")
    async with node(url, ns, "a") as a, node(url, ns, "b") as b:
        mgr = await a.start_manager("ledger", durable=True, setup=with_log)
        ledger = b.manager("ledger")
        with tracer.start_as_current_span("on b") as outer:
            await ledger.notify_durable("in a span")
        await ledger.notify_durable("outside")
        await until(lambda: _equals(log_of(mgr), ["in a span", "outside"]), "both handled")
    origin = outer.get_span_context()
    finished = exporter.get_finished_spans()
    handled = [s for s in finished if s.name == "process ledger" and _op(s) == "handle_event"]
    assert len(handled) == 2
    (inside,) = [s for s in handled if s.context.trace_id == origin.trace_id]
    (delivery,) = [s for s in finished if inside.parent and s.context == inside.parent]
    assert delivery.name == "send ledger"
    assert _op(delivery) == "sync_notify"
    assert delivery.parent is not None
    assert delivery.parent.span_id == origin.span_id
