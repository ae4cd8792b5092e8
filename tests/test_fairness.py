"""docs/semantics.md P9, fairness: a flooded manager never starves the other tasks, timers
and timeouts of its event loop (asyncio), nor a caller of its thread (threads).

A flood here is bounded twice: it stops when the test has seen what it waits for (a
``threading.Event``), and in any case after :data:`FLOOD` events, so a broken manager fails the
test (the flood ran out before anyone else got a turn) instead of hanging it. No figure here is
a wall-clock threshold: :data:`FLOOD` events take seconds, the waits below take milliseconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from functools import partial
from typing import Any

import pytest

from genevent import CallTimeout, EventHandler, aio, threads
from tests.handlers import WAIT

FLOOD = 3_000_000
"""Events a flood sends at most: far more than a fair manager lets through before the loop's
other tasks run (a few slices), and few enough that an unfair one finishes in seconds."""


class Busy(EventHandler[Any, Any, Any]):
    """Does a little work per event (so a producer thread outpaces it and the mailbox never
    empties) and answers calls with the count."""

    def init(self, args: Any = None) -> None:
        self.n = 0
        self.started: asyncio.Future[None] | None = args

    def handle_event(self, event: Any) -> None:
        self.n += 1
        sum(range(30))
        started = self.started
        if started is not None and self.n >= 1000:
            self.started = None
            if not started.done():
                started.set_result(None)

    def handle_call(self, request: Any) -> Any:
        return ("count", self.n)


class Producer:
    """A foreign thread notifying as fast as it can until ``stop`` is set or it sent
    :data:`FLOOD` events."""

    def __init__(self, notify: Any) -> None:
        self.stop = threading.Event()
        self.exhausted = False
        self.sent = 0
        self._notify = notify
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        notify, stop = self._notify, self.stop
        for i in range(FLOOD):
            if stop.is_set():
                self.sent = i
                return
            notify(None)
        self.sent = FLOOD
        self.exhausted = True

    def __enter__(self) -> Producer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(WAIT)
        assert not self.thread.is_alive()


async def test_foreign_flood_does_not_starve_a_sleeping_task() -> None:
    async with aio.start() as mgr:
        started = asyncio.get_running_loop().create_future()
        await mgr.add_handler(Busy, started)
        with Producer(mgr.notify) as producer:
            await started  # the flood is under way: the manager is draining a full mailbox
            await asyncio.sleep(0.01)  # a timer of this loop must fire during the flood
            producer.stop.set()
        assert not producer.exhausted, "the sleeping task only woke once the flood ran out"
        await mgr.sync_notify(None)
        assert await mgr.call(Busy, "n") == ("count", producer.sent + 1)


@pytest.mark.parametrize("timeout", [0.0001, 0.05])
async def test_call_on_a_flooded_manager_completes(timeout: float) -> None:
    async with aio.start() as mgr:
        started = asyncio.get_running_loop().create_future()
        await mgr.add_handler(Busy, started)
        with Producer(mgr.notify) as producer:
            await started
            try:  # queued behind the backlog: either answered or timed out, but done
                reply = await mgr.call(Busy, "n", timeout=timeout)
            except CallTimeout:
                pass
            else:
                assert reply[0] == "count"
            producer.stop.set()
        assert not producer.exhausted, "the call only completed once the flood ran out"


class Chain(EventHandler[Any, Any, Any]):
    """Each event notifies the next one to its own manager, until told to stop or
    :data:`FLOOD` events went round; a ``("mark", x)`` event is recorded."""

    def init(self, args: Any = None) -> None:
        self.mgr: aio.EventManager[Any] = args
        self.stop = False
        self.rounds = 0
        self.marks: list[Any] = []

    def handle_event(self, event: Any) -> None:
        if event.__class__ is tuple:
            self.marks.append(event[1])
            return
        self.rounds += 1
        if not self.stop and self.rounds < FLOOD:
            self.mgr.notify(None)

    def handle_call(self, request: Any) -> Any:
        if request == "stop":
            self.stop = True
            return self.rounds
        return list(self.marks)


async def test_handler_notifying_its_own_manager_does_not_starve_other_tasks() -> None:
    async with aio.start() as mgr:
        await mgr.add_handler(Chain, mgr)
        mgr.notify(None)  # starts the chain: from now on the mailbox is never empty
        other_ran = asyncio.Event()

        async def other() -> list[Any]:
            await asyncio.sleep(0.01)
            # while the chain runs the mailbox is not empty: the call below must be queued
            # behind the mark, never answered inline ahead of it
            mgr.notify(("mark", 1))
            marks: list[Any] = await mgr.call(Chain, "marks")
            other_ran.set()
            return marks

        marks = await asyncio.create_task(other())
        assert marks == [1]
        rounds = await mgr.call(Chain, "stop")
        assert other_ran.is_set()
        assert rounds < FLOOD - 1, "the other task only ran once the chain ran out"


@pytest.mark.parametrize("inline", [False, True])
def test_thread_manager_answers_callers_during_a_flood(inline: bool) -> None:
    # the thread runtime was fair already (an inline caller that finds the manager busy queues
    # its request); this keeps it so
    with threads.start(inline=inline) as mgr:
        started_flag = threading.Event()

        class Flagging(Busy):
            def handle_event(self, event: Any) -> None:
                super().handle_event(event)
                if self.n == 1000:
                    started_flag.set()

        mgr.add_handler(Flagging, None)
        with Producer(mgr.notify) as producer:
            assert started_flag.wait(WAIT)
            for request in (partial(mgr.call, Flagging, "n"), partial(mgr.sync_notify, None)):
                # queued behind the backlog: either answered or timed out, but done
                with contextlib.suppress(CallTimeout):
                    request(timeout=0.05)
            producer.stop.set()
        assert not producer.exhausted
