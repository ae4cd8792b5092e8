"""A remote ``notify_many`` on a real nats-server: the batch travels as one frame (the batch
envelope) when it fits, as several frames in order when it does not, each within the server's
max_payload; an event the wire cannot carry sends nothing of the batch; the blocking remote
manager does the same."""

from __future__ import annotations

import asyncio
from typing import Any

import msgspec
import nats
import pytest

from genevent.nats import BlockingNode, PayloadTooLarge
from genevent.nats._link import sync
from genevent.nats._protocol import subject
from tests.distributed.app import HANDLERS, Log
from tests.distributed.test_nodes import WAIT, node


async def _frames(url: str, ns: str, name: str) -> tuple[Any, asyncio.Queue[bytes]]:
    """A plain NATS connection watching the notify frames sent to the manager ``name``."""
    frames: asyncio.Queue[bytes] = asyncio.Queue()
    nc = await nats.connect(url)

    async def got(msg: Any) -> None:
        frames.put_nowait(msg.data)

    await nc.subscribe(subject(f"ge.{ns}", name, "notify"), cb=got)
    await sync(nc)  # the server has the subscription (flush() alone may overtake it)
    return nc, frames


def _items(frame: bytes, codec: str = "msgpack") -> list[Any]:
    """The events a notify or batch frame carries."""
    env = (msgspec.json if codec == "json" else msgspec.msgpack).decode(frame)
    if env["op"] == "notify":
        return [env["body"]]
    assert env["op"] == "batch"
    return [item["body"] for item in env["body"]]


async def test_a_batch_is_one_frame_in_order_between_notifies(url: str, ns: str) -> None:
    async with node(url, ns, "a") as a, node(url, ns, "b") as b:
        await a.start_manager("m")
        m = b.manager("m")
        await m.add_handler(Log)
        nc, frames = await _frames(url, ns, "m")
        try:
            m.notify("before")
            m.notify_many(range(1000))
            m.notify_many([])  # sends nothing
            m.notify("after")
            assert await m.call(Log, "log", timeout=WAIT) == ["before", *range(1000), "after"]
            sent = [await asyncio.wait_for(frames.get(), WAIT) for _ in range(3)]
        finally:
            await nc.close()
    assert [_items(f) for f in sent] == [["before"], list(range(1000)), ["after"]]


@pytest.mark.parametrize("codec", ["msgpack", "json"])
async def test_a_batch_larger_than_max_payload_goes_as_several_frames_in_order(
    url: str, ns: str, codec: Any
) -> None:
    async with node(url, ns, "a") as a, node(url, ns, "b", codec=codec) as b:
        hosted = await a.start_manager("m")
        seen: list[str] = []
        await hosted.subscribe(lambda event: seen.append(event[:4]))
        m = b.manager("m")
        await m.add_handler(Log)
        limit = b._link.limit()
        events = [f"{i:04d}" + "x" * (limit // 4) for i in range(10)]
        nc, frames = await _frames(url, ns, "m")
        try:
            m.notify_many(events)
            assert await m.call(Log, "count", timeout=WAIT) == len(events)
            sent: list[bytes] = []
            while sum(len(_items(f, codec)) for f in sent) < len(events):
                sent.append(await asyncio.wait_for(frames.get(), WAIT))
        finally:
            await nc.close()
    assert seen == [e[:4] for e in events]
    assert 1 < len(sent) < len(events)  # several batches, not one frame per event
    assert all(len(f) <= limit for f in sent)
    assert [e for f in sent for e in _items(f, codec)] == events


async def test_a_batch_with_an_event_too_large_for_a_frame_sends_nothing(url: str, ns: str) -> None:
    async with node(url, ns, "a") as a, node(url, ns, "b") as b:
        await a.start_manager("m")
        m = b.manager("m")
        await m.add_handler(Log)
        too_large = "x" * (b._link.limit() + 1)
        with pytest.raises(PayloadTooLarge):
            m.notify_many(["first", too_large, "last"])
        m.notify("alone")
        assert await m.call(Log, "log", timeout=WAIT) == ["alone"]


def test_the_blocking_remote_manager_sends_a_batch(url: str, ns: str) -> None:
    with BlockingNode(url, ns=ns, handlers=HANDLERS) as node_:
        node_.start_manager("m")
        m = node_.manager("m")
        m.add_handler(Log)
        m.notify_many(iter(["a", "b"]))
        m.notify("c")
        assert m.call(Log, "log", timeout=WAIT) == ["a", "b", "c"]
