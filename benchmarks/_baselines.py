"""The bare baselines: minimal, honest, fast implementations of each scenario, no library.

- plain loop: the producer calls the handlers' bound methods directly (no queue at all);
- deque mailbox: a consumer task drains a deque in batches and sleeps on one wake-up future;
- asyncio.Queue producer / consumer task;
- queue.SimpleQueue with a consumer thread;
- round trips: asyncio.Queue + Future, and queue.SimpleQueue with a reply queue.
"""

from __future__ import annotations

import asyncio
import queue
import threading
from collections import deque
from collections.abc import Callable

from . import _harness as h
from ._workloads import Tally, produce, produce_tasks, produce_threads

Handler = Callable[[object], object]


class _Sync:
    """A marker event: the consumer resolves ``done`` when it reaches it (None means stop)."""

    __slots__ = ("done",)

    def __init__(self, done: asyncio.Future[None] | None) -> None:
        self.done = done


class _TSync:
    """The thread flavour of :class:`_Sync`."""

    __slots__ = ("done",)

    def __init__(self, done: threading.Event | None) -> None:
        self.done = done


class DequeMailbox:
    """A consumer task over a deque; ``notify`` appends and resolves the one wake-up future."""

    def __init__(self, handlers: list[Handler]) -> None:
        self.loop = asyncio.get_running_loop()
        self.queue: deque[object] = deque()
        self.waiter: asyncio.Future[None] | None = None
        self.handlers = handlers
        self.task = self.loop.create_task(self._run())

    def notify(self, event: object) -> None:
        """Post an event (event-loop thread only); never blocks."""
        self.queue.append(event)
        waiter = self.waiter
        if waiter is not None:
            self.waiter = None
            waiter.set_result(None)

    async def sync(self) -> None:
        """Return once every event posted before has been handled."""
        done = self.loop.create_future()
        self.notify(_Sync(done))
        await done

    async def stop(self) -> None:
        """Stop the consumer task."""
        self.notify(_Sync(None))
        await self.task

    async def _run(self) -> None:
        q = self.queue
        popleft = q.popleft
        handlers = self.handlers
        create_future = self.loop.create_future
        while True:
            while q:
                event = popleft()
                if isinstance(event, _Sync):
                    if event.done is None:
                        return
                    event.done.set_result(None)
                    continue
                for handler in handlers:
                    handler(event)
            waiter = self.waiter = create_future()
            await waiter


class ThreadsafeDequeMailbox:
    """Like :class:`DequeMailbox`, but ``notify`` may be called from any thread: the consumer
    announces that it sleeps, and only then does a producer pay for ``call_soon_threadsafe``."""

    def __init__(self, handlers: list[Handler]) -> None:
        self.loop = asyncio.get_running_loop()
        self.queue: deque[object] = deque()
        self.waiter: asyncio.Future[None] | None = None
        self.sleeping = False
        self.handlers = handlers
        self.task = self.loop.create_task(self._run())

    def notify(self, event: object) -> None:
        """Post an event from any thread; never blocks."""
        self.queue.append(event)
        if self.sleeping:
            self.sleeping = False
            self.loop.call_soon_threadsafe(self._wake)

    def _wake(self) -> None:
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def sync(self) -> None:
        """Return once every event posted before has been handled (event-loop thread)."""
        done = self.loop.create_future()
        self.notify(_Sync(done))
        await done

    async def stop(self) -> None:
        """Stop the consumer task."""
        self.notify(_Sync(None))
        await self.task

    async def _run(self) -> None:
        q = self.queue
        popleft = q.popleft
        handlers = self.handlers
        while True:
            while q:
                event = popleft()
                if isinstance(event, _Sync):
                    if event.done is None:
                        return
                    event.done.set_result(None)
                    continue
                for handler in handlers:
                    handler(event)
            self.waiter = waiter = self.loop.create_future()
            self.sleeping = True
            if q:  # raced with a producer that saw sleeping == False
                self.sleeping = False
                continue
            await waiter


async def _aqueue_consumer(q: asyncio.Queue[object], handlers: list[Handler]) -> None:
    while True:
        event = await q.get()
        if isinstance(event, _Sync):
            if event.done is None:
                return
            event.done.set_result(None)
            continue
        for handler in handlers:
            handler(event)


def _simplequeue_consumer(q: queue.SimpleQueue[object], handlers: list[Handler]) -> None:
    get = q.get
    while True:
        event = get()
        if isinstance(event, _TSync):
            if event.done is None:
                return
            event.done.set()
            continue
        for handler in handlers:
            handler(event)


def _tallies(k: int) -> tuple[list[Tally], list[Handler]]:
    tallies = [Tally() for _ in range(k)]
    return tallies, [t.handle for t in tallies]


def _check(tallies: list[Tally], expected: int) -> None:
    got = sum(t.n for t in tallies)
    if got != expected:
        raise AssertionError(f"handled {got} invocations, expected {expected}")


# ---------------------------------------------------------------- notify


def plain_loop(k: int, n: int) -> int:
    """Elapsed ns for ``n`` events delivered by calling ``k`` bound methods directly."""
    tallies, handlers = _tallies(k)
    t0 = h.now()
    if k == 1:
        produce(handlers[0], n)
    else:
        for i in range(n):
            for handler in handlers:
                handler(i)
    elapsed = h.now() - t0
    _check(tallies, n * k)
    return elapsed


async def deque_mailbox(k: int, n: int, producers: int = 1) -> int:
    """Elapsed ns for ``n`` events through a deque mailbox with ``k`` handlers."""
    tallies, handlers = _tallies(k)
    mb = DequeMailbox(handlers)
    await asyncio.sleep(0)
    t0 = h.now()
    if producers == 1:
        produce(mb.notify, n)
    else:
        await produce_tasks(mb.notify, n // producers, producers)
    await mb.sync()
    elapsed = h.now() - t0
    await mb.stop()
    _check(tallies, n * k)
    return elapsed


async def aqueue(k: int, n: int, producers: int = 1) -> int:
    """Elapsed ns for ``n`` events through an asyncio.Queue and a consumer task."""
    tallies, handlers = _tallies(k)
    q: asyncio.Queue[object] = asyncio.Queue()
    task = asyncio.create_task(_aqueue_consumer(q, handlers))
    await asyncio.sleep(0)
    loop = asyncio.get_running_loop()
    t0 = h.now()
    if producers == 1:
        produce(q.put_nowait, n)
    else:
        await produce_tasks(q.put_nowait, n // producers, producers)
    done = loop.create_future()
    q.put_nowait(_Sync(done))
    await done
    elapsed = h.now() - t0
    q.put_nowait(_Sync(None))
    await task
    _check(tallies, n * k)
    return elapsed


def simplequeue(k: int, n: int, producers: int = 1) -> int:
    """Elapsed ns for ``n`` events through a queue.SimpleQueue and a consumer thread."""
    tallies, handlers = _tallies(k)
    q: queue.SimpleQueue[object] = queue.SimpleQueue()
    consumer = threading.Thread(target=_simplequeue_consumer, args=(q, handlers))
    consumer.start()
    t0 = h.now()
    if producers == 1:
        produce(q.put, n)
    else:
        produce_threads(q.put, n // producers, producers)
    done = threading.Event()
    q.put(_TSync(done))
    done.wait()
    elapsed = h.now() - t0
    q.put(_TSync(None))
    consumer.join()
    _check(tallies, n * k)
    return elapsed


async def xthread_deque(n: int) -> int:
    """Elapsed ns for ``n`` events posted from another thread into a threadsafe deque mailbox."""
    tallies, handlers = _tallies(1)
    mb = ThreadsafeDequeMailbox(handlers)
    await asyncio.sleep(0)
    t0 = h.now()
    await asyncio.to_thread(produce, mb.notify, n)
    await mb.sync()
    elapsed = h.now() - t0
    await mb.stop()
    _check(tallies, n)
    return elapsed


async def xthread_aqueue(n: int) -> int:
    """Elapsed ns for ``n`` events posted from another thread with
    ``loop.call_soon_threadsafe(queue.put_nowait, event)`` (the textbook way)."""
    tallies, handlers = _tallies(1)
    q: asyncio.Queue[object] = asyncio.Queue()
    task = asyncio.create_task(_aqueue_consumer(q, handlers))
    loop = asyncio.get_running_loop()
    await asyncio.sleep(0)

    def post(event: object) -> None:
        loop.call_soon_threadsafe(q.put_nowait, event)

    t0 = h.now()
    await asyncio.to_thread(produce, post, n)
    done = loop.create_future()
    q.put_nowait(_Sync(done))
    await done
    elapsed = h.now() - t0
    q.put_nowait(_Sync(None))
    await task
    _check(tallies, n)
    return elapsed


# ---------------------------------------------------------------- round trips

Request = tuple[object, "asyncio.Future[object] | None"]
TRequest = tuple[object, "queue.SimpleQueue[object] | None"]


async def _aq_server(q: asyncio.Queue[Request], handler: Handler) -> None:
    while True:
        request, reply = await q.get()
        if reply is None:
            return
        reply.set_result(handler(request))


def _sq_server(q: queue.SimpleQueue[TRequest], handler: Handler) -> None:
    get = q.get
    while True:
        request, reply = get()
        if reply is None:
            return
        reply.put(handler(request))


async def aq_future(n: int, *, call: bool, latency: bool) -> list[int]:
    """``n`` asyncio.Queue + Future round trips; per-op ns when ``latency``, else [total ns]."""
    tally = Tally()
    q: asyncio.Queue[Request] = asyncio.Queue()
    task = asyncio.create_task(_aq_server(q, tally.answer if call else tally.handle))
    loop = asyncio.get_running_loop()
    create_future, put, now = loop.create_future, q.put_nowait, h.now
    await asyncio.sleep(0)
    samples: list[int] = []
    t0 = now()
    if latency:
        for i in range(n):
            s = now()
            fut = create_future()
            put((i, fut))
            await fut
            samples.append(now() - s)
    else:
        for i in range(n):
            fut = create_future()
            put((i, fut))
            await fut
    elapsed = now() - t0
    put((None, None))
    await task
    _check([tally], 0 if call else n)
    return samples if latency else [elapsed]


def sq_roundtrip(n: int, *, call: bool, latency: bool) -> list[int]:
    """``n`` round trips to a thread over queue.SimpleQueue with a reply queue."""
    tally = Tally()
    q: queue.SimpleQueue[TRequest] = queue.SimpleQueue()
    reply: queue.SimpleQueue[object] = queue.SimpleQueue()
    server = threading.Thread(target=_sq_server, args=(q, tally.answer if call else tally.handle))
    server.start()
    put, get, now = q.put, reply.get, h.now
    samples: list[int] = []
    t0 = now()
    if latency:
        for i in range(n):
            s = now()
            put((i, reply))
            get()
            samples.append(now() - s)
    else:
        for i in range(n):
            put((i, reply))
            get()
    elapsed = now() - t0
    put((None, None))
    server.join()
    _check([tally], 0 if call else n)
    return samples if latency else [elapsed]


# ---------------------------------------------------------------- rows


def fanout(events: int, handlers: int, ns: int) -> float:
    """Invocations per second (events per second when there is one handler)."""
    return h.per_second(events * handlers, ns)


def _notify_rows(cfg: h.Config, sc: h.Scenario, k: int) -> list[h.Row]:
    n, reps = cfg.events_for(k), cfg.reps
    return [
        h.guarded(sc, h.PLAIN_LOOP, lambda: fanout(n, k, h.best_ns(reps, lambda: plain_loop(k, n)))),
        h.guarded(sc, h.DEQUE, lambda: fanout(n, k, h.abest_ns(reps, lambda: deque_mailbox(k, n)))),
        h.guarded(sc, h.AQUEUE, lambda: fanout(n, k, h.abest_ns(reps, lambda: aqueue(k, n)))),
        h.guarded(sc, h.SIMPLEQ, lambda: fanout(n, k, h.best_ns(reps, lambda: simplequeue(k, n)))),
    ]


def _producers_rows(cfg: h.Config) -> list[h.Row]:
    sc, n, reps = h.NOTIFY_4P, cfg.notify_events // 4 * 4, cfg.reps
    return [
        h.guarded(sc, h.DEQUE_4, lambda: h.per_second(n, h.abest_ns(reps, lambda: deque_mailbox(1, n, 4)))),
        h.guarded(
            sc,
            "asyncio.Queue, 4 producer tasks",
            lambda: h.per_second(n, h.abest_ns(reps, lambda: aqueue(1, n, 4))),
        ),
        h.guarded(
            sc,
            "queue.SimpleQueue, 4 producer threads",
            lambda: h.per_second(n, h.best_ns(reps, lambda: simplequeue(1, n, 4))),
        ),
    ]


def _xthread_rows(cfg: h.Config) -> list[h.Row]:
    sc, n, reps = h.XTHREAD, cfg.notify_events, cfg.reps
    return [
        h.guarded(sc, h.XT_DEQUE, lambda: h.per_second(n, h.abest_ns(reps, lambda: xthread_deque(n)))),
        h.guarded(
            sc,
            "asyncio.Queue via call_soon_threadsafe",
            lambda: h.per_second(n, h.abest_ns(reps, lambda: xthread_aqueue(n))),
        ),
    ]


def _roundtrip_rows(cfg: h.Config, sc: h.Scenario, *, call: bool) -> list[h.Row]:
    n, reps = cfg.roundtrips, cfg.rt_reps

    async def aq_once() -> int:
        return (await aq_future(n, call=call, latency=False))[0]

    return [
        h.guarded(sc, h.AQ_FUTURE, lambda: h.per_second(n, h.abest_ns(reps, aq_once))),
        h.guarded(
            sc,
            h.SQ_ROUNDTRIP,
            lambda: h.per_second(
                n, h.best_ns(reps, lambda: sq_roundtrip(n, call=call, latency=False)[0])
            ),
        ),
    ]


def _latency(impl: str, measure: Callable[[], list[int]]) -> list[h.Row]:
    try:
        return h.latency_rows(impl, measure())
    except Exception as exc:
        return [h.failed(h.CALL_MED, impl, exc), h.failed(h.CALL_P99, impl, exc)]


def rows(cfg: h.Config) -> list[h.Row]:
    """Measure every baseline in the scenarios that ``cfg`` selects."""
    out: list[h.Row] = []
    for sc, k in ((h.NOTIFY_1, 1), (h.NOTIFY_10, 10), (h.NOTIFY_100, 100)):
        if cfg.wants(sc):
            h.progress(f"baselines: {sc.name}")
            out += _notify_rows(cfg, sc, k)
    if cfg.wants(h.NOTIFY_4P):
        h.progress(f"baselines: {h.NOTIFY_4P.name}")
        out += _producers_rows(cfg)
    if cfg.wants(h.XTHREAD):
        h.progress(f"baselines: {h.XTHREAD.name}")
        out += _xthread_rows(cfg)
    if cfg.wants(h.SYNC):
        h.progress(f"baselines: {h.SYNC.name}")
        out += _roundtrip_rows(cfg, h.SYNC, call=False)
    if cfg.wants(h.CALL_MED) or cfg.wants(h.CALL_P99):
        h.progress("baselines: call latency")
        lat = cfg.latency_samples
        out += _latency(h.AQ_FUTURE, lambda: asyncio.run(aq_future(lat, call=True, latency=True)))
        out += _latency(h.SQ_ROUNDTRIP, lambda: sq_roundtrip(lat, call=True, latency=True))
    if cfg.wants(h.CALL_TPUT):
        h.progress(f"baselines: {h.CALL_TPUT.name}")
        out += _roundtrip_rows(cfg, h.CALL_TPUT, call=True)
    return out
