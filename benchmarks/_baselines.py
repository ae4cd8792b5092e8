"""The bare baselines: minimal, honest, fast implementations of each scenario, no library.

- plain loop: the producer calls the handlers' bound methods directly (no queue at all);
- deque mailbox: a consumer task drains a deque in batches and sleeps on one wake-up future;
- asyncio.Queue producer / consumer task;
- queue.SimpleQueue with a consumer thread;
- round trips: asyncio.Queue + Future, and queue.SimpleQueue with a reply queue;
- queued round trips (the floor of a busy manager's request): a server task draining a deque
  mailbox with one wake-up future, sent one event and then one (request, future) pair; the
  thread flavour over two SimpleQueues, between two long-lived threads;
- the inline floor: the caller calling the handler's method itself.

Every consumer tells a control message from an event with the test genevent's drain loop uses
(``event.__class__ is Marker``), so that the per-event work is the same on both sides.
"""

from __future__ import annotations

import asyncio
import queue
import threading
from collections import deque
from collections.abc import Callable
from functools import partial
from typing import Any

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
                if event.__class__ is _Sync:  # genevent's own test (no isinstance)
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
        if event.__class__ is _Sync:
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
        if event.__class__ is _TSync:
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


async def _aq_server(q: asyncio.Queue[Request], handler: Handler) -> None:
    while True:
        request, reply = await q.get()
        if reply is None:
            return
        reply.set_result(handler(request))


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


class _Req:
    """A request in a queued-round-trip baseline's mailbox."""

    __slots__ = ("fut", "value")

    def __init__(self, value: object, fut: Any) -> None:
        self.value = value
        self.fut: Any = fut


class DequeServer(DequeMailbox):
    """A bare server task: events go to the handler, a :class:`_Req` is answered through its
    future with ``answer(value)`` (a call), or ``None`` after the handler saw it (a sync)."""

    def __init__(self, handle: Handler, answer: Handler | None) -> None:
        self.answer = answer
        super().__init__([handle])

    async def _run(self) -> None:
        q = self.queue
        popleft = q.popleft
        handle = self.handlers[0]
        answer = self.answer
        while True:
            while q:
                msg: Any = popleft()
                cls = msg.__class__
                if cls is _Req:
                    fut = msg.fut
                    if answer is None:
                        handle(msg.value)
                        fut.set_result(None)
                    else:
                        fut.set_result(answer(msg.value))
                elif cls is _Sync:
                    if msg.done is None:
                        return
                    msg.done.set_result(None)
                else:
                    handle(msg)
            await self._park()


async def deque_server(n: int, *, call: bool, latency: bool, ahead: int = 1) -> list[int]:
    """``n`` queued round trips to a :class:`DequeServer`, ``ahead`` events appended ahead of
    each: per-op ns when ``latency``, else [total ns]."""
    tally = Tally()
    srv = DequeServer(tally.handle, tally.answer if call else None)
    await asyncio.sleep(0)
    loop = asyncio.get_running_loop()
    create_future, post, now = loop.create_future, srv.notify, h.now
    samples: list[int] = []
    t0 = now()
    for i in range(n):
        s = now()
        for _ in range(ahead):
            post(i)
        fut = create_future()
        post(_Req(i, fut))
        await fut
        if latency:
            samples.append(now() - s)
    elapsed = now() - t0
    await srv.stop()
    _check([tally], n * ahead if call else (ahead + 1) * n)
    return samples if latency else [elapsed]


class _Setup:
    """Tells the long-lived hand-off server which tally to count into, and how to answer."""

    __slots__ = ("call", "tally")

    def __init__(self, tally: Tally, call: bool) -> None:
        self.tally = tally
        self.call = call


class HandOffServer:
    """The floor of a thread-runtime request: a server thread fed through one SimpleQueue,
    answering through another. The thread is started once per process and kept for every round
    and scenario (as a manager's thread lives for the manager's life): the caller, the main
    thread, is long-lived too, so that every hand-off is between two threads that already run,
    not one that the round has just started."""

    _the: HandOffServer | None = None

    def __init__(self) -> None:
        self.queue: queue.SimpleQueue[object] = queue.SimpleQueue()
        self.thread = threading.Thread(target=self._serve, name="bench hand-off", daemon=True)
        self.thread.start()

    @classmethod
    def get(cls) -> HandOffServer:
        """The process's server, started on first use."""
        if cls._the is None:
            cls._the = cls()
        return cls._the

    def setup(self, tally: Tally, call: bool) -> None:
        """Count events into ``tally`` from now on; answer requests with ``tally.answer``
        when ``call``, else handle them as events and answer None (a sync)."""
        done: queue.SimpleQueue[object] = queue.SimpleQueue()
        self.queue.put(_Req(_Setup(tally, call), done))
        done.get()

    def _serve(self) -> None:
        get = self.queue.get
        tally, call = Tally(), False
        handle, answer = tally.handle, tally.answer
        while True:
            msg: Any = get()
            if msg.__class__ is _Req:
                value = msg.value
                if value.__class__ is _Setup:
                    tally, call = value.tally, value.call
                    handle, answer = tally.handle, tally.answer
                    msg.fut.put(None)
                elif call:
                    msg.fut.put(answer(value))
                else:
                    handle(value)
                    msg.fut.put(None)
            else:
                handle(msg)


def sq_busy(n: int, *, call: bool, latency: bool) -> list[int]:
    """``n`` round trips to the long-lived :class:`HandOffServer` over two SimpleQueues, one
    event put ahead of each."""
    tally = Tally()
    server = HandOffServer.get()
    server.setup(tally, call)
    reply: queue.SimpleQueue[object] = queue.SimpleQueue()
    put, get, now = server.queue.put, reply.get, h.now
    samples: list[int] = []
    t0 = now()
    for i in range(n):
        s = now()
        put(i)
        put(_Req(i, reply))
        get()
        if latency:
            samples.append(now() - s)
    elapsed = now() - t0
    server.setup(Tally(), False)  # the round's tally is complete once the server moved on
    _check([tally], n if call else 2 * n)
    return samples if latency else [elapsed]


def direct(n: int, *, call: bool, latency: bool) -> list[int]:
    """The inline floor: the caller calls the handler's method itself, ``n`` times."""
    tally = Tally()
    fn = tally.answer if call else tally.handle
    now = h.now
    samples: list[int] = []
    t0 = now()
    if latency:
        for i in range(n):
            s = now()
            fn(i)
            samples.append(now() - s)
    else:
        for i in range(n):
            fn(i)
    elapsed = now() - t0
    _check([tally], 0 if call else n)
    return samples if latency else [elapsed]


# ---------------------------------------------------------------- control operations


class PlainHandler:
    """A handler as a bare server would keep one: made, ``init``-ed, ``terminate``-d."""

    def init(self, args: object = None) -> None:
        """Start at zero."""
        self.n = 0

    def handle_event(self, event: object) -> None:
        """Count one event."""
        self.n += 1

    def terminate(self, reason: object) -> None:
        """Nothing to clean up."""


async def bare_task_life(n: int) -> list[int]:
    """The floor of a manager's life: ``n`` times, create and start a :class:`DequeServer`
    task, do one round trip with it, and stop it (per-op ns)."""
    tally = Tally()
    loop = asyncio.get_running_loop()
    now = h.now
    samples: list[int] = []
    for i in range(n):
        s = now()
        srv = DequeServer(tally.handle, tally.answer)
        fut = loop.create_future()
        srv.notify(_Req(i, fut))
        await fut
        await srv.stop()
        samples.append(now() - s)
    return samples


async def bare_install(n: int, *, delete: bool) -> list[int]:
    """The floor of ``add_handler`` (``delete=False``) or ``delete_handler`` on a busy server:
    ``n`` queued round trips to a :class:`DequeServer`, one event ahead of each, whose answer
    makes a handler and calls its ``init`` (or calls ``terminate`` on one made earlier)."""
    tally = Tally()
    made: list[PlainHandler] = []

    def change(value: object) -> None:  # install one if there is none, else remove it
        if made:
            made.pop().terminate(value)
        else:
            handler = PlainHandler()
            handler.init(value)
            made.append(handler)

    srv = DequeServer(tally.handle, change)
    await asyncio.sleep(0)
    loop = asyncio.get_running_loop()
    create_future, post, now = loop.create_future, srv.notify, h.now
    samples: list[int] = []
    for i in range(n):
        if delete:  # untimed: a handler to remove
            fut = create_future()
            post(_Req(i, fut))
            await fut
        s = now()
        post(i)
        fut = create_future()
        post(_Req(i, fut))
        await fut
        samples.append(now() - s)
        if not delete:  # untimed: back to none
            made.pop().terminate(None)
    await srv.stop()
    return samples


async def _produce_yielding(notify: Callable[[int], object], n: int) -> None:
    """One producer task that gives the loop a turn after every event."""
    sleep = asyncio.sleep
    for i in range(n):
        notify(i)
        await sleep(0)


async def deque_yielding(n: int) -> int:
    """Elapsed ns for ``n`` events through a deque mailbox, the producer yielding each time."""
    tallies, handlers = _tallies(1)
    mb = DequeMailbox(handlers)
    await asyncio.sleep(0)
    t0 = h.now()
    await _produce_yielding(mb.notify, n)
    await mb.sync()
    elapsed = h.now() - t0
    await mb.stop()
    _check(tallies, n)
    return elapsed


async def aqueue_yielding(n: int) -> int:
    """Elapsed ns for ``n`` events through an asyncio.Queue, the producer yielding each time."""
    tallies, handlers = _tallies(1)
    q: asyncio.Queue[object] = asyncio.Queue()
    task = asyncio.create_task(_aqueue_consumer(q, handlers))
    await asyncio.sleep(0)
    loop = asyncio.get_running_loop()
    t0 = h.now()
    await _produce_yielding(q.put_nowait, n)
    done = loop.create_future()
    q.put_nowait(_Sync(done))
    await done
    elapsed = h.now() - t0
    q.put_nowait(_Sync(None))
    await task
    _check(tallies, n)
    return elapsed


# ---------------------------------------------------------------- round-robin


class Countdown:
    """Shared by every handler of a round-robin run: resolves ``done`` at the ``target``-th
    event handled, in whichever manager."""

    __slots__ = ("done", "n", "target")

    def __init__(self, target: int, done: asyncio.Future[None]) -> None:
        self.n = 0
        self.target = target
        self.done = done


class _CountdownTally:
    """The bare round-robin handler: the same work as genevent's round-robin handler."""

    __slots__ = ("c",)

    def __init__(self, c: Countdown) -> None:
        self.c = c

    def handle(self, event: object) -> None:
        c = self.c
        c.n += 1
        if c.n == c.target:
            c.done.set_result(None)


async def produce_round_robin(notifies: list[Callable[[int], object]], n: int) -> None:
    """``n`` events, one to each of ``notifies`` in turn; the producer yields after every
    round, so that each event wakes its manager (``n``: a multiple of ``len(notifies)``)."""
    sleep = asyncio.sleep
    for r in range(n // len(notifies)):
        for notify in notifies:
            notify(r)
        await sleep(0)


async def deque_round_robin(managers: int, n: int) -> int:
    """Elapsed ns for ``n`` events sent round-robin to ``managers`` deque mailboxes, until the
    last one was handled."""
    done = asyncio.get_running_loop().create_future()
    c = Countdown(n, done)
    mbs = [DequeMailbox([_CountdownTally(c).handle]) for _ in range(managers)]
    await asyncio.sleep(0)
    t0 = h.now()
    await produce_round_robin([mb.notify for mb in mbs], n)
    await done
    elapsed = h.now() - t0
    await asyncio.gather(*(mb.stop() for mb in mbs))
    if c.n != n:
        raise AssertionError(f"handled {c.n} events, expected {n}")
    return elapsed


def rr_events(cfg: h.Config) -> int:
    """Events in a round-robin run, the same for every manager count: ``cfg.rr_events``
    rounded to whole rounds of the most managers."""
    most = max(h.RR_MANAGERS)
    return max(cfg.rr_events // most, 1) * most


def _round_robin(cfg: h.Config) -> list[h.Bench]:
    out: list[h.Bench] = []
    for m in h.RR_MANAGERS:
        n = rr_events(cfg)
        base = None if m == min(h.RR_MANAGERS) else h.rr_impl(h.DEQUE, min(h.RR_MANAGERS))
        fn = h.in_loop(partial(deque_round_robin, m, n))
        out.append(h.rate(h.ROUND_ROBIN, h.rr_impl(h.DEQUE, m), n, fn, cfg.rt_reps, base=base))
    return out


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
    """The queued round trips (one event ahead of each request), asyncio and threads."""
    n, reps = cfg.roundtrips, cfg.rt_reps

    async def deque_once() -> int:
        return _first(await deque_server(n, call=call, latency=False))

    def sq_once() -> int:
        return _first(sq_busy(n, call=call, latency=False))

    async def aq_once() -> int:
        return _first(await aq_future(n, call=call, latency=False))

    return [
        h.rate(sc, h.DEQUE_RT, n, h.in_loop(deque_once), reps),
        h.rate(sc, h.SQ_RT_BUSY, n, sq_once, reps),
        h.rate(sc, h.AQ_FUTURE, n, h.in_loop(aq_once), reps, "idle server, no event ahead"),
    ]


def _direct(cfg: h.Config, sc: h.Scenario, *, call: bool) -> list[h.Bench]:
    n, reps = cfg.roundtrips, cfg.rt_reps
    return [h.rate(sc, h.DIRECT, n, lambda: direct(n, call=call, latency=False)[0], reps)]


def _latencies(cfg: h.Config) -> list[h.Bench]:
    per, rounds = cfg.latency_samples // cfg.latency_rounds, cfg.latency_rounds
    return [
        h.latency(
            h.DEQUE_RT, h.in_loop(partial(deque_server, per, call=True, latency=True)), rounds
        ),
        h.latency(h.SQ_RT_BUSY, partial(sq_busy, per, call=True, latency=True), rounds),
    ]


def _flooded(cfg: h.Config) -> list[h.Bench]:
    per, rounds = max(cfg.latency_samples // cfg.latency_rounds // 10, 10), cfg.latency_rounds
    fn = partial(deque_server, per, call=True, latency=True, ahead=h.FLOOD_AHEAD)
    note = f"here {h.FLOOD_AHEAD} events ahead of each request"
    return [h.median(h.CALL_FLOODED, h.DEQUE_RT, h.in_loop(fn), rounds, note)]


def _inline_latencies(cfg: h.Config) -> list[h.Bench]:
    per, rounds = cfg.latency_samples // cfg.latency_rounds, cfg.latency_rounds
    return [h.latency(h.DIRECT, partial(direct, per, call=True, latency=True), rounds, inline=True)]


def _uvloop(cfg: h.Config) -> list[h.Bench]:
    """The bare floors on uvloop, beside genevent's uvloop rows."""
    out: list[h.Bench] = []
    have = h.uvloop_factory() is not None
    if cfg.wants(h.NOTIFY_1):
        n, reps = cfg.notify_events, cfg.reps
        out.append(
            h.rate(h.NOTIFY_1, h.DEQUE_UVLOOP, n, h.in_uvloop(partial(deque_mailbox, 1, n)), reps)
            if have
            else h.skip(h.NOTIFY_1, h.DEQUE_UVLOOP, h.NO_UVLOOP)
        )
    if cfg.wants_latency():
        per, rounds = cfg.latency_samples // cfg.latency_rounds, cfg.latency_rounds
        fn = partial(deque_server, per, call=True, latency=True)
        out.append(
            h.latency(h.DEQUE_RT_UVLOOP, h.in_uvloop(fn), rounds)
            if have
            else h.skip(h.CALL_MED, h.DEQUE_RT_UVLOOP, h.NO_UVLOOP)
        )
    return out


def _control(cfg: h.Config) -> list[h.Bench]:
    n, rounds = cfg.control_samples, cfg.latency_rounds
    out: list[h.Bench] = []
    if cfg.wants(h.LIFE):
        out.append(h.median(h.LIFE, h.BARE_TASK, h.in_loop(partial(bare_task_life, n)), rounds))
    for sc, impl, delete in ((h.ADD_BUSY, h.BARE_ADD, False), (h.DELETE_BUSY, h.BARE_DELETE, True)):
        if cfg.wants(sc):
            fn = h.in_loop(partial(bare_install, n, delete=delete))
            out.append(h.median(sc, impl, fn, rounds))
    return out


def _yielding(cfg: h.Config) -> list[h.Bench]:
    sc, n, reps = h.NOTIFY_YIELD, cfg.yield_events, cfg.reps
    return [
        h.rate(sc, h.DEQUE, n, h.in_loop(partial(deque_yielding, n)), reps),
        h.rate(sc, h.AQUEUE, n, h.in_loop(partial(aqueue_yielding, n)), reps),
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
    if cfg.wants(h.NOTIFY_YIELD):
        out += _yielding(cfg)
    if cfg.wants(h.ROUND_ROBIN):
        out += _round_robin(cfg)
    if cfg.wants(h.SYNC):
        out += _roundtrips(cfg, h.SYNC, call=False)
    if cfg.wants(h.SYNC_INLINE):
        out += _direct(cfg, h.SYNC_INLINE, call=False)
    if cfg.wants_latency():
        out += _latencies(cfg)
    if cfg.wants_latency(inline=True):
        out += _inline_latencies(cfg)
    if cfg.wants(h.CALL_FLOODED):
        out += _flooded(cfg)
    if cfg.wants(h.CALL_TPUT):
        out += _roundtrips(cfg, h.CALL_TPUT, call=True)
    if cfg.wants(h.CALL_TPUT_INLINE):
        out += _direct(cfg, h.CALL_TPUT_INLINE, call=True)
    out += _control(cfg)
    out += _uvloop(cfg)
    return out
