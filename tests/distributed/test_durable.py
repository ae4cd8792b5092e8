"""Durable notifies through JetStream on a real nats-server: acknowledged publishes and their
deduplication, delivery with sync_notify semantics, undecodable events, a manager's node
SIGKILLed with a standby taking over (nothing acknowledged is missing), poison events becoming
dead letters, and replay. Waits are bounded; no sleep synchronises anything."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Awaitable, Iterator
from pathlib import Path
from typing import Any

import pytest

from genevent import EventHandler, aio
from genevent.nats import (
    BlockingNode,
    Durable,
    ManagerNotFound,
    NatsServer,
    Node,
    NotEncodable,
    RemoteManager,
    TransportDown,
    connect,
)
from genevent.nats._durable import replay
from tests.distributed.app import HANDLERS, TYPES, Heir, Log, Point
from tests.distributed.conftest import PYTHONPATH, ROOT
from tests.distributed.test_nodes import until
from tests.distributed.test_trust import as_user

WAIT = 60.0


async def with_log(mgr: aio.EventManager[Any]) -> None:
    await mgr.add_handler(Log)


async def log_of(mgr: aio.EventManager[Any]) -> list[Any]:
    result: list[Any] = await mgr.call(Log, "log")
    return result


class Nodes:
    """In-process nodes of one test, closed at the end: ``async with Nodes(url, ns) as make``."""

    def __init__(self, url: str, ns: str) -> None:
        self.url, self.ns = url, ns
        self.made: list[Node] = []

    async def __call__(self, node_id: str) -> Node:
        node = await connect(
            self.url, ns=self.ns, node_id=node_id, lease=1.0, handlers=HANDLERS, types=TYPES
        )
        self.made.append(node)
        return node

    async def __aenter__(self) -> Nodes:
        return self

    async def __aexit__(self, *exc: object) -> None:
        for node in self.made:
            await node.close()


async def test_a_durable_notify_is_acknowledged_deduplicated_and_delivered(
    url: str, ns: str
) -> None:
    async with Nodes(url, ns) as nodes:
        a, b = await nodes("a"), await nodes("b")
        mgr = await a.start_manager("m", durable=Durable(ack_wait=5), setup=with_log)
        m = b.manager("m")
        first = await m.notify_durable("x", msg_id="id-1")
        assert first.seq >= 1
        assert not first.duplicate
        assert first.msg_id == "id-1"
        again = await m.notify_durable("x", msg_id="id-1")  # a retry: stored once
        assert again.duplicate
        assert again.seq == first.seq
        second = await m.notify_durable(("y", 2))
        assert second.seq == first.seq + 1
        third = await m.notify_durable(("y", 2))  # the same event again: a new id
        assert second.msg_id
        assert third.msg_id not in (second.msg_id, "id-1")
        assert not third.duplicate
        events = ["x", ("y", 2), ("y", 2)]
        await until(lambda: _equals(log_of(mgr), events), "the three events handled")
        stats = a.durable_stats("m")
        assert stats is not None
        assert stats.handled == 3
        assert stats.last_seq == third.seq
        assert stats.undecodable == stats.dead_letters == 0
        assert b.durable_stats("m") is None  # b does not host it


async def test_a_durable_notify_waits_for_a_manager_started_later(url: str, ns: str) -> None:
    async with Nodes(url, ns) as nodes:
        a, b = await nodes("a"), await nodes("b")
        m = b.manager("late")
        acks = [await m.notify_durable(i) for i in range(5)]  # nobody serves it yet: stored
        assert [x.seq for x in acks] == sorted(x.seq for x in acks)
        mgr = await a.start_manager("late", durable=True, setup=with_log)
        await until(lambda: _equals(log_of(mgr), [0, 1, 2, 3, 4]), "the stored events, in order")


async def test_a_json_node_and_a_msgpack_node_share_durable_events(url: str, ns: str) -> None:
    async with Nodes(url, ns) as nodes:
        a = await nodes("a")
        async with await connect(url, ns=ns, node_id="j", codec="json", types=TYPES) as j:
            mgr = await a.start_manager("m", durable=True, setup=with_log)
            await j.manager("m").notify_durable(("tuple", b"bytes", Point(1, 2)))
            await a.manager("m").notify_durable("msgpack")
            expected = [("tuple", b"bytes", Point(1, 2)), "msgpack"]
            await until(lambda: _equals(log_of(mgr), expected), "both codecs' events")


async def test_a_non_encodable_event_is_refused_before_publishing(url: str, ns: str) -> None:
    async with Nodes(url, ns) as nodes:
        a, b = await nodes("a"), await nodes("b")
        mgr = await a.start_manager("m", durable=True, setup=with_log)
        m = b.manager("m")
        with pytest.raises(NotEncodable):
            await m.notify_durable(object())
        ack = await m.notify_durable("after")
        assert ack.seq == 1  # nothing was stored before it
        await until(lambda: _equals(log_of(mgr), ["after"]), "the event after")


async def test_a_crashing_handler_is_removed_and_the_event_still_acked(url: str, ns: str) -> None:
    async with Nodes(url, ns) as nodes:
        a, b = await nodes("a"), await nodes("b")

        async def two_logs(mgr: aio.EventManager[Any]) -> None:
            await mgr.add_handler(Log)
            await mgr.add_handler((Log, 2))

        mgr = await a.start_manager("m", durable=True, setup=two_logs)
        m = b.manager("m")
        await mgr.call((Log, 2), "log")
        await m.notify_durable("one")
        await m.notify_durable("crash")  # both Logs crash on it: both are removed
        await m.notify_durable("two")
        stats = a.durable_stats("m")
        assert stats is not None
        await until(lambda: _true(stats.handled == 3), "three events acknowledged")
        assert await mgr.which_handlers() == []
        assert stats.redelivered == stats.retried == 0


class Slow(EventHandler[Any, Any, Any]):
    """Logs each event, then takes ``pause`` seconds over it (its workload, not a wait)."""

    def init(self, pause: float, /) -> None:
        self.pause = pause
        self.log: list[Any] = []

    async def handle_event(self, event: Any, /) -> None:
        self.log.append(event)
        await asyncio.sleep(self.pause)

    def handle_call(self, request: Any, /) -> list[Any]:
        return list(self.log)


async def test_a_handler_slower_than_ack_wait_gets_each_event_once(url: str, ns: str) -> None:
    async with Nodes(url, ns) as nodes:
        a = await nodes("a")

        async def slow(mgr: aio.EventManager[Any]) -> None:
            await mgr.add_handler(Slow, 2.5)  # two and a half ack_waits per event

        mgr = await a.start_manager("m", durable=Durable(ack_wait=1), setup=slow)
        m = a.manager("m")
        await m.notify_durable("first")
        await m.notify_durable("second")
        stats = a.durable_stats("m")
        assert stats is not None
        await until(lambda: _true(stats.handled == 2), "both events handled")
        assert await mgr.call(Slow, None) == ["first", "second"]
        assert stats.redelivered == stats.retried == 0


async def test_remote_stats_and_genevent_top_show_the_durable_consumer(url: str, ns: str) -> None:
    from rich.console import Console  # noqa: PLC0415 - the top extra

    from genevent.top import cluster_snapshot, render  # noqa: PLC0415

    async with Nodes(url, ns) as nodes:
        a, b = await nodes("a"), await nodes("b")
        mgr = await a.start_manager("m", durable=True, setup=with_log)
        await b.manager("m").notify_durable("one")
        await until(lambda: _equals(log_of(mgr), ["one"]), "the event")
        stats = await b.manager("m").stats()
        assert stats["durable"]["handled"] == 1
        assert stats["durable"]["dead_letters"] == 0
        console = Console(width=160, record=True)
        console.print(render(await cluster_snapshot(b)))
        assert "durable: 0 dead letters, 0 redelivered" in console.export_text()


async def test_an_undecodable_durable_event_is_terminated_and_counted(url: str, ns: str) -> None:
    async with Nodes(url, ns) as nodes:
        a, b = await nodes("a"), await nodes("b")
        mgr = await a.start_manager("m", durable=True, setup=with_log)
        js = b.nats.jetstream()
        await js.publish(f"ge.{b.ns}.dur.m.notify", b"\xc1 not a frame")
        await js.publish(f"ge.{b.ns}.dur.m.notify", b"")
        await b.manager("m").notify_durable("fine")
        await until(lambda: _equals(log_of(mgr), ["fine"]), "the good event")
        stats = a.durable_stats("m")
        assert stats is not None
        assert stats.undecodable == 2
        assert stats.handled == 1
        info = await js.consumer_info(f"GE_{b.ns}", "mgr_m")
        assert info.num_ack_pending == 0  # terminated: never delivered again
        assert info.num_redelivered == 0


async def _five_handled(a: Node, b: Node) -> tuple[aio.EventManager[Any], RemoteManager]:
    """a hosts the durable manager "m" with a Log; b sent it 0..4, all handled."""
    mgr = await a.start_manager("m", durable=True, setup=with_log)
    m = b.manager("m")
    for i in range(5):
        await m.notify_durable(i)
    await until(lambda: _equals(log_of(mgr), [0, 1, 2, 3, 4]), "five events")
    return mgr, m


async def test_replay_rebuilds_a_fresh_manager_before_live_events(url: str, ns: str) -> None:
    async with Nodes(url, ns) as nodes:
        a, b = await nodes("a"), await nodes("b")
        mgr, m = await _five_handled(a, b)
        await mgr.stop()
        await until(lambda: _free(a, "m"), "the name freed")

        # a handler's state rebuilt aside, from the log, into a manager of its own
        aside = aio.start()
        await aside.add_handler(Log)
        assert await b.replay("m", aside) == 5
        assert await log_of(aside) == [0, 1, 2, 3, 4]
        await aside.stop()

        await m.notify_durable(5)  # stored while nobody serves "m"
        fresh = await a.start_manager("m", durable=Durable(replay=True), setup=with_log)
        await until(lambda: _equals(log_of(fresh), [0, 1, 2, 3, 4, 5]), "replay, then live")
        stats = a.durable_stats("m")
        assert stats is not None
        assert (stats.replayed, stats.handled) == (5, 1)


async def test_a_handler_added_with_replay_sees_the_stream_then_the_live_events(
    url: str, ns: str
) -> None:
    async with Nodes(url, ns) as nodes:
        a, b = await nodes("a"), await nodes("b")
        mgr, m = await _five_handled(a, b)
        # Heir's terminate returns {"events": <how many it saw>}, its init keeps the handoff
        assert await a.add_replayed_handler("m", (Heir, "late"), "fresh") == 5
        assert await mgr.call((Heir, "late"), "handoff") == {"events": 5}
        await m.notify_durable(5)
        await until(lambda: _equals(log_of(mgr), [0, 1, 2, 3, 4, 5]), "the live event")
        await until(lambda: _equals(mgr.call((Heir, "late"), "log"), [5]), "the live event, once")
        assert await mgr.which_handlers() == [(Heir, "late"), Log]
        with pytest.raises(ManagerNotFound):
            await b.add_replayed_handler("m", Log)


async def test_a_replayed_handler_gets_only_what_its_live_manager_handled(
    url: str, ns: str
) -> None:
    async with Nodes(url, ns) as nodes:
        a, b = await nodes("a"), await nodes("b")
        mgr, m = await _five_handled(a, b)  # 0..4, handled on a
        await mgr.stop()
        await until(lambda: _free(a, "m"), "the name freed")
        later = await b.start_manager("m", durable=True, setup=with_log)  # no replay
        await m.notify_durable(5)
        await m.notify_durable(6)
        await until(lambda: _equals(log_of(later), [5, 6]), "b's live events")
        assert await b.add_replayed_handler("m", (Heir, "late"), "fresh") == 2
        assert await later.call((Heir, "late"), "handoff") == {"events": 2}
        await later.stop()
        await until(lambda: _free(b, "m"), "the name freed again")
        # with replay, the live manager saw every event first: so does the handler added
        fresh = await a.start_manager("m", durable=Durable(replay=True), setup=with_log)
        assert await log_of(fresh) == [0, 1, 2, 3, 4, 5, 6]
        assert await a.add_replayed_handler("m", (Heir, "late"), "fresh") == 7


async def test_a_replay_ends_at_the_last_stored_event_below_until(url: str, ns: str) -> None:
    async with Nodes(url, ns) as nodes:
        a, b = await nodes("a"), await nodes("b")
        await _five_handled(a, b)
        seen: list[Any] = []

        async def keep(event: Any) -> None:
            seen.append(event)

        # nothing is stored after #5: the wait for #6..#9 ends the replay, it is not a stall
        assert await replay(b._link, "m", keep, until=9, timeout=0.5) == 5
        assert seen == [0, 1, 2, 3, 4]


async def test_a_replay_that_stalls_raises_instead_of_ending_short(ns: str) -> None:
    server = NatsServer().start()
    assert server.proc is not None
    pid = server.proc.pid
    try:
        async with Nodes(server.url, ns) as nodes:
            a, b = await nodes("a"), await nodes("b")
            await _five_handled(a, b)

            async def freeze_at_the_last(event: Any) -> None:
                if event == 4:  # the server hangs, its socket open: nothing more comes
                    os.kill(pid, signal.SIGSTOP)

            try:
                with pytest.raises(TransportDown, match="stalled"):
                    await replay(b._link, "m", freeze_at_the_last, until=9, timeout=0.5)
            finally:
                os.kill(pid, signal.SIGCONT)
    finally:
        server.stop()


async def test_adding_a_replayed_handler_while_the_link_is_down_fails_in_time(ns: str) -> None:
    server = NatsServer().start()
    nodes = Nodes(server.url, ns)
    try:
        a, b = await nodes("a"), await nodes("b")
        mgr, _ = await _five_handled(a, b)
        server.stop()  # a reconnects: its fetches fail, the turn is free between them
        await until(lambda: _true(not a.nats.is_connected), "a lost the link")
        with pytest.raises(TransportDown):
            await a.add_replayed_handler("m", (Heir, "late"), "fresh", timeout=2.0)
        assert await mgr.which_handlers() == [Log]
    finally:
        server.stop()
        for node in nodes.made:  # closing without a server raises nothing
            await node.close()


async def test_a_standby_waits_for_the_name(url: str, ns: str) -> None:
    async with Nodes(url, ns) as nodes:
        a, b = await nodes("a"), await nodes("b")
        mgr = await a.start_manager("m", durable=True, setup=with_log)
        standby = asyncio.ensure_future(b.start_manager("m", durable=True, standby=True))
        await b.manager("m").notify_durable("to a")
        await until(lambda: _equals(log_of(mgr), ["to a"]), "a handles it")
        assert not standby.done()
        await mgr.stop()
        async with asyncio.timeout(WAIT):
            taken = await standby
        await taken.add_handler(Log)
        await b.manager("m").notify_durable("to b")
        await until(lambda: _equals(log_of(taken), ["to b"]), "b handles it")


class Held(EventHandler[Any, Any, Any]):
    """Logs each event, sets ``started``, then holds it until ``release`` is set."""

    def init(self, events: tuple[asyncio.Event, asyncio.Event], /) -> None:
        self.started, self.release = events

    async def handle_event(self, event: Any, /) -> None:
        self.started.set()
        await self.release.wait()


async def test_a_standby_gets_the_event_in_flight_at_once_when_the_holder_closes(
    url: str, ns: str
) -> None:
    async with Nodes(url, ns) as nodes:
        a, b = await nodes("a"), await nodes("b")
        started, release = asyncio.Event(), asyncio.Event()

        async def held(mgr: aio.EventManager[Any]) -> None:
            await mgr.add_handler(Held, (started, release))

        options = Durable(ack_wait=3600)  # only a nak brings the event back within the test
        await a.start_manager("m", durable=options, setup=held)
        standby = asyncio.ensure_future(
            b.start_manager("m", durable=options, standby=True, setup=with_log)
        )
        await b.manager("m").notify_durable("in flight")
        await b.manager("m").notify_durable("next")
        async with asyncio.timeout(WAIT):
            await started.wait()
        held_stats = a.durable_stats("m")
        assert held_stats is not None
        closing = asyncio.ensure_future(a.close())  # stops taking events, then the manager
        await until(lambda: _true(held_stats.retried == 1), "the event in flight given back")
        release.set()  # the manager stops, the name is free
        async with asyncio.timeout(WAIT):
            await closing
            mgr = await standby
        await until(lambda: _equals(log_of(mgr), ["in flight", "next"]), "b gets both")
        stats = b.durable_stats("m")
        assert stats is not None
        assert stats.dead_letters == stats.retried == 0
        assert stats.redelivered == 1
        assert held_stats.handled == 0
        info = await b.nats.jetstream().consumer_info(f"GE_{b.ns}", "mgr_m")
        assert info.num_ack_pending == 0


async def test_an_event_stored_just_after_a_stop_reaches_the_next_holder(url: str, ns: str) -> None:
    """A stopped holder's last pull request outlives its fetch: an event the server hands it
    before it expires is given back, not left waiting for ack_wait with nobody reading."""
    async with Nodes(url, ns) as nodes:
        a, b = await nodes("a"), await nodes("b")
        options = Durable(ack_wait=3600)  # only a nak brings the event back within the test
        held = await a.start_manager("m", durable=options, setup=with_log)
        await b.manager("m").notify_durable("first")
        await until(lambda: _equals(log_of(held), ["first"]), "a handles the first")
        await held.stop()  # its consumer was waiting in a fetch: the pull request stays a while
        await b.manager("m").notify_durable("after the stop")
        await until(lambda: _free(b, "m"), "a freed the name")
        mgr = await b.start_manager("m", durable=options, setup=with_log)
        await until(lambda: _equals(log_of(mgr), ["after the stop"]), "b gets it")


async def test_the_roles_config_lets_a_producer_notify_durably(roles_server: NatsServer) -> None:
    """With examples/nats-roles.conf: the serving node creates the stream and binds its
    consumer, a producer (notify permissions only) stores durable events, and replay reads
    them back."""
    async with as_user(roles_server, "node-a") as a, as_user(roles_server, "producer") as p:
        mgr = await a.start_manager("ledger", durable=True, setup=with_log)
        ack = await p.manager("ledger").notify_durable("placed")
        assert not ack.duplicate
        await until(lambda: _equals(log_of(mgr), ["placed"]), "the producer's event")
        assert await a.replay("ledger", _ignore) == 1


async def _ignore(event: Any) -> None:
    pass


def test_a_blocking_node_notifies_durably(url: str, ns: str) -> None:
    with BlockingNode(url, ns=ns, handlers=HANDLERS) as host, BlockingNode(url, ns=ns) as client:
        host.start_manager("m", durable=True, setup=with_log)
        ack = client.manager("m").notify_durable("from a thread", msg_id="t-1")
        assert client.manager("m").notify_durable("from a thread", msg_id="t-1").duplicate
        assert ack.seq == 1
        stats = host.node.durable_stats("m")
        assert stats is not None
        host._run(until(lambda: _true(stats.handled == 1), "the event handled"))
        assert host.manager("m").call(Log, "log") == ["from a thread"]


# -- node processes killed ---------------------------------------------------------------------


class DurableProcess:
    """``tests/distributed/durable_node.py`` in a child process."""

    def __init__(
        self, url: str, ns: str, node_id: str, out: Path, *more: str, hang: bool = False
    ) -> None:
        env = dict(os.environ, PYTHONPATH=PYTHONPATH, GE_HANG="1" if hang else "0")
        args = [sys.executable, "-m", "tests.distributed.durable_node", url, ns, node_id, "m"]
        args += [str(out), *more]
        self.out = out
        self.err = out.with_suffix(".err")
        with self.err.open("w") as err:
            self.proc = subprocess.Popen(
                args, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=err, text=True
            )
        assert self._line() == "waiting"

    def _line(self) -> str:
        assert self.proc.stdout is not None
        return self.proc.stdout.readline().strip()

    async def serving(self) -> None:
        line = await asyncio.wait_for(asyncio.to_thread(self._line), WAIT)
        assert line == "serving", self.err.read_text()

    def kill(self) -> None:
        self.proc.kill()  # SIGKILL, by our own child's pid
        self.proc.wait(30)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.kill()
        if self.proc.stdout is not None:
            self.proc.stdout.close()


@pytest.fixture
def children() -> Iterator[list[DurableProcess]]:
    procs: list[DurableProcess] = []
    yield procs
    for p in procs:
        p.stop()


def handled(paths: list[Path]) -> Counter[str]:
    seen: Counter[str] = Counter()
    for path in paths:
        if path.exists():
            for line in path.read_text().splitlines():
                if line.count(" ") == 1:  # a whole line (the last may be half written)
                    seen[line.split(" ")[0]] += 1
    return seen


async def test_a_standby_takes_over_from_a_sigkilled_node_and_nothing_is_missing(
    url: str, ns: str, tmp_path: Path, children: list[DurableProcess]
) -> None:
    outs = [tmp_path / "a.txt", tmp_path / "b.txt"]
    a = DurableProcess(url, ns, "a", outs[0])
    children.append(a)
    await a.serving()
    b = DurableProcess(url, ns, "b", outs[1])  # a standby: "m" is a's
    children.append(b)
    n = 300
    async with await connect(url, ns=ns, node_id="producer") as producer:
        m = producer.manager("m")
        for i in range(n):
            if i == n // 3:
                await until(lambda: _true(bool(handled(outs[:1]))), "a handles events")
                a.kill()
            await m.notify_durable(f"e{i}")
        await b.serving()
        expected = {f"e{i}" for i in range(n)}
        await until(lambda: _true(expected <= set(handled(outs))), "every event handled")
    seen = handled(outs)
    missing = expected - set(seen)
    duplicates = sum(seen.values()) - len(seen)
    assert not missing
    assert handled(outs[1:]), "the standby handled the events after the kill"
    print(f"durable takeover: missing=0 duplicates={duplicates}")


async def test_an_event_in_flight_on_a_killed_node_is_delivered_again(
    url: str, ns: str, tmp_path: Path, children: list[DurableProcess]
) -> None:
    outs = [tmp_path / "a.txt", tmp_path / "b.txt"]
    a = DurableProcess(url, ns, "a", outs[0], "1", hang=True)  # ack_wait 1 s
    children.append(a)
    await a.serving()
    b = DurableProcess(url, ns, "b", outs[1], "1")
    children.append(b)
    async with await connect(url, ns=ns, node_id="producer") as producer:
        m = producer.manager("m")
        for event in ("e0", "hang", "e1"):
            await m.notify_durable(event)
        await until(lambda: _true("hanging" in outs[0].read_text()), "a holds 'hang'")
        a.kill()
        await b.serving()
        await until(lambda: _true(set(handled(outs)) == {"e0", "hang", "e1"}), "all handled")
    assert list(handled(outs[:1])) == ["e0"]
    assert list(handled(outs[1:])) == ["hang", "e1"]  # again, in order, on the standby


async def test_a_poison_event_becomes_a_dead_letter_after_max_deliver(
    url: str, ns: str, tmp_path: Path, children: list[DurableProcess]
) -> None:
    outs = [tmp_path / "a.txt", tmp_path / "b.txt"]
    a = DurableProcess(url, ns, "a", outs[0], "1", "2")  # ack_wait 1 s, max_deliver 2
    children.append(a)
    await a.serving()
    b = DurableProcess(url, ns, "b", outs[1], "1", "2")
    children.append(b)
    async with await connect(url, ns=ns, node_id="c", lease=1.0, handlers=HANDLERS) as c:
        m = c.manager("m")
        await m.notify_durable("before")
        await m.notify_durable("poison")  # a dies on it, then b does
        await m.notify_durable("after")
        await until(lambda: _true(a.proc.poll() is not None), "a died on the poison")
        await b.serving()
        await until(lambda: _true(b.proc.poll() is not None), "b died on it as well")
        options = Durable(ack_wait=1, max_deliver=2)
        mgr = await asyncio.wait_for(
            c.start_manager("m", durable=options, standby=True, setup=with_log), WAIT
        )
        await until(lambda: _equals(log_of(mgr), ["after"]), "c handles the event after it")
        stats = c.durable_stats("m")
        assert stats is not None
        await until(lambda: _true(stats.dead_letters == 1), "the dead letter reported")
        assert stats.dead_letter_seqs == [2]
    assert set(handled(outs)) == {"before"}


async def _equals(got: Awaitable[Any], expected: Any) -> bool:
    return bool(await got == expected)


async def _true(value: bool) -> bool:
    return value


async def _free(node: Node, name: str) -> bool:
    """Whether ``name`` is free in the cluster (its holder released it, after its consumer)."""
    return await node.whereis(name) is None
