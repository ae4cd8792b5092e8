"""The wire format on its own (no server): round trips, tagged forms, hostile frames."""

from __future__ import annotations

import pickle
from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from genevent.nats import InvalidName, MalformedMessage, NotEncodable
from genevent.nats._protocol import OPERATIONS
from genevent.nats._wire import OPS, Codec, Reply, Request, TypeRegistry, check_name
from tests.distributed.app import Point

CODECS = [pytest.param(False, id="msgpack"), pytest.param(True, id="json")]


def codec(json: bool) -> Codec:
    types = TypeRegistry()
    types.register(Point)
    return Codec(types, json=json)


def roundtrip(c: Codec, value: Any) -> Any:
    data = c.encode(Request(v=2, op="notify", body=c.to_wire(value)))
    return c.from_wire(c.decode_request(data).body)


values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False)  # nan != nan; see test_nan_survives
    | st.text()
    | st.binary(),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.lists(inner, max_size=4).map(tuple)
        | st.dictionaries(st.text(), inner, max_size=4)
        | st.dictionaries(st.integers(-5, 5) | st.tuples(st.text()), inner, max_size=3)
    ),
    max_leaves=20,
)


@pytest.mark.parametrize("json", CODECS)
@settings(deadline=None, max_examples=150)
@given(value=values)
def test_plain_values_round_trip_exactly(json: bool, value: Any) -> None:
    out = roundtrip(codec(json), value)
    assert out == value
    assert repr(out) == repr(value)  # tuples stay tuples, bytes stay bytes


@pytest.mark.parametrize("json", CODECS)
def test_nan_survives(json: bool) -> None:
    out = roundtrip(codec(json), [float("nan"), float("-inf")])
    assert out[0] != out[0]
    assert out[1] == float("-inf")


def test_msgpack_refuses_ints_beyond_64_bits() -> None:
    with pytest.raises(NotEncodable):
        roundtrip(codec(False), 2**64)
    assert roundtrip(codec(True), 2**64) == 2**64


@pytest.mark.parametrize("json", CODECS)
def test_seed_event_arrives_as_a_tuple(json: bool) -> None:
    out = roundtrip(codec(json), ("broadcast", "I dare you!"))
    assert out == ("broadcast", "I dare you!")
    assert type(out) is tuple


@pytest.mark.parametrize("json", CODECS)
def test_registered_type_round_trips(json: bool) -> None:
    p = Point(1, 2, ("a", "b"))
    assert roundtrip(codec(json), {"p": [p]}) == {"p": [p]}


def test_json_tagged_forms_are_readable() -> None:
    c = codec(True)
    data = c.encode(Request(v=2, op="notify", body=c.to_wire(("a", b"\x01", {1: 2}))))
    assert data == (
        b'{"v":2,"op":"notify","body":{"$tuple":["a",{"$bytes":"AQ=="},{"$dict":[[1,2]]}]}}'
    )


@pytest.mark.parametrize("value", [object(), {1, 2}, Point, 1j, bytearray, [b"ok", object()]])
def test_unregistered_values_are_not_encodable(value: Any) -> None:
    with pytest.raises(NotEncodable):
        codec(False).to_wire(value)


HOSTILE_FRAMES = {
    "empty": b"",
    "random": bytes(range(256)) * 3,
    "truncated": Codec().encode(Request(v=2, op="notify", body="x" * 40))[:-7],
    "wrong shape": msgspec.msgpack.encode([1, "notify", None]),
    "wrong types": msgspec.msgpack.encode({"v": "1", "op": 7}),
    "unknown version": msgspec.msgpack.encode({"v": 99, "op": "notify"}),
    "unknown op": msgspec.msgpack.encode({"v": 2, "op": "exec"}),
    "pickle": pickle.dumps(("broadcast", "x")),
    "json garbage": b'{"v":2,"op":',
    "json array": b"[1,2,3]",
    "ext type": msgspec.msgpack.encode(
        {"v": 2, "op": "notify", "body": msgspec.msgpack.Ext(42, b"x")}
    ),
    "unregistered type": msgspec.msgpack.encode(
        {"v": 2, "op": "notify", "body": {"$type": ["os.system", {"command": "true"}]}}
    ),
    "unknown tag": msgspec.msgpack.encode({"v": 2, "op": "notify", "body": {"$eval": "1"}}),
    "bad tuple": msgspec.json.encode({"v": 2, "op": "notify", "body": {"$tuple": 3}}),
    "bad bytes": msgspec.json.encode({"v": 2, "op": "notify", "body": {"$bytes": "%%"}}),
    "bad dict": msgspec.json.encode({"v": 2, "op": "notify", "body": {"$dict": [[1]]}}),
    "unhashable key": msgspec.json.encode({"v": 2, "op": "notify", "body": {"$dict": [[[1], 2]]}}),
    "bad fields": msgspec.msgpack.encode(
        {"v": 2, "op": "notify", "body": {"$type": ["Point", {"x": "no"}]}}
    ),
    "deep": b'{"v":2,"op":"notify","body":' + b"[" * 100_000 + b"]" * 100_000 + b"}",
}


@pytest.mark.parametrize("frame", list(HOSTILE_FRAMES.values()), ids=list(HOSTILE_FRAMES))
def test_hostile_frames_are_malformed(frame: bytes) -> None:
    c = codec(False)

    def decode() -> Any:
        return c.from_wire(c.decode_request(frame).body)

    with pytest.raises(MalformedMessage):
        decode()


def test_replies_check_their_version() -> None:
    c = Codec()
    assert c.decode_reply(c.encode(Reply(v=2, ok=3))).ok == 3
    with pytest.raises(MalformedMessage, match="version 1 in a reply is not supported"):
        c.decode_reply(c.encode(Reply(v=1)))
    with pytest.raises(MalformedMessage):
        c.decode_reply(b"\xc1")


@pytest.mark.parametrize("version", [1, 3, 0])
def test_a_frame_of_another_version_names_both_versions(version: int) -> None:
    c = Codec()
    frame = msgspec.msgpack.encode({"v": version, "op": "notify", "body": 1})
    expected = f"protocol version {version} is not supported: this node speaks 2"
    with pytest.raises(MalformedMessage, match=expected):
        c.decode_request(frame)
    with pytest.raises(MalformedMessage, match=expected):
        c.check_request({"v": version, "op": "notify"})


@pytest.mark.parametrize("name", ["a.b", "*", ">", "", "x" * 65, "sp ace", 3])
def test_names_are_single_tokens(name: Any) -> None:
    with pytest.raises(InvalidName):
        check_name(name)
    assert check_name("seed-1_A") == "seed-1_A"


def test_every_operation_on_the_wire_has_an_entry_and_a_kind() -> None:
    """The operation table serves exactly what an envelope may name, and groups it by what it
    may do to a manager."""
    assert set(OPERATIONS) == OPS
    kinds: dict[str, set[str]] = {}
    for name, op in OPERATIONS.items():
        kinds.setdefault(op.kind, set()).add(name)
    assert kinds == {
        "notify": {"notify", "info", "batch"},
        "call": {"call", "sync_notify"},
        "read": {"which_handlers", "stats"},
        "control": {
            "add_handler",
            "delete_handler",
            "swap_handler",
            "add_sup_handler",
            "swap_sup_handler",
            "owner_exit",
            "get_state",
            "stop",
        },
    }
