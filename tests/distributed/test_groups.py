"""Process groups on a real nats-server: managers join and leave groups from any node, group
notifies reach every member once and in order, a group's sync_notify names the members that
did not confirm and why, and a member whose node was SIGKILLed leaves its groups. Waits are
bounded generously; no sleep synchronises anything."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from typing import Any

import nats.errors
import nats.js.errors
import pytest

from genevent import EventHandler
from genevent.nats import (
    BlockingNode,
    GroupIncomplete,
    InvalidName,
    ManagerNotFound,
    NatsServer,
    NotEncodable,
    RemoteGroup,
    _groups,
)
from tests.distributed.app import GATES, Log
from tests.distributed.conftest import PYTHONPATH, ROOT, NodeProcess
from tests.distributed.test_nodes import WAIT, node, until
from tests.distributed.test_trust import as_user


class Stuck(EventHandler[Any, Any, Any]):
    """Waits for ``GATES[key]`` on the event ``("stuck", key)``."""

    async def handle_event(self, event: Any, /) -> None:
        if isinstance(event, tuple) and event[0] == "stuck":
            await GATES[event[1]].wait()


async def _host(n: Any, *names: str) -> None:
    for name in names:
        mgr = await n.start_manager(name)
        await mgr.add_handler(Log)


async def test_managers_join_and_leave_groups_from_any_node(url: str, ns: str) -> None:
    async with node(url, ns, "a") as a, node(url, ns, "b") as b, node(url, ns, "c") as c:
        assert await c.members("g") == []  # no bucket yet
        assert await c.groups() == {}
        assert await c.leave("g", "m1") is False
        await _host(a, "m1")
        await _host(b, "m2")
        await a.join("g", "m2")  # a manager served elsewhere
        await b.join("g", "m1")
        await b.join("g", "m1")  # twice is once
        await a.join("h", "m1")  # a hosted manager, from its own node
        for n in (a, b, c):
            assert await n.members("g") == ["m1", "m2"]
            assert await n.groups() == {"g": ["m1", "m2"], "h": ["m1"]}
        assert await c.group("g").members() == ["m1", "m2"]
        assert await c.leave("g", "m2") is True
        assert await c.leave("g", "m2") is False
        assert await a.members("g") == ["m1"]
        with pytest.raises(ManagerNotFound):
            await c.join("g", "nobody")
        for bad in ("a.b", "*", "", "g h"):
            with pytest.raises(InvalidName):
                await c.join(bad, "m1")
            with pytest.raises(InvalidName):
                await c.members(bad)
            with pytest.raises(InvalidName):
                c.group(bad)
        with pytest.raises(InvalidName):
            await c.join("g", "m.1")
        assert isinstance(c.group("g"), RemoteGroup)
        assert c.group("g") == c.group("g")


async def test_a_stopped_manager_leaves_its_groups(url: str, ns: str) -> None:
    async with node(url, ns, "a") as a, node(url, ns, "b") as b:
        await _host(a, "m1", "m2")
        await b.join("g", "m1")
        await b.join("g", "m2")
        await b.manager("m1").stop()
        assert await b.members("g") == ["m2"]
        # a later manager under the same name is another one: not a member
        await _host(a, "m1")
        assert await b.members("g") == ["m2"]
        assert await b.groups() == {"g": ["m2"]}


async def test_group_notify_reaches_each_member_once_and_in_order(url: str, ns: str) -> None:
    async with node(url, ns, "a") as a, node(url, ns, "b") as b, node(url, ns, "c") as c:
        await _host(a, "m1", "m2")
        await _host(b, "m3")
        for m in ("m1", "m2", "m3"):
            await c.join("g", m)
        g = c.group("g")
        for i in range(50):
            assert await g.notify(i) == 3
        assert await g.notify_many(range(50, 80)) == 3
        assert await g.sync_notify("end") == ["m1", "m2", "m3"]
        for m in ("m1", "m2", "m3"):
            assert await c.manager(m).call(Log, "log") == [*range(80), "end"]
        # a member that joins later gets what comes after; one that left, nothing more
        await _host(b, "m4")
        await c.join("g", "m4")
        assert await c.leave("g", "m1")
        assert await g.notify("later") == 3
        await g.sync_notify("end2")
        assert await c.manager("m4").call(Log, "log") == ["later", "end2"]
        assert (await c.manager("m1").call(Log, "log"))[-1] == "end"


async def test_group_notify_sees_a_join_from_another_node(url: str, ns: str) -> None:
    async with node(url, ns, "a") as a, node(url, ns, "c") as c:
        await _host(a, "m1", "m2")
        await a.join("g", "m1")
        g = c.group("g")
        assert await g.notify("first") == 1
        await a.join("g", "m2")  # c's copy of the members is told it changed
        await until(lambda: _sent_to(g, 2), "c's notifies reach the new member")
        assert (await c.manager("m2").call(Log, "log"))[0] == "probe"


async def _sent_to(g: RemoteGroup, count: int) -> bool:
    return await g.notify("probe") == count


async def test_group_sync_notify_names_a_member_that_timed_out(url: str, ns: str) -> None:
    async with node(url, ns, "a") as a, node(url, ns, "b") as b:
        await _host(a, "m1")
        mgr = await b.start_manager("slow")
        await mgr.add_handler(Log)
        await mgr.add_handler(Stuck)
        await a.join("g", "m1")
        await a.join("g", "slow")
        GATES[ns] = asyncio.Event()
        try:
            with pytest.raises(GroupIncomplete) as info:
                await a.group("g").sync_notify(("stuck", ns), timeout=0.5)
        finally:
            GATES[ns].set()
        err = info.value
        assert err.group == "g"
        assert err.reasons == {"slow": "timeout"}
        assert err.delivered == ["m1"]
        assert "slow (timeout)" in str(err)
        assert await a.manager("m1").call(Log, "log") == [("stuck", ns)]
        with pytest.raises(ValueError, match="negative"):
            await a.group("g").sync_notify("x", timeout=-1)


async def test_group_sync_notify_names_a_member_whose_node_was_killed(
    url: str, ns: str, spawn: list[NodeProcess]
) -> None:
    # a long lease: the killed node's member still counts when the request goes out
    spawn.append(NodeProcess(url, ns, "k", ["k1"], lease=120.0))
    async with node(url, ns, "a") as a:
        await _host(a, "m1")
        await a.join("g", "m1")
        await a.join("g", "k1")
        assert await a.group("g").sync_notify("before") == ["k1", "m1"]
        spawn[0].kill()
        with pytest.raises(GroupIncomplete) as info:
            await a.group("g").sync_notify("after", timeout=WAIT)
        assert list(info.value.reasons) == ["k1"]
        assert info.value.reasons["k1"] in ("noproc", "timeout", "nodedown")
        assert info.value.delivered == ["m1"]
        assert await a.manager("m1").call(Log, "log") == ["before", "after"]


async def test_a_member_whose_node_was_killed_leaves_its_groups(
    url: str, ns: str, spawn: list[NodeProcess]
) -> None:
    spawn.append(NodeProcess(url, ns, "k", ["k1", "k2"], lease=1.0))
    async with node(url, ns, "a", lease=1.0) as a:
        await _host(a, "m1")
        for m in ("m1", "k1", "k2"):
            await a.join("g", m)
        g = a.group("g")
        assert await g.notify("x") == 3
        spawn[0].kill()  # SIGKILL: the node leaves nothing behind on purpose

        async def left() -> bool:
            return await a.members("g") == ["m1"]

        await until(left, "the killed node's members left the group")
        assert await a.groups() == {"g": ["m1"]}
        assert await g.sync_notify("y") == ["m1"]
        assert await g.notify("z") == 1
        # the stale records are cleaned up
        kv = await a.nats.jetstream().key_value(f"ge_{ns}_groups")

        async def cleaned() -> bool:
            return [await _exists(kv, f"g.g.{m}") for m in ("m1", "k1", "k2")] == [
                True,
                False,
                False,
            ]

        await until(cleaned, "the killed node's records are deleted")


async def _exists(kv: Any, key: str) -> bool:
    try:
        await kv.get(key)
    except nats.js.errors.KeyNotFoundError:
        return False
    return True


async def test_ls_shows_the_groups(url: str, ns: str) -> None:
    async with node(url, ns, "a") as a:
        await _host(a, "m1", "m2")
        await a.join("g", "m1")
        await a.join("g", "m2")
        await a.join("other", "m2")
        args = [sys.executable, "-m", "genevent", "ls", "--server", url, "--ns", ns]
        env = {"PYTHONPATH": PYTHONPATH, "PATH": ""}
        done = await asyncio.to_thread(
            subprocess.run, args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=WAIT
        )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[:3] == ["NAME  NODE", "m1  a", "m2  a"]
    assert lines[3:] == ["", "GROUP  MEMBERS", "g      m1 m2", "other  m2"]


async def test_group_roles_producers_notify_operators_join(roles_server: NatsServer) -> None:
    """With examples/nats-roles.conf: an operator (or a serving node) makes managers join
    groups; a producer may notify a group, and its sync_notify is denied for each member."""
    operator = as_user(roles_server, "operator")
    async with as_user(roles_server, "node-a") as a, operator as o:
        await _host(a, "orders", "audit")
        await o.join("billing", "orders")
        await a.join("billing", "audit")
        async with as_user(roles_server, "producer") as p:
            group = p.group("billing")
            assert await group.members() == ["audit", "orders"]
            assert await group.notify("placed") == 2

            async def arrived() -> bool:
                logs = [await a.manager(m).call(Log, "log") for m in ("audit", "orders")]
                return logs == [["placed"], ["placed"]]

            await until(arrived, "the producer's group notify arrived")
            with pytest.raises(GroupIncomplete) as info:
                await group.sync_notify("x", timeout=WAIT)
            assert info.value.reasons == {"audit": "PermissionDenied", "orders": "PermissionDenied"}
        assert await o.leave("billing", "orders")
        assert await a.members("billing") == ["audit"]


def test_blocking_node_groups(url: str, ns: str) -> None:
    with BlockingNode(url, ns=ns, node_id="a", handlers=[Log]) as a:
        a.start_manager("m1")
        a.manager("m1").add_handler(Log)
        a.join("g", "m1")
        assert a.members("g") == ["m1"]
        assert a.groups() == {"g": ["m1"]}
        g = a.group("g")
        assert g.name == "g"
        assert g.members() == ["m1"]
        assert g.notify(1) == 1
        assert g.notify_many(iter([2, 3])) == 1
        with pytest.raises(TypeError):
            g.notify_many("abc")
        assert g.sync_notify(4) == ["m1"]
        assert a.manager("m1").call(Log, "log") == [1, 2, 3, 4]
        assert a.leave("g", "m1")
        assert a.members("g") == []


async def test_records_that_are_no_members_are_ignored(url: str, ns: str) -> None:
    """Whatever else is written in the bucket (a key of another shape, a value that is no
    record, a record naming another claim) is no member, and breaks no reader."""
    async with node(url, ns, "a") as a:
        await _host(a, "m1", "m2")
        await a.join("g", "m1")
        kv = await a.nats.jetstream().key_value(f"ge_{ns}_groups")
        await kv.put("g.g", b"{}")
        await kv.put("g.g.m2.x", b"{}")
        await kv.put("g.h.m2", b"not json")
        await kv.put("g.g.m2", b'{"node": "a", "rev": 123456}')  # not m2's claim
        await kv.put("other", b"{}")
        assert await a.members("g") == ["m1"]
        assert await a.groups() == {"g": ["m1"]}
        assert await a.group("g").notify("x") == 1
        assert await a.group("g").sync_notify("y") == ["m1"]


async def test_a_group_notify_of_a_value_the_wire_cannot_carry_sends_nothing(
    url: str, ns: str
) -> None:
    async with node(url, ns, "a") as a:
        await _host(a, "m1")
        await a.join("g", "m1")
        g = a.group("g")
        with pytest.raises(NotEncodable):
            await g.notify(object())
        with pytest.raises(NotEncodable):
            await g.notify_many([1, object()])
        with pytest.raises(NotEncodable):
            await g.sync_notify({1, 2})
        await g.sync_notify("end")
        assert await a.manager("m1").call(Log, "log") == ["end"]


async def test_a_group_notify_stops_going_to_a_stopped_member(url: str, ns: str) -> None:
    async with node(url, ns, "a") as a, node(url, ns, "c") as c:
        await _host(a, "m1", "m2")
        await a.join("g", "m1")
        await a.join("g", "m2")
        g = c.group("g")
        assert await g.notify("first") == 2  # c keeps the members
        await a.manager("m2").stop()  # c hears the "stopped" notice

        async def one_left() -> bool:
            return await g.notify("probe") == 1

        await until(one_left, "c's notifies go to the member left")
        assert await c.members("g") == ["m1"]


def test_top_shows_the_groups(url: str, ns: str) -> None:
    pytest.importorskip("rich")
    from rich.console import Console  # noqa: PLC0415

    from genevent.top import cluster_snapshot, render  # noqa: PLC0415

    async def scenario() -> dict[str, Any]:
        async with node(url, ns, "a") as a:
            await _host(a, "m1", "m2")
            await a.join("g", "m1")
            await a.join("g", "m2")
            return await cluster_snapshot(a)

    snap = asyncio.run(scenario())
    assert snap["groups"] == {"g": ["m1", "m2"]}
    console = Console(record=True, width=160, color_system=None)
    console.print(render(snap))
    assert "groups: g: m1 m2" in console.export_text()


async def test_the_members_cache_keeps_no_empty_group_and_is_bounded(
    url: str, ns: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with node(url, ns, "a") as a:
        await _host(a, "m1")
        await a.join("g0", "m1")  # the bucket exists
        cache = a._groups._cache
        for i in range(2000):  # distinct groups without members: none is kept
            await a.group(f"empty{i}").notify("x")
        assert len(cache) == 0
        monkeypatch.setattr(_groups, "_CACHED", 3)
        for i in range(5):
            await a.join(f"g{i}", "m1")
        for i in range(5):
            await a.group(f"g{i}").notify("x")
        assert list(cache) == ["g2", "g3", "g4"]  # the least recently notified went first
        await a.group("g2").notify("x")
        await a.group("g0").notify("x")
        assert list(cache) == ["g4", "g2", "g0"]
        await a.leave("g0", "m1")
        await a.group("g0").notify("x")  # read again (the bucket changed): now empty
        assert list(cache) == ["g4", "g2"]


async def test_a_watch_whose_subscribe_failed_is_made_again(
    url: str, ns: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The connection refusing a subscribe is simulated (the real one is called otherwise)."""
    async with node(url, ns, "a") as a:
        await _host(a, "m1")
        await a.join("g", "m1")
        nc = a._link.nc
        real = nc.subscribe
        calls: list[str] = []

        async def subscribe(subj: str, **kw: Any) -> Any:
            calls.append(subj)
            if len(calls) == 2:  # the second of the watch's two: the connection failed
                raise nats.errors.ConnectionClosedError
            return await real(subj, **kw)

        monkeypatch.setattr(nc, "subscribe", subscribe)
        with pytest.raises(nats.errors.ConnectionClosedError):
            await a.group("g").notify("x")
        assert a._groups._watching is False
        await a.group("g").notify("x")  # the failed one is made, the other not twice
        assert a._groups._watching is True
        assert calls == [f"$KV.ge_{ns}_groups.>", f"ge.{ns}.down.*", f"ge.{ns}.down.*"]
        monkeypatch.undo()
        generation = a._groups._generation
        async with node(url, ns, "b") as b:
            await _host(b, "m2")
            await b.join("g", "m2")  # another node's change, heard through the watch

            async def heard() -> bool:
                return a._groups._generation != generation

            await until(heard, "the watch heard the join")
            assert await a._groups.recipients("g") == ["m1", "m2"]
