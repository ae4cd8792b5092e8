"""Isolated handlers: a blocked one delays nobody else; stop leaves a stuck one behind."""

from __future__ import annotations

import asyncio
import logging
import threading
from typing import Any

import pytest

from genevent import EventHandler, Stopped, Swap, aio
from tests.handlers import WAIT


class Blocking(EventHandler[Any, Any, Any]):
    """Plain code that blocks its thread until its gate opens."""

    def init(self, args: tuple[threading.Event, threading.Event]) -> None:
        self.entered, self.gate = args

    def handle_event(self, event: Any, /) -> None:
        self.entered.set()
        self.gate.wait(WAIT)


class Awaiting(EventHandler[Any, Any, Any]):
    """A coroutine handler that waits until its gate opens."""

    def init(self, gate: asyncio.Event) -> None:
        self.gate = gate
        self.seen: list[Any] = []

    async def handle_event(self, event: Any, /) -> None:
        await self.gate.wait()
        self.seen.append(event)

    def handle_call(self, request: Any, /) -> Any:
        return list(self.seen)


class Counting(EventHandler[Any, Any, Any]):
    """Records events; ``done`` is set once it saw ``last``."""

    def init(self, args: tuple[Any, list[Any], threading.Event]) -> None:
        self.last, self.seen, self.done = args

    def handle_event(self, event: Any, /) -> None:
        self.seen.append(event)
        if event == self.last:
            self.done.set()

    def handle_call(self, request: Any, /) -> Any:
        return len(self.seen)

    def terminate(self, reason: Any, /) -> Any:
        return ("handoff", len(self.seen))


class Next(EventHandler[Any, Any, Any]):
    def init(self, args: Any = None, /, *, handoff: Any = None) -> None:
        self.handoff = handoff

    def handle_event(self, event: Any, /) -> None:
        pass

    def handle_call(self, request: Any, /) -> Any:
        return self.handoff


@pytest.mark.parametrize("isolation", ["task", "thread"])
async def test_a_blocked_handler_does_not_delay_an_isolated_sibling(isolation: str) -> None:
    entered, gate = threading.Event(), threading.Event()
    seen: list[Any] = []
    done = threading.Event()
    async with aio.start() as mgr:
        await mgr.add_handler(Blocking, (entered, gate), isolation="thread")
        await mgr.add_handler(Counting, (99, seen, done), isolation=isolation)  # type: ignore[arg-type]
        try:
            for i in range(100):
                mgr.notify(i)
            await asyncio.to_thread(entered.wait, WAIT)
            assert await asyncio.to_thread(done.wait, WAIT)
            assert seen == list(range(100))
            assert await mgr.call(Counting, "n") == 100  # calls reach it too
        finally:
            gate.set()


async def test_a_slow_async_handler_does_not_delay_a_task_isolated_sibling() -> None:
    gate = asyncio.Event()
    seen: list[Any] = []
    done = threading.Event()
    async with aio.start() as mgr:
        await mgr.add_handler(Awaiting, gate, isolation="task")
        await mgr.add_handler(Counting, (9, seen, done), isolation="task")
        for i in range(10):
            mgr.notify(i)
        assert await mgr.call(Counting, "n") == 10
        assert await mgr.call(Counting, "n") == 10
        gate.set()
        assert await mgr.call(Awaiting, "seen") == list(range(10))  # in notify order


async def test_stop_leaves_a_stuck_isolated_handler_behind(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.ERROR, logger="genevent")
    entered, gate = threading.Event(), threading.Event()
    seen: list[Any] = []
    mgr = aio.start()
    try:
        await mgr.add_handler(Blocking, (entered, gate), isolation="thread", stop_timeout=0.05)
        await mgr.add_handler(Counting, (0, seen, threading.Event()), isolation="task")
        mgr.notify(0)
        await asyncio.to_thread(entered.wait, WAIT)
        await asyncio.wait_for(mgr.stop(), WAIT)
        assert mgr.left_behind == 1
        assert seen == [0]
        text = caplog.text
        assert "Blocking" in text
        assert "left behind" in text
        assert "Blocking.handle_event" in text
    finally:
        gate.set()


async def test_swap_keeps_isolation_and_hands_state_over() -> None:
    seen: list[Any] = []
    async with aio.start() as mgr:
        await mgr.add_handler(Counting, (None, seen, threading.Event()), isolation="task")
        for i in range(3):
            mgr.notify(i)
        await mgr.swap_handler(Counting, "bye", Next, None)
        assert await mgr.which_handlers() == [Next]
        assert await mgr.call(Next, "h") == ("handoff", 3)
        entry = mgr._srv.core.find(Next)
        assert entry is not None
        assert entry.lane is not None


class SwapsItself(EventHandler[Any, Any, Any]):
    def init(self, args: Any = None) -> None:
        pass

    def handle_event(self, event: Any, /) -> Any:
        if event == "swap":
            return Swap("old", Next, None)
        return None

    def terminate(self, reason: Any, /) -> Any:
        return "from-old"


async def test_a_swap_asked_for_keeps_the_events_queued_behind_it() -> None:
    async with aio.start() as mgr:
        await mgr.add_handler(SwapsItself, None, isolation="task")
        mgr.notify("swap")
        mgr.notify("after")
        await mgr.sync_notify("sync")
        assert await mgr.which_handlers() == [Next]
        assert await mgr.call(Next, "h") == "from-old"


async def test_a_bounded_isolated_mailbox_drops_and_counts() -> None:
    gate = asyncio.Event()
    async with aio.start() as mgr:
        await mgr.add_handler(Awaiting, gate, isolation="task", maxsize=2, overflow="drop_oldest")
        await mgr.add_handler(Next, None)
        for i in range(5):
            mgr.notify(i)
        mgr.notify("x")
        await mgr.call(Next, "h")  # answered once the manager forwarded every event
        gate.set()
        seen = await mgr.call(Awaiting, "seen")
        entry = mgr._srv.core.find(Awaiting)
        assert entry is not None
        lane = entry.lane
        counts = lane.counts
        assert counts.handled + counts.dropped + counts.refused == counts.sent
        assert counts.dropped >= 3
        assert seen[-1] == "x"


async def test_isolation_keywords_are_checked() -> None:
    async with aio.start() as mgr:
        with pytest.raises(ValueError, match="isolation"):
            await mgr.add_handler(Counting, None, isolation="process")  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="overflow"):
            await mgr.add_handler(Counting, None, isolation="task", overflow="block")  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="maxsize"):
            await mgr.add_handler(Counting, None, maxsize=3)
        assert await mgr.which_handlers() == []


async def test_terminate_runs_for_isolated_handlers_at_stop() -> None:
    seen: list[Any] = []
    reasons: list[Any] = []

    class Told(Counting):
        def terminate(self, reason: Any, /) -> Any:
            reasons.append(reason)

    async with aio.start() as mgr:
        await mgr.add_handler(Told, (None, seen, threading.Event()), isolation="thread")
        for i in range(50):
            mgr.notify(i)
    assert seen == list(range(50))  # everything accepted before stop, then terminate
    assert reasons == [Stopped()]


class CallsItsManager(EventHandler[Any, Any, Any]):
    """Isolated in a thread: each event makes a request to its own manager through the
    manager's loop, as blocking code in a thread would, and keeps what that raised."""

    def init(self, mgr: aio.EventManager[Any]) -> None:
        self.mgr = mgr
        self.outcomes: list[str] = []

    def _ask(self, what: str) -> str:
        mgr = self.mgr
        requests = {
            "which_handlers": mgr.which_handlers,
            "call": lambda: mgr.call(Next, "n"),
            "sync_notify": lambda: mgr.sync_notify("again"),
            "wait_stopped": mgr.wait_stopped,
        }
        fut = asyncio.run_coroutine_threadsafe(requests[what](), mgr.loop)
        try:
            fut.result(WAIT)  # a deadlock would end here, after WAIT, as a TimeoutError
        except Exception as exc:  # the test reads which exception it was
            return type(exc).__name__
        return "answered"

    def handle_event(self, event: Any) -> None:
        self.outcomes.append(self._ask(event))

    def handle_call(self, request: Any) -> Any:
        if request == "outcomes":
            return self.outcomes
        return self._ask(request)


async def test_a_thread_isolated_handler_calling_its_own_manager_gets_calling_self() -> None:
    """The request made from the isolated handler's thread fails at once with CallingSelf, as
    from a handler that is not isolated, instead of waiting for the handler that waits for it;
    the handler goes on. A coroutine from any other thread is served as usual
    (docs/semantics.md P24)."""
    async with aio.start() as mgr:
        await mgr.add_handler(Next, None)
        await mgr.add_handler(CallsItsManager, mgr, isolation="thread")
        for what in ("which_handlers", "call", "sync_notify", "wait_stopped"):
            mgr.notify(what)
        assert await mgr.call(CallsItsManager, "call", timeout=WAIT) == "CallingSelf"
        assert await mgr.call(CallsItsManager, "outcomes", timeout=WAIT) == ["CallingSelf"] * 4
        assert await mgr.which_handlers() == [CallsItsManager, Next]

        def from_another_thread() -> list[Any]:
            return asyncio.run_coroutine_threadsafe(mgr.which_handlers(), mgr.loop).result(WAIT)

        assert await asyncio.to_thread(from_another_thread) == [CallsItsManager, Next]


class NotifiesThenSyncs(EventHandler[Any, Any, Any]):
    """Isolated in a task: on "go", wakes its own manager (a notify) and then, while the
    manager is busy, asks it for a sync_notify, which would wait for this very handler."""

    def init(self, mgr: aio.EventManager[Any]) -> None:
        self.mgr = mgr
        self.outcome = ""

    async def handle_event(self, event: Any) -> None:
        if event != "go":
            return
        self.mgr.notify("other")  # the manager is woken: busy until it runs
        try:
            await self.mgr.sync_notify("again", timeout=WAIT)
        except Exception as exc:  # the test reads which exception it was
            self.outcome = type(exc).__name__
        else:
            self.outcome = "answered"

    def handle_call(self, request: Any) -> str:
        return self.outcome


async def test_a_task_isolated_handler_syncing_its_own_busy_manager_gets_calling_self() -> None:
    """The sync_notify of an isolated handler to its own manager fails at once with
    CallingSelf even when the manager is busy (a request it would queue on its lean path)."""
    async with aio.start() as mgr:
        await mgr.add_handler(NotifiesThenSyncs, mgr, isolation="task")
        mgr.notify("go")
        await mgr.sync_notify("after")  # the handler handled "go" before this returns
        assert await mgr.call(NotifiesThenSyncs, "outcome") == "CallingSelf"
