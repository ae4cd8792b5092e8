"""Trust over NATS: a subject per kind of operation (the server's permissions allow or deny
each), one caller's order kept across kinds, an operation on another kind's subject refused,
the protocol version checked, and the cross-checks against the names bucket (forged replies
and forged "stopped" notices from a hostile client are ignored and counted)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Coroutine
from contextlib import asynccontextmanager
from typing import Any

import nats
import pytest

from genevent import Deleted
from genevent.nats import Down, NatsServer, Node, PermissionDenied, connect
from genevent.nats._link import Throttled, sync
from tests.distributed.app import GATES, HANDLERS, TYPES, Log
from tests.distributed.conftest import ROLES_CONF, ROOT
from tests.distributed.test_nodes import WAIT, node, until


async def _request(raw: Any, subject: str, frame: dict[str, Any]) -> dict[str, Any]:
    msg = await raw.request(subject, json.dumps(frame).encode(), timeout=WAIT)
    reply: dict[str, Any] = json.loads(msg.data)
    return reply


# -- subjects per kind --------------------------------------------------------------------------


async def test_one_callers_order_holds_across_operation_kinds(url: str, ns: str) -> None:
    """notify, call, read and control operations go on four subjects; the serving node reads
    them through one subscription, so what one caller published in order is handled in order
    (the requests are all in flight together: nothing awaits between them)."""
    async with node(url, ns, "a") as a, node(url, ns, "b") as b:
        mgr = await a.start_manager("m")
        await mgr.add_handler(Log)
        m = b.manager("m")
        assert await m.which_handlers() == ["Log"]  # b knows where m runs
        for r in range(10):
            e = [(r, i) for i in range(5)]

            async def notify(event: Any) -> None:
                m.notify(event)

            # every operation in a task of its own, the tasks started in this order: each
            # publishes before it first waits, so they leave in this order
            steps: list[Coroutine[Any, Any, Any]] = [
                notify(e[0]),
                m.call(Log, "count"),
                m.which_handlers(),
                m.add_handler((Log, r)),
                notify(e[1]),
                m.which_handlers(),
                m.stats(),
                m.call((Log, r), "log"),
                notify(e[2]),
                m.sync_notify(e[3]),
                m.delete_handler((Log, r)),
                notify(e[4]),
                m.which_handlers(),
                m.call(Log, "log"),
            ]
            tasks = [asyncio.ensure_future(s) for s in steps]
            got: list[Any] = list(await asyncio.gather(*tasks))
            before = [(k, i) for k in range(r) for i in range(5)]
            assert got[1] == len(before) + 1
            assert got[2] == ["Log"]
            assert got[5] == [("Log", r), "Log"]
            assert got[6]["running"]
            assert got[7] == [e[1]]  # the new handler saw only what came after it
            assert got[10] == {"events": 3}  # e1, e2, e3
            assert got[12] == ["Log"]
            assert got[13] == before + e


@pytest.mark.parametrize(
    ("op", "kind", "wrong"),
    [
        ("stop", "control", "notify"),
        ("add_handler", "control", "read"),
        ("get_state", "control", "call"),
        ("call", "call", "notify"),
        ("which_handlers", "read", "notify"),
        ("notify", "notify", "control"),
        ("notify", "notify", "exec"),
    ],
)
async def test_an_operation_on_another_kinds_subject_is_refused(
    url: str, ns: str, op: str, kind: str, wrong: str
) -> None:
    async with node(url, ns, "a") as a:
        mgr = await a.start_manager("m")
        await mgr.add_handler(Log)
        raw = await nats.connect(url)
        try:
            frame = {"v": 2, "op": op, "h": "Log", "body": "x"}
            reply = await _request(raw, f"ge.{ns}.mgr.m.{wrong}", frame)
            assert reply["err"] == "MalformedMessage"
            assert f"{op!r} is a {kind} operation" in reply["msg"]
            await raw.publish(f"ge.{ns}.mgr.m.{wrong}", json.dumps(frame).encode())
            await sync(raw)
            m = a.manager("m")
            assert await m.which_handlers() == ["Log"]  # still running, nothing added
            assert await m.call(Log, "log") == []  # nothing reached the handler
            assert a.refused == 2
            reply = await _request(raw, f"ge.{ns}.mgr.m.{kind}", frame)  # the right subject
            assert reply.get("err") != "MalformedMessage"
        finally:
            await raw.close()


async def test_a_frame_of_protocol_version_1_gets_an_error_naming_both_versions(
    url: str, ns: str
) -> None:
    async with node(url, ns, "a") as a:
        await a.start_manager("m")
        raw = await nats.connect(url)
        try:
            reply = await _request(raw, f"ge.{ns}.mgr.m.read", {"v": 1, "op": "which_handlers"})
            assert reply["v"] == 2
            assert reply["err"] == "MalformedMessage"
            assert reply["msg"] == "protocol version 1 is not supported: this node speaks 2"
        finally:
            await raw.close()


# -- the server's permissions: examples/nats-roles.conf -----------------------------------------


@asynccontextmanager
async def as_user(server: NatsServer, user: str, **kw: Any) -> AsyncIterator[Node]:
    n = await connect(
        server.url,
        ns="default",
        node_id=user,
        user=user,
        password=f"{user}-secret",
        handlers=HANDLERS,
        types=TYPES,
        **kw,
    )
    try:
        yield n
    finally:
        await n.close()


@pytest.mark.parametrize("name", ["orders", "Orders"])  # nats-py reports subjects in lower case
async def test_a_producer_may_notify_and_nothing_else(roles_server: NatsServer, name: str) -> None:
    told: list[Exception] = []

    async def error_cb(exc: Exception) -> None:  # the user's own callback still hears
        told.append(exc)

    producer = as_user(roles_server, "producer", error_cb=error_cb)
    async with as_user(roles_server, "node-a") as a, producer as p:
        mgr = await a.start_manager(name)
        await mgr.add_handler(Log)
        m = p.manager(name)
        m.notify("placed")

        async def arrived() -> bool:
            return bool(await mgr.call(Log, "log") == ["placed"])

        await until(arrived, "the producer's notify arrived")
        denied = {
            "stop": m.stop(timeout=WAIT),
            "add_handler": m.add_handler((Log, 2), timeout=WAIT),
            "call": m.call(Log, "log", timeout=WAIT),
            "sync_notify": m.sync_notify("x", timeout=WAIT),
            "which_handlers": m.which_handlers(timeout=WAIT),
        }
        for what, request in denied.items():
            with pytest.raises(PermissionDenied, match="denied the publish") as err:
                await request
            assert err.value.subject.startswith(f"ge.default.mgr.{name}."), what
        assert len(told) == len(denied)
        assert mgr.is_running
        assert await mgr.which_handlers() == [Log]


async def test_a_reader_may_read_but_not_stop(roles_server: NatsServer) -> None:
    async with as_user(roles_server, "node-a") as a, as_user(roles_server, "reader") as r:
        mgr = await a.start_manager("stock")
        await mgr.add_handler(Log)
        m = r.manager("stock")
        assert await m.which_handlers() == ["Log"]
        assert (await m.stats())["running"]
        with pytest.raises(PermissionDenied, match=r"ge\.default\.mgr\.stock\.control"):
            await m.stop(timeout=WAIT)
        with pytest.raises(PermissionDenied):
            await m.get_state(timeout=WAIT)
        assert mgr.is_running


async def test_an_operator_may_stop(roles_server: NatsServer) -> None:
    async with as_user(roles_server, "node-a") as a, as_user(roles_server, "operator") as o:
        mgr = await a.start_manager("billing")
        await mgr.add_handler(Log)
        m = o.manager("billing")
        await m.add_handler((Log, 2))
        assert await m.call((Log, 2), "count") == 0
        assert len(await m.get_state()) == 2
        await m.stop()
        await mgr.wait_stopped()
        assert await o.managers() == {}


async def test_an_operator_may_supervise_a_handler(roles_server: NatsServer) -> None:
    async with as_user(roles_server, "node-a") as a, as_user(roles_server, "operator") as o:
        await a.start_manager("audit")
        m = o.manager("audit")
        told: asyncio.Queue[Any] = asyncio.Queue()
        await m.add_sup_handler(Log, on_exit=told.put_nowait)
        await m.delete_handler(Log, "done")
        notice = await asyncio.wait_for(told.get(), WAIT)
        assert notice.reason == Deleted("done")
        assert o.ignored["exit_notices"] == 0
        await a._supervision.settle(WAIT)  # the operator's acknowledgement went through
        assert a._supervision.unacked == 0


async def test_a_client_without_the_node_role_cannot_answer_in_a_nodes_place(
    roles_server: NatsServer,
) -> None:
    """Only the node role may subscribe to requests and publish to inboxes (in answer)."""
    errors: asyncio.Queue[Exception] = asyncio.Queue()

    async def on_error(exc: Exception) -> None:
        await errors.put(exc)

    raw = await nats.connect(
        roles_server.url, user="operator", password="operator-secret", error_cb=on_error
    )
    try:
        await raw.subscribe("ge.default.mgr.*.*")
        assert "permissions violation for subscription" in str(await errors.get()).lower()
        await raw.publish("_INBOX_ge.default.node-a.x.1", b'{"v":2,"ok":"forged"}')
        assert "permissions violation for publish" in str(await errors.get()).lower()
    finally:
        await raw.close()


def test_the_roles_config_is_the_one_docs_show() -> None:
    page = (ROOT / "docs" / "security.md").read_text()
    assert ROLES_CONF.read_text().strip() in page


# -- cross-checks against the names bucket ------------------------------------------------------


async def test_a_forged_reply_is_ignored_and_the_real_one_returned(url: str, ns: str) -> None:
    """A hostile client that sees the requests answers each first, as another node (or as
    nobody): the caller ignores those replies and gets the real ones, 5 of 5."""
    async with node(url, ns, "a") as a, node(url, ns, "b") as b:
        mgr = await a.start_manager("m")
        await mgr.add_handler(Log)
        raw = await nats.connect(url)
        try:
            forged = [
                {"v": 2, "ok": "forged", "n": "evil"},
                {"v": 2, "ok": "forged"},
                {"v": 2, "err": "ManagerNotRunning", "msg": "forged", "n": "evil"},
                {"v": 1, "ok": "forged", "n": "a"},  # malformed here: another version
                ["not", "a", "reply"],
            ]
            answered: list[str] = []

            async def forge(msg: Any) -> None:
                if msg.reply:
                    answered.append(msg.reply)
                    for f in forged:
                        await raw.publish(msg.reply, json.dumps(f).encode())

            await raw.subscribe(f"ge.{ns}.mgr.m.call", cb=forge)
            await sync(raw)
            m = b.manager("m")
            assert await m.which_handlers() == ["Log"]  # b knows the name is a's
            for i in range(5):
                key = f"{ns}-{i}"
                GATES[key] = asyncio.Event()
                call = asyncio.ensure_future(m.call(Log, ("wait", key), timeout=WAIT))

                async def ignored(n: int = len(forged) * (i + 1)) -> bool:
                    return b.ignored["replies"] == n

                await until(ignored, "the forged replies were ignored")
                GATES.pop(key).set()  # now the real reply
                assert await call == "opened"
            assert len(answered) == 5
            assert b.ignored == {"replies": 5 * len(forged), "down_notices": 0, "exit_notices": 0}
        finally:
            await raw.close()


async def test_a_forged_stopped_notice_does_not_fire_monitors(url: str, ns: str) -> None:
    async with node(url, ns, "a") as a, node(url, ns, "b") as b:
        await a.start_manager("m")
        mon = await b.monitor("m")
        raw = await nats.connect(url)
        try:
            kv = await raw.jetstream().key_value(f"ge_{ns}_names")
            claim = (await kv.get("mgr.m")).revision
            subject = f"ge.{ns}.down.m"
            notices: list[Any] = [
                {"node": "evil", "reason": "noproc", "rev": claim},  # not the monitored node
                {"node": "a", "reason": "noproc", "rev": claim},  # a still holds that claim
                {"node": "a", "reason": "noproc"},  # no claim named
                {"node": "a", "reason": "noproc", "rev": "1"},
                "not a notice",
            ]
            for notice in notices:
                await raw.publish(subject, json.dumps(notice).encode())
            await raw.publish(subject, b"\xff")

            async def ignored() -> bool:
                return b.ignored["down_notices"] == 5

            await until(ignored, "the forged notices were ignored")  # in order: all were read
            assert not mon.done()
            assert await b.whereis("m") == "a"
            await b.manager("m").stop()  # the real one
            assert await mon.wait(WAIT) == Down("m", "a", "noproc")
            assert b.ignored == {"replies": 0, "down_notices": 5, "exit_notices": 0}
        finally:
            await raw.close()


async def test_a_notice_about_an_earlier_claim_fires_its_monitors(url: str, ns: str) -> None:
    """The name's next claim (here on the same node) does not hide that the first stopped."""
    async with node(url, ns, "a") as a, node(url, ns, "b") as b:
        mgr = await a.start_manager("m")
        mon = await b.monitor("m")
        raw = await nats.connect(url)
        try:
            kv = await raw.jetstream().key_value(f"ge_{ns}_names")
            first = (await kv.get("mgr.m")).revision
            await mgr.stop()

            async def freed() -> bool:
                return "m" not in a.hosted() and await a.whereis("m") is None

            await until(freed, "a let go of m")
            await a.start_manager("m")  # claimed again, maybe before b read the notice
            assert (await kv.get("mgr.m")).revision != first
            assert await mon.wait(WAIT) == Down("m", "a", "noproc")
            assert b.ignored["down_notices"] == 0
        finally:
            await raw.close()


async def test_a_name_record_of_a_node_without_a_lease_is_free(url: str, ns: str) -> None:
    async with node(url, ns, "a") as a, node(url, ns, "b") as b:
        raw = await nats.connect(url)
        try:
            kv = await raw.jetstream().key_value(f"ge_{ns}_names")
            await kv.put("mgr.m", json.dumps({"node": "ghost"}).encode())
            assert await b.whereis("m") is None
            assert await b.managers() == {}
            await (await b.monitor("m")).wait(WAIT)  # unknown: fires at once
            await a.start_manager("m")
            assert await b.whereis("m") == "a"
        finally:
            await raw.close()


def test_the_ignored_frames_are_logged_a_few_times_a_second(
    caplog: pytest.LogCaptureFixture,
) -> None:
    now = [100.0]
    warn = Throttled(lambda: now[0]).warn
    with caplog.at_level("WARNING", logger="genevent.nats"):
        for i in range(20):
            warn("ignored %d", i)
        now[0] += 1.0
        warn("ignored %d", 20)
    assert [r.getMessage() for r in caplog.records] == [f"ignored {i}" for i in (0, 1, 2, 3, 4, 20)]
