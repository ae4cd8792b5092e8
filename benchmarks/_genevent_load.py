"""genevent under two loads the bursts do not show: many managers each sent one event in turn,
and a bounded mailbox that really overflows.

- round-robin: the same events sent one to each of 10,000 managers in turn, against 1,000
  managers (each row beside its own 1,000-manager row: the per-event cost ratio);
- overflow: a burst into a mailbox bounded at 10,000 with ``overflow="drop_oldest"``, so that
  most events are dropped, against the unbounded burst of the same runtime.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from typing import Any

from genevent import EventHandler, aio, threads

from . import _harness as h
from ._baselines import Countdown, produce_round_robin, rr_events
from ._genevent_rows import Counter
from ._workloads import produce


def overflow_bound(n: int) -> int:
    """The overflowing mailbox's maxsize for a burst of ``n`` events: a 30th of it (10,000 of
    the full run's 300,000)."""
    return max(n // h.OVERFLOW_SHARE, 1)


def overflow_note(n: int) -> str:
    """What an overflow row measured."""
    return f"maxsize={overflow_bound(n):,}; every event sent counts, handled or dropped"


class RoundRobinHandler(EventHandler[object, object, int]):
    """Counts into the run's shared :class:`Countdown` (the bare handler's work)."""

    def init(self, args: object = None) -> None:
        """Keep the shared countdown."""
        assert isinstance(args, Countdown)
        self.c = args

    def handle_event(self, event: object) -> None:
        """Count one event; the run's last one resolves the countdown."""
        c = self.c
        c.n += 1
        if c.n == c.target:
            c.done.set_result(None)


async def aio_round_robin(managers: int, n: int) -> int:
    """Elapsed ns for ``n`` events sent round-robin to ``managers`` asyncio managers, until the
    last one was handled."""
    done = asyncio.get_running_loop().create_future()
    c = Countdown(n, done)
    mgrs = [aio.start() for _ in range(managers)]
    try:
        for mgr in mgrs:
            await mgr.add_handler(RoundRobinHandler, c)
        await asyncio.sleep(0)
        t0 = h.now()
        await produce_round_robin([mgr.notify for mgr in mgrs], n)
        await done
        elapsed = h.now() - t0
    finally:
        await asyncio.gather(*(mgr.stop() for mgr in mgrs))
    if c.n != n:
        raise AssertionError(f"handled {c.n} events, expected {n}")
    return elapsed


@contextmanager
def _quiet_drops() -> Iterator[None]:
    """Keep genevent's (rate-limited) "dropped" warnings out of the benchmark's output."""
    log = logging.getLogger("genevent")
    level = log.level
    log.setLevel(logging.ERROR)
    try:
        yield
    finally:
        log.setLevel(level)


def _check_overflow(stats: Any, handled: int, n: int, *, overflowed: bool) -> None:
    """Every event sent (and the closing sync_notify) was handled or dropped; ``overflowed``:
    and some were dropped."""
    if handled + stats.dropped != n + 1:
        raise AssertionError(f"{handled} handled + {stats.dropped} dropped != {n + 1} sent")
    if overflowed and not stats.dropped:
        raise AssertionError(f"the mailbox never overflowed: {handled} of {n + 1} handled")


async def aio_overflow(n: int) -> int:
    """Elapsed ns for ``n`` notifies into an asyncio mailbox bounded at
    :func:`overflow_bound` with ``drop_oldest``, then one sync_notify (what is left is
    handled, the rest dropped: the burst never yields, so it overflows)."""
    with _quiet_drops():
        mgr = aio.start(maxsize=overflow_bound(n), overflow="drop_oldest")
        try:
            await mgr.add_handler(Counter)
            t0 = h.now()
            produce(mgr.notify, n)
            await mgr.sync_notify(None)
            elapsed = h.now() - t0
            handled = await mgr.call(Counter, "get")
            stats = mgr.stats()
        finally:
            await mgr.stop()
    _check_overflow(stats, handled, n, overflowed=True)
    return elapsed


def thread_overflow(n: int) -> int:
    """:func:`aio_overflow` on the thread runtime (its manager thread drains meanwhile, so
    fewer events are dropped, and how many depends on the scheduler)."""
    with _quiet_drops():
        mgr = threads.start(maxsize=overflow_bound(n), overflow="drop_oldest")
        try:
            mgr.add_handler(Counter)
            t0 = h.now()
            produce(mgr.notify, n)
            mgr.sync_notify(None)
            elapsed = h.now() - t0
            handled = mgr.call(Counter, "get")
            stats = mgr.stats()
        finally:
            mgr.stop()
    _check_overflow(stats, handled, n, overflowed=False)
    return elapsed


def benches(cfg: h.Config) -> list[h.Bench]:
    """The round-robin and overflow benches that ``cfg`` selects."""
    out: list[h.Bench] = []
    if cfg.wants(h.ROUND_ROBIN):
        n, fewest = rr_events(cfg), min(h.RR_MANAGERS)
        for m in h.RR_MANAGERS:
            base = None if m == fewest else h.rr_impl(h.GE_AIO, fewest)
            fn: Callable[[], int] = h.in_loop(partial(aio_round_robin, m, n))
            out.append(h.rate(h.ROUND_ROBIN, h.rr_impl(h.GE_AIO, m), n, fn, cfg.rt_reps, base=base))
    n, reps = cfg.notify_events, cfg.reps
    if cfg.wants(h.BOUNDED_AIO):
        fn = h.in_loop(partial(aio_overflow, n))
        out.append(h.rate(h.BOUNDED_AIO, h.OVERFLOWING, n, fn, reps, overflow_note(n)))
    if cfg.wants(h.BOUNDED_THREADS):
        fn = partial(thread_overflow, n)
        out.append(h.rate(h.BOUNDED_THREADS, h.OVERFLOWING, n, fn, reps, overflow_note(n)))
    return out
