"""asyncio-only behaviour: coroutine handlers (docs/semantics.md item 58), cancelled callers
(item 60), crossing threads and loops, owners that are futures, the inline fast path's corner
cases."""

from __future__ import annotations

import asyncio
import concurrent.futures
import gc
import sys
import threading
import weakref
from typing import Any

import pytest

import genevent
from genevent import (
    NO_HANDOFF,
    CallingSelf,
    CallTimeout,
    Deleted,
    EventHandler,
    ExitReason,
    HandlerExit,
    InvalidOwner,
    ManagerNotRunning,
    OwnerExited,
    Stopped,
    Swap,
    Swapped,
    WrongRuntime,
    aio,
)
from tests.handlers import H2, WAIT, H, Recorder, Spec


class AsyncH(EventHandler[Any, Any, Any]):
    """Every callback is a coroutine that yields to the loop before recording."""

    async def init(self, spec: Spec, /, *, handoff: Any = NO_HANDOFF) -> None:
        await asyncio.sleep(0)
        self.spec = spec
        self.handoff = handoff
        spec.rec.add(spec.name, "init", handoff)

    async def handle_event(self, event: Any, /) -> Any:
        self.spec.rec.add(self.spec.name, "event-start", event)
        await asyncio.sleep(0)
        self.spec.rec.add(self.spec.name, "event", event)
        return self.spec.event(self, event) if self.spec.event else None

    async def handle_call(self, request: Any, /) -> Any:
        await asyncio.sleep(0)
        if self.spec.call:
            return self.spec.call(self, request)
        return ("async", request)

    async def handle_info(self, message: Any, /) -> None:
        await asyncio.sleep(0)
        self.spec.rec.add(self.spec.name, "info", message)

    async def terminate(self, reason: ExitReason, /) -> Any:
        await asyncio.sleep(0)
        self.spec.rec.add(self.spec.name, "terminate", reason)
        return "async-bye"


async def test_c58_coroutine_handlers_awaited_in_order(rec: Recorder) -> None:
    async with aio.start() as mgr:
        await mgr.add_handler((AsyncH, 1), Spec(rec, 1))
        await mgr.add_handler((H, 2), Spec(rec, 2))
        await mgr.add_handler((AsyncH, 3), Spec(rec, 3))
        for i in range(3):
            mgr.notify(i)
        await mgr.sync_notify("end")
        events = [(item[0], item[1], item[2]) for item in rec.log if "event" in item[1]]
        # one handler at a time, newest first, each event fully handled before the next
        expected: list[tuple[Any, ...]] = []
        for e in [0, 1, 2, "end"]:
            expected += [(3, "event-start", e), (3, "event", e), (2, "event", e)]
            expected += [(1, "event-start", e), (1, "event", e)]
        assert events == expected
        assert await mgr.call((AsyncH, 1), "q") == ("async", "q")
        mgr.send("info")
        await mgr.sync_notify("barrier")
        assert rec.of(1, "info") == ["info"]
        assert await mgr.delete_handler((AsyncH, 1)) == "async-bye"
        await mgr.swap_handler((AsyncH, 3), "a1", (AsyncH, 4), Spec(rec, 4))
        assert rec.of(4, "init") == ["async-bye"]
    assert rec.of(4, "terminate") == [Stopped()]


async def test_c60_cancelled_caller_leaves_manager_consistent(rec: Recorder) -> None:
    gate = asyncio.Event()

    class Slow(H):
        async def handle_call(self, request: Any, /) -> Any:
            rec.add("slow", "waiting", request)
            await gate.wait()
            return ("late", request)

    async with aio.start() as mgr:
        await mgr.add_handler(Slow, Spec(rec, "slow"))
        caller = asyncio.create_task(mgr.call(Slow, "first"))
        while not rec.of("slow", "waiting"):
            await asyncio.sleep(0)
        caller.cancel()
        with pytest.raises(asyncio.CancelledError):
            await caller
        gate.set()
        assert await mgr.call(Slow, "second") == ("late", "second")
        assert await mgr.which_handlers() == [Slow]


async def test_timeout_on_control_requests(rec: Recorder) -> None:
    gate = asyncio.Event()

    class SlowInit(AsyncH):
        async def init(self, spec: Spec, /, *, handoff: Any = NO_HANDOFF) -> None:
            await gate.wait()
            await super().init(spec)

    async with aio.start() as mgr:
        with pytest.raises(CallTimeout):
            await mgr.add_handler(SlowInit, Spec(rec), timeout=0.01)
        gate.set()
        # the add still happened, in order, before the next request
        assert await mgr.which_handlers() == [SlowInit]


async def test_notify_from_other_threads_keeps_per_thread_order(rec: Recorder) -> None:
    async with aio.start() as mgr:
        await mgr.add_handler(H, Spec(rec))
        n = 2000

        def produce(tag: int) -> None:
            for i in range(n):
                mgr.notify((tag, i))

        threads = [threading.Thread(target=produce, args=(t,)) for t in range(4)]
        for t in threads:
            t.start()

        def join_all() -> None:
            for t in threads:
                t.join(WAIT)

        await asyncio.to_thread(join_all)
        await mgr.sync_notify("end")
        events = rec.of("h", "event")
        assert len(events) == 4 * n + 1
        for tag in range(4):
            assert [e[1] for e in events if e != "end" and e[0] == tag] == list(range(n))


async def test_requests_from_another_loop_fail_clearly() -> None:
    async with aio.start() as mgr:

        def elsewhere() -> BaseException | None:
            async def attempt() -> None:
                await mgr.which_handlers()

            try:
                asyncio.run(attempt())
            except WrongRuntime as exc:
                return exc
            return None

        exc = await asyncio.to_thread(elsewhere)
        assert isinstance(exc, WrongRuntime)
        # the thread-safe route works
        fut = asyncio.run_coroutine_threadsafe(mgr.which_handlers(), mgr.loop)
        assert await asyncio.wrap_future(fut) == []


async def test_calling_self_from_async_handler_any_request(rec: Recorder) -> None:
    got: list[BaseException] = []

    class Reentrant(H):
        async def handle_call(self, request: Any, /) -> Any:
            try:
                await request(mgr)
            except CallingSelf as exc:
                got.append(exc)
            return "ok"

    async with aio.start() as mgr:
        await mgr.add_handler(Reentrant, Spec(rec))
        for op in (
            lambda m: m.sync_notify(1),
            lambda m: m.add_handler(H, Spec(rec)),
            lambda m: m.which_handlers(),
            lambda m: m.stop(),
        ):
            assert await mgr.call(Reentrant, op) == "ok"
        assert len(got) == 4


async def test_inline_call_swapping_to_coroutine_handler(rec: Recorder) -> None:
    """The inline fast path meets a swap to a coroutine handler: it must await, and the
    manager task must not run meanwhile."""
    async with aio.start() as mgr:
        swap: Swap[str] = Swap("a1", AsyncH, Spec(rec, "new"), reply="done")
        await mgr.add_handler(H, Spec(rec, "old", call=lambda h, r: swap))
        assert await mgr.which_handlers() == [H]
        mgr.notify("queued-during-swap")  # must be handled after the swap, by the new handler
        assert await mgr.call(H, "swap") == "done"
        await mgr.sync_notify("after")
        assert rec.of("new", "init") == [("terminated", "old")]
        assert rec.of("new", "event") == ["after"]
        assert rec.of("old", "event") == ["queued-during-swap"]


async def test_owner_may_be_a_future(rec: Recorder) -> None:
    loop = asyncio.get_running_loop()
    owner: asyncio.Future[None] = loop.create_future()
    notices: list[HandlerExit] = []
    async with aio.start() as mgr:
        await mgr.add_sup_handler(H, Spec(rec), owner=owner, on_exit=notices.append)
        owner.set_exception(KeyError("gone"))
        await asyncio.to_thread(rec.wait, "h", "terminate")
        assert await mgr.which_handlers() == []
        (reason,) = rec.of("h", "terminate")
        assert isinstance(reason, OwnerExited)
        assert isinstance(reason.reason, KeyError)
        assert notices == []
        with pytest.raises(InvalidOwner):
            await mgr.add_sup_handler(H, Spec(rec), owner=object(), on_exit=notices.append)


async def test_short_lived_task_owner_both_ways(rec: Recorder) -> None:
    """The README's two paths: owner ends -> handler goes; handler goes -> owner told."""
    async with aio.start() as mgr:
        inbox: asyncio.Queue[HandlerExit] = asyncio.Queue()

        async def owner_task() -> HandlerExit:
            await mgr.add_sup_handler((H, "told"), Spec(rec, "told"), on_exit=inbox.put_nowait)
            await mgr.add_sup_handler((H, "orphan"), Spec(rec, "orphan"), on_exit=inbox.put_nowait)
            await mgr.delete_handler((H, "told"), "bye")
            return await inbox.get()

        notice = await asyncio.create_task(owner_task())
        assert notice.handler == (H, "told")
        assert notice.reason == Deleted("bye")
        assert notice.manager is mgr
        await asyncio.to_thread(rec.wait, "orphan", "terminate")
        assert rec.of("orphan", "terminate") == [OwnerExited(None)]
        assert await mgr.which_handlers() == []


async def test_async_on_exit_is_scheduled(rec: Recorder) -> None:
    seen = asyncio.Event()

    async def on_exit(notice: HandlerExit) -> None:
        await asyncio.sleep(0)
        seen.set()

    async with aio.start() as mgr:
        await mgr.add_sup_handler(H, Spec(rec), on_exit=on_exit)
        await mgr.swap_handler(H, None, (H, 2), Spec(rec, 2))
        await asyncio.wait_for(seen.wait(), WAIT)
        assert rec.of("h", "terminate") == [Swapped(None, (H, 2), asyncio.current_task())]


async def test_cancelled_manager_task_terminates_handlers(rec: Recorder) -> None:
    mgr = aio.start()
    await mgr.add_handler(H, Spec(rec))
    mgr._srv.task.cancel()
    await mgr.wait_stopped()
    assert rec.terminations() == [("h", Stopped())]
    assert not mgr.is_running
    with pytest.raises(ManagerNotRunning):
        await mgr.call(H, "q")


async def test_stop_inside_async_with_and_repr(rec: Recorder) -> None:
    async with aio.start("repr-me") as mgr:
        await mgr.add_handler(H, Spec(rec))
        assert "repr-me" in repr(mgr)
        assert "running" in repr(mgr)
        assert "handlers=1" in repr(mgr)
        await mgr.stop()
        assert "stopped" in repr(mgr)
    assert rec.terminations() == [("h", Stopped())]


def test_start_needs_a_running_loop() -> None:
    with pytest.raises(RuntimeError):
        aio.start()


async def test_unreferenced_running_manager_keeps_running(rec: Recorder) -> None:
    mgr = aio.start()
    await mgr.add_handler(H, Spec(rec))
    ref = weakref.ref(mgr)
    del mgr
    gc.collect()
    found = ref()
    assert found is not None
    assert found.is_running
    await found.stop()


async def test_many_calls_in_flight(rec: Recorder) -> None:
    """docs/semantics.md P12: OTP's send_request/receive_response is concurrent calls."""
    async with aio.start() as mgr:
        await mgr.add_handler((H, "a"), Spec(rec, "a"))
        await mgr.add_handler((AsyncH, "b"), Spec(rec, "b"))
        mgr.notify("e")
        replies = await asyncio.gather(
            *(mgr.call((H, "a") if i % 2 else (AsyncH, "b"), i) for i in range(20)),
            mgr.call((H, "missing"), 0),
            return_exceptions=True,
        )
        assert replies[:4] == [("async", 0), ("a", 1, ["e"]), ("async", 2), ("a", 3, ["e"])]
        assert isinstance(replies[-1], genevent.HandlerNotFound)


def test_notify_after_the_loop_closed_is_a_typed_error(rec: Recorder) -> None:
    loop = asyncio.new_event_loop()

    async def make() -> aio.EventManager[Any]:
        mgr = aio.start()
        await mgr.add_handler(H, Spec(rec))
        await mgr.which_handlers()
        return mgr

    mgr = loop.run_until_complete(make())
    loop.close()  # closed under a running manager (its task never finished)

    def from_thread() -> BaseException | None:
        try:
            mgr.notify("late")
        except ManagerNotRunning as exc:
            return exc
        return None

    box: list[BaseException | None] = []
    t = threading.Thread(target=lambda: box.append(from_thread()))
    t.start()
    t.join(WAIT)
    assert isinstance(box[0], ManagerNotRunning)


class SlowStart(EventHandler[Any, Any, Any]):
    """A handler whose coroutine init waits for ``spec.extra["gate"]`` (an asyncio.Event)."""

    async def init(self, spec: Spec, /, *, handoff: Any = NO_HANDOFF) -> None:
        spec.rec.add(spec.name, "init-start", handoff)
        await spec.extra["gate"].wait()
        spec.rec.add(spec.name, "init", handoff)

    def handle_event(self, event: Any, /) -> None:
        return None


async def test_inline_call_that_must_await_honours_timeout_and_cancel(rec: Recorder) -> None:
    """Review finding: an inline call whose handler swaps to a coroutine handler must not run
    that coroutine in the caller's task; the caller's timeout and cancellation hold, and the
    swap completes all the same."""
    gate = asyncio.Event()
    async with aio.start() as mgr:
        new = Spec(rec, "new", extra={"gate": gate})
        await mgr.add_handler(H, Spec(rec, "old", call=lambda h, r: Swap("a1", SlowStart, new)))
        with pytest.raises(CallTimeout):
            await mgr.call(H, "swap", timeout=0.01)
        assert rec.of("new", "init-start") == [("terminated", "old")]
        gate.set()
        assert await mgr.which_handlers() == [SlowStart]  # queued behind the swap's end
        assert rec.of("new", "init") == [("terminated", "old")]

        gate2 = asyncio.Event()
        newer = Spec(rec, "newer", extra={"gate": gate2})
        await mgr.add_handler(
            H2, Spec(rec, "old2", call=lambda h, r: Swap(None, (SlowStart, 2), newer))
        )
        caller = asyncio.create_task(mgr.call(H2, "swap", timeout=None))
        while not rec.of("newer", "init-start"):
            await asyncio.sleep(0)
        caller.cancel()
        with pytest.raises(asyncio.CancelledError):
            await caller
        gate2.set()
        assert await mgr.which_handlers() == [(SlowStart, 2), SlowStart]


async def test_concurrent_futures_are_not_owners(rec: Recorder) -> None:
    async with aio.start() as mgr:
        with pytest.raises(InvalidOwner):
            await mgr.add_sup_handler(
                H, Spec(rec), owner=concurrent.futures.Future(), on_exit=rec.notice
            )


async def test_async_with_exit_when_another_task_stops_it(rec: Recorder) -> None:
    """Review finding: __aexit__ must not fail when a stop is already queued."""
    async with aio.start() as mgr:
        await mgr.add_handler(H, Spec(rec))
        stopper = asyncio.create_task(mgr.stop())
        await asyncio.sleep(0)  # the stop is queued; the block now exits
    await stopper
    assert rec.terminations() == [("h", Stopped())]


async def test_manager_cancelled_while_inline_work_awaits(rec: Recorder) -> None:
    """The manager task is cancelled (loop shutdown) while an inline call's swap awaits a
    coroutine init: that work is cancelled too, the caller hears ManagerNotRunning, and every
    installed handler is terminated."""
    gate = asyncio.Event()
    mgr = aio.start()
    await mgr.add_handler((H, "other"), Spec(rec, "other"))
    new = Spec(rec, "new", extra={"gate": gate})
    await mgr.add_handler(H, Spec(rec, "old", call=lambda h, r: Swap("a1", SlowStart, new)))
    caller = asyncio.create_task(mgr.call(H, "swap"))
    while not rec.of("new", "init-start"):
        await asyncio.sleep(0)
    mgr._srv.task.cancel()
    await mgr.wait_stopped()
    with pytest.raises(ManagerNotRunning):
        await caller
    assert rec.of("other", "terminate") == [Stopped()]
    assert rec.of("new", "init") == []
    assert not mgr.is_running


async def test_wait_stopped_from_inline_work_is_calling_self(rec: Recorder) -> None:
    """Second review: a coroutine init run by an inline call's swap waits for the manager to
    stop: CallingSelf, not a deadlock."""
    got: list[BaseException] = []

    class Waits(EventHandler[Any, Any, Any]):
        async def init(self, args: Any = None, /, *, handoff: Any = NO_HANDOFF) -> None:
            try:
                await mgr.wait_stopped()
            except CallingSelf as exc:
                got.append(exc)

        def handle_event(self, event: Any, /) -> None:
            return None

    async with aio.start() as mgr:
        await mgr.add_handler(H, Spec(rec, call=lambda h, r: Swap(None, Waits, None, reply="r")))
        assert await mgr.call(H, "swap") == "r"
        assert len(got) == 1
        assert await mgr.which_handlers() == [Waits]


async def test_manager_ignores_the_loop_task_factory(rec: Recorder) -> None:
    """Second review: the manager's own tasks are created directly, so a task factory (for
    example eager_task_factory on 3.12+) cannot start it before it is set up."""
    loop = asyncio.get_running_loop()

    def refuse(loop: asyncio.AbstractEventLoop, coro: Any, **kw: Any) -> asyncio.Task[Any]:
        coro.close()
        raise AssertionError("genevent must not use the loop's task factory")

    loop.set_task_factory(refuse)
    try:
        mgr = aio.start()
        await mgr.add_handler(H, Spec(rec, call=lambda h, r: Swap(None, AsyncH, Spec(rec, 2))))
        await mgr.call(H, "swap")  # inline work that awaits runs in a task of its own
        assert await mgr.which_handlers() == [AsyncH]
        await mgr.stop()
    finally:
        loop.set_task_factory(None)


@pytest.mark.skipif(sys.version_info < (3, 12), reason="eager_task_factory is Python 3.12+")
async def test_eager_task_factory(rec: Recorder) -> None:
    loop = asyncio.get_running_loop()
    loop.set_task_factory(asyncio.eager_task_factory)  # type: ignore[attr-defined,unused-ignore]
    try:
        async with aio.start() as mgr:
            replies: list[Any] = []

            def spawn(h: Any, e: Any) -> None:
                replies.append(asyncio.ensure_future(mgr.call(H, "q")))

            await mgr.add_handler(H, Spec(rec, event=spawn))
            await mgr.sync_notify("e")  # inline; the task it spawns is another caller
            assert (await replies[0])[1] == "q"
    finally:
        loop.set_task_factory(None)


async def test_events_queued_behind_a_table_edit_in_one_batch_see_the_new_table() -> None:
    """An event, a subscription (``on`` queues it) and more events, queued before the
    manager runs: the events behind the subscription reach the new handler, the one ahead
    of it does not."""
    mgr = aio.start()
    got: list[int] = []
    try:
        mgr.notify(0)
        mgr.on()(got.append)
        mgr.notify(1)
        await mgr.sync_notify(2)
        assert got == [1, 2]
    finally:
        await mgr.stop()
