"""genevent's rows: the asyncio and thread runtimes in every scenario.

This module imports genevent at the top: ``__main__`` imports it lazily, so that the rest of the
suite still runs (and says why these rows are missing) when genevent cannot be imported.
"""

from __future__ import annotations

import asyncio
import gc
import tracemalloc
from functools import partial
from typing import Any

from genevent import EventHandler, aio, threads

from . import _harness as h
from . import _memory
from ._workloads import produce, produce_batches, produce_tasks, produce_threads

AIO_NO_TIMEOUT = "genevent asyncio, timeout=None"
GE_THREADS_INLINE = h.GE_THREADS_INLINE
QUEUED_NOTE = "one notify ahead of each request (included)"
INLINE_NOTE = "idle manager: runs inline in the caller"
TIMING_NOTE = "one handle_event in 32 timed into a histogram"


class Counter(EventHandler[object, object, int]):
    """The trivial handler: counts events, answers calls with the count."""

    def init(self, args: object = None) -> None:
        """Start at zero."""
        self.n = 0

    def handle_event(self, event: object) -> None:
        """Count one event."""
        self.n += 1

    def handle_call(self, request: object) -> int:
        """Reply with the count."""
        return self.n


def _ref(k: int, i: int) -> Any:
    return Counter if k == 1 else (Counter, i)


def _check(counts: list[int], expected: int) -> None:
    if sum(counts) != expected:
        raise AssertionError(f"handled {sum(counts)} invocations, expected {expected}")


# ---------------------------------------------------------------- asyncio runtime


async def aio_notify(
    k: int,
    n: int,
    producers: int = 1,
    *,
    from_threads: bool = False,
    timing: bool = False,
    start: dict[str, Any] | None = None,
    add: dict[str, Any] | None = None,
) -> int:
    """Elapsed ns for ``n`` notifies then one sync_notify, ``k`` handlers, asyncio runtime
    (``start``/``add``: more keywords for ``aio.start`` and ``add_handler``)."""
    mgr = aio.start(timing=timing, **(start or {}))
    try:
        for i in range(k):
            await mgr.add_handler(_ref(k, i), **(add or {}))
        notify = mgr.notify
        t0 = h.now()
        if from_threads:
            await asyncio.to_thread(produce_threads, notify, n // producers, producers)
        elif producers == 1:
            produce(notify, n)
        else:
            await produce_tasks(notify, n // producers, producers)
        await mgr.sync_notify(None)
        elapsed = h.now() - t0
        counts = [await mgr.call(_ref(k, i), "get") for i in range(k)]
    finally:
        await mgr.stop()
    _check(counts, (n + 1) * k)
    return elapsed


async def aio_xthread(n: int) -> int:
    """Elapsed ns for ``n`` notifies from one other thread, then a sync_notify from the loop."""
    mgr = aio.start()
    try:
        await mgr.add_handler(Counter)
        t0 = h.now()
        await asyncio.to_thread(produce, mgr.notify, n)
        await mgr.sync_notify(None)
        elapsed = h.now() - t0
        count = await mgr.call(Counter, "get")
    finally:
        await mgr.stop()
    _check([count], n + 1)
    return elapsed


async def aio_roundtrips(
    n: int,
    what: str,
    *,
    latency: bool,
    queued: bool,
    timeout: float | None = 5.0,
    ahead: int = 1,
) -> list[int]:
    """``n`` sync_notify or call round trips: per-op ns when ``latency``, else [total ns].

    ``queued``: one event is notified ahead of each request, so that it takes a busy manager's
    path (through the mailbox); otherwise requests go back to back on an idle manager, which
    runs them inline in the caller. ``timeout`` is the call's (5 s is call's default);
    ``ahead``: how many events are notified ahead of each request when ``queued``."""
    mgr = aio.start()
    try:
        await mgr.add_handler(Counter)
        now, call, sync, notify = h.now, mgr.call, mgr.sync_notify, mgr.notify
        samples: list[int] = []
        t0 = now()
        for i in range(n):
            s = now()
            if queued:
                for _ in range(ahead):
                    notify(i)
            if what == "sync":
                await sync(i)
            else:
                await call(Counter, i, timeout)
            if latency:
                samples.append(now() - s)
        elapsed = now() - t0
        count = await mgr.call(Counter, None)
    finally:
        await mgr.stop()
    _check([count], (n * ahead if queued else 0) + (n if what == "sync" else 0))
    return samples if latency else [elapsed]


async def aio_flood(n: int) -> tuple[int, list[int]]:
    """A foreign thread notifies ``n`` events as fast as it can while a ticker task in the
    manager's loop sleeps 1 ms at a time. Returns the burst's elapsed ns (until a sync_notify
    behind the last event returns) and how late (ns) each tick woke."""
    mgr = aio.start()
    late: list[int] = []
    running = True

    async def ticker() -> None:
        now, sleep = h.now, asyncio.sleep
        while running:
            t0 = now()
            await sleep(0.001)
            late.append(now() - t0 - 1_000_000)

    try:
        await mgr.add_handler(Counter)
        tick = asyncio.create_task(ticker())
        await asyncio.sleep(0)  # the ticker is asleep before the flood starts
        t0 = h.now()
        await asyncio.to_thread(produce, mgr.notify, n)
        await mgr.sync_notify(None)
        elapsed = h.now() - t0
        running = False
        await tick
        count = await mgr.call(Counter, "get")
    finally:
        await mgr.stop()
    _check([count], n + 1)
    return elapsed, late


def flood_rows(cfg: h.Config) -> list[h.Row]:
    """The fairness scenario: burst throughput (median of the reps, with their min-max) and
    the ticker's p99 lateness (all reps' ticks pooled)."""
    if not (cfg.wants(h.FLOOD) or cfg.wants(h.FLOOD_LATE)):
        return []
    n = cfg.flood_events
    h.progress(f"genevent: {h.FLOOD.name}")
    rates: list[float] = []
    late: list[int] = []
    try:
        for _ in range(cfg.flood_reps):
            gc.collect()
            elapsed, ticks = asyncio.run(aio_flood(n))
            rates.append(h.per_second(n, elapsed))
            late += ticks
    except Exception as exc:
        return [h.failed(h.FLOOD, h.GE_AIO, exc), h.failed(h.FLOOD_LATE, h.GE_AIO, exc)]
    note = f"{n:,} events from one thread"
    late_note = f"{len(late):,} ticks of 1 ms over {cfg.flood_reps} bursts"
    return [
        h.runs_row(h.FLOOD, h.GE_AIO, rates, note),
        h.row(h.FLOOD_LATE, h.GE_AIO, h.percentile(late, 0.99) / 1e6, late_note),
    ]


# ---------------------------------------------------------------- thread runtime


def thread_notify(
    k: int,
    n: int,
    producers: int = 1,
    *,
    timing: bool = False,
    start: dict[str, Any] | None = None,
    add: dict[str, Any] | None = None,
    batch: int | None = None,
) -> int:
    """Elapsed ns for ``n`` notifies (blocking while a bounded mailbox is full) then one
    sync_notify, ``k`` handlers, thread runtime (``start``/``add``: as :func:`aio_notify`;
    ``batch``: ``notify_many`` in batches of it instead, one producer)."""
    mgr = threads.start(timing=timing, **(start or {}))
    try:
        for i in range(k):
            mgr.add_handler(_ref(k, i), **(add or {}))
        t0 = h.now()
        if batch is not None:
            produce_batches(mgr.notify_many, n, batch)
        elif producers == 1:
            produce(mgr.notify, n)
        else:
            produce_threads(mgr.notify, n // producers, producers)
        mgr.sync_notify(None)
        elapsed = h.now() - t0
        counts = [mgr.call(_ref(k, i), "get") for i in range(k)]
    finally:
        mgr.stop()
    _check(counts, (n + 1) * k)
    return elapsed


def thread_roundtrips(
    n: int, what: str, *, latency: bool, queued: bool, inline: bool = False, ahead: int = 1
) -> list[int]:
    """``n`` sync_notify or call round trips on the thread runtime: per-op ns or [total ns].

    ``queued``: one event is notified ahead of each request (a busy manager). ``inline``: start
    the manager with ``inline=True`` (an idle manager's requests run in the caller's thread)."""
    mgr = threads.start(inline=True) if inline else threads.start()
    try:
        mgr.add_handler(Counter)
        now, call, sync, notify = h.now, mgr.call, mgr.sync_notify, mgr.notify
        samples: list[int] = []
        t0 = now()
        for i in range(n):
            s = now()
            if queued:
                for _ in range(ahead):
                    notify(i)
            if what == "sync":
                sync(i)
            else:
                call(Counter, i)
            if latency:
                samples.append(now() - s)
        elapsed = now() - t0
        count = mgr.call(Counter, None)
    finally:
        mgr.stop()
    _check([count], (n * ahead if queued else 0) + (n if what == "sync" else 0))
    return samples if latency else [elapsed]


# ---------------------------------------------------------------- memory


async def aio_per_manager(k: int) -> float:
    """tracemalloc bytes per idle asyncio manager with one handler."""

    async def make() -> object:
        mgr = aio.start()
        await mgr.add_handler(Counter)
        return mgr

    per, items = await _memory.traced_per_item(k, make)
    for mgr in items:
        assert isinstance(mgr, aio.EventManager)
        await mgr.stop()
    return per


def thread_per_manager(k: int) -> float:
    """tracemalloc bytes per idle thread-runtime manager with one handler."""

    def make() -> object:
        mgr = threads.start()
        mgr.add_handler(Counter)
        return mgr

    per, items = _memory.traced_per_item_sync(k, make)
    for mgr in items:
        assert isinstance(mgr, threads.EventManager)
        mgr.stop()
    return per


async def aio_per_handler(k: int) -> float:
    """tracemalloc bytes per extra handler in one asyncio manager."""
    mgr = aio.start()
    ids = iter(range(k + 1))
    try:

        async def make() -> object:
            await mgr.add_handler((Counter, next(ids)))
            return None

        return (await _memory.traced_per_item(k, make))[0]
    finally:
        await mgr.stop()


def thread_per_handler(k: int) -> float:
    """tracemalloc bytes per extra handler in one thread-runtime manager."""
    mgr = threads.start()
    ids = iter(range(k + 1))
    try:

        def make() -> object:
            mgr.add_handler((Counter, next(ids)))
            return None

        return _memory.traced_per_item_sync(k, make)[0]
    finally:
        mgr.stop()


async def aio_per_isolated_handler(k: int, isolation: str) -> float:
    """tracemalloc bytes per extra isolated handler (``isolation``) in one asyncio manager."""
    mgr = aio.start()
    ids = iter(range(k + 1))
    try:

        async def make() -> object:
            await mgr.add_handler((Counter, next(ids)), isolation=isolation)  # type: ignore[arg-type]
            return None

        return (await _memory.traced_per_item(k, make))[0]
    finally:
        await mgr.stop()


def thread_per_isolated_handler(k: int) -> tuple[float, float]:
    """Bytes per extra isolated handler (``isolation=True``: a thread each) in one
    thread-runtime manager: (tracemalloc-traced, resident set growth)."""
    mgr = threads.start()
    ids = iter(range(2 * k + 1))
    try:

        def make() -> object:
            mgr.add_handler((Counter, next(ids)), isolation=True)
            return None

        traced = _memory.traced_per_item_sync(k, make)[0]
        gc.collect()
        rss0 = _memory.rss_bytes()
        for _ in range(k):
            make()
        mgr.sync_notify(None)  # every lane thread ran (its stack touched)
        gc.collect()
        resident = (_memory.rss_bytes() - rss0) / k
        return traced, resident
    finally:
        mgr.stop()


async def many_managers(k: int) -> tuple[float, float]:
    """Start ``k`` asyncio managers with one handler each, notify and check each, stop them.

    Returns (resident bytes per manager, seconds for the whole exercise)."""
    await _memory.settle()
    rss0 = _memory.rss_bytes()
    t0 = h.now()
    mgrs: list[aio.EventManager[Any]] = []
    for _ in range(k):
        mgr = aio.start()
        await mgr.add_handler(Counter)
        mgrs.append(mgr)
    await _memory.settle()
    rss1 = _memory.rss_bytes()
    for mgr in mgrs:
        mgr.notify("ping")
    bad = 0
    for mgr in mgrs:
        if await mgr.call(Counter, "get") != 1:
            bad += 1
    await asyncio.gather(*(mgr.stop() for mgr in mgrs))
    seconds = (h.now() - t0) / 1e9
    if bad or any(mgr.is_running for mgr in mgrs):
        raise AssertionError(f"{bad} of {k} managers did not count their event")
    return (rss1 - rss0) / k, seconds


# ---------------------------------------------------------------- rows


def _notify(cfg: h.Config, sc: h.Scenario, k: int) -> list[h.Bench]:
    n, reps = cfg.events_for(k), cfg.reps
    out = [
        h.rate(sc, h.GE_AIO, n * k, h.in_loop(partial(aio_notify, k, n)), reps),
        h.rate(sc, h.GE_THREADS, n * k, partial(thread_notify, k, n), reps),
    ]
    if k == 1:  # what sampled handle_event timing costs (metrics counters are always on)
        out += [
            h.rate(
                sc,
                "genevent asyncio, timing=True",
                n,
                h.in_loop(partial(aio_notify, 1, n, timing=True)),
                reps,
                TIMING_NOTE,
            ),
            h.rate(
                sc,
                "genevent threads, timing=True",
                n,
                partial(thread_notify, 1, n, timing=True),
                reps,
                TIMING_NOTE,
            ),
        ]
    return out


def _producers(cfg: h.Config) -> list[h.Bench]:
    sc, n, reps = h.NOTIFY_4P, cfg.notify_events // 4 * 4, cfg.reps
    return [
        h.rate(
            sc,
            "genevent asyncio, 4 producer tasks",
            n,
            h.in_loop(partial(aio_notify, 1, n, 4)),
            reps,
        ),
        h.rate(
            sc,
            "genevent asyncio, 4 producer threads",
            n,
            h.in_loop(partial(aio_notify, 1, n, 4, from_threads=True)),
            reps,
        ),
        h.rate(
            sc, "genevent threads, 4 producer threads", n, partial(thread_notify, 1, n, 4), reps
        ),
    ]


def _roundtrips(cfg: h.Config, sc: h.Scenario, what: str) -> list[h.Bench]:
    """Queued round trips: one event ahead of each request (a busy manager's path)."""
    n, reps = cfg.roundtrips, cfg.rt_reps

    async def aio_once(timeout: float | None = 5.0) -> int:
        return (await aio_roundtrips(n, what, latency=False, queued=True, timeout=timeout))[0]

    def thread_once(inline: bool) -> int:
        return thread_roundtrips(n, what, latency=False, queued=True, inline=inline)[0]

    out = [
        h.rate(sc, h.GE_AIO, n, h.in_loop(aio_once), reps, QUEUED_NOTE),
        h.rate(sc, h.GE_THREADS, n, partial(thread_once, False), reps, QUEUED_NOTE),
        h.rate(sc, GE_THREADS_INLINE, n, partial(thread_once, True), reps, QUEUED_NOTE),
    ]
    if what == "call":
        out.append(
            h.rate(sc, AIO_NO_TIMEOUT, n, h.in_loop(partial(aio_once, None)), reps, QUEUED_NOTE)
        )
    return out


def _inline(cfg: h.Config, sc: h.Scenario, what: str) -> list[h.Bench]:
    """Back to back on an idle manager: the inline fast paths."""
    n, reps = cfg.roundtrips, cfg.rt_reps

    async def aio_once() -> int:
        return (await aio_roundtrips(n, what, latency=False, queued=False))[0]

    def thread_once() -> int:
        return thread_roundtrips(n, what, latency=False, queued=False, inline=True)[0]

    return [
        h.rate(sc, h.GE_AIO, n, h.in_loop(aio_once), reps, INLINE_NOTE),
        h.rate(sc, GE_THREADS_INLINE, n, thread_once, reps, INLINE_NOTE),
    ]


def _latencies(cfg: h.Config) -> list[h.Bench]:
    per, rounds = cfg.latency_samples // cfg.latency_rounds, cfg.latency_rounds
    aio_rt, thread_rt = aio_roundtrips, thread_roundtrips
    return [
        h.latency(
            h.GE_AIO,
            h.in_loop(partial(aio_rt, per, "call", latency=True, queued=True)),
            rounds,
            QUEUED_NOTE,
        ),
        h.latency(
            AIO_NO_TIMEOUT,
            h.in_loop(partial(aio_rt, per, "call", latency=True, queued=True, timeout=None)),
            rounds,
            QUEUED_NOTE,
        ),
        h.latency(
            h.GE_THREADS,
            partial(thread_rt, per, "call", latency=True, queued=True),
            rounds,
            QUEUED_NOTE,
        ),
        h.latency(
            GE_THREADS_INLINE,
            partial(thread_rt, per, "call", latency=True, queued=True, inline=True),
            rounds,
            QUEUED_NOTE,
        ),
    ]


def _flooded(cfg: h.Config) -> list[h.Bench]:
    per, rounds = max(cfg.latency_samples // cfg.latency_rounds // 10, 10), cfg.latency_rounds
    ahead = h.FLOOD_AHEAD
    aio_fn = partial(aio_roundtrips, per, "call", latency=True, queued=True, ahead=ahead)
    thread_fn = partial(thread_roundtrips, per, "call", latency=True, queued=True, ahead=ahead)
    return [
        h.median(h.CALL_FLOODED, h.GE_AIO, h.in_loop(aio_fn), rounds),
        h.median(h.CALL_FLOODED, h.GE_THREADS, thread_fn, rounds),
    ]


def _inline_latencies(cfg: h.Config) -> list[h.Bench]:
    per, rounds = cfg.latency_samples // cfg.latency_rounds, cfg.latency_rounds
    return [
        h.latency(
            h.GE_AIO,
            h.in_loop(partial(aio_roundtrips, per, "call", latency=True, queued=False)),
            rounds,
            INLINE_NOTE,
            inline=True,
        ),
        h.latency(
            GE_THREADS_INLINE,
            partial(thread_roundtrips, per, "call", latency=True, queued=False, inline=True),
            rounds,
            INLINE_NOTE,
            inline=True,
        ),
    ]


async def aio_life(n: int) -> list[int]:
    """Per-op ns of ``n`` manager lives: start, add the first handler, stop."""
    now = h.now
    samples: list[int] = []
    for _ in range(n):
        s = now()
        mgr = aio.start()
        await mgr.add_handler(Counter)
        await mgr.stop()
        samples.append(now() - s)
    return samples


async def aio_install(n: int, *, delete: bool) -> list[int]:
    """Per-op ns of ``n`` add_handler (or delete_handler) calls on a manager with one handler,
    one event notified ahead of each; the other half of each pair is untimed."""
    mgr = aio.start()
    try:
        await mgr.add_handler(Counter)
        now, notify = h.now, mgr.notify
        add, remove = mgr.add_handler, mgr.delete_handler
        samples: list[int] = []
        for i in range(n):
            ref = (Counter, i)
            if delete:
                await add(ref)
                s = now()
                notify(i)
                await remove(ref)
            else:
                s = now()
                notify(i)
                await add(ref)
            samples.append(now() - s)
            if not delete:
                await remove(ref)
        count = await mgr.call(Counter, None)
    finally:
        await mgr.stop()
    _check([count], n)
    return samples


def _uvloop(cfg: h.Config) -> list[h.Bench]:
    """genevent on uvloop (the ``uvloop`` extra): notify, queued sync_notify and call."""
    out: list[h.Bench] = []
    have = h.uvloop_factory() is not None
    impl = h.GE_UVLOOP
    if cfg.wants(h.NOTIFY_1):
        n, reps = cfg.notify_events, cfg.reps
        out.append(
            h.rate(h.NOTIFY_1, impl, n, h.in_uvloop(partial(aio_notify, 1, n)), reps)
            if have
            else h.skip(h.NOTIFY_1, impl, h.NO_UVLOOP)
        )
    if cfg.wants(h.SYNC):
        n, reps = cfg.roundtrips, cfg.rt_reps

        async def sync_once() -> int:
            return (await aio_roundtrips(n, "sync", latency=False, queued=True))[0]

        out.append(
            h.rate(h.SYNC, impl, n, h.in_uvloop(sync_once), reps, QUEUED_NOTE)
            if have
            else h.skip(h.SYNC, impl, h.NO_UVLOOP)
        )
    if cfg.wants_latency():
        per, rounds = cfg.latency_samples // cfg.latency_rounds, cfg.latency_rounds
        fn = partial(aio_roundtrips, per, "call", latency=True, queued=True)
        out.append(
            h.latency(impl, h.in_uvloop(fn), rounds, QUEUED_NOTE)
            if have
            else h.skip(h.CALL_MED, impl, h.NO_UVLOOP)
        )
    return out


def _control(cfg: h.Config) -> list[h.Bench]:
    n, rounds = cfg.control_samples, cfg.latency_rounds
    out: list[h.Bench] = []
    if cfg.wants(h.LIFE):
        out.append(h.median(h.LIFE, h.GE_AIO, h.in_loop(partial(aio_life, n)), rounds))
    for sc, delete in ((h.ADD_BUSY, False), (h.DELETE_BUSY, True)):
        if cfg.wants(sc):
            fn = h.in_loop(partial(aio_install, n, delete=delete))
            out.append(h.median(sc, h.GE_AIO, fn, rounds))
    return out


async def aio_yielding(n: int) -> int:
    """Elapsed ns for ``n`` notifies from a producer task that yields after every event."""
    mgr = aio.start()
    try:
        await mgr.add_handler(Counter)
        notify, sleep = mgr.notify, asyncio.sleep
        t0 = h.now()
        for i in range(n):
            notify(i)
            await sleep(0)
        await mgr.sync_notify(None)
        elapsed = h.now() - t0
        count = await mgr.call(Counter, "get")
    finally:
        await mgr.stop()
    _check([count], n + 1)
    return elapsed


# ---------------------------------------------------------------- bounded mailboxes

BOUND = 10_000
BLOCK_AIO = f"maxsize={BOUND:,}, block: await notify_wait per event"
BLOCK_THREADS = f"maxsize={BOUND:,}, block: notify blocks when full"
ROOM = "maxsize > burst: notify, never full (the bound check alone)"
FLOOD_AIO_UNBOUNDED = "asyncio, unbounded mailbox"


async def aio_bounded_burst(
    n: int, maxsize: int | None, wait: bool, batch: int | None = None
) -> int:
    """Elapsed ns for ``n`` notifies (``await notify_wait`` when ``wait``; ``notify_many`` in
    batches of ``batch`` when given) then a sync_notify."""
    mgr = aio.start(maxsize=maxsize)
    try:
        await mgr.add_handler(Counter)
        t0 = h.now()
        if wait:
            notify_wait = mgr.notify_wait
            for i in range(n):
                await notify_wait(i)
        elif batch is not None:
            produce_batches(mgr.notify_many, n, batch)
        else:
            produce(mgr.notify, n)
        await mgr.sync_notify(None)
        elapsed = h.now() - t0
        count = await mgr.call(Counter, "get")
    finally:
        await mgr.stop()
    _check([count], n + 1)
    return elapsed


def _bounded(cfg: h.Config) -> list[h.Bench]:
    n, reps = cfg.notify_events, cfg.reps
    out: list[h.Bench] = []
    if cfg.wants(h.BOUNDED_AIO):
        sc = h.BOUNDED_AIO
        out += [
            h.rate(sc, h.UNBOUNDED, n, h.in_loop(partial(aio_bounded_burst, n, None, False)), reps),
            h.rate(sc, BLOCK_AIO, n, h.in_loop(partial(aio_bounded_burst, n, BOUND, True)), reps),
            h.rate(sc, ROOM, n, h.in_loop(partial(aio_bounded_burst, n, n + 2, False)), reps),
        ]
    if cfg.wants(h.BOUNDED_THREADS):
        sc = h.BOUNDED_THREADS
        out += [
            h.rate(sc, h.UNBOUNDED, n, partial(thread_notify, 1, n, start={"maxsize": None}), reps),
            h.rate(
                sc, BLOCK_THREADS, n, partial(thread_notify, 1, n, start={"maxsize": BOUND}), reps
            ),
            h.rate(sc, ROOM, n, partial(thread_notify, 1, n, start={"maxsize": n + 2}), reps),
        ]
    return out


SMALL_BATCH = 100
WHOLE = "notify_many, the burst as one batch"
SMALL = f"notify_many, batches of {SMALL_BATCH}"


def _batches(cfg: h.Config) -> list[h.Bench]:
    n, reps = cfg.notify_events, cfg.reps
    out: list[h.Bench] = []
    if cfg.wants(h.BATCH_AIO):
        sc = h.BATCH_AIO
        out += [
            h.rate(
                sc, h.ONE_BY_ONE, n, h.in_loop(partial(aio_bounded_burst, n, None, False)), reps
            ),
            h.rate(sc, WHOLE, n, h.in_loop(partial(aio_bounded_burst, n, None, False, n)), reps),
            h.rate(
                sc,
                SMALL,
                n,
                h.in_loop(partial(aio_bounded_burst, n, None, False, SMALL_BATCH)),
                reps,
            ),
        ]
    if cfg.wants(h.BATCH_THREADS):
        sc = h.BATCH_THREADS
        out += [
            h.rate(sc, h.ONE_BY_ONE, n, partial(thread_notify, 1, n), reps),
            h.rate(sc, WHOLE, n, partial(thread_notify, 1, n, batch=n), reps),
            h.rate(sc, SMALL, n, partial(thread_notify, 1, n, batch=SMALL_BATCH), reps),
        ]
    return out


def _peak(run: Any) -> float:
    """tracemalloc's peak while ``run()`` floods a manager (what it held at the worst)."""
    gc.collect()
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
        run()
        return float(tracemalloc.get_traced_memory()[1] - base)
    finally:
        tracemalloc.stop()


def flood_peak_rows(cfg: h.Config) -> list[h.Row]:
    """Peak memory of a manager flooded with ``cfg.notify_events`` distinct events (a tuple
    and a str each), bounded (maxsize=10,000, block: every event handled) or not."""
    if not cfg.wants(h.FLOOD_PEAK):
        return []
    n = cfg.notify_events
    h.progress(f"genevent: {h.FLOOD_PEAK.name}")

    async def aio_flood(maxsize: int | None) -> None:
        mgr = aio.start(maxsize=maxsize)
        await mgr.add_handler(Counter)
        for i in range(n):
            await mgr.notify_wait((i, str(i)))
        await mgr.stop()

    def thread_flood(maxsize: int | None) -> None:
        mgr = threads.start(maxsize=maxsize)
        mgr.add_handler(Counter)
        notify = mgr.notify
        for i in range(n):
            notify((i, str(i)))
        mgr.stop()

    note = f"{n:,} events, each a new (int, str) tuple"
    rows = [
        h.guarded(h.FLOOD_PEAK, h.UNBOUNDED, lambda: _peak(lambda: asyncio.run(aio_flood(None)))),
        h.guarded(
            h.FLOOD_PEAK,
            f"asyncio, maxsize={BOUND:,}, block",
            lambda: _peak(lambda: asyncio.run(aio_flood(BOUND))),
        ),
        h.guarded(h.FLOOD_PEAK, "threads, unbounded", lambda: _peak(lambda: thread_flood(None))),
        h.guarded(
            h.FLOOD_PEAK,
            f"threads, maxsize={BOUND:,}, block",
            lambda: _peak(lambda: thread_flood(BOUND)),
        ),
    ]
    rows[0].note = f"asyncio; {note} (the threads rows compare with their own unbounded row)"
    return rows


def _isolation(cfg: h.Config) -> list[h.Bench]:
    n = cfg.notify_events
    out: list[h.Bench] = []
    if cfg.wants(h.ISO_AIO):
        for impl, isolation in (
            (h.AIO_NOT_ISOLATED, None),
            ('genevent asyncio, isolation="task"', "task"),
            ('genevent asyncio, isolation="thread"', "thread"),
        ):
            once = h.in_loop(partial(aio_notify, 1, n, add={"isolation": isolation}))
            out.append(h.rate(h.ISO_AIO, impl, n, once, cfg.reps))
    if cfg.wants(h.ISO_THREADS):
        for impl, flag in (
            (h.THREADS_NOT_ISOLATED, False),
            ("genevent threads, isolation=True", True),
        ):
            out.append(
                h.rate(
                    h.ISO_THREADS,
                    impl,
                    n,
                    partial(thread_notify, 1, n, add={"isolation": flag}),
                    cfg.reps,
                )
            )
    return out


# ---------------------------------------------------------------- isolated handlers at scale

_SCALE_OPS = (h.SCALE_ADD, h.SCALE_SYNC, h.SCALE_WHICH, h.SCALE_DELETE)


def _scale_reps(k: int, quick: bool) -> int:
    """sync_notify / which_handlers calls timed on a manager with ``k`` handlers."""
    if quick:
        return 5
    return 200 if k <= 100 else 50


def _per_op(total_ns: int, count: int) -> float:
    return total_ns / count / 1000


async def aio_scale(k: int, isolation: Any, reps: int) -> list[float]:
    """µs per add_handler (``k`` of them, amortised), per sync_notify, per which_handlers
    (``reps`` each) and per delete_handler, on one asyncio manager with ``k`` handlers."""
    mgr = aio.start()
    refs = [(Counter, i) for i in range(k)]
    add: dict[str, Any] = {"isolation": isolation} if isolation else {}
    try:
        t0 = h.now()
        for ref in refs:
            await mgr.add_handler(ref, **add)
        t1 = h.now()
        for i in range(reps):
            await mgr.sync_notify(i)
        t2 = h.now()
        for _ in range(reps):
            which = await mgr.which_handlers()
        t3 = h.now()
        if len(which) != k:
            raise AssertionError(f"{len(which)} handlers installed, expected {k}")
        counts = [await mgr.call(ref, "get") for ref in refs]
        t4 = h.now()
        for ref in refs:
            await mgr.delete_handler(ref)
        t5 = h.now()
    finally:
        await mgr.stop()
    _check(counts, reps * k)
    return [
        _per_op(t1 - t0, k),
        _per_op(t2 - t1, reps),
        _per_op(t3 - t2, reps),
        _per_op(t5 - t4, k),
    ]


def thread_scale(k: int, isolation: bool, reps: int) -> list[float]:
    """:func:`aio_scale` on the thread runtime (``isolation=True``: a thread per handler)."""
    mgr = threads.start()
    refs = [(Counter, i) for i in range(k)]
    try:
        t0 = h.now()
        for ref in refs:
            mgr.add_handler(ref, isolation=isolation)
        t1 = h.now()
        for i in range(reps):
            mgr.sync_notify(i)
        t2 = h.now()
        for _ in range(reps):
            which = mgr.which_handlers()
        t3 = h.now()
        if len(which) != k:
            raise AssertionError(f"{len(which)} handlers installed, expected {k}")
        counts = [mgr.call(ref, "get") for ref in refs]
        t4 = h.now()
        for ref in refs:
            mgr.delete_handler(ref)
        t5 = h.now()
    finally:
        mgr.stop()
    _check(counts, reps * k)
    return [
        _per_op(t1 - t0, k),
        _per_op(t2 - t1, reps),
        _per_op(t3 - t2, reps),
        _per_op(t5 - t4, k),
    ]


def scale_rows(cfg: h.Config) -> list[h.Row]:
    """Isolated handlers at scale: for 10, 100 and 1,000 handlers (10 and 100 when quick),
    each runtime's isolated flavours beside the same manager with handlers not isolated (the
    median of ``cfg.rt_reps`` runs per figure, with their min-max; the runs of one count are
    interleaved)."""
    wanted = [sc for sc in _SCALE_OPS if cfg.wants(sc)]
    if not wanted:
        return []
    counts = h.SCALE_QUICK_COUNTS if cfg.quick else h.SCALE_COUNTS
    flavours: list[tuple[str, str, Any]] = [
        ("threads", "not isolated", lambda k, r: thread_scale(k, False, r)),
        ("threads", "isolation=True", lambda k, r: thread_scale(k, True, r)),
        ("asyncio", "not isolated", lambda k, r: asyncio.run(aio_scale(k, None, r))),
        ("asyncio", 'isolation="task"', lambda k, r: asyncio.run(aio_scale(k, "task", r))),
        (
            "asyncio",
            'isolation="thread"',
            lambda k, r: asyncio.run(aio_scale(k, "thread", r)),
        ),
    ]
    out: list[h.Row] = []
    for k in counts:
        h.progress(f"genevent: isolated handlers at scale, {k:,} handlers")
        reps = _scale_reps(k, cfg.quick)
        runs: dict[str, list[list[float]]] = {}
        failures: dict[str, Exception] = {}
        for _ in range(cfg.rt_reps):
            for runtime, how, measure in flavours:
                impl = f"genevent {runtime}, {k:,} handlers, {how}"
                if impl in failures:
                    continue
                gc.collect()
                try:
                    figures = measure(k, reps)
                except Exception as exc:
                    failures[impl] = exc
                    continue
                runs.setdefault(impl, []).append(figures)
        for runtime, how, _ in flavours:
            impl = f"genevent {runtime}, {k:,} handlers, {how}"
            base = (
                None
                if how == "not isolated"
                else f"genevent {runtime}, {k:,} handlers, not isolated"
            )
            for i, sc in enumerate(_SCALE_OPS):
                if sc not in wanted:
                    continue
                if impl in failures:
                    out.append(h.failed(sc, impl, failures[impl]))
                    continue
                note = f"{reps} calls timed" if sc in (h.SCALE_SYNC, h.SCALE_WHICH) else ""
                out.append(h.runs_row(sc, impl, [run[i] for run in runs[impl]], note, base))
    return out


def benches(cfg: h.Config) -> list[h.Bench]:
    """genevent's timing benches in the scenarios that ``cfg`` selects."""
    out: list[h.Bench] = []
    for sc, k in ((h.NOTIFY_1, 1), (h.NOTIFY_10, 10), (h.NOTIFY_100, 100)):
        if cfg.wants(sc):
            out += _notify(cfg, sc, k)
    if cfg.wants(h.NOTIFY_4P):
        out += _producers(cfg)
    if cfg.wants(h.XTHREAD):
        n = cfg.notify_events
        out.append(h.rate(h.XTHREAD, h.GE_AIO, n, h.in_loop(partial(aio_xthread, n)), cfg.reps))
    if cfg.wants(h.NOTIFY_YIELD):
        n = cfg.yield_events
        out.append(
            h.rate(h.NOTIFY_YIELD, h.GE_AIO, n, h.in_loop(partial(aio_yielding, n)), cfg.reps)
        )
    if cfg.wants(h.SYNC):
        out += _roundtrips(cfg, h.SYNC, "sync")
    if cfg.wants(h.SYNC_INLINE):
        out += _inline(cfg, h.SYNC_INLINE, "sync")
    if cfg.wants_latency():
        out += _latencies(cfg)
    if cfg.wants_latency(inline=True):
        out += _inline_latencies(cfg)
    if cfg.wants(h.CALL_FLOODED):
        out += _flooded(cfg)
    if cfg.wants(h.CALL_TPUT):
        out += _roundtrips(cfg, h.CALL_TPUT, "call")
    if cfg.wants(h.CALL_TPUT_INLINE):
        out += _inline(cfg, h.CALL_TPUT_INLINE, "call")
    out += _bounded(cfg)
    out += _batches(cfg)
    out += _isolation(cfg)
    out += _control(cfg)
    out += _uvloop(cfg)
    return out


def _memory_rows(cfg: h.Config) -> list[h.Row]:
    out: list[h.Row] = []
    thread_k = min(cfg.mem_managers, 200)
    if cfg.wants(h.MEM_MANAGER) or cfg.wants(h.FIT_1GB):
        h.progress(f"genevent: {h.MEM_MANAGER.name}")
        out.append(
            h.guarded(
                h.MEM_MANAGER, h.GE_AIO, lambda: asyncio.run(aio_per_manager(cfg.mem_managers))
            )
        )
        r = h.guarded(h.MEM_MANAGER, h.GE_THREADS, lambda: thread_per_manager(thread_k))
        if not r.error:
            r.note = _memory.THREAD_NOTE
        out.append(r)
    if cfg.wants(h.MEM_HANDLER):
        h.progress(f"genevent: {h.MEM_HANDLER.name}")
        k = cfg.mem_handlers
        out.append(h.guarded(h.MEM_HANDLER, h.GE_AIO, lambda: asyncio.run(aio_per_handler(k))))
        out.append(h.guarded(h.MEM_HANDLER, h.GE_THREADS, lambda: thread_per_handler(k)))
        out += _isolated_memory_rows(cfg)
    if cfg.wants(h.MANY):
        k = cfg.many_managers
        h.progress(f"genevent: {k:,} asyncio managers")
        try:
            per, seconds = asyncio.run(many_managers(k))
        except Exception as exc:
            out.append(h.failed(h.MANY, h.GE_AIO, exc))
        else:
            note = f"{k:,} created, notified, checked, stopped in {seconds:.1f} s (RSS growth)"
            if cfg.quick:
                note += "; quick run: the full run makes 100,000"
            out.append(h.row(h.MANY, h.GE_AIO, per, note))
    return out


def _isolated_memory_rows(cfg: h.Config) -> list[h.Row]:
    """Memory per isolated handler: a task lane, a thread lane (on asyncio and on threads),
    traced; and the resident growth per thread lane on threads (its stack included)."""
    k = min(cfg.mem_handlers, 200)
    out = [
        h.guarded(
            h.MEM_HANDLER,
            f'{h.GE_AIO}, isolation="{how}"',
            lambda how=how: asyncio.run(aio_per_isolated_handler(k, how)),  # type: ignore[misc]
        )
        for how in ("task", "thread")
    ]
    impl = f"{h.GE_THREADS}, isolation=True"
    try:
        traced, resident = thread_per_isolated_handler(k)
    except Exception as exc:
        return [*out, h.failed(h.MEM_HANDLER, impl, exc)]
    out[1].note = _memory.THREAD_NOTE
    out.append(h.row(h.MEM_HANDLER, impl, traced, _memory.THREAD_NOTE))
    note = f"resident set growth over {k:,} handlers (stacks and thread state included)"
    out.append(h.row(h.MEM_HANDLER, f"{impl} (resident)", resident, note))
    return out


def memory_rows(cfg: h.Config) -> list[h.Row]:
    """genevent's memory rows, the 100,000-manager check and the flood peaks."""
    return _memory_rows(cfg) + flood_peak_rows(cfg)
