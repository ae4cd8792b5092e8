"""What a frame may cost a node, on a real nats-server: every decoding error answered and
counted in both encodings, a batch's cost bounded and its refusals logged a few lines a second,
a flood of hostile frames that never gets the node declared down, and the writer's batches that
never exceed the server's max_payload."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import hypothesis.strategies as st
import msgspec
import nats
import pytest
from hypothesis import given, settings
from nats.js.api import KeyValueConfig, StorageType

from genevent import EventHandler, NameTaken
from genevent.nats import MalformedMessage, Node, NotEncodable
from genevent.nats._link import lease_in, sync
from genevent.nats._protocol import OPERATIONS
from genevent.nats._throttle import Throttle
from genevent.nats._wire import MAX_BATCH, MAX_CONTAINERS, MAX_DEPTH, OPS, VERSION, Codec, Request
from tests.distributed.app import Log
from tests.distributed.conftest import NodeProcess
from tests.distributed.test_nodes import WAIT, node, until

MP = msgspec.msgpack.encode


def _mp_with_bad_utf8(body: Any = "\x00") -> bytes:
    """A msgpack notify whose body string is not UTF-8 (its byte ``\\x00`` turned ``\\xff``)."""
    frame = MP({"v": 2, "op": "notify", "body": body})
    return frame.replace(b"\xa1\x00", b"\xa1\xff")


#: frames every decoder error comes from, in both encodings
BAD_FRAMES: dict[str, bytes] = {
    "utf-8 msgpack body": _mp_with_bad_utf8(),
    "utf-8 msgpack op": MP({"v": 2, "op": "\x00"}).replace(b"\xa1\x00", b"\xa1\xff"),
    "utf-8 msgpack in a tuple": _mp_with_bad_utf8({"$tuple": ["\x00"]}),
    "utf-8 msgpack in a key": _mp_with_bad_utf8({"\x00": 1}),
    "utf-8 json body": b'{"v":2,"op":"notify","body":"\xff"}',
    "utf-8 json key": b'{"v":2,"op":"notify","body":{"\xff":1}}',
    "lone surrogate json": b'{"v":2,"op":"notify","body":"\\ud800"}',
    "huge int json": b'{"v":2,"op":"notify","body":' + b"9" * 5000 + b"}",
    "huge float json": b'{"v":2,"op":"notify","body":1e999}',
    "bad timestamp msgpack": MP(
        {"v": 2, "op": "notify", "body": msgspec.msgpack.Ext(-1, b"\xff" * 12)}
    ),
    "unhashable map key msgpack": b"\x83\xa1v\x02\xa2op\xa6notify\xa4body\x81\x81\x01\x02\x03",
    "array map key msgpack": b"\x83\xa1v\x02\xa2op\xa6notify\xa4body\x81\x91\x01\x02",
    "deep msgpack": b"\x83\xa1v\x02\xa2op\xa6notify\xa4body" + b"\x91" * 100_000 + b"\x01",
    "deep json": b'{"v":2,"op":"notify","body":' + b"[" * 100_000 + b"]" * 100_000 + b"}",
    "deep but decodable msgpack": b"\x83\xa1v\x02\xa2op\xa6notify\xa4body"
    + b"\x91" * 700
    + b"\x01",
    "duplicate keys json, the last one bad": b'{"v":2,"op":"notify","v":"one"}',
    "batch of a string json": b'{"v":2,"op":"batch","body":"\\u0000"}',
}


@pytest.mark.parametrize("frame", list(BAD_FRAMES.values()), ids=list(BAD_FRAMES))
def test_every_decoding_error_is_a_malformed_message(frame: bytes) -> None:
    codec = Codec()

    def decode() -> Any:
        req = codec.decode_request(frame)
        if req.op == "batch":  # a batch's body is checked by the node (see below)
            raise MalformedMessage("a batch takes a list")
        return codec.from_wire(req.body)

    with pytest.raises(MalformedMessage):
        decode()


_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.floats()
    | st.text(max_size=8)
    | st.binary(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=4), inner),
    max_leaves=12,
)


@st.composite
def _damaged_frames(draw: st.DrawFn) -> bytes:
    """An envelope in either encoding with some of its bytes changed, cut or not at all."""
    envelope = {"v": 2, "op": draw(st.sampled_from(sorted(OPS))), "body": draw(_VALUES)}
    encode: Callable[[Any], bytes] = _to_json if draw(st.booleans()) else MP
    data = bytearray(encode(envelope))
    for _ in range(draw(st.integers(0, 3))):
        at = draw(st.integers(0, len(data) - 1))
        data[at] = draw(st.integers(0, 255))
    return bytes(data[: draw(st.integers(0, len(data)))])


def _to_json(value: Any) -> bytes:
    return msgspec.json.encode(Codec(json=True).to_wire(value))


@settings(max_examples=400, deadline=None)
@given(frame=st.one_of(st.binary(max_size=200), _damaged_frames()))
def test_any_bytes_decode_or_are_refused_as_malformed(frame: bytes) -> None:
    """Whatever the bytes, both decoders give a value or a MalformedMessage, nothing else."""
    codec = Codec()
    with contextlib.suppress(MalformedMessage):
        req = codec.decode_request(frame)
        if req.op == "batch" and type(req.body) is list:
            for item in req.body:
                with contextlib.suppress(MalformedMessage):
                    codec.from_wire(codec.check_request(item).body)
        else:
            codec.from_wire(req.body)
    with contextlib.suppress(MalformedMessage):
        codec.from_wire(codec.decode_reply(frame).ok)


def test_values_nest_as_deep_as_max_depth_and_no_deeper() -> None:
    for json_ in (False, True):
        codec = Codec(json=json_)
        value: Any = 1
        for i in range(MAX_DEPTH):
            value = [value] if i % 3 == 0 else (value,) if i % 3 == 1 else {"k": value}
        frame = codec.encode(Request(v=VERSION, op="notify", body=codec.to_wire(value)))
        assert codec.from_wire(codec.decode_request(frame).body) == value
        with pytest.raises(NotEncodable):
            codec.to_wire([value])
        deeper = b'{"v":2,"op":"notify","body":' + b"[" * (MAX_DEPTH + 1) + b"]" * (MAX_DEPTH + 1)
        with pytest.raises(MalformedMessage, match="nested more than"):
            codec.from_wire(codec.decode_request(deeper + b"}").body)


def test_a_value_holds_at_most_max_containers_on_both_sides() -> None:
    for json_ in (False, True):
        codec = Codec(json=json_)
        full: list[Any] = [[(1,)]] * ((MAX_CONTAINERS - 1) // 2)  # a list of lists of tuples
        full += [[]] * (MAX_CONTAINERS - 1 - 2 * len(full))  # and lists: MAX_CONTAINERS in all
        frame = codec.encode(Request(v=VERSION, op="notify", body=codec.to_wire(full)))
        assert codec.from_wire(codec.decode_request(frame).body) == full
        with pytest.raises(NotEncodable, match="containers"):
            codec.to_wire([*full, []])
        over = codec.encode(Request(v=VERSION, op="notify", body=[*codec.to_wire(full), [[]]]))
        with pytest.raises(MalformedMessage, match="containers"):
            codec.from_wire(codec.decode_request(over).body)


def test_a_throttle_lets_a_burst_through_then_a_few_a_second_and_counts_the_rest() -> None:
    now = [0.0]
    throttle = Throttle(lambda: now[0], rate=5.0, burst=10.0)
    assert [throttle.allow() for _ in range(15)] == [True] * 10 + [False] * 5
    now[0] += 1.0  # five more tokens
    assert [throttle.allow() for _ in range(7)] == [True] * 5 + [False] * 2
    assert throttle.take_suppressed() == 7
    assert throttle.take_suppressed() == 0
    now[0] += 100.0  # never more than the burst
    assert sum(throttle.allow() for _ in range(20)) == 10


@pytest.mark.parametrize(
    ("record", "lease"),
    [
        (b'{"lease": 10}', 10.0),
        (b'{"lease": 0.25, "pid": 1}', 0.25),
        (b'{"lease": Infinity}', 1.5),
        (b'{"lease": NaN}', 1.5),
        (b'{"lease": -1}', 1.5),
        (b'{"lease": 0}', 1.5),
        (b'{"lease": 1e300}', 1.5),
        (b'{"lease": "5"}', 5.0),
        (b'{"lease": [5]}', 1.5),
        (b'{"pid": 1}', 1.5),
        (b"\xff", 1.5),
        (b"", 1.5),
        (None, 1.5),
    ],
)
def test_a_lease_record_names_a_usable_lease_or_none(record: bytes | None, lease: float) -> None:
    assert lease_in(record, 1.5) == lease


@contextlib.asynccontextmanager
async def hosting(url: str, ns: str) -> AsyncIterator[tuple[Node, Any]]:
    """Node "a" hosting "m" (a Log installed), and a raw NATS client to send it frames."""
    async with node(url, ns, "a") as a:
        mgr = await a.start_manager("m")
        await mgr.add_handler(Log)
        raw = await nats.connect(url)
        try:
            yield a, raw
        finally:
            await raw.close()


async def test_every_decoding_error_gets_a_reply_and_is_counted(url: str, ns: str) -> None:
    async with hosting(url, ns) as (a, raw):
        for what, frame in BAD_FRAMES.items():
            msg = await raw.request(f"ge.{ns}.mgr.m.notify", frame, timeout=WAIT)
            reply = _decode(msg.data)
            assert reply["err"] == "MalformedMessage", (what, reply)
            await raw.publish(f"ge.{ns}.mgr.m.notify", frame)  # and without a reply subject
        await sync(raw)
        assert await a.manager("m").call(Log, "log") == []
        assert a.refused == 2 * len(BAD_FRAMES)


def _decode(data: bytes) -> Any:
    return json.loads(data) if data[:1] == b"{" else msgspec.msgpack.decode(data)


def _junk_batch(items: int) -> bytes:
    """A JSON batch of ``items`` ints: each one not an envelope."""
    return b'{"v":2,"op":"batch","body":[' + b",".join([b"1"] * items) + b"]}"


async def test_a_batch_serves_its_first_items_and_refuses_the_rest_at_once(
    url: str, ns: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, "genevent.nats")
    async with hosting(url, ns) as (a, raw):
        item = {"v": 2, "op": "notify", "body": 7}
        frame = {"v": 2, "op": "batch", "body": [item] * (MAX_BATCH + 1000)}
        for data in (json.dumps(frame).encode(), MP(frame)):
            msg = await raw.request(f"ge.{ns}.mgr.m.notify", data, timeout=WAIT)
            reply = _decode(msg.data)
            assert reply["err"] == "MalformedMessage"
            assert "the 1000 after them were refused" in reply["msg"]
        assert await a.manager("m").call(Log, "count") == 2 * MAX_BATCH
        assert a.refused == 2 * 1000

        caplog.clear()
        junk = _junk_batch(500_000)  # about 1 MB
        msg = await raw.request(f"ge.{ns}.mgr.m.notify", junk, timeout=WAIT)
        assert _decode(msg.data)["err"] == "MalformedMessage"
        assert a.refused == 2 * 1000 + 500_000  # every item counted ...
        lines = [r for r in caplog.records if r.name == "genevent.nats"]
        assert len(lines) < 100  # ... a few of them logged (a burst, then a few a second)
        assert await a.manager("m").call(Log, "count") == 2 * MAX_BATCH


def _hostile_frames() -> list[bytes]:
    """About 4.5 MB of frames, each at most 1 MB, that a node refuses."""
    bad_item = MP({"v": 2, "op": "notify", "body": {"$eval": 1}})  # an unknown tag
    bad_items = b"\x83\xa1v\x02\xa2op\xa5batch\xa4body\xdd" + (MAX_BATCH + 5000).to_bytes(4, "big")
    bad_items += bad_item * (MAX_BATCH + 5000)
    return [
        _junk_batch(500_000),
        bad_items,
        b"\x83\xa1v\x02\xa2op\xa6notify\xa4body" + b"\x91" * 1_000_000 + b"\x01",
        b'{"v":2,"op":"notify","body":' + b"[" * 500_000 + b"]" * 500_000 + b"}",
        *[BAD_FRAMES["utf-8 msgpack body"]] * 200,
        *[BAD_FRAMES["deep but decodable msgpack"]] * 200,
    ]


#: seconds of flood: short by default; GENEVENT_FLOOD_SECONDS=10 for the full run
FLOOD_SECONDS = float(os.environ.get("GENEVENT_FLOOD_SECONDS", "2"))
FLOOD_RATE = 20e6  # bytes a second


async def test_a_flood_of_hostile_frames_never_gets_a_node_declared_down(
    url: str, ns: str, spawn: list[NodeProcess]
) -> None:
    """One client sends hostile frames at ~20 MB/s (for GENEVENT_FLOOD_SECONDS: 2 s unless
    set, 10 s is the full run) to a manager of a node (a process of its own, lease 1.5 s) while
    another node monitors that manager and calls it: the flooded node renews its lease
    throughout, is never declared down, and answers every call, in order."""
    spawn.append(NodeProcess(url, ns, "a", ["m"], lease=1.5))
    async with node(url, ns, "b") as b:
        mon = await b.monitor("m")
        m = b.manager("m")
        raw = await nats.connect(url)
        frames = _hostile_frames()
        sent = 0
        answered = 0
        stop = asyncio.Event()

        async def caller() -> None:
            nonlocal answered
            while not stop.is_set():
                m.notify(answered)
                assert await m.call(Log, "count", timeout=WAIT) == answered + 1
                answered += 1

        calls = asyncio.ensure_future(caller())
        try:
            start = time.monotonic()
            while (elapsed := time.monotonic() - start) < FLOOD_SECONDS:
                for frame in frames:
                    await raw.publish(f"ge.{ns}.mgr.m.notify", frame)
                    sent += len(frame)
                    ahead = sent / FLOOD_RATE - (time.monotonic() - start)
                    if ahead > 0:  # pace the sender to the rate (it synchronises nothing)
                        await asyncio.sleep(ahead)
                await raw.flush()
                assert not mon.done(), mon._fut.result()
                assert not calls.done()
            await sync(raw)
            stop.set()
            await asyncio.wait_for(calls, WAIT)  # the last call came after every frame
        finally:
            stop.set()
            calls.cancel()
            await raw.close()
        assert not mon.done(), mon._fut.result()
        assert "a" in await b.nodes()
        assert answered > 0
        assert await m.call(Log, "count", timeout=WAIT) == answered
        print(f"flood: {sent / 1e6:.0f} MB in {elapsed:.1f} s, {answered} calls answered")


@pytest.mark.parametrize("codec", ["msgpack", "json"])
async def test_the_largest_notify_and_a_small_one_in_the_same_tick_both_arrive(
    url: str, ns: str, codec: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, "genevent.nats")
    async with node(url, ns, "a") as a, node(url, ns, "b", codec=codec) as b:
        mgr = await a.start_manager("m")
        a.register_handler(Sizes)
        await mgr.add_handler(Sizes)
        m = b.manager("m")
        big = _largest_body(b, "m")
        m.notify(big)  # the largest frame notify() accepts ...
        m.notify("small")  # ... and another queued behind it: no batch can carry both
        for _ in range(3):
            m.notify(big)
        m.notify("last")
        expected = [len(big), 5, len(big), len(big), len(big), 4]
        assert await m.call(Sizes, "events", timeout=WAIT) == expected
        assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


class Sizes(EventHandler[Any, Any, Any]):
    """Keeps the length of every event and info (the events may be near max_payload)."""

    def init(self, args: Any = None, /) -> None:
        self.events: list[int] = []
        self.infos: list[int] = []

    def handle_event(self, event: Any, /) -> None:
        self.events.append(len(event))

    def handle_info(self, message: Any, /) -> None:
        self.infos.append(len(message))

    def handle_call(self, request: Any, /) -> Any:
        return self.events if request == "events" else self.infos


def _largest_body(n: Node, name: str) -> str:
    """The longest string whose notify frame the node still sends."""
    link = n._link
    limit = link.limit()
    empty = len(link.encode(Request(v=VERSION, op="notify", body="")))
    size = limit - empty
    while True:  # the string's length prefix grows with it: step down to what fits
        body = "x" * size
        if len(link.codec.encode(Request(v=VERSION, op="notify", body=body))) <= limit:
            return body
        size -= 1


async def test_queued_notifies_of_every_size_travel_within_max_payload(
    url: str, ns: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, "genevent.nats")
    async with node(url, ns, "a") as a, node(url, ns, "b") as b:
        mgr = await a.start_manager("m")
        a.register_handler(Sizes)
        await mgr.add_handler(Sizes)
        m = b.manager("m")
        big = len(_largest_body(b, "m"))
        sizes = [1, big // 2, big // 2, big - 10, 3, big, 100_000, big // 3] * 3
        for i, size in enumerate(sizes):
            m.notify("x" * size) if i % 2 else m.send("y" * size)
        assert await m.call(Sizes, "events", timeout=WAIT) == sizes[1::2]
        assert await m.call(Sizes, "infos", timeout=WAIT) == sizes[::2]
        assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


async def test_a_hosted_manager_is_known_by_its_cluster_name(url: str, ns: str) -> None:
    async with node(url, ns, "a") as a, node(url, ns, "b") as b:
        mgr = await a.start_manager("m")
        await mgr.add_handler(Log)
        assert (await b.manager("m").stats(timeout=WAIT))["name"] == "m"
        assert "'m'" in repr(mgr)


async def _record_age(n: Node, node_id: str) -> float:
    """How old ``node_id``'s lease record is, on the server's clock."""
    names = n._names
    now, _ = await names._lease_info(with_subjects=False)
    msg = await n.nats.jetstream().get_msg(
        f"KV_ge_{n.ns}_nodes", subject=f"$KV.ge_{n.ns}_nodes.node.{node_id}", direct=False
    )
    assert msg.time is not None
    return (now - msg.time).total_seconds()


async def _make_lease_bucket(url: str, ns: str, ttl: float) -> None:
    """The lease bucket as a node with lease ``ttl`` of an earlier version (or an operator)
    made it: it drops a record ``ttl`` seconds after it was written."""
    raw = await nats.connect(url)
    try:
        config = KeyValueConfig(
            bucket=f"ge_{ns}_nodes", history=1, ttl=ttl, storage=StorageType.FILE
        )
        await raw.jetstream().create_key_value(config)
    finally:
        await raw.close()


async def test_a_long_lease_holds_in_a_bucket_made_for_a_short_one(url: str, ns: str) -> None:
    await _make_lease_bucket(url, ns, ttl=1.0)
    async with node(url, ns, "long", lease=10.0) as long, node(url, ns, "c", lease=1.0) as c:
        info = await c.nats.jetstream().stream_info(f"KV_ge_{ns}_nodes")
        assert (info.config.max_age or 0.0) >= 40.0  # raised for the 10 s lease
        await long.start_manager("m")
        for task in long._tasks:  # the long-lease node stalls: it renews nothing from now
            task.cancel()

        async def stale() -> bool:
            return await _record_age(c, "long") > 2.0  # twice the bucket's first TTL

        await until(stale, "the long-lease node's record grew old")
        assert "long" in await c.nodes()
        assert await c.managers() == {"m": "long"}
        with pytest.raises(NameTaken):
            await c.start_manager("m")


async def test_a_short_lease_lapses_in_a_bucket_made_for_a_long_one(url: str, ns: str) -> None:
    await _make_lease_bucket(url, ns, ttl=30.0)
    async with node(url, ns, "c", lease=10.0) as c:
        short = await Node.connect(url, ns=ns, node_id="short", lease=1.0)
        await short.start_manager("s")
        for task in short._tasks:  # the short-lease node stalls (dies without leaving)
            task.cancel()

        async def claims() -> bool:
            try:
                await c.start_manager("s")
            except NameTaken:
                return False
            return True

        await until(claims, "the short-lease node's name was freed")
        # judged by the lease its record names, not dropped by the bucket's TTL: still there
        assert await _record_age(c, "short") < 30.0
        assert "short" not in await c.nodes()
        assert await c.managers() == {"s": "c"}
        await short.close()  # frees nothing now held by another node
        assert await c.managers() == {"s": "c"}


async def test_a_json_peer_reads_handlers_states_and_empty_replies_as_documented(
    url: str, ns: str
) -> None:
    async with hosting(url, ns) as (a, raw):
        await a.hosted()["m"].add_handler((Log, 2))

        async def ask(op: str, **fields: Any) -> Any:
            frame = json.dumps({"v": 2, "op": op, **fields}).encode()
            kind = OPERATIONS[op].kind
            reply = await raw.request(f"ge.{ns}.mgr.m.{kind}", frame, timeout=WAIT)
            return json.loads(reply.data)

        assert await ask("sync_notify", body="x") == {"v": 2, "n": "a"}
        which = (await ask("which_handlers"))["ok"]
        assert sorted(which, key=str) == sorted(["Log", {"$tuple": ["Log", 2]}], key=str)
        pairs = (await ask("get_state"))["ok"]
        assert {json.dumps(p["$tuple"][0]) for p in pairs} == {
            '"Log"',
            '{"$tuple": ["Log", 2]}',
        }
        assert all(len(p["$tuple"]) == 2 for p in pairs)
        refused = await ask("call", h="Log", body="crash")
        assert refused["err"] == "HandlerCrashed"
        assert "msg" in refused
        stats = (await ask("stats"))["ok"]
        assert stats["name"] == "m"
