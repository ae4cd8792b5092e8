"""Supervised handlers across nodes, on a real nats-server: the owner is told when its
handler leaves (exactly once, whatever is sent again), the handler goes when its owner ends or
its owner's node dies, and the owner is told when the manager's node dies. Node processes are
SIGKILLed by their own pid; every wait is bounded, nothing sleeps to synchronise."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import AsyncIterator
from typing import Any

import msgspec
import nats
import pytest

from genevent import (
    CallTimeout,
    Crashed,
    Deleted,
    GenEventError,
    HandlerExit,
    HandlerInitFailed,
    InvalidOwner,
    OwnerExited,
    RemovedItself,
    Stopped,
    Swapped,
)
from genevent.nats import (
    ManagerNodeDown,
    ManagerNotFound,
    NatsServer,
    Node,
    NodeDown,
    OwnerNodeDown,
    RemoteException,
)
from genevent.nats._exits import decode_notice
from tests.distributed.app import ENDED, HANDLERS, TYPES, Heir, Log, Owned
from tests.distributed.conftest import NodeProcess
from tests.distributed.test_nodes import WAIT, node, until
from tests.distributed.test_trust import as_user


def ended(label: Any) -> list[Any]:
    return [reason for who, reason in ENDED if who == label]


async def test_the_owner_is_told_how_its_handler_left(url: str, ns: str) -> None:
    async with node(url, ns, "a") as a, node(url, ns, "b") as b:
        await b.start_manager("m")
        ref = a.manager("m")
        told: asyncio.Queue[HandlerExit] = asyncio.Queue()

        await ref.add_sup_handler(Log, on_exit=told.put_nowait)
        await ref.sync_notify("crash")  # the notice comes before the reply
        crash = told.get_nowait()
        assert crash.handler == "Log"
        assert crash.manager == ref
        assert isinstance(crash.reason, Crashed)
        assert isinstance(crash.reason.exception, RemoteException)
        assert crash.reason.exception.type_name == "RuntimeError"

        await ref.add_sup_handler((Log, 1), "x", on_exit=told.put_nowait)
        assert await ref.delete_handler((Log, 1), "bye") == {"events": 0}
        assert told.get_nowait() == HandlerExit(("Log", 1), Deleted("bye"), ref)

        await ref.add_sup_handler(Log, on_exit=told.put_nowait)
        await ref.sync_notify("leave")
        assert told.get_nowait() == HandlerExit("Log", RemovedItself(), ref)

        # a plain swap keeps the owner: the new handler's exit is told too
        await ref.add_sup_handler(Log, on_exit=told.put_nowait)
        await ref.swap_handler(Log, "a1", Heir, "a2")
        me = asyncio.current_task()
        assert told.get_nowait() == HandlerExit("Log", Swapped("a1", "Heir", me), ref)
        await ref.stop()
        assert told.get_nowait() == HandlerExit("Heir", Stopped(), ref)
        assert told.empty()
        assert a.ignored["exit_notices"] == 0


async def test_a_node_may_supervise_a_handler_of_its_own_manager(url: str, ns: str) -> None:
    async with node(url, ns, "a", lease=1.0) as a:
        await a.start_manager("m")
        ref = a.manager("m")
        told: list[HandlerExit] = []
        await ref.add_sup_handler(Log, on_exit=told.append)
        assert "a" not in a._link.seen  # it never watches its own lease (it would lapse)
        await ref.swap_sup_handler(Log, "x", Heir, None, on_exit=told.append)
        await ref.delete_handler(Heir, "bye")
        me = asyncio.current_task()
        assert told == [
            HandlerExit("Log", Swapped("x", "Heir", me), ref),
            HandlerExit("Heir", Deleted("bye"), ref),
        ]
        assert a._supervision.unacked == 0


async def test_swap_sup_handler_gives_the_new_handler_to_its_owner(url: str, ns: str) -> None:
    async with node(url, ns, "a") as a, node(url, ns, "b") as b:
        await b.start_manager("m")
        ref = a.manager("m")
        first: list[HandlerExit] = []
        second: list[HandlerExit] = []
        await ref.add_sup_handler(Log, on_exit=first.append)

        async def other() -> None:
            await ref.swap_sup_handler(Log, "x", (Heir, 2), None, on_exit=second.append)

        owner = asyncio.ensure_future(other())
        await owner  # the new owner ends here: its handler goes with it
        assert first == [HandlerExit("Log", Swapped("x", ("Heir", 2), owner), ref)]

        async def gone() -> bool:
            return await ref.which_handlers() == []

        await until(gone, "the handler of the ended owner is removed")
        assert second == []  # an owner that ended is not told
        assert ended(None) == []


async def test_a_failed_add_leaves_nothing_behind(url: str, ns: str) -> None:
    async with node(url, ns, "a") as a, node(url, ns, "b") as b:
        await b.start_manager("m")
        ref = a.manager("m")
        with pytest.raises(HandlerInitFailed):
            await ref.add_sup_handler(Log, "refuse", on_exit=print)
        with pytest.raises(InvalidOwner):
            await ref.add_sup_handler(Log, on_exit=42)  # type: ignore[arg-type]
        with pytest.raises(InvalidOwner):
            await ref.add_sup_handler(Log, on_exit=print, owner="me")
        assert await ref.which_handlers() == []
        assert a._owners._sups == {}


async def test_a_long_lived_owner_keeps_nothing_of_what_it_left(url: str, ns: str) -> None:
    """Many add/delete cycles and failed adds on many managers: neither the owner's node nor
    the manager's node keeps anything of them."""
    async with node(url, ns, "a") as a, node(url, ns, "b") as b:
        refs = [a.manager(f"m{i}") for i in range(10)]
        for ref in refs:
            await b.start_manager(ref.name)
        told: list[HandlerExit] = []
        for _ in range(3):
            for ref in refs:
                await ref.add_sup_handler(Log, on_exit=told.append)
                await ref.delete_handler(Log)
                with pytest.raises(HandlerInitFailed):
                    await ref.add_sup_handler(Log, "refuse", on_exit=told.append)
        assert len(told) == 30
        own = a._owners._by_future[asyncio.current_task()]  # type: ignore[index]
        assert a._owners._sups == {}
        assert own.managers == {}
        assert own.incs == {}
        sup = b._supervision
        assert (sup._standins, sup._ids, sup._tellers, sup._adding) == ({}, {}, {}, {})
        # a failed add beside a live handler of the same owner keeps the stand-in
        await refs[0].add_sup_handler(Log, on_exit=told.append)
        with pytest.raises(HandlerInitFailed):
            await refs[0].add_sup_handler((Log, 2), "refuse", on_exit=told.append)
        assert len(sup._standins) == 1
        assert list(own.managers) == ["m0"]
        await refs[0].delete_handler(Log)
        assert own.managers == {}
        assert len(told) == 31


async def test_the_owners_end_removes_its_handlers(url: str, ns: str) -> None:
    ENDED.clear()
    async with node(url, ns, "a") as a, node(url, ns, "b") as b:
        await b.start_manager("m")
        ref = a.manager("m")
        await ref.add_handler(Owned, "free")
        gate = asyncio.Event()

        async def owner(fail: bool) -> None:
            await ref.add_sup_handler((Owned, fail), fail, on_exit=print)
            await gate.wait()
            if fail:
                raise LookupError("owner died")

        normal = asyncio.ensure_future(owner(False))
        failing = asyncio.ensure_future(owner(True))

        async def both_in() -> bool:
            return len(await ref.which_handlers()) == 3

        await until(both_in, "both supervised handlers are in")
        gate.set()
        await asyncio.gather(normal, failing, return_exceptions=True)

        async def only_free() -> bool:
            return await ref.which_handlers() == ["Owned"]

        await until(only_free, "the owners' handlers are removed")
        assert ended(False) == [OwnerExited(None)]
        (reason,) = ended(True)
        assert isinstance(reason, OwnerExited)
        assert isinstance(reason.reason, RemoteException)
        assert (reason.reason.type_name, reason.reason.message) == ("LookupError", "owner died")


async def test_a_closing_owner_node_takes_its_handlers_away(url: str, ns: str) -> None:
    ENDED.clear()
    async with node(url, ns, "b") as b:
        await b.start_manager("m")
        told: list[HandlerExit] = []
        async with node(url, ns, "a") as a:
            await a.manager("m").add_sup_handler(Owned, "a's", on_exit=told.append)
        # its owners were told it is gone (its connection, as seen from here), and the
        # manager's node removed the handler once the lease was deleted
        assert [x.reason for x in told] == [ManagerNodeDown("b", "noconnection")]

        async def removed() -> bool:
            return bool(ended("a's"))

        await until(removed, "the handler of the node that left is removed")
        (reason,) = ended("a's")
        assert isinstance(reason, OwnerExited)
        assert isinstance(reason.reason, OwnerNodeDown)
        assert reason.reason.node == "a"


async def test_a_notice_sent_twice_is_told_once(url: str, ns: str) -> None:
    async with _spied(url, ns) as (a, ref, spy):
        told: list[HandlerExit] = []
        subject, data = await _a_notice(spy, ns, ref, told)
        assert len(told) == 1
        # delivered again (a retry whose first ack was lost): acknowledged, not told
        ack = await spy.request(subject, data, timeout=WAIT)
        assert b"MalformedMessage" not in ack.data
        assert len(told) == 1
        # a notice about a live handler from another node than the manager's: ignored
        await ref.add_sup_handler(Log, on_exit=told.append)  # incarnation 2
        notice = decode_notice(data)
        notice.n, notice.i = "z", 2
        with pytest.raises(nats.errors.TimeoutError):  # no ack for a forgery
            await spy.request(subject, msgspec.msgpack.encode(notice), timeout=0.5)
        assert len(told) == 1
        assert await ref.which_handlers() == ["Log"]
        await ref.delete_handler(Log)
        assert len(told) == 2
        assert a.ignored["exit_notices"] == 1
        # junk on the subject: a typed error reply, counted
        junk = await spy.request(subject, b"\x93junk", timeout=WAIT)
        assert b"MalformedMessage" in junk.data
        assert a.ignored["exit_notices"] == 2


async def test_a_notice_before_the_holder_is_known_is_checked_against_the_bucket(
    url: str, ns: str
) -> None:
    async with _spied(url, ns) as (a, ref, spy):
        told: list[HandlerExit] = []
        subject, data = await _a_notice(spy, ns, ref, told)
        await ref.add_sup_handler(Log, on_exit=told.append)  # incarnation 2
        # as if the reply had not come yet: the owner's node does not know the holder
        sup = a._owners._sups[("1", 2)]
        sup.node = None
        a._link.where.pop("m", None)
        notice = decode_notice(data)
        notice.n, notice.i = "z", 2  # a node that does not hold "m"
        with pytest.raises(nats.errors.TimeoutError):  # no ack: the bucket says "b"
            await spy.request(subject, msgspec.msgpack.encode(notice), timeout=0.5)
        assert a.ignored["exit_notices"] == 1
        assert sup.node == "b"  # learned from the bucket
        assert len(told) == 1
        assert await ref.which_handlers() == ["Log"]
        await ref.delete_handler(Log)  # the real notice, from "b", is told
        assert len(told) == 2
        assert a.ignored["exit_notices"] == 1


async def test_a_notice_the_server_refuses_is_given_up_and_counted(
    roles_server: NatsServer, caplog: pytest.LogCaptureFixture
) -> None:
    """node-c may serve managers but not send exit notices: each refused notice ends its
    sending task quietly (logged, counted), not with an exception nobody reads."""
    refused: list[Any] = []
    async with as_user(roles_server, "node-c") as c, as_user(roles_server, "operator") as o:
        asyncio.get_running_loop().set_exception_handler(lambda _, ctx: refused.append(ctx))
        await c.start_manager("ledger")
        m = o.manager("ledger")
        told: list[HandlerExit] = []
        for _ in range(2):
            await m.add_sup_handler(Log, on_exit=told.append)
            await m.delete_handler(Log)
            await c._supervision.settle(WAIT)
        assert c._supervision.unacked == 2
        assert not c._supervision._sending
        assert told == []  # nothing reached the owner
        assert await m.which_handlers() == []
    assert refused == []
    assert "not acknowledged" in caplog.text


@contextlib.asynccontextmanager
async def _spied(url: str, ns: str) -> AsyncIterator[tuple[Node, Any, Any]]:
    """Node "a", its reference to the manager "m" of node "b", and a plain NATS client."""
    async with node(url, ns, "a") as a, node(url, ns, "b") as b:
        await b.start_manager("m")
        spy = await nats.connect(url)
        try:
            yield a, a.manager("m"), spy
        finally:
            await spy.close()


async def _a_notice(spy: Any, ns: str, ref: Any, told: list[HandlerExit]) -> tuple[str, bytes]:
    """The subject and data of an exit notice to the owner on node "a" (the current task),
    as the client ``spy`` saw it: its handler ``Log`` on ``ref`` was added and deleted."""
    frames: list[Any] = []
    sub = await spy.subscribe(f"ge.{ns}.own.a.*", cb=_keep(frames))
    await spy.flush()
    await ref.add_sup_handler(Log, on_exit=told.append)
    await ref.delete_handler(Log)

    async def seen() -> bool:
        return bool(frames)

    await until(seen, "the spy saw the notice")
    await sub.unsubscribe()
    subject, data = frames[0]
    return subject, data


def _keep(frames: list[Any]) -> Any:
    async def keep(msg: Any) -> None:
        frames.append((msg.subject, msg.data))

    return keep


# -- three node processes ---------------------------------------------------------------------


async def test_a_killed_owner_node_loses_its_handlers(
    url: str, ns: str, spawn: list[NodeProcess]
) -> None:
    """Owner: node b (a process, killed). Managers: m on this node, c1 on node c."""
    ENDED.clear()
    async with node(url, ns, "a", lease=1.0) as a:
        await a.start_manager("m")
        # started from a thread: this node's loop serves m meanwhile (b adds a handler there)
        spawn.append(await asyncio.to_thread(NodeProcess, url, ns, "c", ["c1"], 1.0))
        b = await asyncio.to_thread(NodeProcess, url, ns, "b", [], 1.0, ("m", "c1"))
        spawn.append(b)
        m, c1 = a.manager("m"), a.manager("c1")
        assert await m.which_handlers() == ["Owned"]
        assert await c1.which_handlers() == ["Owned", "Log"]

        spawn[1].kill()

        async def gone_here() -> bool:
            return bool(ended("b"))

        await until(gone_here, "the killed owner's handler is removed here")
        (reason,) = ended("b")
        assert isinstance(reason, OwnerExited)
        assert isinstance(reason.reason, OwnerNodeDown)
        assert reason.reason.node == "b"
        assert await m.which_handlers() == []

        async def gone_there() -> bool:
            return await c1.which_handlers() == ["Log"]

        await until(gone_there, "and on node c")


async def test_a_killed_manager_node_is_told_to_the_owner(
    url: str, ns: str, spawn: list[NodeProcess]
) -> None:
    """Owner: this node. Managers: b1 on node b (killed), c1 on node c (stays)."""
    spawn.append(NodeProcess(url, ns, "b", ["b1"], lease=1.0))
    spawn.append(NodeProcess(url, ns, "c", ["c1"], lease=1.0))
    async with node(url, ns, "a", lease=1.0) as a:
        b1, c1 = a.manager("b1"), a.manager("c1")
        told: asyncio.Queue[HandlerExit] = asyncio.Queue()
        await b1.add_sup_handler(Owned, 1, on_exit=told.put_nowait)
        await b1.add_sup_handler((Owned, 2), 2, on_exit=told.put_nowait)
        await c1.add_sup_handler(Owned, 3, on_exit=told.put_nowait)
        # the same owner swaps one for another: that one is now the new incarnation's
        await b1.swap_sup_handler((Owned, 2), "x", (Heir, 4), None, on_exit=told.put_nowait)
        assert told.get_nowait().reason == Swapped("x", ("Heir", 4), asyncio.current_task())

        spawn[0].kill()

        async with asyncio.timeout(WAIT):
            got = [await told.get() for _ in range(2)]
        assert {x.handler for x in got} == {"Owned", ("Heir", 4)}
        for notice in got:
            assert notice.reason == ManagerNodeDown("b", "nodedown")
            assert isinstance(notice.reason, Stopped)  # code matching a stop handles it too
            assert notice.manager == b1
        # once each; c1's handler is still there, untold
        assert told.empty()
        assert "Owned" in await c1.which_handlers()
        with pytest.raises((ManagerNotFound, NodeDown, CallTimeout)):
            await b1.call(Log, "log", timeout=WAIT)
        await c1.delete_handler(Owned)
        last = await asyncio.wait_for(told.get(), WAIT)
        assert last == HandlerExit("Owned", Deleted(None), c1)
        assert told.empty()


# -- the blocking face ------------------------------------------------------------------------


def test_a_blocking_owner_is_a_thread(url: str, ns: str) -> None:
    import queue  # noqa: PLC0415
    import threading  # noqa: PLC0415

    from genevent.nats import BlockingNode  # noqa: PLC0415

    ENDED.clear()
    opts: dict[str, Any] = {"ns": ns, "handlers": HANDLERS, "types": TYPES}
    with BlockingNode(url, node_id="host", **opts) as host, BlockingNode(url, **opts) as caller:
        host.start_manager("m")
        m = caller.manager("m")
        told: queue.SimpleQueue[HandlerExit] = queue.SimpleQueue()
        m.add_sup_handler(Log, on_exit=told.put)  # owned by this (the main) thread
        m.delete_handler(Log, "bye")
        assert told.get(timeout=WAIT).reason == Deleted("bye")

        added = threading.Event()
        leave = threading.Event()

        def owner() -> None:
            m.add_sup_handler(Owned, "thread's", on_exit=told.put)
            added.set()
            leave.wait(WAIT)

        t = threading.Thread(target=owner)
        t.start()
        assert added.wait(WAIT)
        assert m.which_handlers() == ["Owned"]
        leave.set()
        t.join(WAIT)
        deadline = threading.Event()
        for _ in range(int(WAIT / 0.02)):  # bounded poll: the handler goes with its thread
            if m.which_handlers() == []:
                break
            deadline.wait(0.02)
        assert m.which_handlers() == []
        assert told.empty()  # an ended owner is not told
    assert ended("thread's") == [OwnerExited(None)]


# -- partitions (a node stalled past its lease: SIGSTOP) -----------------------------------------


async def test_a_stalled_owner_node_loses_its_handler_for_good(
    url: str, ns: str, spawn: list[NodeProcess]
) -> None:
    """Both sides conclude "gone": the manager's node removes the handler when the owner's
    lease expires; back from the stall, the owner's node finds its own lease lapsed, tells its
    owners and re-adds nothing."""
    ENDED.clear()
    async with node(url, ns, "a", lease=1.0) as a:
        await a.start_manager("m")
        b = await asyncio.to_thread(NodeProcess, url, ns, "b", [], 1.0, ("m",))
        spawn.append(b)
        m = a.manager("m")
        assert await m.which_handlers() == ["Owned"]
        os.kill(b.proc.pid, signal.SIGSTOP)  # hung, socket still open
        try:

            async def removed() -> bool:
                return bool(ended("b"))

            await until(removed, "the stalled owner's handler is removed")
        finally:
            os.kill(b.proc.pid, signal.SIGCONT)

        async def back() -> bool:
            return "b" in await a.nodes()

        await until(back, "b renews its lease again")
        assert await m.which_handlers() == []
        (reason,) = ended("b")
        assert reason == OwnerExited(reason.reason)
        assert isinstance(reason.reason, OwnerNodeDown)


async def test_a_stalled_manager_node_drops_the_handler_its_owner_was_told_gone(
    url: str, ns: str, spawn: list[NodeProcess]
) -> None:
    spawn.append(NodeProcess(url, ns, "b", ["b1"], lease=1.0))
    async with node(url, ns, "a", lease=1.0) as a:
        b1 = a.manager("b1")
        told: asyncio.Queue[HandlerExit] = asyncio.Queue()
        await b1.add_sup_handler(Owned, 1, on_exit=told.put_nowait)
        os.kill(spawn[0].proc.pid, signal.SIGSTOP)
        try:
            notice = await asyncio.wait_for(told.get(), WAIT)
        finally:
            os.kill(spawn[0].proc.pid, signal.SIGCONT)
        assert notice == HandlerExit("Owned", ManagerNodeDown("b", "nodedown"), b1)

        async def dropped() -> bool:
            with contextlib.suppress(GenEventError):
                return await b1.which_handlers() == ["Log"]
            return False

        await until(dropped, "back from the stall, b removes the handler")
        assert told.empty()  # told once: the removal on b is not told again


async def test_a_lapse_seen_by_one_side_only_still_ends_both(url: str, ns: str) -> None:
    """A node that finds its own lease lapsed acts even if the other side never saw it: the
    manager's node tells the owners, the owner's node tells the managers."""
    ENDED.clear()
    async with node(url, ns, "a") as a, node(url, ns, "b") as b:
        await b.start_manager("m")
        ref = a.manager("m")
        told: list[HandlerExit] = []
        await ref.add_sup_handler((Owned, 1), 1, on_exit=told.append)
        b._supervision.cut_off()  # as b does when it finds its lease lapsed

        async def told_once() -> bool:
            return bool(told)

        await until(told_once, "the owner is told by the manager's node")
        assert told == [HandlerExit(("Owned", 1), ManagerNodeDown("b", "noconnection"), ref)]

        async def removed_first() -> bool:
            return bool(ended(1))

        await until(removed_first, "the manager's node removed it too")
        (first,) = ended(1)  # as if its owner's node were gone
        assert isinstance(first, OwnerExited)
        assert isinstance(first.reason, OwnerNodeDown)
        assert (first.reason.node, first.reason.reason) == ("a", "noconnection")

        await ref.add_sup_handler((Owned, 2), 2, on_exit=told.append)
        a._owners.cut_off()  # as a does when it finds its lease lapsed
        assert told[-1] == HandlerExit(("Owned", 2), ManagerNodeDown("b", "noconnection"), ref)

        async def removed() -> bool:
            return bool(ended(2))

        await until(removed, "the manager's node is told by the owner's node")
        (reason,) = ended(2)
        assert isinstance(reason, OwnerExited)
        assert isinstance(reason.reason, OwnerNodeDown)
        assert reason.reason.node == "a"
        assert await ref.which_handlers() == []
        assert len(told) == 2
