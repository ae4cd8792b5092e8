"""Failures on a real nats-server: a node SIGKILLed while callers talk to it, and the server
restarted under live nodes. Waits are bounded generously; no sleep synchronises anything."""

from __future__ import annotations

import asyncio
import json
import os
import signal
from collections.abc import Iterator
from typing import Any

import nats
import nats.errors
import pytest

from genevent import CallTimeout, NameTaken
from genevent.nats import (
    ConnectFailed,
    Down,
    ManagerNotFound,
    NatsServer,
    Node,
    NodeDown,
    TransportDown,
    connect,
)
from genevent.nats._link import sync
from tests.distributed.app import GATES, HANDLERS, TYPES, Log
from tests.distributed.conftest import NodeProcess

WAIT = 30.0


async def until(check: Any, what: str) -> Any:
    async with asyncio.timeout(WAIT):
        while True:
            result = await check()
            if result:
                return result
            await asyncio.sleep(0.02)
    raise AssertionError(what)  # pragma: no cover


async def test_a_killed_node_is_detected_and_its_names_freed(
    url: str, ns: str, spawn: list[NodeProcess]
) -> None:
    spawn.append(NodeProcess(url, ns, "b", ["b1", "b2"], lease=1.0))
    spawn.append(NodeProcess(url, ns, "c", ["c1"], lease=1.0))
    a = await connect(url, ns=ns, node_id="a", lease=1.0, handlers=HANDLERS, types=TYPES)
    try:
        assert await a.managers() == {"b1": "b", "b2": "b", "c1": "c"}
        b1, c1 = a.manager("b1"), a.manager("c1")
        b1.notify("before")
        assert await b1.call(Log, "log") == ["before"]
        mon = await a.monitor("b1")
        in_flight = asyncio.ensure_future(b1.call(Log, ("sleep", 600), timeout=None))
        await until(lambda: _busy(a), "the call is in flight")

        spawn[0].kill()  # SIGKILL: no goodbye, no lease deletion

        with pytest.raises(NodeDown) as down:
            await asyncio.wait_for(in_flight, WAIT)
        assert down.value.node == "b"
        assert await mon.wait(WAIT) == Down("b1", "b", "nodedown")
        # its names are free within the lease time: another node claims one
        await until(lambda: _claims(a, "b1"), "b1 can be claimed again")
        assert (await a.managers()).get("b1") == "a"
        assert "b2" not in await a.managers()
        assert "b" not in await a.nodes()
        # calls to its other manager fail with a typed error, never hang
        with pytest.raises((ManagerNotFound, NodeDown, CallTimeout)):
            await a.manager("b2").call(Log, "log", timeout=WAIT)
        # the others go on serving
        c1.notify("still here")
        assert await c1.call(Log, "log") == ["still here"]
    finally:
        await a.close()


async def _busy(node: Node) -> bool:
    return bool(node._link.pending)


async def _claims(node: Node, name: str) -> bool:
    try:
        await node.start_manager(name)
    except NameTaken:
        return False
    return True


@pytest.fixture
def own_server() -> Iterator[NatsServer]:
    server = NatsServer().start()
    try:
        yield server
    finally:
        server.cleanup()


async def test_server_restart_under_live_nodes(own_server: NatsServer, ns: str) -> None:
    url = own_server.url
    a = await connect(url, ns=ns, node_id="a", lease=1.0, handlers=HANDLERS, types=TYPES)
    b = await connect(url, ns=ns, node_id="b", lease=1.0, handlers=HANDLERS, types=TYPES)
    try:
        mgr = await a.start_manager("m")
        await mgr.add_handler(Log)
        m = b.manager("m")
        m.notify(1)
        assert await m.call(Log, "log") == [1]
        GATES[ns] = asyncio.Event()
        in_flight = asyncio.ensure_future(m.call(Log, ("wait", ns), timeout=None))
        await until(lambda: _busy(b), "the call is in flight")

        await asyncio.to_thread(own_server.stop)

        with pytest.raises(TransportDown):
            await asyncio.wait_for(in_flight, WAIT)
        await until(lambda: _down(b), "b saw the disconnect")
        with pytest.raises(TransportDown):
            await m.call(Log, "log")  # fails at once: no timeout needed
        with pytest.raises(TransportDown):
            m.notify(2)

        await asyncio.to_thread(own_server.start)
        GATES[ns].set()  # the manager was busy with the call; it goes on

        async def serves() -> bool:
            try:
                return bool(await m.call(Log, "count", timeout=WAIT) >= 1)
            except (TransportDown, ManagerNotFound):
                return False

        await until(serves, "the hosted manager serves again")
        m.notify(3)
        assert (await m.call(Log, "log"))[-1] == 3

        async def listed() -> bool:  # once a's lease is renewed on the restarted server
            return await b.managers() == {"m": "a"}

        await until(listed, "the name is still held by a")
    finally:
        GATES.pop(ns).set()
        await b.close()
        await a.close()


async def _down(node: Node) -> bool:
    return not node.is_connected


async def test_a_stalled_node_gives_up_a_name_taken_over_meanwhile(
    url: str, ns: str, spawn: list[NodeProcess]
) -> None:
    spawn.append(NodeProcess(url, ns, "b", ["b1"], lease=1.0))
    a = await connect(url, ns=ns, node_id="a", lease=1.0, handlers=HANDLERS, types=TYPES)
    raw = await nats.connect(url)
    try:
        notices: asyncio.Queue[Any] = asyncio.Queue()

        async def on_down(msg: Any) -> None:
            await notices.put(json.loads(msg.data))

        await raw.subscribe(f"ge.{ns}.down.b1", cb=on_down)
        await sync(raw)
        mon = await a.monitor("b1")
        os.kill(spawn[0].proc.pid, signal.SIGSTOP)  # hung, socket still open
        try:
            assert (await mon.wait(WAIT)).reason == "nodedown"
            await until(lambda: _claims(a, "b1"), "b1 can be claimed from the stalled node")
        finally:
            os.kill(spawn[0].proc.pid, signal.SIGCONT)
        # back from the stall, b sees its lease had lapsed and stops serving the lost name
        notice = await asyncio.wait_for(notices.get(), WAIT)
        assert (notice["node"], notice["reason"]) == ("b", "noproc")
        assert await a.managers() == {"b1": "a"}
        assert await a.nodes() == ["a", "b"]  # b itself is alive again
        a.manager("b1").notify("x")
        assert await a.manager("b1").which_handlers() == []  # a's own, empty manager
    finally:
        await raw.close()
        await a.close()


async def test_credentials_pass_through(ns: str) -> None:
    server = NatsServer(extra_args=("--auth", "s3cret-token")).start()
    try:
        with pytest.raises(ConnectFailed, match="refused the credentials") as info:
            await connect(server.url, ns=ns, max_reconnect_attempts=0, allow_reconnect=False)
        assert info.value.reason == "auth"
        assert isinstance(info.value.__cause__, nats.errors.Error)  # nats-py's own error
        assert "Authorization" in str(info.value.__cause__)
        async with await connect(server.url, ns=ns, token="s3cret-token") as n:
            await n.start_manager("m")
            assert await n.managers() == {"m": n.id}
    finally:
        server.cleanup()
