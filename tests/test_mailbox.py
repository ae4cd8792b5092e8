"""Bounded manager mailboxes and stop(drain=False), on both runtimes: docs/semantics.md P7,
P26 and P27.

Every wait is on an event (or a bounded number of loop turns), never on a clock; the counts
must add up exactly: handled + dropped + refused = sent.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import deque
from typing import Any

import pytest

from genevent import (
    EventHandler,
    MailboxFull,
    ManagerNotRunning,
    aio,
    threads,
)
from genevent._mailbox import check_mailbox
from genevent._overflow import OVERFLOW_POLICIES
from genevent.threads import _exit, _state
from tests.handlers import WAIT

MAXSIZE = 100
FLOOD = 20_000
BACKLOG = 100_000


class Count(EventHandler[Any, Any, Any]):
    """Counts events and infos; ``terminate`` is recorded in the shared list it is given."""

    def init(self, args: Any = None) -> None:
        self.terminated: list[Any] = args
        self.seen: list[Any] = []

    def handle_event(self, event: Any) -> None:
        self.seen.append(event)

    def handle_info(self, message: Any) -> None:
        self.seen.append(message)

    def handle_call(self, request: Any) -> list[Any]:
        return self.seen

    def terminate(self, reason: Any) -> None:
        self.terminated.append((type(self).__name__, len(self.seen)))


class GatedThread(Count):
    """Blocks on its first event until the test opens the gate (thread runtime)."""

    gate = threading.Event()
    entered = threading.Event()

    def handle_event(self, event: Any) -> None:
        if not self.seen:
            self.entered.set()
            assert self.gate.wait(WAIT)
        self.seen.append(event)


class GatedAio(Count):
    """Awaits an asyncio.Event on its first event (asyncio runtime)."""

    gate: asyncio.Event
    entered: asyncio.Event

    async def handle_event(self, event: Any) -> None:  # type: ignore[override]
        if not self.seen:
            self.entered.set()
            await asyncio.wait_for(self.gate.wait(), WAIT)
        self.seen.append(event)


def _stats_add_up(stats: Any, sent: int) -> None:
    assert stats.events + stats.infos + stats.dropped + stats.refused == sent
    # the bound holds for events and infos; the one control request sent while it may be
    # full (the stop, never refused for room) can join a full mailbox
    assert stats.high_water <= MAXSIZE + 1


# -- arguments ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("maxsize", "overflow", "error"),
    [
        ("10", "block", TypeError),
        (1.5, "block", TypeError),
        (True, "block", TypeError),
        (0, "block", ValueError),
        (-3, "drop_oldest", ValueError),
        (10, "drop", ValueError),
        (10, None, TypeError),
        (None, "sometimes", ValueError),
    ],
)
def test_bad_bounds_are_refused_at_start(maxsize: Any, overflow: Any, error: type) -> None:
    with pytest.raises(error):
        threads.start(maxsize=maxsize, overflow=overflow)

    async def aio_start() -> None:
        with pytest.raises(error):
            aio.start(maxsize=maxsize, overflow=overflow)

    asyncio.run(aio_start())
    before = threading.active_count()
    assert threading.active_count() == before  # nothing was started


def test_maxsize_property() -> None:
    with threads.start(maxsize=5) as bounded, threads.start() as unbounded:
        assert bounded.maxsize == 5
        assert unbounded.maxsize is None


async def test_stop_drain_must_be_a_bool() -> None:
    async with aio.start() as mgr:
        with pytest.raises(TypeError):
            await mgr.stop(drain="no")  # type: ignore[arg-type]
    with threads.start() as tmgr, pytest.raises(TypeError):
        tmgr.stop(drain=0)  # type: ignore[arg-type]


# -- floods ------------------------------------------------------------------------------------


@pytest.mark.parametrize("overflow", OVERFLOW_POLICIES)
async def test_aio_flood_stays_bounded_and_counts_add_up(overflow: Any) -> None:
    terminated: list[Any] = []
    mgr = aio.start(maxsize=MAXSIZE, overflow=overflow)
    await mgr.add_handler(Count, terminated)
    sent = 0
    for i in range(FLOOD):
        sent += 1
        try:
            if overflow == "block":
                await mgr.notify_wait(i)
            elif i % 10 == 0:
                mgr.send(("info", i))
            else:
                mgr.notify(i)
        except MailboxFull:
            pass
        if i % 5_000 == 0:  # the manager runs only when the producer yields
            await asyncio.sleep(0)
    await mgr.stop()
    stats = mgr.stats()
    _stats_add_up(stats, sent)
    if overflow == "block":
        assert stats.dropped == stats.refused == 0
        assert stats.events == FLOOD
    elif overflow == "raise":
        assert stats.refused > 0
        assert stats.dropped == 0
    else:
        assert stats.dropped > 0
        assert stats.refused == 0
    assert terminated == [("Count", stats.events + stats.infos)]


@pytest.mark.parametrize("overflow", OVERFLOW_POLICIES)
@pytest.mark.parametrize("producers", [1, 3])
def test_threads_flood_stays_bounded_and_counts_add_up(overflow: Any, producers: int) -> None:
    terminated: list[Any] = []
    mgr = threads.start(maxsize=MAXSIZE, overflow=overflow)
    mgr.add_handler(Count, terminated)
    sent = [0] * producers

    def produce(k: int) -> None:
        for i in range(FLOOD // producers):
            sent[k] += 1
            try:
                if i % 10 == 0:
                    mgr.send(("info", i))
                else:
                    mgr.notify(i)
            except MailboxFull:
                pass

    workers = [threading.Thread(target=produce, args=(k,)) for k in range(producers)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(WAIT * 3)
        assert not w.is_alive()
    mgr.stop()
    stats = mgr.stats()
    assert stats.events + stats.infos + stats.dropped + stats.refused == sum(sent)
    # one producer thread: the bound is exact; racing producer threads may each overshoot it
    # by one message at the instant they race (room is found without a lock)
    assert stats.high_water <= MAXSIZE + 1 + (producers - 1)
    if overflow == "block":
        assert stats.dropped == stats.refused == 0
        assert stats.events + stats.infos == sum(sent)
    assert terminated == [("Count", stats.events + stats.infos)]


async def test_aio_drop_oldest_keeps_the_newest() -> None:
    terminated: list[Any] = []
    async with aio.start(maxsize=MAXSIZE, overflow="drop_oldest") as mgr:
        await mgr.add_handler(Count, terminated)
        for i in range(1_000):
            mgr.notify(i)
        seen = await mgr.call(Count, "seen")
        assert seen == list(range(1_000 - MAXSIZE, 1_000))
        assert mgr.stats().dropped == 1_000 - MAXSIZE


def test_drop_oldest_never_drops_a_control_request() -> None:
    bound = check_mailbox(2, "drop_oldest")
    assert bound is not None
    request, info = object(), object()
    mailbox: deque[Any] = deque([request, "a"])
    with bound.lock:
        assert bound.put_full(mailbox, "b", "mgr", lambda m: m is request) is False
    assert list(mailbox) == [request, "a"]  # the request at the head stays; "b" is dropped
    mailbox = deque(["a", info])
    with bound.lock:
        assert bound.put_full(mailbox, "b", "mgr", lambda m: m is request) is True
    assert list(mailbox) == [info, "b"]
    assert (bound.counts.dropped, bound.counts.refused) == (2, 0)


# -- block -------------------------------------------------------------------------------------


async def test_aio_block_makes_the_producer_wait_and_loses_nothing() -> None:
    terminated: list[Any] = []
    GatedAio.gate = asyncio.Event()
    GatedAio.entered = asyncio.Event()
    mgr = aio.start(maxsize=3)  # "block" is the default policy
    await mgr.add_handler(GatedAio, terminated)
    mgr.notify(0)
    await asyncio.wait_for(GatedAio.entered.wait(), WAIT)  # the handler holds event 0
    for i in range(1, 4):
        await mgr.notify_wait(i)  # room for three
    with pytest.raises(MailboxFull):
        mgr.notify(4)  # a plain notify never waits: refused
    with pytest.raises(MailboxFull):
        await mgr.notify_wait(4, timeout=0)
    waiting = asyncio.ensure_future(mgr.notify_wait(5))
    for _ in range(100):
        await asyncio.sleep(0)
    assert not waiting.done()  # still full: the producer waits
    GatedAio.gate.set()
    await asyncio.wait_for(waiting, WAIT)
    await mgr.stop()
    stats = mgr.stats()
    assert stats.refused == 2
    assert stats.dropped == 0
    assert stats.events == 5
    assert terminated == [("GatedAio", 5)]


async def test_aio_notify_wait_is_refused_when_stopped_while_waiting() -> None:
    GatedAio.gate = asyncio.Event()
    GatedAio.entered = asyncio.Event()
    mgr = aio.start(maxsize=1)
    await mgr.add_handler(GatedAio, [])
    mgr.notify(0)
    await asyncio.wait_for(GatedAio.entered.wait(), WAIT)
    mgr.notify(1)
    waiting = asyncio.ensure_future(mgr.notify_wait(2))
    await asyncio.sleep(0)
    stopping = asyncio.ensure_future(mgr.stop(drain=False))
    with pytest.raises(ManagerNotRunning):
        await asyncio.wait_for(waiting, WAIT)
    GatedAio.gate.set()
    await asyncio.wait_for(stopping, WAIT)
    stats = mgr.stats()
    assert (stats.events, stats.dropped, stats.refused) == (1, 1, 1)


async def test_unbounded_notify_wait_is_notify() -> None:
    async with aio.start() as mgr:
        await mgr.add_handler(Count, [])
        await mgr.notify_wait(1, timeout=1.0)
        assert await mgr.call(Count, "seen") == [1]
    with threads.start() as tmgr:
        tmgr.add_handler(Count, [])
        tmgr.notify_wait(1, timeout=1.0)
        assert tmgr.call(Count, "seen") == [1]


def _wait_until(predicate: Any) -> None:
    """Wait (bounded) for state another thread changes; polls, never judges by the clock."""
    deadline = time.monotonic() + WAIT
    while not predicate():
        assert time.monotonic() < deadline, "condition never came true"
        time.sleep(0.001)


def test_threads_block_makes_the_producer_wait_and_loses_nothing() -> None:
    terminated: list[Any] = []
    GatedThread.gate = threading.Event()
    GatedThread.entered = threading.Event()
    mgr = threads.start(maxsize=3, overflow="block")
    mgr.add_handler(GatedThread, terminated)
    mgr.notify(0)
    assert GatedThread.entered.wait(WAIT)
    for i in range(1, 4):
        mgr.notify(i)  # room for three
    with pytest.raises(MailboxFull):
        mgr.notify_wait(4, timeout=0)
    done = threading.Event()

    def producer() -> None:
        mgr.notify(5)  # blocks until there is room
        done.set()

    t = threading.Thread(target=producer)
    t.start()
    bound = mgr._srv.bound
    assert bound is not None
    _wait_until(lambda: bound.waiting == 1)
    assert not done.is_set()
    GatedThread.gate.set()
    assert done.wait(WAIT)
    t.join(WAIT)
    mgr.stop()
    stats = mgr.stats()
    assert (stats.events, stats.dropped, stats.refused) == (5, 0, 1)
    assert terminated == [("GatedThread", 5)]


def test_threads_block_refuses_a_handler_notifying_its_own_full_manager() -> None:
    errors: list[BaseException] = []

    class SelfNotify(EventHandler[Any, Any, Any]):
        def init(self, args: Any = None) -> None:
            self.mgr = args

        def handle_event(self, event: Any) -> None:
            if event == "go":
                try:
                    for _ in range(3):  # the third finds it full: it cannot wait for itself
                        self.mgr.notify("fill")
                except MailboxFull as exc:
                    errors.append(exc)

    mgr = threads.start(maxsize=2)
    mgr.add_handler(SelfNotify, mgr)
    mgr.notify("go")
    mgr.sync_notify("done")
    mgr.stop()
    assert len(errors) == 1
    assert mgr.stats().refused == 1


# -- stop(drain=False) and leaving a block by an exception ------------------------------------


class _ReleaseOnDrop(logging.Handler):
    """Opens a gate when genevent logs the drop of a backlog (the stop has taken it)."""

    def __init__(self, gate: threading.Event | asyncio.Event) -> None:
        super().__init__()
        self.gate = gate

    def emit(self, record: logging.LogRecord) -> None:
        if "queued event" in record.getMessage() and "drain=False" in record.getMessage():
            self.gate.set()


def test_threads_leaving_with_by_an_exception_drops_the_backlog() -> None:
    terminated: list[Any] = []
    GatedThread.gate = threading.Event()
    GatedThread.entered = threading.Event()
    release = _ReleaseOnDrop(GatedThread.gate)
    logging.getLogger("genevent").addHandler(release)
    managers = []

    def leave_by_an_exception() -> None:
        with threads.start() as mgr:
            managers.append(mgr)
            mgr.add_handler(Count, terminated)
            mgr.add_handler(GatedThread, terminated)
            for i in range(BACKLOG):
                mgr.notify(i)
            assert GatedThread.entered.wait(WAIT)
            raise ValueError("boom")

    try:
        with pytest.raises(ValueError, match="boom"):
            leave_by_an_exception()
    finally:
        logging.getLogger("genevent").removeHandler(release)
    (mgr,) = managers
    stats = mgr.stats()
    assert not mgr.is_running
    assert stats.events < 10  # the one being handled, not the backlog
    assert stats.events + stats.dropped == BACKLOG
    assert sorted(terminated) == [("Count", stats.events), ("GatedThread", stats.events)]


async def test_aio_leaving_async_with_by_an_exception_drops_the_backlog() -> None:
    terminated: list[Any] = []
    GatedAio.gate = asyncio.Event()
    GatedAio.entered = asyncio.Event()
    release = _ReleaseOnDrop(GatedAio.gate)
    logging.getLogger("genevent").addHandler(release)
    managers = []

    async def leave_by_an_exception() -> None:
        async with aio.start() as mgr:
            managers.append(mgr)
            await mgr.add_handler(Count, terminated)
            await mgr.add_handler(GatedAio, terminated)
            for i in range(BACKLOG):
                mgr.notify(i)
            await asyncio.wait_for(GatedAio.entered.wait(), WAIT)
            raise ValueError("boom")

    try:
        with pytest.raises(ValueError, match="boom"):
            await leave_by_an_exception()
    finally:
        logging.getLogger("genevent").removeHandler(release)
    (mgr,) = managers
    stats = mgr.stats()
    assert not mgr.is_running
    assert stats.events < 10
    assert stats.events + stats.dropped == BACKLOG
    assert sorted(terminated) == [("Count", stats.events), ("GatedAio", stats.events)]


def test_threads_leaving_with_normally_drains() -> None:
    terminated: list[Any] = []
    with threads.start() as mgr:
        mgr.add_handler(Count, terminated)
        for i in range(1_000):
            mgr.notify(i)
    assert mgr.stats().events == 1_000
    assert mgr.stats().dropped == 0
    assert terminated == [("Count", 1_000)]


async def test_aio_stop_drain_false_answers_queued_requests() -> None:
    terminated: list[Any] = []
    GatedAio.gate = asyncio.Event()
    GatedAio.entered = asyncio.Event()
    mgr = aio.start()
    await mgr.add_handler(GatedAio, terminated)
    mgr.notify(0)
    await asyncio.wait_for(GatedAio.entered.wait(), WAIT)
    for i in range(1, 1_001):
        mgr.notify(i)
    mgr.send("info")
    call = asyncio.ensure_future(mgr.call(GatedAio, "seen"))
    await asyncio.sleep(0)
    stopping = asyncio.ensure_future(mgr.stop(drain=False))
    with pytest.raises(ManagerNotRunning):
        await asyncio.wait_for(call, WAIT)
    with pytest.raises(ManagerNotRunning):
        mgr.notify("late")
    GatedAio.gate.set()
    await asyncio.wait_for(stopping, WAIT)
    stats = mgr.stats()
    assert (stats.events, stats.dropped, stats.refused) == (1, 1_001, 1)
    assert terminated == [("GatedAio", 1)]


def test_threads_stop_drain_false_answers_queued_requests(reports: Any) -> None:
    terminated: list[Any] = []
    GatedThread.gate = threading.Event()
    GatedThread.entered = threading.Event()
    mgr = threads.start()
    mgr.add_handler(GatedThread, terminated)
    mgr.notify(0)
    assert GatedThread.entered.wait(WAIT)
    for i in range(1, 1_001):
        mgr.notify(i)
    mgr.send("info")
    call = mgr.call_future(GatedThread, "seen")
    release = _ReleaseOnDrop(GatedThread.gate)
    logging.getLogger("genevent").addHandler(release)
    try:
        mgr.stop(drain=False, timeout=WAIT)
    finally:
        logging.getLogger("genevent").removeHandler(release)
    with pytest.raises(ManagerNotRunning):
        call.result(WAIT)
    stats = mgr.stats()
    assert (stats.events, stats.dropped) == (1, 1_001)
    assert terminated == [("GatedThread", 1)]
    (line,) = [r.getMessage() for r in reports.records if "drain=False" in r.getMessage()]
    assert "dropped 1001 queued events and infos" in line
    assert "refused 1 queued request" in line


def test_exit_hook_counts_what_it_drops(request: pytest.FixtureRequest) -> None:
    terminated: list[Any] = []
    GatedThread.gate = threading.Event()
    GatedThread.entered = threading.Event()
    mgr = threads.start()
    mgr.add_handler(GatedThread, terminated)
    mgr.notify("first")
    assert GatedThread.entered.wait(WAIT)
    for i in range(5):
        mgr.notify(i)
    request.addfinalizer(lambda: _state.set_exiting(False))  # a rehearsal: the hook on mgr only
    try:
        _exit.stop_at_exit([mgr._srv], 0.0)
    finally:
        GatedThread.gate.set()
    mgr.wait_stopped(WAIT)
    stats = mgr.stats()
    assert (stats.events, stats.dropped) == (1, 5)
    assert terminated == [("GatedThread", 1)]  # not stuck for ever: still terminated
