"""NATS features where they meet, on a real nats-server: supervised handlers on a durable
manager whose node is SIGKILLed and taken over by a standby, a group whose member is a durable
manager, a group sync_notify racing a member's stop and another member's crash, a remote stop
telling owners on two nodes, and an owner node closing while its handler is inside a durable
event. Node processes are SIGKILLed by their own pid; every wait is bounded, nothing sleeps to
synchronise."""

from __future__ import annotations

import asyncio
import os
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nats
import pytest

from genevent import Deleted, EventHandler, HandlerExit, OwnerExited, Stopped
from genevent.nats import GroupIncomplete, ManagerNodeDown, OwnerNodeDown
from tests.distributed.app import ENDED, GATES, Log, Owned
from tests.distributed.test_durable import WAIT, DurableProcess, _true, handled
from tests.distributed.test_nodes import node, until


@pytest.fixture
def processes() -> Iterator[list[DurableProcess]]:
    """The node processes a test started: each stopped (SIGKILL) at its end."""
    started: list[DurableProcess] = []
    yield started
    for p in started:
        p.stop()


def _all_handled(outs: list[Path], expected: set[str]) -> Any:
    return lambda: _true(expected <= set(handled(outs)))


async def _holder_and_standby(
    url: str, ns: str, tmp_path: Path, processes: list[DurableProcess]
) -> tuple[DurableProcess, DurableProcess, list[Path]]:
    """Node a (a process) serving the durable manager "m", node b (a process) its standby,
    and the files where each writes the events it handled."""
    outs = [tmp_path / "a.txt", tmp_path / "b.txt"]
    a = DurableProcess(url, ns, "a", outs[0], "2")  # ack_wait 2 s
    processes.append(a)
    await a.serving()
    b = DurableProcess(url, ns, "b", outs[1], "2")  # a standby: "m" is a's
    processes.append(b)
    return a, b, outs


# -- 1. a supervised handler on a durable manager whose node dies ------------------------------


async def test_a_supervised_handler_on_a_durable_manager_survives_its_takeover(
    url: str, ns: str, tmp_path: Path, processes: list[DurableProcess]
) -> None:
    """Manager "m" on node a (a process, SIGKILLed mid-run), a standby on node b, the owner
    and producer on node c (this process)."""
    a, b, outs = await _holder_and_standby(url, ns, tmp_path, processes)
    async with node(url, ns, "c", lease=1.0) as c:
        m = c.manager("m")
        told: asyncio.Queue[HandlerExit] = asyncio.Queue()
        await m.add_sup_handler(Log, on_exit=told.put_nowait)
        n = 60
        for i in range(n):
            if i == n // 3:
                await until(lambda: _true(bool(handled(outs[:1]))), "a handles events")
                a.kill()
            await m.notify_durable(f"e{i}")
        down = await asyncio.wait_for(told.get(), WAIT)
        assert down == HandlerExit("Log", ManagerNodeDown("a", "nodedown"), m)
        await b.serving()
        expected = {f"e{i}" for i in range(n)}
        await until(_all_handled(outs, expected), "every acknowledged event handled")
        assert not expected - set(handled(outs))  # missing = 0
        assert handled(outs[1:]), "the standby handled the events after the kill"

        # the owner adds its handler again: it lands on b, the new holder
        await m.add_sup_handler(Log, on_exit=told.put_nowait)
        await m.notify_durable("after")

        async def seen_after() -> bool:
            return bool(await m.call(Log, "log") == ["after"])

        await until(seen_after, "b's new supervised handler sees the next event")
        await m.delete_handler(Log, "bye")
        assert told.get_nowait() == HandlerExit("Log", Deleted("bye"), m)
        assert told.empty()  # ManagerNodeDown was told once


# -- 2. a group whose member is a durable manager ----------------------------------------------


async def test_a_standbys_takeover_is_a_new_member_that_joins_afresh(
    url: str, ns: str, tmp_path: Path, processes: list[DurableProcess]
) -> None:
    """A member is a manager under one claim of its name: the standby's claim is another
    manager, so it is no member until it joins."""
    a, b, outs = await _holder_and_standby(url, ns, tmp_path, processes)
    async with node(url, ns, "c", lease=1.0) as c:
        await c.join("g", "m")
        g = c.group("g")
        assert await g.sync_notify("g0") == ["m"]
        await c.manager("m").notify_durable("d0")
        await until(_all_handled(outs, {"g0", "d0"}), "a handles both")
        a.kill()
        await c.manager("m").notify_durable("d1")  # stored while nobody serves "m"
        await b.serving()
        assert await c.members("g") == []  # a's claim is gone; b's is not a member
        assert await c.groups() == {}
        assert await g.sync_notify("unseen") == []
        await until(_all_handled(outs, {"d1"}), "b handles the durable event")
        await c.join("g", "m")  # b's claim joins
        assert await c.members("g") == ["m"]
        assert await g.sync_notify("g1") == ["m"]
        assert await g.notify("g2") == 1
        await c.manager("m").notify_durable("d2")
        await until(_all_handled(outs[1:], {"d1", "g1", "g2", "d2"}), "b gets it all")
    assert "unseen" not in handled(outs)


# -- 3. a group sync_notify while a member stops and another's handler crashes -----------------


class Crasher(EventHandler[Any, Any, Any]):
    """Crashes on every event."""

    def handle_event(self, event: Any, /) -> None:
        raise RuntimeError(f"crashed on {event!r}")


class Held(EventHandler[Any, Any, Any]):
    """Waits for ``GATES[key]`` on the event ``("held", key)``, and says it started."""

    def init(self, started: asyncio.Event, /) -> None:
        self.started = started

    async def handle_event(self, event: Any, /) -> None:
        self.started.set()
        await GATES[event[1]].wait()


@pytest.mark.parametrize("stop_first", [False, True], ids=["stop-during", "stop-first"])
async def test_a_group_sync_notify_with_a_member_stopping_and_one_crashing(
    url: str, ns: str, stop_first: bool
) -> None:
    """ "stopping" holds an event behind a gate. stop-during: that event is the group's, and
    the remote stop comes after it (the member handles it, then stops). stop-first: a local
    event is held, the remote stop waits in the mailbox, and the group's event comes after it
    (the member stops without handling it, and is named)."""
    async with node(url, ns, "a") as a, node(url, ns, "b") as b, node(url, ns, "c") as c:
        crashing = await a.start_manager("crashing")
        await crashing.add_handler(Log)
        await crashing.add_handler(Crasher)
        stopping = await b.start_manager("stopping")
        started = asyncio.Event()
        await stopping.add_handler(Held, started)
        plain = await b.start_manager("plain")
        await plain.add_handler(Log)
        for m in ("crashing", "stopping", "plain"):
            await c.join("g", m)
        GATES[ns] = asyncio.Event()
        event = ("group", ns) if stop_first else ("held", ns)
        outcome: list[str] = []
        incomplete: dict[str, str] = {}

        async def group_call() -> None:
            try:
                outcome.extend(await c.group("g").sync_notify(event, timeout=WAIT))
            except GroupIncomplete as err:
                outcome.extend(err.delivered)
                incomplete.update(err.reasons)

        def queued(n: int) -> Any:
            return lambda: _true(stopping.stats().queued >= n)

        try:
            async with asyncio.timeout(WAIT * 2):
                if stop_first:
                    stopping.notify(("held", ns))
                    await asyncio.wait_for(started.wait(), WAIT)
                    stop = asyncio.ensure_future(a.manager("stopping").stop())
                    await until(queued(1), "the stop waits in the mailbox")
                    # a spy on the member's call subject sees the group's request go out
                    spied = asyncio.Event()
                    spy = await nats.connect(url)

                    async def saw(msg: Any) -> None:
                        spied.set()

                    await spy.subscribe(f"ge.{ns}.mgr.stopping.call", cb=saw)
                    await spy.flush()
                    try:
                        sent = asyncio.ensure_future(group_call())
                        await asyncio.wait_for(spied.wait(), WAIT)
                    finally:
                        await spy.close()
                else:
                    sent = asyncio.ensure_future(group_call())
                    await asyncio.wait_for(started.wait(), WAIT)  # the group's event, held
                    stop = asyncio.ensure_future(a.manager("stopping").stop())
                GATES[ns].set()
                await stop
                await sent
        finally:
            GATES[ns].set()
        # the crash counts as handled; the stopping member is delivered or named, never both
        assert sorted(outcome) == (["crashing", "plain"] if stop_first else sorted(MEMBERS))
        assert set(outcome) | set(incomplete) == MEMBERS
        if stop_first:
            assert incomplete == {"stopping": "noproc"}, (incomplete, outcome)
        assert await crashing.which_handlers() == [Log]  # the crasher was removed
        assert await crashing.call(Log, "log") == [event]
        assert await plain.call(Log, "log") == [event]
        assert await c.members("g") == ["crashing", "plain"]


MEMBERS = {"crashing", "stopping", "plain"}


# -- 4. a remote stop tells owners on two nodes --------------------------------------------------


async def test_a_remote_stop_tells_each_owner_on_two_nodes_once(url: str, ns: str) -> None:
    ENDED.clear()
    async with node(url, ns, "a") as a, node(url, ns, "b") as b, node(url, ns, "c") as c:
        mgr = await b.start_manager("m")
        told_a: asyncio.Queue[HandlerExit] = asyncio.Queue()
        told_c: asyncio.Queue[HandlerExit] = asyncio.Queue()
        ma, mc = a.manager("m"), c.manager("m")
        await ma.add_sup_handler((Owned, 1), "a1", on_exit=told_a.put_nowait)
        await mc.add_sup_handler((Owned, 2), "c2", on_exit=told_c.put_nowait)
        await ma.add_sup_handler((Owned, 3), "a3", on_exit=told_a.put_nowait)
        await mgr.add_handler((Owned, 4), "free")
        order = await mgr.which_handlers()
        assert order == [(Owned, 4), (Owned, 3), (Owned, 2), (Owned, 1)]

        await c.manager("m").stop()  # from the node of one owner, not the manager's

        # every handler terminated with Stopped, newest first (the local rule for a stop)
        assert [label for label, _ in ENDED] == ["free", "a3", "c2", "a1"]
        assert all(reason == Stopped() for _, reason in ENDED)

        async def told_all() -> bool:
            return told_a.qsize() == 2 and told_c.qsize() == 1

        await until(told_all, "both owners told")
        got_a = [told_a.get_nowait(), told_a.get_nowait()]
        assert got_a == [
            HandlerExit(("Owned", 3), Stopped(), ma),
            HandlerExit(("Owned", 1), Stopped(), ma),
        ]
        assert told_c.get_nowait() == HandlerExit(("Owned", 2), Stopped(), mc)
        assert a.ignored["exit_notices"] == c.ignored["exit_notices"] == 0
        assert "m" not in b.hosted()
    # closing the nodes told nobody anything more (no ManagerNodeDown for a stopped manager)
    assert told_a.empty()
    assert told_c.empty()


# -- 5. an owner node closes while its handler is inside a durable event -------------------------

ORDER: list[tuple[str, Any]] = []


class GatedOwned(EventHandler[Any, Any, Any]):
    """Waits for ``GATES[key]`` on the event ``("gate", key)``; writes what it did to ORDER."""

    def init(self, started: Any = None, /) -> None:
        self.started = started

    async def handle_event(self, event: Any, /) -> None:
        ORDER.append(("started", event))
        if isinstance(event, tuple) and event[0] == "gate":
            await GATES[event[1]].wait()
        ORDER.append(("handled", event))

    def terminate(self, reason: Any, /) -> None:
        ORDER.append(("terminated", reason))


async def test_an_owner_node_closing_mid_durable_event(url: str, ns: str) -> None:
    """The removal of a closing owner's handler reaches the manager as a message: the event
    in hand runs to its end, is acknowledged, and then the handler is terminated with
    OwnerExited(OwnerNodeDown). The owner's close does not wait for the event."""
    ORDER.clear()
    async with node(url, ns, "b", lease=1.0) as b:
        b.register_handler(GatedOwned)
        mgr = await b.start_manager("m", durable=True)
        await mgr.add_handler(Log)
        GATES[ns] = asyncio.Event()
        try:
            async with node(url, ns, "a", lease=1.0) as a:
                a.register_handler(GatedOwned)
                told: list[HandlerExit] = []
                await a.manager("m").add_sup_handler(GatedOwned, on_exit=told.append)
                await a.manager("m").notify_durable(("gate", ns))

                async def in_hand() -> bool:
                    return ("started", ("gate", ns)) in ORDER

                await until(in_hand, "the handler holds the durable event")
                await asyncio.wait_for(a.close(), WAIT)  # does not hang on the event
            assert told == [
                HandlerExit("GatedOwned", ManagerNodeDown("b", "noconnection"), a.manager("m"))
            ]
            stats = b.durable_stats("m")
            assert stats is not None
            assert stats.handled == 0  # still in hand
        finally:
            GATES[ns].set()

        async def ended() -> bool:
            return any(what == "terminated" for what, _ in ORDER)

        await until(ended, "the handler is terminated")
        await until(lambda: _true(stats.handled == 1), "the event acknowledged")
        what, reason = ORDER[-1]
        assert ORDER[:2] == [("started", ("gate", ns)), ("handled", ("gate", ns))]
        assert what == "terminated"
        assert isinstance(reason, OwnerExited)
        assert isinstance(reason.reason, OwnerNodeDown)
        assert reason.reason.node == "a"
        assert await mgr.which_handlers() == [Log]
        assert await mgr.call(Log, "log") == [("gate", ns)]
        await b.manager("m").notify_durable("next")
        await until(lambda: _true(stats.handled == 2), "the next event")


# -- 6. a seeded random mix over two in-process nodes ---------------------------------------------

SEEDS = int(os.environ.get("GENEVENT_MIX_SEEDS", "3"))
"""How many seeds the random mix runs (``GENEVENT_MIX_SEEDS=50`` for more)."""
STEPS = int(os.environ.get("GENEVENT_MIX_STEPS", "40"))

_OPS = ("notify", "durable", "call", "add_sup", "delete", "join", "leave", "gnotify", "gsync")


@pytest.mark.parametrize("seed", range(SEEDS))
async def test_a_seeded_random_mix(url: str, ns: str, seed: int) -> None:
    try:
        await _random_mix(url, ns, seed)
    except AssertionError as exc:
        raise AssertionError(f"random mix, seed {seed}: {exc}") from exc


async def _random_mix(url: str, ns: str, seed: int) -> None:
    """Node a hosts the durable manager "m" and the plain manager "p"; node b drives a random
    sequence of operations on them, and stops "p" once. Checked at the end: every acknowledged
    durable event was handled, each supervised handler's owner was told once per incarnation
    (a delete's notice before its reply), and no request is left pending."""
    rng = random.Random(seed)
    async with node(url, ns, "a", lease=1.0) as a, node(url, ns, "b", lease=1.0) as b:
        m_local = await a.start_manager("m", durable=True)
        await m_local.add_handler(Log)
        p_local = await a.start_manager("p")
        await p_local.add_handler(Log)
        m = b.manager("m")
        live = ["m", "p"]
        told: list[HandlerExit] = []
        adds = [0, 0, 0]
        present: set[int] = set()
        acked: list[Any] = []
        stop_at = rng.randrange(STEPS)
        for i in range(STEPS):
            if i == stop_at:
                await b.manager("p").stop()
                live.remove("p")
            op = rng.choice(_OPS)
            if op == "notify":
                m.notify(("n", i))
            elif op == "durable":
                await m.notify_durable(("d", i))
                acked.append(("d", i))
            elif op == "call":
                assert isinstance(await m.call(Log, "count"), int)
            elif op == "add_sup":
                k = rng.randrange(3)
                if k not in present:
                    await m.add_sup_handler((Owned, k), f"k{k}", on_exit=told.append)
                    present.add(k)
                    adds[k] += 1
            elif op == "delete" and present:
                k = rng.choice(sorted(present))
                await m.delete_handler((Owned, k))
                present.remove(k)
                assert told[-1] == HandlerExit(("Owned", k), Deleted(None), m)
            elif op == "join":
                await b.join("g", rng.choice(live))
            elif op == "leave":
                await b.leave("g", rng.choice(["m", "p"]))
            elif op == "gnotify":
                await b.group("g").notify(("g", i))
            elif op == "gsync":
                members = await b.group("g").sync_notify(("gs", i), timeout=WAIT)
                assert set(members) <= set(live)

        async def all_durable_handled() -> bool:
            return set(acked) <= set(await m.call(Log, "log"))

        await until(all_durable_handled, "every acknowledged durable event handled")
        await m.stop()  # the handlers still in are told Stopped
        for k in range(3):
            notices = [x for x in told if x.handler == ("Owned", k)]
            assert len(notices) == adds[k], (k, notices, adds)
            if k in present:
                assert notices[-1].reason == Stopped()

        async def settled() -> bool:
            return not a._link.pending and not b._link.pending and not a._supervision.unacked

        await until(settled, "every request answered, every notice acknowledged")
        assert b.ignored["exit_notices"] == 0
