"""Event streams on both runtimes: start at the call, filters, overflow, clean ends."""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass
from typing import Any

import pytest

from genevent import GenEventError, MailboxFull, StreamFeed, aio, threads
from tests.handlers import WAIT


@dataclass
class Placed:
    order: int


async def test_aio_stream_sees_what_is_notified_after_the_call() -> None:
    async with aio.start() as mgr:
        mgr.notify(Placed(0))  # before the stream: not in it
        events = mgr.stream(Placed)
        for i in range(1, 4):
            mgr.notify(Placed(i))
            mgr.notify("not placed")
        got = []
        async for event in events:
            got.append(event.order)
            if len(got) == 3:
                break
        assert got == [1, 2, 3]
        # leaving the loop drops the iterator; asyncio closes it in a task of its own, which
        # removes the feed: wait for that (a bounded number of loop turns)
        for _ in range(100):
            if not await mgr.which_handlers():
                break
            await asyncio.sleep(0)
        assert await mgr.which_handlers() == []


async def test_aio_stream_ends_when_the_manager_stops() -> None:
    mgr = aio.start()
    events = mgr.stream(where=lambda e: e % 2 == 0)
    for i in range(6):
        mgr.notify(i)
    stopping = asyncio.create_task(mgr.stop())
    got = [e async for e in events]
    await stopping
    assert got == [0, 2, 4]


async def test_aio_stream_context_manager_closes_and_counts() -> None:
    async with aio.start() as mgr:
        async with mgr.stream() as events:
            assert events.ref in await mgr.which_handlers()
            mgr.notify(1)
            mgr.notify(2)
            await mgr.sync_notify(3)
            assert await anext(aiter(events)) == 1
        assert events.counts.handled == 1
        assert events.counts.dropped == 2  # closed with two buffered
        await mgr.sync_notify(4)
        assert await mgr.which_handlers() == []


async def test_aio_drop_oldest_by_default_and_counts_add_up() -> None:
    async with aio.start() as mgr:
        events = mgr.stream(maxsize=3)
        for i in range(10):
            mgr.notify(i)
        await mgr.sync_notify(10)
        got = []
        async for e in events:
            got.append(e)
            if e == 10:
                break
        assert got == [8, 9, 10]
        c = events.counts
        assert (c.sent, c.handled, c.dropped, c.refused, c.high_water) == (11, 3, 8, 0, 3)


async def test_aio_raise_policy_ends_the_stream_with_mailbox_full() -> None:
    async with aio.start() as mgr:
        events = mgr.stream(maxsize=2, overflow="raise")
        for i in range(3):
            mgr.notify(i)
        await mgr.sync_notify("sync")
        got: list[Any] = []

        async def consume() -> None:
            async for e in events:
                got.append(e)

        with pytest.raises(MailboxFull):
            await consume()
        assert got == [0, 1]
        assert events.counts.refused == 1


async def test_aio_block_policy_stalls_the_manager_and_loses_nothing() -> None:
    async with aio.start() as mgr:
        events = mgr.stream(maxsize=2, overflow="block")
        for i in range(50):
            mgr.notify(i)
        got = []
        async for e in events:
            got.append(e)
            if e == 49:
                break
        assert got == list(range(50))
        assert events.counts.dropped == 0
        assert events.counts.high_water == 2


async def test_aio_stream_where_raising_ends_with_its_error() -> None:
    async with aio.start() as mgr:

        def picky(e: Any) -> bool:
            if e == "bad":
                raise ValueError("no")
            return True

        events = mgr.stream(where=picky)
        for e in ("a", "bad", "b"):
            mgr.notify(e)
        got: list[Any] = []

        async def consume() -> None:
            async for e in events:
                got.append(e)

        with pytest.raises(GenEventError) as info:
            await consume()
        assert got == ["a"]
        assert isinstance(info.value.__cause__, ValueError)


async def test_aio_bad_arguments_refused_at_once() -> None:
    async with aio.start() as mgr:
        with pytest.raises(ValueError, match="overflow"):
            mgr.stream(overflow="spill")  # type: ignore[call-overload]
        with pytest.raises(ValueError, match="maxsize"):
            mgr.stream(maxsize=0)
        with pytest.raises(TypeError):
            mgr.stream("not a type")  # type: ignore[call-overload]
        assert await mgr.which_handlers() == []


def test_threads_stream_from_producer_threads() -> None:
    with threads.start() as mgr:
        events = mgr.stream(Placed, overflow="block", maxsize=4)
        assert mgr.which_handlers() == [(StreamFeed, events)]

        def produce() -> None:
            for i in range(200):
                mgr.notify(Placed(i))
                mgr.notify("noise")

        t = threading.Thread(target=produce)
        t.start()
        got = []
        for e in events:
            got.append(e.order)
            if len(got) == 200:
                break
        t.join(WAIT)
        assert got == list(range(200))  # block: nothing lost, in order
        mgr.sync_notify("after")
        assert mgr.which_handlers() == []  # leaving the loop removed the feed


def test_threads_stream_ends_when_the_manager_stops() -> None:
    mgr = threads.start()
    with mgr.stream() as events:
        for i in range(5):
            mgr.notify(i)
        mgr.stop()
        assert list(events) == [0, 1, 2, 3, 4]


def test_threads_close_releases_a_blocked_feed() -> None:
    with threads.start() as mgr:
        events = mgr.stream(maxsize=1, overflow="block")
        mgr.notify(1)
        mgr.notify(2)  # the feed blocks the manager on this one until there is room
        it = iter(events)
        assert next(it) == 1
        events.close()  # the blocked feed wakes, sees the stream closed, removes itself
        mgr.sync_notify("x")
        assert mgr.which_handlers() == []
