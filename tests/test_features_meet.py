"""Where features meet: isolated handlers, restarts, streams and stops at the same time.

Each test crosses two or more features (a stop that drops the backlog while an isolated
handler crashed, a KeyboardInterrupt with requests waiting on an isolated handler, a restart
whose ``init`` fails, a stop racing the restarts of a flooded isolated handler, an event loop
or an interpreter that ends under a running manager, a stream opened just before a stop).
Order is made with events and latches; a bounded poll waits only for a state to be reached.
"""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import pytest

import genevent
from genevent import (
    Crashed,
    EventHandler,
    HandlerExit,
    ManagerNotRunning,
    StartFailed,
    aio,
    threads,
)
from tests.handlers import WAIT

pytestmark = pytest.mark.timeout(120)

#: (runtime, isolation) pairs: every isolated kind, on both runtimes
ISOLATED = [("threads", True), ("aio", "task"), ("aio", "thread")]
#: the same with the handlers that are not isolated
EVERY_KIND = [("threads", False), ("aio", None), *ISOLATED]


def kind_id(kind: tuple[str, Any]) -> str:
    runtime, isolation = kind
    return f"{runtime}-{isolation if isolation not in (False, None) else 'plain'}"


def until(predicate: Callable[[], bool], what: str) -> None:
    """Wait (bounded) until ``predicate()`` holds: for a state to be reached, not for order."""
    deadline = time.monotonic() + WAIT
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        time.sleep(0.001)


async def async_until(predicate: Callable[[], bool], what: str) -> None:
    """:func:`until` in an event loop."""
    deadline = time.monotonic() + WAIT
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        await asyncio.sleep(0.001)


def in_thread(fn: Callable[[], Any]) -> tuple[threading.Thread, list[Any]]:
    """Run ``fn`` in a daemon thread; the list gets what it returned or raised."""
    box: list[Any] = []

    def target() -> None:
        try:
            box.append(fn())
        except BaseException as exc:
            box.append(exc)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    return thread, box


def run_loop(main: Callable[[], Coroutine[Any, Any, None]], bound: float = WAIT) -> Any:
    """``asyncio.run(main())`` in a daemon thread joined within ``bound`` seconds (so a loop
    that never ends fails the test instead of hanging it); what it raised, or None."""
    thread, box = in_thread(lambda: asyncio.run(main()))
    thread.join(bound)
    assert not thread.is_alive(), f"asyncio.run did not return within {bound} s"
    return box[0]


def crash_reports(caplog: pytest.LogCaptureFixture, handler: str) -> list[logging.LogRecord]:
    return [
        r
        for r in caplog.records
        if r.name.startswith("genevent") and f"handler {handler} crashed" in r.getMessage()
    ]


# -- handlers -------------------------------------------------------------------------------


class Exploding(EventHandler[Any, Any, Any]):
    """Raises ValueError on "boom" (after saying so); records its terminate reason."""

    def init(self, args: tuple[threading.Event, list[Any]]) -> None:
        self.raised, self.reasons = args

    def handle_event(self, event: Any, /) -> None:
        if event == "boom":
            self.raised.set()
            raise ValueError("boom")

    def terminate(self, reason: Any, /) -> None:
        self.reasons.append(reason)


class HeldSibling(EventHandler[Any, Any, Any]):
    """Not isolated: each event waits for a gate (threads)."""

    def init(self, args: tuple[threading.Event, threading.Event, list[Any]]) -> None:
        self.entered, self.gate, self.seen = args

    def handle_event(self, event: Any, /) -> None:
        self.entered.set()
        assert self.gate.wait(WAIT)
        self.seen.append(event)


class AsyncHeldSibling(EventHandler[Any, Any, Any]):
    """Not isolated: each event awaits a gate (asyncio)."""

    def init(self, args: tuple[asyncio.Event, asyncio.Event, list[Any]]) -> None:
        self.entered, self.gate, self.seen = args

    async def handle_event(self, event: Any, /) -> None:
        self.entered.set()
        await asyncio.wait_for(self.gate.wait(), WAIT)
        self.seen.append(event)


class Held(EventHandler[Any, Any, Any]):
    """Waits for a gate on event 0 (in a thread: a threading latch)."""

    def init(self, args: tuple[threading.Event, threading.Event]) -> None:
        self.entered, self.gate = args

    def handle_event(self, event: Any, /) -> None:
        if event == 0:
            self.entered.set()
            assert self.gate.wait(WAIT)


class AsyncHeld(EventHandler[Any, Any, Any]):
    """Awaits a gate on event 0 (a task lane)."""

    def init(self, args: tuple[threading.Event, asyncio.Event]) -> None:
        self.entered, self.gate = args

    async def handle_event(self, event: Any, /) -> None:
        if event == 0:
            self.entered.set()
            await asyncio.wait_for(self.gate.wait(), WAIT)


class Marker(EventHandler[Any, Any, Any]):
    """Not isolated: sets ``reached`` when it sees ``last``."""

    def init(self, args: tuple[Any, threading.Event]) -> None:
        self.last, self.reached = args

    def handle_event(self, event: Any, /) -> None:
        if event == self.last:
            self.reached.set()


class Answering(EventHandler[Any, Any, Any]):
    """Answers every call with ``("ok", request)``."""

    def handle_event(self, event: Any, /) -> None:
        return None

    def handle_call(self, request: Any, /) -> Any:
        return ("ok", request)


# -- 1. stop(drain=False) while an isolated handler crashed -------------------------------


def check_dropped_crash(
    reasons: list[Any],
    notices: list[HandlerExit],
    stats: genevent.ManagerStats,
    left_behind: int,
    elapsed: float,
    caplog: pytest.LogCaptureFixture,
) -> None:
    assert elapsed < 10.0, f"the stop waited {elapsed:.1f} s for a handler that had crashed"
    assert len(reasons) == 1, reasons
    assert isinstance(reasons[0], Crashed)
    assert isinstance(reasons[0].exception, ValueError)
    assert [n.handler for n in notices] == [Exploding]
    assert isinstance(notices[0].reason, Crashed)
    assert isinstance(notices[0].reason.exception, ValueError)
    assert stats.crashes == 1
    assert left_behind == 0
    assert crash_reports(caplog, "Exploding"), caplog.text


def test_threads_stop_without_draining_applies_an_isolated_crash(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.ERROR, logger="genevent")
    raised, entered, gate = threading.Event(), threading.Event(), threading.Event()
    reasons: list[Any] = []
    notices: list[HandlerExit] = []
    seen: list[Any] = []
    mgr = threads.start()
    try:
        mgr.add_handler(HeldSibling, (entered, gate, seen))
        mgr.add_sup_handler(
            Exploding,
            (raised, reasons),
            on_exit=notices.append,
            isolation=True,
            stop_timeout=30,
        )
        for event in ["boom", "e1", "e2", "e3"]:
            mgr.notify(event)
        assert raised.wait(WAIT)
        assert entered.wait(WAIT)  # the sibling holds the manager on "boom"
        t0 = time.monotonic()
        stopper, box = in_thread(lambda: mgr.stop(drain=False))
        until(lambda: mgr.stats().dropped == 3, "the stop dropped the queued events")
        gate.set()
        stopper.join(40)
        elapsed = time.monotonic() - t0
        assert box == [None]
    finally:
        gate.set()
    check_dropped_crash(reasons, notices, mgr.stats(), mgr.left_behind, elapsed, caplog)
    assert seen == ["boom"]  # the sibling's queued events were dropped


@pytest.mark.parametrize("isolation", ["task", "thread"])
async def test_aio_stop_without_draining_applies_an_isolated_crash(
    isolation: genevent.Isolation, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="genevent")
    raised = threading.Event()
    entered, gate = asyncio.Event(), asyncio.Event()
    reasons: list[Any] = []
    notices: list[HandlerExit] = []
    seen: list[Any] = []
    mgr = aio.start()
    await mgr.add_handler(AsyncHeldSibling, (entered, gate, seen))
    await mgr.add_sup_handler(
        Exploding,
        (raised, reasons),
        on_exit=notices.append,
        isolation=isolation,
        stop_timeout=30,
    )
    for event in ["boom", "e1", "e2", "e3"]:
        mgr.notify(event)
    assert await asyncio.to_thread(raised.wait, WAIT)
    await asyncio.wait_for(entered.wait(), WAIT)
    t0 = time.monotonic()
    stopper = asyncio.ensure_future(mgr.stop(drain=False))
    await async_until(lambda: not mgr.is_running, "the stop was requested")
    gate.set()
    done, _ = await asyncio.wait((stopper,), timeout=40)
    elapsed = time.monotonic() - t0
    assert stopper in done
    assert stopper.result() is None
    check_dropped_crash(reasons, notices, mgr.stats(), mgr.left_behind, elapsed, caplog)
    assert seen == ["boom"]


BACKLOG = 5


def held_dropped(stats: genevent.ManagerStats) -> int:
    """What the held isolated handler's own mailbox dropped."""
    return sum(h.dropped for h in stats.handlers if h.handler in (Held, AsyncHeld))


def check_lane_dropped(stats: genevent.ManagerStats, before: genevent.ManagerStats) -> None:
    (held,) = [h for h in before.handlers if h.handler in (Held, AsyncHeld)]
    assert held.dropped == BACKLOG  # events 1..BACKLOG waited in its own mailbox
    assert before.lane_dropped == BACKLOG
    assert stats.lane_dropped == BACKLOG  # still reported once the handler is gone


def test_threads_stop_without_draining_drops_an_isolated_backlog() -> None:
    entered, gate, reached = threading.Event(), threading.Event(), threading.Event()
    mgr = threads.start()
    try:
        mgr.add_handler(Marker, (BACKLOG, reached))
        mgr.add_handler(Held, (entered, gate), isolation=True, stop_timeout=30)
        for i in range(BACKLOG + 1):
            mgr.notify(i)
        assert entered.wait(WAIT)
        assert reached.wait(WAIT)  # the manager passed every event to the isolated handler
        stopper, box = in_thread(lambda: mgr.stop(drain=False))
        until(lambda: held_dropped(mgr.stats()) == BACKLOG, "the isolated backlog was dropped")
        before = mgr.stats()
        gate.set()
        stopper.join(WAIT)
        assert box == [None]
    finally:
        gate.set()
    check_lane_dropped(mgr.stats(), before)
    assert mgr.left_behind == 0


@pytest.mark.parametrize("isolation", ["task", "thread"])
async def test_aio_stop_without_draining_drops_an_isolated_backlog(
    isolation: genevent.Isolation,
) -> None:
    entered, reached = threading.Event(), threading.Event()
    tgate, agate = threading.Event(), asyncio.Event()
    mgr = aio.start()
    await mgr.add_handler(Marker, (BACKLOG, reached))
    if isolation == "task":
        await mgr.add_handler(AsyncHeld, (entered, agate), isolation="task", stop_timeout=30)
    else:
        await mgr.add_handler(Held, (entered, tgate), isolation="thread", stop_timeout=30)
    try:
        for i in range(BACKLOG + 1):
            mgr.notify(i)
        assert await asyncio.to_thread(entered.wait, WAIT)
        assert await asyncio.to_thread(reached.wait, WAIT)
        stopper = asyncio.ensure_future(mgr.stop(drain=False))
        await async_until(
            lambda: held_dropped(mgr.stats()) == BACKLOG, "the isolated backlog was dropped"
        )
        before = mgr.stats()
        agate.set()
        tgate.set()
        await asyncio.wait_for(stopper, WAIT)
    finally:
        agate.set()
        tgate.set()
    check_lane_dropped(mgr.stats(), before)
    assert mgr.left_behind == 0


# -- 2. KeyboardInterrupt in an isolated handler, requests waiting ------------------------


class Interrupting(EventHandler[Any, Any, Any]):
    """Raises KeyboardInterrupt on event 1, once its gate opens."""

    def init(self, args: tuple[threading.Event, threading.Event, list[Any]]) -> None:
        self.entered, self.gate, self.reasons = args

    def handle_event(self, event: Any, /) -> None:
        if event == 1:
            self.entered.set()
            assert self.gate.wait(WAIT)
            raise KeyboardInterrupt

    def terminate(self, reason: Any, /) -> None:
        self.reasons.append(reason)


def test_threads_keyboard_interrupt_in_an_isolated_handler_answers_waiting_requests() -> None:
    entered, gate = threading.Event(), threading.Event()
    reasons: list[Any] = []
    mgr = threads.start()
    try:
        mgr.add_handler(Interrupting, (entered, gate, reasons), isolation=True)
        taken = mgr.stats().requests
        mgr.notify(1)
        assert entered.wait(WAIT)
        asker, which = in_thread(lambda: mgr.which_handlers(timeout=WAIT))
        # which_handlers waits for the isolated handler to be past event 1 (the manager holds
        # what comes behind it meanwhile)
        until(lambda: mgr.stats().requests == taken + 1, "which_handlers was taken")
        synced = mgr.sync_notify_future(2)  # queued behind it
        gate.set()
        asker.join(WAIT + 5)
        assert synced.result(WAIT) is None  # answered: the stop handled what came before it
        mgr.wait_stopped(WAIT)
    finally:
        gate.set()
    assert len(which) == 1
    assert which[0] in ([Interrupting], []) or isinstance(which[0], ManagerNotRunning), which
    assert len(reasons) == 1, reasons
    assert isinstance(reasons[0], Crashed)
    assert isinstance(reasons[0].exception, KeyboardInterrupt)
    assert not mgr.is_running
    assert mgr.left_behind == 0


# -- 3. a restart whose init fails ----------------------------------------------------------


class FailingRestart(EventHandler[Any, Any, Any]):
    """Crashes on "crash"; every init after the first fails (after a latch, if given)."""

    def init(self, args: dict[str, Any]) -> None:
        args["inits"] += 1
        if args["inits"] > 1:
            if args["latch"] is not None:
                args["entered"].set()
                assert args["latch"].wait(WAIT)
            raise RuntimeError(f"init #{args['inits']} refused")

    def handle_event(self, event: Any, /) -> None:
        if event == "crash":
            raise ValueError("crash")


class Restarts:
    """A blocking view of one manager, either runtime (aio: a loop in a thread of its own)."""

    def __init__(self, runtime: str) -> None:
        self.runtime = runtime
        if runtime == "threads":
            self.mgr: Any = threads.start()
            return
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

        async def start() -> Any:
            return aio.start()

        self.mgr = self.run(start)
        # owner of supervised handlers: a future that lives as long as the world
        self.owner = self.run(self.loop.create_future)

    def sup(self) -> dict[str, Any]:
        """``add_sup_handler``'s owner keyword: the test's thread, or a long-lived future."""
        return {} if self.runtime == "threads" else {"owner": self.owner}

    def run(self, fn: Callable[[], Any], bound: float = WAIT) -> Any:
        """``fn()`` in the manager's world, awaited if it is a coroutine."""
        if self.runtime == "threads":
            return fn()

        async def go() -> Any:
            result = fn()
            if asyncio.iscoroutine(result):
                result = await result
            return result

        return asyncio.run_coroutine_threadsafe(go(), self.loop).result(bound)

    def close(self) -> None:
        if self.runtime == "aio":
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(WAIT)
            if not self.thread.is_alive():
                self.loop.close()


@pytest.fixture
def restarts_world(request: pytest.FixtureRequest) -> Any:
    worlds: list[Restarts] = []

    def make(runtime: str) -> Restarts:
        worlds.append(Restarts(runtime))
        return worlds[-1]

    yield make
    for world in worlds:
        world.close()


def _iso(isolation: Any) -> dict[str, Any]:
    return {} if isolation in (False, None) else {"isolation": isolation}


@pytest.mark.parametrize("kind", EVERY_KIND, ids=kind_id)
def test_a_failing_restart_does_not_wedge_the_manager(
    kind: tuple[str, Any], restarts_world: Callable[[str], Restarts]
) -> None:
    runtime, isolation = kind
    world = restarts_world(runtime)
    mgr = world.mgr
    state: dict[str, Any] = {"inits": 0, "latch": None}
    notices: list[HandlerExit] = []
    gone = threading.Event()

    def on_exit(notice: HandlerExit) -> None:
        notices.append(notice)
        gone.set()

    world.run(lambda: mgr.add_handler(Answering))
    world.run(
        lambda: mgr.add_sup_handler(
            FailingRestart,
            state,
            on_exit=on_exit,
            restart="permanent",
            **_iso(isolation),
            **world.sup(),
        )
    )
    mgr.notify("crash")
    # the manager answers while the retries are pending
    assert world.run(lambda: mgr.call(Answering, "q", timeout=WAIT)) == ("ok", "q")
    assert gone.wait(WAIT)  # retried 3 times on the manager's clock, then let go
    assert world.run(lambda: mgr.call(Answering, "r", timeout=WAIT)) == ("ok", "r")
    assert world.run(lambda: mgr.which_handlers(timeout=WAIT)) == [Answering]
    stats = mgr.stats()
    assert stats.restarts == 3  # each failed attempt counted
    assert state["inits"] == 4
    started_failed = [n for n in notices if isinstance(n.reason, StartFailed)]
    assert len(started_failed) == 1, notices
    assert [n.handler for n in notices] == [FailingRestart]
    world.run(lambda: mgr.stop(timeout=WAIT))


@pytest.mark.parametrize("kind", EVERY_KIND, ids=kind_id)
def test_a_slow_failing_restart_lets_the_manager_answer_and_stop(
    kind: tuple[str, Any], restarts_world: Callable[[str], Restarts]
) -> None:
    runtime, isolation = kind
    world = restarts_world(runtime)
    mgr = world.mgr
    entered, latch = threading.Event(), threading.Event()
    state: dict[str, Any] = {"inits": 0, "latch": latch, "entered": entered}
    notices: list[HandlerExit] = []
    world.run(lambda: mgr.add_handler(Answering))
    world.run(
        lambda: mgr.add_sup_handler(
            FailingRestart,
            state,
            on_exit=notices.append,
            restart="permanent",
            **_iso(isolation),
            **world.sup(),
        )
    )
    mgr.notify("crash")
    try:
        assert entered.wait(WAIT)  # the restart's init is blocked on the latch
    finally:
        latch.set()
    assert world.run(lambda: mgr.call(Answering, "q", timeout=WAIT)) == ("ok", "q")
    assert Answering in world.run(lambda: mgr.which_handlers(timeout=WAIT))
    t0 = time.monotonic()
    world.run(lambda: mgr.stop(timeout=WAIT), bound=WAIT + 5)
    assert time.monotonic() - t0 < WAIT
    assert not mgr.is_running
    assert mgr.stats().restarts >= 1
    assert [n.handler for n in notices] == [FailingRestart]


# -- 4. a stop racing the restarts of a flooded isolated handler ------------------------------


class EveryThird(EventHandler[Any, Any, Any]):
    def handle_event(self, event: int, /) -> None:
        if event % 3 == 2:
            raise ValueError(event)


FLOOD = 20_000


def check_flood(
    stats: genevent.ManagerStats, left_behind: int, caplog: pytest.LogCaptureFixture
) -> None:
    assert "internal error" not in caplog.text
    assert stats.crashes > 0
    assert stats.crashes - 1 <= stats.restarts <= stats.crashes, stats
    assert left_behind in (0, 1)


def test_threads_stop_racing_restarts_of_a_flooded_isolated_handler(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="genevent")
    for _ in range(5):
        caplog.clear()
        mgr = threads.start()
        mgr.add_handler(
            EveryThird, restart="permanent", max_restarts=10_000, isolation=True, stop_timeout=0.3
        )
        for i in range(FLOOD):
            mgr.notify(i)
        mgr.stop(timeout=60)
        check_flood(mgr.stats(), mgr.left_behind, caplog)


@pytest.mark.parametrize("isolation", ["task", "thread"])
async def test_aio_stop_racing_restarts_of_a_flooded_isolated_handler(
    isolation: genevent.Isolation, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="genevent")
    for _ in range(5):
        caplog.clear()
        mgr = aio.start()
        await mgr.add_handler(
            EveryThird,
            restart="permanent",
            max_restarts=10_000,
            isolation=isolation,
            stop_timeout=0.3,
        )
        for i in range(FLOOD):
            mgr.notify(i)
        await mgr.stop(timeout=60)
        check_flood(mgr.stats(), mgr.left_behind, caplog)


# -- 5. an event loop that ends under a running manager ------------------------------------


class StuckInAwait(EventHandler[Any, Any, Any]):
    """Awaits forever on its first event; records its terminate."""

    def init(self, args: tuple[asyncio.Event, list[Any]]) -> None:
        self.entered, self.reasons = args

    async def handle_event(self, event: Any, /) -> None:
        self.entered.set()
        await asyncio.Event().wait()

    def terminate(self, reason: Any, /) -> None:
        self.reasons.append(reason)


@pytest.mark.parametrize("isolation", [None, "task"], ids=["plain", "task"])
def test_asyncio_run_ends_with_a_handler_stuck_in_an_await(isolation: Any) -> None:
    reasons: list[Any] = []

    async def main() -> None:
        entered = asyncio.Event()
        mgr = aio.start()
        await mgr.add_handler(StuckInAwait, (entered, reasons), stop_timeout=30, **_iso(isolation))
        for i in range(6):
            mgr.notify(i)
        await asyncio.wait_for(entered.wait(), WAIT)
        # main returns: asyncio.run cancels what is left, the manager among them

    t0 = time.monotonic()
    assert run_loop(main) is None
    assert time.monotonic() - t0 < 4.0  # not the default stop_timeout (5 s), nor 30 s
    assert len(reasons) == 1, reasons


def test_asyncio_run_ends_with_a_blocking_stream_never_read() -> None:
    seen: list[Any] = []

    async def main() -> None:
        mgr = aio.start()
        first = asyncio.Event()

        def record(event: Any) -> None:
            seen.append(event)
            first.set()

        await mgr.subscribe(record)
        mgr.stream(maxsize=1, overflow="block")
        for i in range(5):
            mgr.notify(i)
        await asyncio.wait_for(first.wait(), WAIT)

    assert run_loop(main) is None
    assert seen[:1] == [0]


def test_threads_stop_ends_a_blocking_stream_never_read() -> None:
    mgr = threads.start()
    stream = mgr.stream(maxsize=1, overflow="block")
    for i in range(5):
        mgr.notify(i)
    stopper, box = in_thread(mgr.stop)
    stopper.join(WAIT)
    assert not stopper.is_alive(), "stop waited for a stream nobody reads"
    assert box == [None]
    reader, got = in_thread(lambda: list(stream))
    reader.join(WAIT)
    assert not reader.is_alive(), "the stream did not end at the stop"
    assert got == [[0]]  # what was buffered, then the end


# -- 6. interpreter exit on threads ---------------------------------------------------------

EXIT_SCRIPT = textwrap.dedent(
    """
    import threading
    from genevent import EventHandler, threads

    entered = threading.Event()

    class Stuck(EventHandler):
        def handle_event(self, event):
            entered.set()
            threading.Event().wait()

        def terminate(self, reason):
            print("terminate Stuck", flush=True)

    class Iso(EventHandler):
        def handle_event(self, event):
            pass

        def terminate(self, reason):
            print("terminate Iso", type(reason).__name__, flush=True)

    class Plain(EventHandler):
        def handle_event(self, event):
            pass

        def terminate(self, reason):
            print("terminate Plain", type(reason).__name__, flush=True)

    mgr = threads.start()
    mgr.add_handler(Plain)
    mgr.add_handler(Iso, isolation=True)
    mgr.add_handler(Stuck, isolation=True, stop_timeout=30)
    mgr.notify("x")
    assert entered.wait(10)
    print("exiting", flush=True)
    """
)


def test_threads_interpreter_exit_terminates_the_handlers_not_stuck(tmp_path: Path) -> None:
    script = tmp_path / "exit_with_a_stuck_handler.py"
    script.write_text(EXIT_SCRIPT)
    src = str(Path(genevent.__file__).resolve().parent.parent)
    env = {**os.environ, "PYTHONPATH": src}
    t0 = time.monotonic()
    proc = subprocess.run(
        [sys.executable, str(script)],
        env=env,
        capture_output=True,
        text=True,
        timeout=20,
        check=False,
    )
    assert time.monotonic() - t0 < 20
    assert "exiting" in proc.stdout, proc.stderr
    assert "terminate Iso" in proc.stdout, (proc.stdout, proc.stderr)
    assert "terminate Plain" in proc.stdout, (proc.stdout, proc.stderr)
    assert "terminate Stuck" not in proc.stdout


# -- 7. a stream opened right before a stop that drops -------------------------------------


@pytest.mark.parametrize("overflow", ["block", "drop_newest", "drop_oldest", "raise"])
async def test_aio_a_stream_opened_right_before_stop_without_draining_ends(
    overflow: genevent.OverflowPolicy,
) -> None:
    mgr = aio.start()
    mgr.notify("before")
    stream = mgr.stream(maxsize=1, overflow=overflow)
    await mgr.stop(drain=False)

    async def read() -> list[Any]:
        return [event async for event in stream]

    assert await asyncio.wait_for(read(), WAIT) == []
