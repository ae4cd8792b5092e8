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
from functools import partial

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
            await self._park()

    async def _park(self) -> None:
        """Sleep until the next ``notify`` (once per drained batch, not per event)."""
        waiter = self.waiter = self.loop.create_future()
        await waiter


class ThreadsafeDequeMailbox(DequeMailbox):
    """Like :class:`DequeMailbox`, but ``notify`` may be called from any thread: the consumer
    announces that it sleeps, and only then does a producer pay for ``call_soon_threadsafe``."""

    def __init__(self, handlers: list[Handler]) -> None:
        self.sleeping = False
        super().__init__(handlers)

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

    async def _park(self) -> None:
        self.waiter = waiter = self.loop.create_future()
        self.sleeping = True
        if self.queue:  # raced with a producer that saw sleeping == False
            self.sleeping = False
            return
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


# ---------------------------------------------------------------- benches

FANOUT = ((h.NOTIFY_1, 1), (h.NOTIFY_10, 10), (h.NOTIFY_100, 100))


def _notify(cfg: h.Config, sc: h.Scenario, k: int) -> list[h.Bench]:
    n, reps = cfg.events_for(k), cfg.reps
    return [
        h.rate(sc, h.PLAIN_LOOP, n * k, partial(plain_loop, k, n), reps),
        h.rate(sc, h.DEQUE, n * k, h.in_loop(partial(deque_mailbox, k, n)), reps),
        h.rate(sc, h.AQUEUE, n * k, h.in_loop(partial(aqueue, k, n)), reps),
        h.rate(sc, h.SIMPLEQ, n * k, partial(simplequeue, k, n), reps),
    ]


def _producers(cfg: h.Config) -> list[h.Bench]:
    sc, n, reps = h.NOTIFY_4P, cfg.notify_events // 4 * 4, cfg.reps
    return [
        h.rate(sc, h.DEQUE_4, n, h.in_loop(partial(deque_mailbox, 1, n, 4)), reps),
        h.rate(sc, "asyncio.Queue, 4 producer tasks", n, h.in_loop(partial(aqueue, 1, n, 4)), reps),
        h.rate(sc, "queue.SimpleQueue, 4 producer threads", n, partial(simplequeue, 1, n, 4), reps),
    ]


def _xthread(cfg: h.Config) -> list[h.Bench]:
    sc, n, reps = h.XTHREAD, cfg.notify_events, cfg.reps
    return [
        h.rate(sc, h.XT_DEQUE, n, h.in_loop(partial(xthread_deque, n)), reps),
        h.rate(
            sc,
            "asyncio.Queue via call_soon_threadsafe",
            n,
            h.in_loop(partial(xthread_aqueue, n)),
            reps,
        ),
    ]


def _first(samples: list[int]) -> int:
    return samples[0]


def _roundtrips(cfg: h.Config, sc: h.Scenario, *, call: bool) -> list[h.Bench]:
    n, reps = cfg.roundtrips, cfg.rt_reps

    async def aq_once() -> int:
        return _first(await aq_future(n, call=call, latency=False))

    def sq_once() -> int:
        return _first(sq_roundtrip(n, call=call, latency=False))

    return [
        h.rate(sc, h.AQ_FUTURE, n, h.in_loop(aq_once), reps),
        h.rate(sc, h.SQ_ROUNDTRIP, n, sq_once, reps),
    ]


def _latencies(cfg: h.Config) -> list[h.Bench]:
    per, rounds = cfg.latency_samples // cfg.latency_rounds, cfg.latency_rounds
    return [
        h.latency(h.AQ_FUTURE, h.in_loop(partial(aq_future, per, call=True, latency=True)), rounds),
        h.latency(h.SQ_ROUNDTRIP, partial(sq_roundtrip, per, call=True, latency=True), rounds),
    ]


def benches(cfg: h.Config) -> list[h.Bench]:
    """Every baseline in the scenarios that ``cfg`` selects."""
    out: list[h.Bench] = []
    for sc, k in FANOUT:
        if cfg.wants(sc):
            out += _notify(cfg, sc, k)
    if cfg.wants(h.NOTIFY_4P):
        out += _producers(cfg)
    if cfg.wants(h.XTHREAD):
        out += _xthread(cfg)
    if cfg.wants(h.SYNC):
        out += _roundtrips(cfg, h.SYNC, call=False)
    if cfg.wants_latency():
        out += _latencies(cfg)
    if cfg.wants(h.CALL_TPUT):
        out += _roundtrips(cfg, h.CALL_TPUT, call=True)
    return out
