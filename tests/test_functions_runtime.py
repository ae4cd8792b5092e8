"""``subscribe`` details that belong to one runtime, and its static typing."""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass
from typing import Any

import pytest

from genevent import AsyncFunctionHandler, FunctionHandler, InvalidHandler, aio, threads
from tests.handlers import WAIT


@dataclass
class Placed:
    order: int


async def test_async_function_is_awaited_in_order() -> None:
    async with aio.start() as mgr:
        seen: list[Any] = []

        async def slow(event: Placed) -> None:
            await asyncio.sleep(0)
            seen.append(event.order)

        ref = await mgr.subscribe(slow, Placed)
        assert ref == (AsyncFunctionHandler, slow)
        for i in range(5):
            mgr.notify(Placed(i))
        mgr.notify("not placed")
        await mgr.sync_notify(Placed(5))
        assert seen == [0, 1, 2, 3, 4, 5]


async def test_on_from_another_thread_is_ordered_before_later_events() -> None:
    async with aio.start() as mgr:
        seen: list[Any] = []

        def from_thread() -> None:
            mgr.on()(seen.append)
            mgr.notify("first")

        t = threading.Thread(target=from_thread)
        t.start()
        await asyncio.to_thread(t.join, WAIT)
        await mgr.sync_notify("second")
        assert seen == ["first", "second"]


async def test_on_that_fails_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    async with aio.start() as mgr:
        seen: list[Any] = []
        await mgr.subscribe(seen.append)
        mgr.on()(seen.append)  # the same function again: refused, and said so
        await mgr.sync_notify("e")
        assert seen == ["e"]
        assert any("subscribing" in r.getMessage() for r in caplog.records)


def _crash_on_negative(seen: list[int]) -> Any:
    def fn(event: int) -> None:
        if event < 0:
            raise ValueError(event)
        seen.append(event)

    return fn


def test_subscribe_and_on_take_the_restart_options_on_threads() -> None:
    """``max_restarts`` and ``restart_period`` as ``add_handler`` takes them: the function is
    added again after a crash, within its limit, then let go for good."""
    with threads.start() as mgr:
        seen: list[int] = []
        fn = _crash_on_negative(seen)
        ref = mgr.subscribe(fn, int, restart="transient", max_restarts=1, restart_period=60.0)
        decorated: list[int] = []
        mgr.on(int, id="on", restart="permanent", max_restarts=0, restart_period=1.0)(
            _crash_on_negative(decorated)
        )
        for n in (1, -1, 2, -2, 3):
            mgr.notify(n)
        mgr.sync_notify(4)
        assert seen == [1, 2]  # restarted once, then given up after the second crash
        assert decorated == [1]  # no restart allowed: gone at the first crash
        assert mgr.which_handlers() == []
        assert mgr.stats().restarts == 1
        assert ref == (FunctionHandler, fn)
        for bad in ({"max_restarts": -1}, {"restart_period": 0.0}):
            with pytest.raises(ValueError, match=r"max_restarts|restart_period"):
                mgr.subscribe(seen.append, int, restart="transient", **bad)
            with pytest.raises(ValueError, match=r"max_restarts|restart_period"):
                mgr.on(int, restart="transient", **bad)(seen.append)
        with pytest.raises(TypeError):
            mgr.subscribe(seen.append, max_restarts="3")  # type: ignore[call-overload]
        assert mgr.which_handlers() == []


async def test_subscribe_and_on_take_the_restart_options_on_asyncio() -> None:
    async with aio.start() as mgr:
        seen: list[int] = []
        fn = _crash_on_negative(seen)
        ref = await mgr.subscribe(fn, int, restart="transient", max_restarts=1, restart_period=60.0)
        decorated: list[int] = []
        mgr.on(int, id="on", restart="permanent", max_restarts=0, restart_period=1.0)(
            _crash_on_negative(decorated)
        )
        for n in (1, -1, 2, -2, 3):
            mgr.notify(n)
        await mgr.sync_notify(4)
        assert seen == [1, 2]
        assert decorated == [1]
        assert await mgr.which_handlers() == []
        assert mgr.stats().restarts == 1
        assert ref == (FunctionHandler, fn)
        for bad in ({"max_restarts": -1}, {"restart_period": 0.0}):
            with pytest.raises(ValueError, match=r"max_restarts|restart_period"):
                await mgr.subscribe(seen.append, int, restart="transient", **bad)
            with pytest.raises(ValueError, match=r"max_restarts|restart_period"):
                mgr.on(int, restart="transient", **bad)(seen.append)
        with pytest.raises(TypeError):
            await mgr.subscribe(seen.append, max_restarts="3")  # type: ignore[call-overload]
        assert await mgr.which_handlers() == []


def test_thread_runtime_refuses_a_coroutine_function() -> None:
    async def coro(event: Any) -> None:
        pass

    with threads.start() as mgr:
        with pytest.raises(InvalidHandler, match="coroutine"):
            mgr.subscribe(coro)
        assert mgr.which_handlers() == []


def typed_usage(mgr: threads.EventManager[Placed], amgr: aio.EventManager[Placed]) -> None:
    """Checked by mypy --strict, never run: subscribe's types follow the event type."""

    def on_placed(event: Placed) -> None:
        print(event.order)

    def on_int(event: int) -> None:
        print(event)

    ref = mgr.subscribe(on_placed)
    mgr.delete_handler(ref)
    mgr.subscribe(on_int, int)  # a filter on another type: the function takes that type
    mgr.subscribe(on_int)  # type: ignore[arg-type]  # takes int, the manager carries Placed
    mgr.subscribe(on_placed, int)  # type: ignore[arg-type]  # filtered on int, takes Placed
    mgr.on(Placed)(on_placed)
    asyncio.run(amgr.subscribe(on_placed, Placed, where=lambda e: e.order > 1))
    assert FunctionHandler is not None


async def test_routed_coroutine_methods_are_awaited() -> None:
    from genevent import EventHandler, handles  # noqa: PLC0415 - beside its only test

    class Async(EventHandler[Any, str, list[Any]]):
        def init(self, args: object = None) -> None:
            self.seen: list[Any] = []

        @handles(Placed)
        async def placed(self, event: Placed) -> None:
            await asyncio.sleep(0)
            self.seen.append(event.order)

        @handles(int)
        def number(self, event: int) -> None:
            self.seen.append(event)

        def handle_call(self, request: str) -> list[Any]:
            return self.seen

    async with aio.start() as mgr:
        await mgr.add_handler(Async)
        for e in (Placed(1), 2, "ignored", Placed(3)):
            mgr.notify(e)
        assert await mgr.call(Async, "get") == [1, 2, 3]
