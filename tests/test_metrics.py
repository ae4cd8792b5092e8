"""Metrics (``stats()``) on both runtimes, and the Prometheus exporter."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from genevent import EventHandler, ManagerNotRunning, ManagerStats, aio, threads
from genevent._metrics import SAMPLE_EVERY, Histogram, Timings, timed


class Count(EventHandler[Any, str, int]):
    def init(self, args: object = None) -> None:
        self.n = 0

    def handle_event(self, event: Any, /) -> None:
        if event == "boom":
            raise ValueError("boom")
        self.n += 1

    def handle_call(self, request: str, /) -> int:
        return self.n


def check_threads(stats: ManagerStats) -> None:
    assert stats.running
    assert stats.events == 6  # 5 notifies + 1 sync_notify (the crash's event counts too)
    assert stats.events_in == 6
    assert stats.infos == 1
    assert stats.crashes == 1
    assert stats.restarts == 1
    assert stats.queued == 0
    assert stats.high_water >= 1
    (h,) = stats.handlers
    assert h.handler is Count
    assert h.crashes == 1
    assert h.restarts == 1


@pytest.mark.parametrize("inline", [False, True])
def test_thread_stats(inline: bool) -> None:
    with threads.start("counted", inline=inline) as mgr:
        mgr.add_handler(Count, restart="transient")
        for e in (1, 2, "boom", 3, 4):
            mgr.notify(e)
        mgr.send("info")
        mgr.sync_notify(5)
        stats = mgr.stats()
        check_threads(stats)
        assert stats.name == "counted"
        assert stats.requests >= 2  # add_handler, sync_notify
        assert stats.handlers[0].events == 3  # since its restart: 3, 4, 5
        assert stats.handlers[0].timing is None  # off by default
    after = mgr.stats()
    assert not after.running
    with pytest.raises(ManagerNotRunning):
        mgr.notify(6)
    assert mgr.stats().refused == 1


def test_thread_timing_when_asked() -> None:
    with threads.start(timing=True) as mgr:
        mgr.add_handler(Count)
        for i in range(100):
            mgr.notify(i)
        mgr.sync_notify(100)
        timing = mgr.stats().handlers[0].timing
    assert timing is not None
    assert timing["count"] == 4  # sampled: calls 1, 33, 65 and 97 of 101
    p50, p99 = timing["p50"], timing["p99"]
    assert p50 is not None
    assert p99 is not None
    assert 0 < p50 <= p99


class FakeClock:
    """A nanosecond clock that moves only when a handler says how long it took."""

    def __init__(self) -> None:
        self.now = 0

    def __call__(self) -> int:
        return self.now


def test_timing_samples_the_first_call_then_one_in_every() -> None:
    clock = FakeClock()
    hist = Histogram()
    calls: list[int] = []
    fn = timed(calls.append, hist, clock, 8)
    fn(0)
    assert hist.count == 1  # a handler called once has its sample
    for i in range(1, 8 * 5):
        fn(i)
    assert calls == list(range(40))
    assert hist.count == 5  # calls 0, 8, 16, 24 and 32
    fn(40)
    assert hist.count == 6


def test_sampled_timing_still_shows_a_slow_tail() -> None:
    """One call in 37 is slow (coprime with the sampling period, so the samples meet each
    phase of it alike): p50 stays fast, p99 shows the slow calls."""
    clock = FakeClock()
    timings = Timings(clock)
    assert timings.every == SAMPLE_EVERY == 32

    class Entry:
        ref = "slow-sometimes"

    def handle_event(i: int) -> None:
        clock.now += 1_000_000 if i % 37 == 5 else 1_000  # 1 ms, else 1 us

    fn = timings.wrap(Entry(), handle_event)
    for i in range(32 * 37 * 2):
        fn(i)
    snap = timings.histograms["slow-sometimes"].snapshot()
    assert snap["count"] == 37 * 2
    p50, p90, p99 = snap["p50"], snap["p90"], snap["p99"]
    assert p50 is not None
    assert p90 is not None
    assert p99 is not None
    assert 1e-6 <= p50 < 2e-6
    assert 1e-6 <= p90 < 2e-6
    assert 1e-3 <= p99 < 2e-3


async def test_aio_stats() -> None:
    async with aio.start("counted-aio", timing=True) as mgr:
        await mgr.add_handler(Count, restart="transient")
        for e in (1, 2, "boom", 3, 4):
            mgr.notify(e)
        mgr.send("info")
        await mgr.sync_notify(5)
        stats = mgr.stats()
        assert stats.events == 6
        assert stats.infos == 1
        assert stats.crashes == 1
        assert stats.restarts == 1
        assert stats.requests >= 2
        (h,) = stats.handlers
        assert h.events == 3
        assert h.timing is not None
        # sampled: the first call (event 1), then the restarted handler's first (event 3)
        assert h.timing["count"] == 2


async def test_aio_inline_requests_are_counted() -> None:
    async with aio.start() as mgr:
        await mgr.add_handler(Count)
        before = mgr.stats().requests
        for _ in range(3):
            await mgr.call(Count, "n")  # idle manager: inline
        await mgr.sync_notify(1)
        await mgr.which_handlers()
        stats = mgr.stats()
        assert stats.requests - before == 5
        assert stats.events == 1


def test_prometheus_exporter() -> None:
    prometheus_client = pytest.importorskip("prometheus_client")
    from genevent.prometheus import GenEventCollector  # noqa: PLC0415 - needs the extra

    registry = prometheus_client.CollectorRegistry()
    with threads.start("exported") as mgr:
        mgr.add_handler(Count)
        for e in (1, "boom"):
            mgr.notify(e)
        mgr.add_handler(Count)
        mgr.sync_notify(2)
        registry.register(GenEventCollector())
        text = prometheus_client.generate_latest(registry).decode()
    assert 'genevent_events_total{manager="exported"} 3.0' in text
    assert 'genevent_crashes_total{manager="exported"} 1.0' in text
    assert 'genevent_handler_events_total{handler="Count",manager="exported"} 1.0' in text
    assert "genevent_mailbox_queued" in text
    assert 'genevent_dropped_total{manager="exported"} 0.0' in text
    assert 'genevent_lane_dropped_total{manager="exported"} 0.0' in text
    assert 'genevent_handler_dropped_total{handler="Count",manager="exported"} 0.0' in text


async def test_prometheus_over_given_managers() -> None:
    prometheus_client = pytest.importorskip("prometheus_client")
    from genevent.prometheus import GenEventCollector  # noqa: PLC0415 - needs the extra

    async with aio.start() as mgr:
        await mgr.add_handler(Count)
        mgr.notify(1)
        await asyncio.sleep(0)
        registry = prometheus_client.CollectorRegistry()
        registry.register(GenEventCollector([mgr]))
        await mgr.sync_notify(2)
        text = prometheus_client.generate_latest(registry).decode()
    assert f'genevent_events_total{{manager="id{id(mgr)}"}} 2.0' in text


def test_prometheus_output_parses_with_prometheus_clients_own_parser() -> None:
    prometheus_client = pytest.importorskip("prometheus_client")
    from prometheus_client.parser import text_string_to_metric_families  # noqa: PLC0415

    from genevent.prometheus import GenEventCollector  # noqa: PLC0415 - needs the extra

    registry = prometheus_client.CollectorRegistry()
    with threads.start("parsed", timing=True) as mgr:
        mgr.add_handler(Count, restart="transient")
        for e in (1, "boom", 2, 3):
            mgr.notify(e)
        mgr.sync_notify(4)
        registry.register(GenEventCollector([mgr]))
        text = prometheus_client.generate_latest(registry).decode()
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }
    m = (("manager", "parsed"),)
    h = (("handler", "Count"), ("manager", "parsed"))
    assert samples[("genevent_events_total", m)] == 5
    assert samples[("genevent_crashes_total", m)] == 1
    assert samples[("genevent_restarts_total", m)] == 1
    assert samples[("genevent_mailbox_queued", m)] == 0
    assert samples[("genevent_handler_events_total", h)] == 3  # since its restart: 2, 3, 4
    assert samples[("genevent_handler_restarts_total", h)] == 1
    p50 = samples[("genevent_handler_seconds", (*h, ("quantile", "0.5")))]
    assert 0 < p50 < 1
