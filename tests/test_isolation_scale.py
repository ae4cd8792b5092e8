"""Isolated handlers at scale: a table edit touches the lanes it concerns, not every lane; a
request that needs isolated handlers to catch up does not wake those that have."""

from __future__ import annotations

import asyncio
import queue
import threading
from types import SimpleNamespace
from typing import Any

import pytest

from genevent import CallingSelf, EventHandler, HandlerInitFailed, aio, threads
from genevent._lanes import Barrier, Lane, Order, TaskLane, ThreadLane

N = 20


class Plain(EventHandler[Any, Any, Any]):
    def init(self, args: Any = None) -> None:
        self.n = 0

    def handle_event(self, event: Any, /) -> None:
        self.n += 1

    def handle_call(self, request: Any, /) -> Any:
        return self.n


class Refuses(Plain):
    def init(self, args: Any = None) -> None:
        raise RuntimeError("no")


class Gate(EventHandler[Any, Any, Any]):
    def init(self, args: tuple[threading.Event, threading.Event]) -> None:
        self.entered, self.release = args

    def handle_event(self, event: Any, /) -> None:
        self.entered.set()
        self.release.wait()


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch) -> list[Lane]:
    """Every Lane.serve call, by lane (a table edit serves the lanes it concerns only)."""
    calls: list[Lane] = []
    serve = Lane.serve

    def counting(self: Lane, entry: Any) -> None:
        calls.append(self)
        serve(self, entry)

    monkeypatch.setattr(Lane, "serve", counting)
    return calls


def test_threads_adds_and_deletes_serve_only_their_own_lane(served: list[Lane]) -> None:
    mgr = threads.start()
    try:
        for i in range(N):
            mgr.add_handler((Plain, i), isolation=True)
        assert len(served) == N  # one per add, not one per add and lane already there
        assert len(set(served)) == N
        mgr.sync_notify("x")
        assert mgr.which_handlers() == [(Plain, i) for i in reversed(range(N))]
        assert len(served) == N  # nothing changed: nobody served again
        lanes = dict(mgr._srv.lanes)
        mgr.delete_handler((Plain, 3))
        assert len(served) == N
        assert len(mgr._srv.lanes) == N - 1
        (gone,) = set(lanes) - set(mgr._srv.lanes)
        assert gone.closed
        assert not any(lane.closed for lane in mgr._srv.lanes)
        assert [mgr.call((Plain, i), None) for i in range(N) if i != 3] == [1] * (N - 1)
    finally:
        mgr.stop()


async def test_aio_adds_and_deletes_serve_only_their_own_lane(served: list[Lane]) -> None:
    mgr = aio.start()
    try:
        for i in range(N):
            await mgr.add_handler((Plain, i), isolation="task" if i % 2 else "thread")
        assert len(served) == N
        await mgr.sync_notify("x")
        assert len(await mgr.which_handlers()) == N
        assert len(served) == N
        await mgr.delete_handler((Plain, 4))
        assert len(served) == N
        assert len(mgr._srv.lanes) == N - 1
        assert [await mgr.call((Plain, i), None) for i in range(N) if i != 4] == [1] * (N - 1)
    finally:
        await mgr.stop()


def test_threads_a_failed_isolated_add_closes_its_lane() -> None:
    mgr = threads.start()
    try:
        mgr.add_handler(Plain, isolation=True)
        with pytest.raises(HandlerInitFailed):
            mgr.add_handler(Refuses, isolation=True)
        (lane,) = mgr._srv.lanes
        assert lane.entry is not None
        assert lane.entry.ref is Plain
        assert not mgr._srv.fresh
        assert not mgr._srv.core.lane_edits
    finally:
        mgr.stop()


async def test_aio_a_failed_isolated_add_closes_its_lane() -> None:
    mgr = aio.start()
    try:
        await mgr.add_handler(Plain, isolation="task")
        with pytest.raises(HandlerInitFailed):
            await mgr.add_handler(Refuses, isolation="task")
        (lane,) = mgr._srv.lanes
        assert lane.entry is not None
        assert lane.entry.ref is Plain
    finally:
        await mgr.stop()


def test_a_caught_up_lane_reaches_a_barrier_without_a_mark() -> None:
    reached = threading.Event()
    host: Any = SimpleNamespace(_lane_order=Order())  # a lane numbers what it is given
    lane = ThreadLane(host=host, ref=Plain)
    lane.sleeping = True  # parked, nothing queued, no outcome pending
    assert lane.caught_up()
    lane.mark(Barrier(1, reached.set))
    assert reached.is_set()
    assert not lane.fifo
    lane.sleeping = False  # running (or about to): a mark is queued behind its work
    lane.mark(Barrier(1, reached.clear))
    assert len(lane.fifo) == 1
    assert reached.is_set()
    lane.fifo.clear()
    lane.sleeping = True
    lane.pending = object()  # type: ignore[assignment]  # its outcome is in the manager's mailbox
    assert not lane.caught_up()


async def test_a_waiting_task_lane_is_caught_up() -> None:
    mgr = aio.start()
    try:
        await mgr.add_handler(Plain, isolation="task")
        await mgr.sync_notify(None)
        (lane,) = mgr._srv.lanes
        assert isinstance(lane, TaskLane)
        while lane.waiter is None:  # the lane task runs up to its wait (loop turns, no clock)
            await asyncio.sleep(0)
        assert lane.caught_up()
        assert await mgr.which_handlers() == [Plain]
    finally:
        await mgr.stop()


class AsksAnother(EventHandler[Any, Any, Any]):
    def init(self, args: tuple[Any, queue.SimpleQueue[Any]]) -> None:
        self.other, self.answers = args

    def handle_event(self, event: Any, /) -> None:
        try:
            self.answers.put(self.other.which_handlers())
        except Exception as exc:
            self.answers.put(exc)


def test_an_isolated_handler_may_call_another_manager() -> None:
    mgr = threads.start()
    other = threads.start()
    answers: queue.SimpleQueue[Any] = queue.SimpleQueue()
    try:
        other.add_handler(Plain, isolation=True)
        mgr.add_handler((AsksAnother, 1), (other, answers), isolation=True)
        mgr.add_handler((AsksAnother, 2), (mgr, answers), isolation=True)
        mgr.notify("x")
        got = [answers.get(), answers.get()]
        assert [Plain] in got  # its thread is a lane of mgr's, not of other's
        assert any(isinstance(a, CallingSelf) for a in got)  # ... and mgr's own lane
    finally:
        other.stop()
        mgr.stop()
