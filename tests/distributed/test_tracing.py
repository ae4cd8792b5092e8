"""Tracing across NATS: the W3C trace context travels in the message headers, so the spans a
traced manager on one node records are children of the span current on the node that sent
the notify or the call."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

pytest.importorskip("opentelemetry.sdk")

from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from genevent import tracing
from genevent.examples import BroadcastEventHandler
from tests.distributed.test_nodes import node


@pytest.fixture
def provider() -> Iterator[tuple[InMemorySpanExporter, TracerProvider]]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracing.enable(tracer_provider=provider)
    try:
        yield exporter, provider
    finally:
        tracing.disable()
        provider.shutdown()


def _op(span: ReadableSpan) -> Any:
    assert span.attributes is not None
    return span.attributes.get("messaging.operation.name")


async def test_a_trace_across_two_nodes(
    url: str, ns: str, provider: tuple[InMemorySpanExporter, TracerProvider]
) -> None:
    exporter, tp = provider
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
    spans = exporter.get_finished_spans()
    sends = {s.context.span_id: s for s in spans if s.name == "send seed"}
    in_trace = [s for s in sends.values() if s.context.trace_id == origin.trace_id]
    # on node a, the hosted manager's notify and call spans are children of b's span
    assert sorted(_op(s) for s in in_trace) == ["call", "notify", "notify"]
    assert {s.parent.span_id for s in in_trace if s.parent} == {origin.span_id}
    processes = [s for s in spans if s.name == "process seed"]
    handled = [s for s in processes if s.parent and s.parent.span_id in sends]
    in_origin = [s for s in handled if s.context.trace_id == origin.trace_id]
    assert sorted(_op(s) for s in in_origin) == ["handle_call", "handle_event", "handle_event"]
    assert all(s.kind is SpanKind.CONSUMER for s in in_origin)
