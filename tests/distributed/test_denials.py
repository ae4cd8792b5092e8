"""JetStream requests the server's permissions refuse (examples/nats-roles.conf) fail at once
with PermissionDenied: a durable notify, a durable manager's consumer, a name claim, a group
join or leave, a node's lease. Each is given (or bound by) a long wait, and the test waits for
less: the error must come from the denial, not from a timeout."""

from __future__ import annotations

import asyncio
from typing import Final

import pytest

from genevent.nats import NatsServer, PermissionDenied, connect
from genevent.nats._denials import matches
from tests.distributed.app import HANDLERS, TYPES, Log
from tests.distributed.test_trust import as_user

LONG: Final = 60.0
"""The timeout given to the requests that are denied."""

SOON: Final = 30.0
"""How long a test waits for the denial: well under :data:`LONG` and under the 30 s a durable
consumer's bind retries passing errors."""


async def test_a_denied_durable_notify_fails_at_once(roles_server: NatsServer) -> None:
    async with as_user(roles_server, "node-a") as a, as_user(roles_server, "node-b") as b:
        await a.start_manager("ledger", durable=True)
        with pytest.raises(PermissionDenied) as err:
            async with asyncio.timeout(SOON):
                await b.manager("ledger").notify_durable("placed", timeout=LONG)
        assert err.value.subject == "ge.default.dur.ledger.notify"


async def test_a_denied_durable_consumer_fails_at_once(roles_server: NatsServer) -> None:
    async with as_user(roles_server, "node-b") as b:
        with pytest.raises(PermissionDenied) as err:
            async with asyncio.timeout(SOON):
                await b.start_manager("journal", durable=True)
        assert "GE_default" in err.value.subject
        assert await b.whereis("journal") is None  # its name was given back
        mgr = await b.start_manager("journal")  # served, not durably
        await mgr.add_handler(Log)
        assert await b.manager("journal").which_handlers() == ["Log"]


async def test_a_denied_name_claim_fails_at_once(roles_server: NatsServer) -> None:
    async with as_user(roles_server, "operator") as o:
        with pytest.raises(PermissionDenied) as err:
            async with asyncio.timeout(SOON):
                await o.start_manager("billing")
        assert err.value.subject == "$KV.ge_default_names.mgr.billing"


async def test_a_standby_denied_its_name_fails_at_once(roles_server: NatsServer) -> None:
    """A standby waits while a live node holds the name, but a denial is final."""
    async with as_user(roles_server, "operator") as o:
        with pytest.raises(PermissionDenied):
            async with asyncio.timeout(SOON):
                await o.start_manager("billing", standby=True)


async def test_denied_group_joins_and_leaves_fail_at_once(roles_server: NatsServer) -> None:
    async with as_user(roles_server, "node-a") as a, as_user(roles_server, "producer") as p:
        mgr = await a.start_manager("orders")
        await mgr.add_handler(Log)
        await a.join("billing", "orders")
        with pytest.raises(PermissionDenied) as err:
            async with asyncio.timeout(SOON):
                await p.join("sales", "orders")
        assert err.value.subject.startswith("$KV.ge_default_groups.")
        with pytest.raises(PermissionDenied):
            async with asyncio.timeout(SOON):
                await p.leave("billing", "orders")
        assert await a.members("billing") == ["orders"]
        assert await a.members("sales") == []


async def test_a_node_denied_its_lease_fails_to_connect_at_once(roles_server: NatsServer) -> None:
    """A user may write only the lease of its own node id."""
    with pytest.raises(PermissionDenied) as err:
        async with asyncio.timeout(SOON):
            await connect(
                roles_server.url,
                ns="default",
                node_id="someone-else",
                user="producer",
                password="producer-secret",
                inbox_prefix="_INBOX_ge.default.producer",  # its own inbox: the replies come
                handlers=HANDLERS,
                types=TYPES,
            )
    assert err.value.subject == "$KV.ge_default_nodes.node.someone-else"


async def test_a_denied_lease_bucket_change_is_only_logged(
    roles_server: NatsServer, caplog: pytest.LogCaptureFixture
) -> None:
    """A node whose lease is longer than the lease bucket keeps records asks to keep them
    longer; a user who may not is told at once, in a warning, and connects all the same."""
    producer = as_user(roles_server, "producer", lease=100.0)
    # node-a first: the bucket exists, made for short leases
    async with as_user(roles_server, "node-a"), asyncio.timeout(SOON), producer as p:
        assert p.is_connected
    assert "could not be changed (the NATS server denied the publish" in caplog.text


@pytest.mark.parametrize(
    ("pattern", "subject", "named"),
    [
        ("$KV.ge_x_names.>", "$kv.ge_x_names.mgr.m", "$KV.ge_x_names.mgr.m"),
        ("$KV.ge_x_names.>", "$kv.ge_x_names", None),
        ("$JS.API.STREAM.*.GE_x", "$js.api.stream.info.ge_x", "$JS.API.STREAM.info.GE_x"),
        ("$JS.API.STREAM.*.GE_x", "$js.api.stream.msg.get.ge_x", None),
        ("ge.x.dur.m.notify", "ge.x.dur.m.notify", "ge.x.dur.m.notify"),
        ("ge.x.dur.m.notify", "ge.x.dur.m.notify.more", None),
        ("ge.x.dur.m.notify", "ge.x.dur.n.notify", None),
    ],
)
def test_a_denied_subject_is_matched_against_nats_patterns(
    pattern: str, subject: str, named: str | None
) -> None:
    """nats-py reports the denied subject in lower case: the match ignores case."""
    assert matches(pattern, subject) == named
