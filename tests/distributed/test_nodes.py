"""Nodes on a real nats-server: remote managers by name, ordering, errors, names, monitors,
hostile frames from a raw NATS client, and the JSON protocol a non-Python peer speaks."""

from __future__ import annotations

import asyncio
import json
import pickle
import signal
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import msgspec
import nats
import pytest

from genevent import (
    CallNotSupported,
    CallTimeout,
    HandlerCrashed,
    HandlerExists,
    HandlerInitFailed,
    HandlerNotFound,
    InvalidHandler,
    NameTaken,
)
from genevent.examples import BroadcastEventHandler
from genevent.nats import (
    Down,
    InvalidName,
    MalformedMessage,
    ManagerNotFound,
    NatsServer,
    Node,
    NotEncodable,
    PayloadTooLarge,
    RemoteException,
    connect,
)
from genevent.nats._link import sync
from tests.distributed.app import GATES, HANDLERS, TYPES, Log, Point, Quiet
from tests.distributed.test_wire import HOSTILE_FRAMES

WAIT = 20.0  # generous bound for anything that should happen "soon"


@asynccontextmanager
async def node(url: str, ns: str, name: str, **kw: Any) -> AsyncIterator[Node]:
    n = await connect(url, ns=ns, node_id=name, handlers=HANDLERS, types=TYPES, **kw)
    try:
        yield n
    finally:
        await n.close()


async def until(check: Any, what: str) -> Any:
    """Poll an async condition until it holds (bounded by WAIT)."""
    async with asyncio.timeout(WAIT):
        while True:
            result = await check()
            if result:
                return result
            await asyncio.sleep(0.02)
    raise AssertionError(what)  # pragma: no cover


async def test_seed_session_across_nodes(url: str, ns: str) -> None:
    async with node(url, ns, "a") as a, node(url, ns, "b") as b:
        await a.start_manager("seed")
        seed = b.manager("seed")
        await seed.add_handler(BroadcastEventHandler)  # a registered class: sent by name
        seed.notify(("broadcast", "I dare you!"))
        seed.notify(("broadcast", "Meetup at 10 o'clock"))
        assert await seed.call("BroadcastEventHandler", "broadcasts") == [
            "Meetup at 10 o'clock",
            "I dare you!",
        ]
        assert await seed.call("BroadcastEventHandler", "broadcasts") == []
        assert await seed.which_handlers() == ["BroadcastEventHandler"]


@pytest.mark.parametrize("codec", ["msgpack", "json"])
async def test_a_call_never_overtakes_an_earlier_notify(url: str, ns: str, codec: Any) -> None:
    async with node(url, ns, "a") as a, node(url, ns, "b", codec=codec) as b:
        mgr = await a.start_manager("m")
        await mgr.add_handler(Log)
        remote = b.manager("m")
        for i in range(300):
            remote.notify(("n", i))
            if i % 7 == 0:
                # the handler's handle_call is a coroutine: the manager takes the queued path
                assert await remote.call(Log, "count") == i + 1
        log = await remote.call(Log, "log")
        assert log == [("n", i) for i in range(300)]


async def test_concurrent_callers_each_keep_their_order(url: str, ns: str) -> None:
    async with node(url, ns, "a") as a, node(url, ns, "b") as b, node(url, ns, "c") as c:
        mgr = await a.start_manager("m")
        await mgr.add_handler(Log)

        async def caller(n: Node, tag: str) -> None:
            remote = n.manager("m")
            for i in range(100):
                remote.notify((tag, i))
                if i % 10 == 9:
                    seen = [e[1] for e in await remote.call(Log, "log") if e[0] == tag]
                    assert seen == list(range(i + 1)), (
                        tag,
                        i,
                        [e for e in await remote.call(Log, "log") if e[0] != "a"],
                    )

        await asyncio.gather(caller(b, "b"), caller(c, "c"), caller(a, "a"))


async def test_api_round_trips(url: str, ns: str) -> None:
    async with node(url, ns, "a") as a, node(url, ns, "b") as b:
        await a.start_manager("m")
        m = b.manager("m")
        await m.add_handler("Log")
        await m.add_handler(("Log", 2), None)
        await m.add_handler(("Log", ("t", 1)))
        assert await m.which_handlers() == [("Log", ("t", 1)), ("Log", 2), "Log"]
        await m.sync_notify(Point(1, 2, ("x",)))
        m.send({"info": b"\x00"})
        assert await m.call(("Log", 2), "log") == [Point(1, 2, ("x",))]
        assert await m.call("Log", "infos") == [{"info": b"\x00"}]
        assert await m.call("Log", {"q": (1, None)}) == ("echo", {"q": (1, None)})
        assert await m.delete_handler(("Log", 2), "bye") == {"events": 1}
        await m.swap_handler(("Log", ("t", 1)), None, "BroadcastEventHandler", None)
        state = dict(await m.get_state())
        assert state == {"BroadcastEventHandler": {"broadcasts": []}, "Log": state["Log"]}
        assert state["Log"]["events"] == [Point(1, 2, ("x",))]
        await m.stop()
        assert a.hosted() == {}
        with pytest.raises(ManagerNotFound):
            await m.call("Log", "log")


async def test_remote_errors_are_the_local_types(url: str, ns: str) -> None:
    async with node(url, ns, "a") as a, node(url, ns, "b") as b:
        await a.start_manager("m")
        m = b.manager("m")
        await m.add_handler(Log)
        await m.add_handler(Quiet)
        with pytest.raises(HandlerExists):
            await m.add_handler(Log)
        with pytest.raises(InvalidHandler):
            await m.add_handler("os.system")
        with pytest.raises(HandlerInitFailed) as init:
            await m.add_handler(("Log", 9), "refuse")
        assert isinstance(init.value.cause, RemoteException)
        assert init.value.cause.type_name == "ValueError"
        with pytest.raises(HandlerNotFound) as nf:
            await m.call(("Log", 9), "log")
        assert nf.value.handler == ("Log", 9)
        with pytest.raises(CallNotSupported):
            await m.call(Quiet, "x")
        with pytest.raises(NotEncodable):
            await m.call(Log, "unencodable")
        with pytest.raises(HandlerCrashed) as crash:
            await m.call(Log, "crash")
        assert crash.value.cause.type_name == "KeyError"  # type: ignore[attr-defined]
        assert await m.which_handlers() == ["Quiet"]  # the crashed handler was removed
        with pytest.raises(CallTimeout):
            await m.call(Quiet, "x", timeout=0.0)  # may time out before the reply: that is all
        with pytest.raises(ManagerNotFound):
            await b.manager("nobody").sync_notify("x")
        with pytest.raises(InvalidName):
            b.manager("a.b")
        with pytest.raises(NotEncodable):
            m.notify(object())


async def test_calls_in_flight_time_out_and_late_replies_are_dropped(url: str, ns: str) -> None:
    async with node(url, ns, "a") as a, node(url, ns, "b") as b:
        mgr = await a.start_manager("m")
        await mgr.add_handler(Log)
        m = b.manager("m")
        with pytest.raises(CallTimeout):
            await m.call(Log, ("sleep", 0.3), timeout=0.05)
        assert await m.call(Log, ("sleep", 0), timeout=WAIT) == "slept"


async def test_a_bounded_blocking_mailbox_loses_nothing(url: str, ns: str) -> None:
    async with node(url, ns, "a") as a, node(url, ns, "b") as b:
        mgr = await a.start_manager("m", maxsize=4, overflow="block")
        await mgr.add_handler(Log)
        GATES[ns] = asyncio.Event()
        try:
            m = b.manager("m")
            waiting = asyncio.ensure_future(m.call(Log, ("wait", ns), timeout=None))
            for i in range(10):
                mgr.notify(("local", i)) if i < 4 else m.notify(("remote", i))
            GATES[ns].set()
            assert await waiting == "opened"
            log = await m.call(Log, "log")
            assert log == [("local", i) for i in range(4)] + [("remote", i) for i in range(4, 10)]
        finally:
            GATES.pop(ns).set()


async def test_names_are_claimed_once_across_the_cluster(url: str, ns: str) -> None:
    async with node(url, ns, "a") as a, node(url, ns, "b") as b:
        mgr = await a.start_manager("m")
        with pytest.raises(NameTaken) as taken:
            await b.start_manager("m")
        assert taken.value.holder == "a"
        with pytest.raises(NameTaken):
            await a.start_manager("m")
        await b.start_manager("other")
        assert await b.managers() == {"m": "a", "other": "b"}
        assert await a.nodes() == ["a", "b"]
        await mgr.stop()  # a local stop frees the name too
        await until(lambda: _claim(b, "m"), "the name is free after stop")
        assert (await a.managers())["m"] == "b"


async def _claim(n: Node, name: str) -> bool:
    try:
        await n.start_manager(name)
    except NameTaken:
        return False
    return True


async def test_monitor_reports_a_stopped_manager(url: str, ns: str) -> None:
    async with node(url, ns, "a") as a, node(url, ns, "b") as b:
        await a.start_manager("m")
        mon = await b.monitor("m")
        assert not mon.done()
        await b.manager("m").stop()
        assert await mon.wait(WAIT) == Down("m", "a", "noproc")
        gone = await b.monitor("m")
        assert await gone.wait(WAIT) == Down("m", None, "noproc")


async def test_payload_limits(url: str, ns: str) -> None:
    async with node(url, ns, "a", max_frame=4096) as a, node(url, ns, "b") as b:
        mgr = await a.start_manager("m")
        await mgr.add_handler(Log)
        m = b.manager("m")
        with pytest.raises(PayloadTooLarge):
            m.notify("x" * (2 * 1024 * 1024))  # over the server's max_payload: nothing sent
        with pytest.raises(PayloadTooLarge):
            await m.sync_notify("x" * 10_000)  # over the serving node's max_frame
        assert await m.call(Log, "count") == 0


async def test_hostile_frames_get_typed_error_replies(url: str, ns: str) -> None:
    async with node(url, ns, "a", max_frame=250_000) as a:
        mgr = await a.start_manager("m")
        await mgr.add_handler(Log)
        raw = await nats.connect(url)
        try:
            frames = dict(HOSTILE_FRAMES, oversized=b"\x81" + b"\x00" * 300_000)
            for what, frame in frames.items():
                msg = await raw.request(f"ge.{ns}.mgr.m.notify", frame, timeout=WAIT)
                reply = msgspec.json.decode(msg.data) if msg.data[:1] == b"{" else None
                if reply is None:
                    reply = msgspec.msgpack.decode(msg.data)
                expected = "PayloadTooLarge" if what == "oversized" else "MalformedMessage"
                assert reply["err"] == expected, (what, reply)
                await raw.publish(f"ge.{ns}.mgr.m.notify", frame)  # and without a reply subject
            await sync(raw)  # every frame reached the server before the call below
            m = a.manager("m")
            assert await m.call(Log, "log") == []  # no handler saw any of them
            assert a.refused == 2 * len(frames)
        finally:
            await raw.close()


async def test_a_json_peer_can_notify_and_call(url: str, ns: str) -> None:
    """What docs/protocol.md shows: a stock NATS client and JSON, nothing else."""
    async with node(url, ns, "a") as a:
        mgr = await a.start_manager("seed")
        await mgr.add_handler(BroadcastEventHandler)
        raw = await nats.connect(url)
        try:
            subject = f"ge.{ns}.mgr.seed"
            event = {"v": 2, "op": "notify", "body": {"$tuple": ["broadcast", "hello"]}}
            await raw.publish(f"{subject}.notify", json.dumps(event).encode())
            call = {"v": 2, "op": "call", "h": "BroadcastEventHandler", "body": "broadcasts"}
            msg = await raw.request(f"{subject}.call", json.dumps(call).encode(), timeout=WAIT)
            assert json.loads(msg.data) == {"v": 2, "ok": ["hello"], "n": "a"}
            call["h"] = "Nope"
            msg = await raw.request(f"{subject}.call", json.dumps(call).encode(), timeout=WAIT)
            reply = json.loads(msg.data)
            assert reply["err"] == "HandlerNotFound"
            assert reply["h"] == "Nope"
        finally:
            await raw.close()


async def test_a_node_can_call_its_own_managers_through_nats(url: str, ns: str) -> None:
    async with node(url, ns, "a") as a:
        mgr = await a.start_manager("m")
        await mgr.add_handler(Log)
        mgr.notify("local")
        a.manager("m").notify("remote")
        assert await a.manager("m").call(Log, "log") == ["local", "remote"]


async def test_malformed_replies_are_typed(url: str, ns: str) -> None:
    async with node(url, ns, "b") as b:
        raw = await nats.connect(url)
        try:

            async def liar(msg: Any) -> None:
                await msg.respond(pickle.dumps("not a reply"))

            await raw.subscribe(f"ge.{ns}.mgr.fake.*", cb=liar)
            await sync(raw)  # every frame reached the server before the call below
            with pytest.raises(MalformedMessage):
                await b.manager("fake").call("X", 1, timeout=WAIT)
        finally:
            await raw.close()


async def test_batches_are_checked_item_by_item(url: str, ns: str) -> None:
    async with node(url, ns, "a") as a:
        mgr = await a.start_manager("m")
        await mgr.add_handler(Log)
        raw = await nats.connect(url)
        try:
            items: list[Any] = [
                {"v": 2, "op": "notify", "body": {"$tuple": ["ok", 1]}},
                {"v": 2, "op": "notify", "body": {"$eval": "x"}},
                {"v": 2, "op": "call", "h": "Log", "body": "log"},
                {"v": 3, "op": "notify", "body": "future"},
                "not an envelope",
                {"v": 2, "op": "info", "body": "tick"},
                {"v": 2, "op": "notify", "body": {"$tuple": ["ok", 2]}},
            ]
            frame = {"v": 2, "op": "batch", "body": items}
            msg = await raw.request(
                f"ge.{ns}.mgr.m.notify", json.dumps(frame).encode(), timeout=WAIT
            )
            assert json.loads(msg.data) == {"v": 2, "n": "a"}
            await raw.publish(f"ge.{ns}.mgr.m.notify", msgspec.msgpack.encode(frame))
            bad = {"v": 2, "op": "batch", "body": "nope"}
            msg = await raw.request(f"ge.{ns}.mgr.m.notify", json.dumps(bad).encode(), timeout=WAIT)
            assert json.loads(msg.data)["err"] == "MalformedMessage"
            await sync(raw)
            m = a.manager("m")
            assert await m.call(Log, "log") == [("ok", 1), ("ok", 2)] * 2
            assert await m.call(Log, "infos") == ["tick", "tick"]
            assert a.refused == 2 * 4 + 1
        finally:
            await raw.close()


async def test_queued_notifies_travel_together_and_in_order(url: str, ns: str) -> None:
    async with node(url, ns, "a") as a, node(url, ns, "b", codec="json") as b:
        mgr = await a.start_manager("m")
        await mgr.add_handler(Log)
        m = b.manager("m")
        for i in range(5000):  # queued faster than sent: the writer packs them into frames
            m.notify(i) if i % 2 else m.send(i)
        assert await m.call(Log, "log") == list(range(1, 5000, 2))
        assert await m.call(Log, "infos") == list(range(0, 5000, 2))


async def test_close_ends_a_background_task_that_lost_its_cancellation(url: str, ns: str) -> None:
    """On Python 3.11 a cancellation that meets the end of a ``wait_for`` (nats-py's request,
    under a lease renewal) is lost: the node's close cancels its tasks again until they end."""
    started, swallowed = asyncio.Event(), asyncio.Event()

    async def renewing() -> None:  # loses its first cancellation, as such a renewal would
        started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            swallowed.set()
        await asyncio.Event().wait()

    async with asyncio.timeout(WAIT):
        async with node(url, ns, "a") as a:
            a._tasks.append(asyncio.get_running_loop().create_task(renewing()))
            await started.wait()
        assert swallowed.is_set()
        assert all(task.done() for task in a._tasks)


async def test_a_node_whose_server_was_killed_closes_without_an_error() -> None:
    """nats-py's own close writes out its buffer: a server already gone resets the connection,
    and the node closes all the same (its managers stopped, no exception to its caller)."""
    server = NatsServer(jetstream=True).start()
    try:
        async with asyncio.timeout(WAIT):
            a = await connect(server.url, ns="gone", node_id="a")
            mgr = await a.start_manager("m")
            server.stop(signal.SIGKILL)
            await a.close()
        assert not mgr.is_running
    finally:
        server.cleanup()
