"""Isolated handlers on the thread runtime, and the rules both runtimes share: drops in
``stats()``, a KeyboardInterrupt from an isolated handler, an ended owner's isolated handlers."""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
from typing import Any

import pytest

from genevent import (
    CallingSelf,
    CallTimeout,
    EventHandler,
    HandlerExit,
    ManagerNotRunning,
    OwnerExited,
    Remove,
    Stopped,
    aio,
    threads,
)
from tests.handlers import WAIT
from tests.test_aio_hardening import run_elsewhere
from tests.test_isolation import Blocking, Counting, Next


class Gated(EventHandler[Any, Any, Any]):
    """Records events once its gate opens; answers calls with what it saw."""

    def init(self, args: tuple[threading.Event, threading.Event]) -> None:
        self.entered, self.gate = args
        self.seen: list[Any] = []

    def handle_event(self, event: Any, /) -> None:
        self.entered.set()
        self.gate.wait(WAIT)
        self.seen.append(event)

    def handle_call(self, request: Any, /) -> Any:
        return list(self.seen)


def test_a_blocked_handler_does_not_delay_an_isolated_sibling() -> None:
    entered, gate = threading.Event(), threading.Event()
    seen: list[Any] = []
    done = threading.Event()
    with threads.start() as mgr:
        mgr.add_handler(Blocking, (entered, gate), isolation=True)
        mgr.add_handler(Counting, (99, seen, done), isolation=True)
        try:
            for i in range(100):
                mgr.notify(i)
            assert entered.wait(WAIT)
            assert done.wait(WAIT)
            assert seen == list(range(100))
            assert mgr.call(Counting, "n") == 100  # calls reach it too
        finally:
            gate.set()


def test_sync_notify_waits_for_every_isolated_handler() -> None:
    entered, gate = threading.Event(), threading.Event()
    with threads.start() as mgr:
        mgr.add_handler(Gated, (entered, gate), isolation=True)
        fut = mgr.sync_notify_future("e")
        assert entered.wait(WAIT)
        assert not fut.done()  # the isolated handler has not handled it yet
        gate.set()
        assert fut.result(WAIT) is None
        assert mgr.call(Gated, "seen") == ["e"]


def test_a_call_timeout_names_the_isolated_handler() -> None:
    entered, gate = threading.Event(), threading.Event()
    with threads.start() as mgr:
        mgr.add_handler(Gated, (entered, gate), isolation=True)
        try:
            mgr.notify("slow")
            assert entered.wait(WAIT)
            with pytest.raises(CallTimeout) as info:
                mgr.call(Gated, "seen", timeout=0.0)
            text = str(info.value)
            assert "isolated handler Gated" in text
        finally:
            gate.set()


def test_stop_leaves_a_stuck_isolated_handler_behind(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.ERROR, logger="genevent")
    entered, gate = threading.Event(), threading.Event()
    seen: list[Any] = []
    reasons: list[Any] = []

    class Told(Counting):
        def terminate(self, reason: Any, /) -> Any:
            reasons.append(reason)

    mgr = threads.start()
    try:
        mgr.add_handler(Blocking, (entered, gate), isolation=True, stop_timeout=0.05)
        mgr.add_handler(Told, (0, seen, threading.Event()), isolation=True)
        mgr.notify(0)
        assert entered.wait(WAIT)
        mgr.stop(timeout=WAIT)
        assert mgr.left_behind == 1
        assert seen == [0]
        assert reasons == [Stopped()]  # the handler that was not stuck was terminated
        text = caplog.text
        assert "Blocking" in text
        assert "left behind" in text
        assert "Blocking.handle_event" in text
        assert "daemon" in text
    finally:
        gate.set()


def test_swap_keeps_isolation_and_hands_state_over() -> None:
    seen: list[Any] = []
    with threads.start() as mgr:
        mgr.add_handler(Counting, (None, seen, threading.Event()), isolation=True)
        for i in range(3):
            mgr.notify(i)
        mgr.swap_handler(Counting, "bye", Next, None)
        assert mgr.which_handlers() == [Next]
        assert mgr.call(Next, "h") == ("handoff", 3)
        entry = mgr._srv.core.find(Next)
        assert entry is not None
        assert entry.lane is not None


class Flaky(EventHandler[Any, Any, Any]):
    """Crashes on "boom"; tells which thread it runs on."""

    def init(self, args: Any = None) -> None:
        pass

    def handle_event(self, event: Any, /) -> None:
        if event == "boom":
            raise RuntimeError("boom")

    def handle_call(self, request: Any, /) -> Any:
        return threading.current_thread().name


def test_a_restart_keeps_isolation() -> None:
    with threads.start() as mgr:
        mgr.add_handler(Flaky, None, isolation=True, restart="transient")
        before = mgr.call(Flaky, "where")
        assert before.startswith("genevent-lane:")
        mgr.sync_notify("boom")
        assert mgr.which_handlers() == [Flaky]
        assert mgr.call(Flaky, "where") == before  # the same lane, its thread
        assert mgr.stats().restarts == 1


class SelfCaller(EventHandler[Any, Any, Any]):
    def init(self, args: tuple[Any, queue.SimpleQueue[Any]]) -> None:
        self.mgr, self.out = args

    def handle_event(self, event: Any, /) -> None:
        try:
            self.mgr.which_handlers()
        except CallingSelf as exc:
            self.out.put(exc)


def test_an_isolated_handler_calling_its_own_manager_gets_calling_self() -> None:
    out: queue.SimpleQueue[Any] = queue.SimpleQueue()
    with threads.start() as mgr:
        mgr.add_handler(SelfCaller, (mgr, out), isolation=True)
        mgr.notify("x")
        assert isinstance(out.get(timeout=WAIT), CallingSelf)


def test_isolation_keywords_are_checked() -> None:
    with threads.start() as mgr:
        with pytest.raises(ValueError, match="isolation"):
            mgr.add_handler(Counting, None, isolation="thread")  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="overflow"):
            mgr.add_handler(Counting, None, isolation=True, overflow="block")  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="maxsize"):
            mgr.add_handler(Counting, None, maxsize=3)
        with pytest.raises(ValueError, match="stop_timeout"):
            mgr.add_handler(Counting, None, isolation=True, stop_timeout=-1)
        assert mgr.which_handlers() == []


def test_subscribe_isolated() -> None:
    seen: list[Any] = []
    with threads.start() as mgr:
        mgr.subscribe(seen.append, int, isolation=True)
        mgr.notify(1)
        mgr.notify("no")
        mgr.sync_notify(2)
        assert seen == [1, 2]


# -- drops counted in stats() ------------------------------------------------------------------


def test_threads_isolated_drops_show_in_stats() -> None:
    entered, gate = threading.Event(), threading.Event()
    with threads.start() as mgr:
        mgr.add_handler(Gated, (entered, gate), isolation=True, maxsize=2)
        mgr.add_handler(Next, None)
        mgr.notify(0)
        assert entered.wait(WAIT)  # 0 is being handled; the mailbox holds 2 of the next 5
        for i in range(1, 6):
            mgr.notify(i)
        mgr.call(Next, "h")  # answered once the manager forwarded every event
        gate.set()
        assert mgr.call(Gated, "seen") == [0, 4, 5]
        stats = mgr.stats()
        by_ref = {h.handler: h for h in stats.handlers}
        assert by_ref[Gated].dropped == 3
        assert by_ref[Next].dropped == 0
        assert stats.lane_dropped == 3
        assert stats.dropped == 0  # the manager itself dropped nothing
        assert stats.events_in == stats.events == 6
        mgr.delete_handler(Gated)
        assert mgr.stats().lane_dropped == 3  # still counted once the handler is gone


async def test_aio_isolated_drops_show_in_stats() -> None:
    gate = asyncio.Event()
    started = asyncio.Event()

    class Slow(EventHandler[Any, Any, Any]):
        def init(self, args: Any = None) -> None:
            self.seen: list[Any] = []

        async def handle_event(self, event: Any, /) -> None:
            started.set()
            await gate.wait()
            self.seen.append(event)

        def handle_call(self, request: Any, /) -> Any:
            return list(self.seen)

    async with aio.start() as mgr:
        await mgr.add_handler(Slow, None, isolation="task", maxsize=2, overflow="drop_newest")
        await mgr.add_handler(Next, None)
        mgr.notify(0)
        await started.wait()
        for i in range(1, 7):
            mgr.notify(i)
        await mgr.call(Next, "h")  # answered once the manager forwarded every event
        gate.set()
        assert await mgr.call(Slow, "seen") == [0, 1, 2]
        stats = mgr.stats()
        assert stats.handlers[1].dropped == 4
        assert stats.handlers[0].dropped == 0
        assert stats.lane_dropped == 4
        assert stats.dropped == 0
        await mgr.delete_handler(Slow)
        assert mgr.stats().lane_dropped == 4


# -- handled + dropped + refused = sent: the manager's mailbox, and each isolated one apart ----


def test_threads_sent_adds_up_beside_an_isolated_handler_that_dropped() -> None:
    """The manager's identity counts its own mailbox only: the events an isolated handler's
    bounded mailbox dropped were handled by the manager (``lane_dropped``, not ``dropped``);
    the handler's own identity is handled + its ``dropped`` = what it was passed."""
    entered, gate = threading.Event(), threading.Event()
    mgr = threads.start()
    mgr.add_handler(Gated, (entered, gate), isolation=True, maxsize=2)
    mgr.add_handler(Next, None)
    mgr.notify(0)
    assert entered.wait(WAIT)
    for i in range(1, 6):
        mgr.notify(i)
    mgr.call(Next, "h")  # the manager forwarded every event
    gate.set()
    handled_by_gated = len(mgr.call(Gated, "seen"))
    mgr.stop()
    with pytest.raises(ManagerNotRunning):
        mgr.notify(6)  # refused: the manager stopped
    sent = 7
    stats = mgr.stats()
    assert stats.lane_dropped == 3
    assert stats.events + stats.infos + stats.dropped + stats.refused == sent
    assert (stats.dropped, stats.refused) == (0, 1)
    assert handled_by_gated + stats.lane_dropped == 6  # what the manager passed it


async def test_aio_sent_adds_up_beside_an_isolated_handler_that_dropped() -> None:
    gate = asyncio.Event()
    started = asyncio.Event()

    class Slow(EventHandler[Any, Any, Any]):
        def init(self, args: Any = None) -> None:
            self.seen: list[Any] = []

        async def handle_event(self, event: Any, /) -> None:
            started.set()
            await gate.wait()
            self.seen.append(event)

        def handle_call(self, request: Any, /) -> Any:
            return list(self.seen)

    mgr = aio.start()
    await mgr.add_handler(Slow, None, isolation="task", maxsize=2, overflow="drop_newest")
    await mgr.add_handler(Next, None)
    mgr.notify(0)
    await started.wait()
    for i in range(1, 7):
        mgr.notify(i)
    await mgr.call(Next, "h")
    gate.set()
    handled_by_slow = len(await mgr.call(Slow, "seen"))
    await mgr.stop()
    with pytest.raises(ManagerNotRunning):
        mgr.notify(7)
    sent = 8
    stats = mgr.stats()
    assert stats.lane_dropped == 4
    assert stats.events + stats.infos + stats.dropped + stats.refused == sent
    assert (stats.dropped, stats.refused) == (0, 1)
    assert handled_by_slow + stats.lane_dropped == 7


# -- an ended owner: its isolated handlers catch up first -----------------------------------------


def test_threads_an_ended_owners_isolated_handler_catches_up_before_terminate() -> None:
    entered, gate = threading.Event(), threading.Event()
    order: list[Any] = []
    terminated = threading.Event()
    notices: queue.SimpleQueue[HandlerExit] = queue.SimpleQueue()

    class Logged(Gated):
        def handle_event(self, event: Any, /) -> None:
            super().handle_event(event)
            order.append(event)

        def terminate(self, reason: Any, /) -> Any:
            order.append(reason)
            terminated.set()

    with threads.start() as mgr:

        def owner() -> None:
            mgr.add_sup_handler(Logged, (entered, gate), on_exit=notices.put, isolation=True)
            for i in range(3):
                mgr.notify(i)

        t = threading.Thread(target=owner)
        t.start()
        t.join(WAIT)
        assert entered.wait(WAIT)
        gate.set()
        assert terminated.wait(WAIT)
        assert order == [0, 1, 2, OwnerExited(None)]
        assert notices.empty()  # an ended owner is not told
        assert mgr.which_handlers() == []


async def test_aio_an_ended_owners_isolated_handler_catches_up_before_terminate() -> None:
    gate = asyncio.Event()
    order: list[Any] = []
    terminated = asyncio.Event()
    notices: asyncio.Queue[HandlerExit] = asyncio.Queue()

    class Logged(EventHandler[Any, Any, Any]):
        def init(self, args: Any = None) -> None:
            pass

        async def handle_event(self, event: Any, /) -> None:
            await gate.wait()
            order.append(event)

        def terminate(self, reason: Any, /) -> Any:
            order.append(reason)
            terminated.set()

    async with aio.start() as mgr:

        async def owner() -> None:
            await mgr.add_sup_handler(Logged, None, on_exit=notices.put_nowait, isolation="task")
            for i in range(3):
                mgr.notify(i)

        await asyncio.create_task(owner())
        gate.set()
        await asyncio.wait_for(terminated.wait(), WAIT)
        assert order == [0, 1, 2, OwnerExited(None)]
        assert notices.empty()  # an ended owner is not told
        assert await mgr.which_handlers() == []


# -- KeyboardInterrupt / SystemExit from an isolated handler ------------------------------------


class Interrupting(EventHandler[Any, Any, Any]):
    def init(self, args: list[Any]) -> None:
        self.reasons = args

    def handle_event(self, event: Any, /) -> Any:
        if event == "stop":
            raise KeyboardInterrupt
        return None

    def terminate(self, reason: Any, /) -> Any:
        self.reasons.append(reason)


class Bystander(Interrupting):
    def handle_event(self, event: Any, /) -> Any:
        return None


def test_threads_keyboard_interrupt_in_an_isolated_handler_stops_the_manager() -> None:
    mine: list[Any] = []
    other: list[Any] = []
    mgr = threads.start()
    mgr.add_handler(Interrupting, mine, isolation=True)
    mgr.add_handler(Bystander, other, isolation=True)
    mgr.notify("stop")
    mgr.wait_stopped(WAIT)
    assert not mgr.is_running
    assert len(mine) == 1
    assert type(mine[0]).__name__ == "Crashed"
    assert other == [Stopped()]  # the manager stopped as by stop
    assert mgr.left_behind == 0


@pytest.mark.parametrize("isolation", ["task", "thread"])
def test_aio_keyboard_interrupt_in_an_isolated_handler_leaves_the_loop(isolation: str) -> None:
    reasons: list[Any] = []
    other: list[Any] = []
    box: list[Any] = []

    async def main() -> None:
        mgr = aio.start()
        box.append(mgr)
        await mgr.add_handler(Interrupting, reasons, isolation=isolation)  # type: ignore[arg-type]
        await mgr.add_handler(Bystander, other)
        mgr.notify("stop")
        await mgr.wait_stopped()

    assert isinstance(run_elsewhere(main), KeyboardInterrupt)  # out of the loop, as from a task
    assert not box[0].is_running
    assert len(reasons) == 1
    assert type(reasons[0]).__name__ == "Crashed"
    assert other == [Stopped()]


def test_remove_from_an_isolated_handler_is_applied_in_order() -> None:
    class Once(EventHandler[Any, Any, Any]):
        def init(self, args: Any = None) -> None:
            pass

        def handle_event(self, event: Any, /) -> Any:
            return Remove()

    with threads.start() as mgr:
        mgr.add_handler(Once, None, isolation=True)
        mgr.notify(1)
        assert mgr.which_handlers() == []
