"""The wire: a versioned envelope, msgpack (default) or JSON, and the tagged forms that let
tuples, bytes, odd dicts and registered types survive both.

Nothing here imports anything named on the wire and nothing is unpickled: a frame decodes
into a fixed envelope type (msgspec validates its shape), and its values are walked once,
accepting only plain data, the documented ``$`` tags and the registered type names.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import gc
import math
import re
from collections.abc import Callable, Iterable
from typing import Any, Final, Literal, TypeVar

import msgspec

from ._errors import InvalidName, MalformedMessage, NotEncodable

__all__ = (
    "MAX_BATCH",
    "MAX_CONTAINERS",
    "MAX_DEPTH",
    "OPS",
    "VERSION",
    "Codec",
    "Reply",
    "Request",
    "TypeRegistry",
    "check_name",
)

VERSION: Final = 2
"""The protocol version this node speaks (the envelope's ``v``)."""

OPS: Final = frozenset(
    {
        "notify",
        "info",
        "sync_notify",
        "call",
        "add_handler",
        "delete_handler",
        "swap_handler",
        "which_handlers",
        "get_state",
        "stats",
        "stop",
        "batch",
        "add_sup_handler",
        "swap_sup_handler",
        "owner_exit",
    }
)
"""The operations a request envelope may name."""

MAX_BATCH: Final = 4096
"""The most notifies one batch frame carries: the writer never packs more, and a node serves
at most this many items of a batch (the rest is refused with one error)."""

#: every error decoding bytes or checking decoded data can raise, whatever the bytes (a
#: MalformedMessage is a ValueError too, and is re-raised as it is)
_DECODE_ERRORS: Final = (
    msgspec.DecodeError,
    msgspec.ValidationError,
    UnicodeDecodeError,  # a string that is not UTF-8 (msgpack, JSON)
    RecursionError,  # nested too deeply
    OverflowError,
    ValueError,
    TypeError,
)

MAX_DEPTH: Final = 100
"""How deep a value may nest (lists, tuples, dicts, registered types): deeper is refused on
both sides (:class:`NotEncodable` when sending, :class:`MalformedMessage` when receiving),
well before the interpreter's recursion limit and what unwinding from it costs."""

MAX_CONTAINERS: Final = 100_000
"""How many containers (lists, tuples, dicts, registered types) one value may hold, refused
on both sides as :data:`MAX_DEPTH` is: what decoding one frame costs stays bounded."""


class _GcPaused:
    """No garbage collection while a frame is decoded or converted: the collector's passes
    over the many young containers of a large frame would cost several times the work itself
    (nothing changes if it was off already)."""

    __slots__ = ("_paused",)

    def __enter__(self) -> None:
        self._paused = gc.isenabled()
        if self._paused:
            gc.disable()

    def __exit__(self, *exc: object) -> None:
        if self._paused:
            gc.enable()


_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")


def check_name(name: object, what: str = "manager name") -> str:
    """Return ``name`` if NATS can carry it as one subject token, else raise
    :class:`InvalidName`."""
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise InvalidName(f"a {what} must match [A-Za-z0-9_-]{{1,64}}, not {name!r}")
    return name


class Request(msgspec.Struct, omit_defaults=True):
    """A request envelope (what a caller sends to ``ge.<ns>.mgr.<name>.<kind>``)."""

    v: int
    op: str
    body: Any = None
    h: str | None = None
    hid: Any | msgspec.UnsetType = msgspec.UNSET
    h2: str | None = None
    hid2: Any | msgspec.UnsetType = msgspec.UNSET
    body2: Any = None
    #: no args were given to add_handler (``body``) / for the new handler of a swap
    #: (``body2``): the hosting node calls ``init()`` without arguments
    na: bool = False
    na2: bool = False
    restart: Literal["temporary", "transient", "permanent"] | None = None
    max_restarts: int | None = None
    restart_period: float | None = None
    isolation: Literal["task", "thread"] | None = None
    maxsize: int | None = None
    overflow: Literal["drop_oldest", "drop_newest"] | None = None
    stop_timeout: float | None = None
    #: a supervised handler's owner (``<node id>.<n>``) and the incarnation its node gave it
    own: str | None = None
    inc: int | None = None


class Reply(msgspec.Struct, omit_defaults=True):
    """A reply envelope: ``ok`` holds the result, or ``err`` names the error."""

    v: int
    ok: Any = None
    err: str | None = None
    msg: str = ""
    h: str | None = None
    hid: Any | msgspec.UnsetType = msgspec.UNSET
    ct: str | None = None
    cm: str = ""
    n: str | None = None


_PLAIN: Final = frozenset({type(None), bool, int, float, str})
_SCALARS: Final = frozenset({type(None), bool, int, str})  # the same in both codecs, as is


class TypeRegistry:
    """The allow-list of user types that may cross the wire, by name (dataclasses and
    msgspec Structs)."""

    def __init__(self) -> None:
        self._by_name: dict[str, type] = {}
        self._by_type: dict[type, tuple[str, tuple[str, ...]]] = {}

    def register(self, cls: type, name: str | None = None) -> str:
        """Allow ``cls`` (a dataclass or a msgspec Struct) on the wire as ``name`` (default: its
        ``__name__``). Return the name."""
        if isinstance(cls, type) and issubclass(cls, msgspec.Struct):
            fields = tuple(cls.__struct_fields__)
        elif isinstance(cls, type) and dataclasses.is_dataclass(cls):
            fields = tuple(f.name for f in dataclasses.fields(cls))
        else:
            raise TypeError(f"only dataclasses and msgspec Structs can be registered, not {cls!r}")
        name = check_name(cls.__name__ if name is None else name, "type name")
        held = self._by_name.get(name)
        if held is not None and held is not cls:
            raise ValueError(f"the type name {name!r} is registered for {held!r}")
        self._by_name[name] = cls
        self._by_type[cls] = (name, fields)
        return name

    def names(self) -> list[str]:
        """The registered type names."""
        return sorted(self._by_name)


_E = TypeVar("_E", Request, Reply)


class Codec:
    """Encodes and decodes envelopes. ``json=False``: msgpack (the default); ``json=True``:
    JSON. Decoding accepts both (a frame whose first non-blank byte is ``{`` is JSON)."""

    def __init__(self, types: TypeRegistry | None = None, *, json: bool = False) -> None:
        self.types = types if types is not None else TypeRegistry()
        self.json = json
        self._enc: Callable[[Any], bytes] = (
            msgspec.json.Encoder().encode if json else msgspec.msgpack.Encoder().encode
        )
        self._dec_req_mp = msgspec.msgpack.Decoder(Request)
        self._dec_req_js = msgspec.json.Decoder(Request)
        self._dec_rep_mp = msgspec.msgpack.Decoder(Reply)
        self._dec_rep_js = msgspec.json.Decoder(Reply)

    # -- values -------------------------------------------------------------------------------

    def to_wire(self, value: Any) -> Any:
        """``value`` as plain wire data (tagged forms for tuples, registered types, ...)."""
        try:
            return self._out(value, MAX_DEPTH, [MAX_CONTAINERS])
        except RecursionError:
            raise NotEncodable("the value is nested too deeply") from None

    def _out(self, v: Any, room: int, left: list[int]) -> Any:
        t = type(v)
        if t in _PLAIN:
            if t is float and self.json and not math.isfinite(v):
                return {"$float": repr(v)}  # JSON has no inf/nan
            return v
        if t is bytes or t is bytearray or t is memoryview:
            raw = bytes(v)
            return {"$bytes": base64.b64encode(raw).decode("ascii")} if self.json else raw
        if room <= 0:
            raise NotEncodable(f"the value is nested more than {MAX_DEPTH} deep")
        room -= 1
        left[0] -= 1
        if left[0] < 0:
            raise NotEncodable(f"the value holds more than {MAX_CONTAINERS} containers")
        out = self._out
        if t is list:
            return [x if type(x) in _SCALARS else out(x, room, left) for x in v]
        if t is tuple:
            return {"$tuple": [x if type(x) in _SCALARS else out(x, room, left) for x in v]}
        if t is dict:
            if all(type(k) is str and not k.startswith("$") for k in v):
                return {k: out(x, room, left) for k, x in v.items()}
            return {"$dict": [[out(k, room, left), out(x, room, left)] for k, x in v.items()]}
        known = self.types._by_type.get(t)
        if known is not None:
            name, fields = known
            return {"$type": [name, {f: out(getattr(v, f), room, left) for f in fields}]}
        raise NotEncodable(
            f"cannot send a {t.__qualname__} over the wire: register its class by name "
            "(a dataclass or msgspec Struct), or send plain data"
        )

    def from_wire(self, value: Any) -> Any:
        """The Python value of decoded wire data; raises :class:`MalformedMessage`."""
        try:
            with _GcPaused():
                return self._in(value, MAX_DEPTH, [MAX_CONTAINERS])
        except MalformedMessage:
            raise
        except RecursionError:
            raise MalformedMessage("the value is nested too deeply") from None
        except _DECODE_ERRORS as exc:
            raise MalformedMessage(f"not wire data: {_reason(exc)}") from None

    def _in(self, v: Any, room: int, left: list[int]) -> Any:
        t = type(v)
        if t in _PLAIN or t is bytes:
            return v
        if room <= 0:  # refused before it costs more: a frame's cost stays bounded
            raise MalformedMessage(f"the value is nested more than {MAX_DEPTH} deep")
        room -= 1
        left[0] -= 1
        if left[0] < 0:
            raise MalformedMessage(f"the value holds more than {MAX_CONTAINERS} containers")
        inn = self._in
        if t is list:
            return [x if type(x) in _SCALARS else inn(x, room, left) for x in v]
        if t is dict:
            if len(v) == 1:
                inner = v.get("$tuple")
                if type(inner) is list:  # the commonest tag first (gen_event's events)
                    return tuple([x if type(x) in _SCALARS else inn(x, room, left) for x in inner])
                ((key, inner),) = v.items()
                if type(key) is str and key.startswith("$"):
                    return self._tag(key, inner, room, left)
            for key in v:
                if type(key) is str and key.startswith("$"):
                    raise MalformedMessage(f"unknown tag {key!r} in a map")
            return {inn(k, room, left): inn(x, room, left) for k, x in v.items()}
        raise MalformedMessage(f"a {t.__qualname__} is not wire data")

    def _tag(self, key: str, inner: Any, room: int, left: list[int]) -> Any:
        if key == "$tuple":
            if type(inner) is not list:
                raise MalformedMessage("$tuple takes a list")
            inn = self._in
            return tuple([x if type(x) in _SCALARS else inn(x, room, left) for x in inner])
        if key == "$bytes":
            if type(inner) is bytes:
                return inner
            if type(inner) is not str:
                raise MalformedMessage("$bytes takes a base64 string")
            try:
                return base64.b64decode(inner, validate=True)
            except (binascii.Error, ValueError):
                raise MalformedMessage("$bytes takes a base64 string") from None
        if key == "$float":
            if inner not in ("inf", "-inf", "nan"):
                raise MalformedMessage("$float takes 'inf', '-inf' or 'nan'")
            return float(inner)
        if key == "$dict":
            if type(inner) is not list:
                raise MalformedMessage("$dict takes a list of [key, value] pairs")
            out: dict[Any, Any] = {}
            for pair in inner:
                if type(pair) is not list or len(pair) != 2:
                    raise MalformedMessage("$dict takes a list of [key, value] pairs")
                k = self._in(pair[0], room, left)
                try:
                    out[k] = self._in(pair[1], room, left)
                except TypeError:
                    raise MalformedMessage("a $dict key must be hashable") from None
            return out
        if key == "$type":
            if type(inner) is not list or len(inner) != 2 or type(inner[0]) is not str:
                raise MalformedMessage("$type takes [name, {field: value}]")
            cls = self.types._by_name.get(inner[0])
            if cls is None:
                raise MalformedMessage(f"the type {inner[0]!r} is not registered on this node")
            if type(inner[1]) is not dict:
                raise MalformedMessage("$type takes [name, {field: value}]")
            fields = {k: self._in(x, room, left) for k, x in inner[1].items()}
            try:
                return msgspec.convert(fields, cls, from_attributes=True)
            except (msgspec.ValidationError, TypeError, ValueError) as exc:
                raise MalformedMessage(f"bad fields for the type {inner[0]!r}: {exc}") from None
        raise MalformedMessage(f"unknown tag {key!r}")

    # -- envelopes ----------------------------------------------------------------------------

    def encode(self, envelope: Request | Reply) -> bytes:
        """Encode an envelope whose values are already wire data (see :meth:`to_wire`)."""
        try:
            return self._enc(envelope)
        except (TypeError, OverflowError, ValueError) as exc:
            raise NotEncodable(str(exc)) from None

    @staticmethod
    def is_json(data: bytes) -> bool:
        """Whether a frame is JSON (its first non-blank byte is ``{``)."""
        first = data[:1]
        if first == b"{":
            return True
        return first.isspace() and data.lstrip()[:1] == b"{"

    def _decode(
        self,
        data: bytes,
        json_decoder: msgspec.json.Decoder[_E],
        msgpack_decoder: msgspec.msgpack.Decoder[_E],
        what: str,
    ) -> _E:
        """An envelope from either encoding, or :class:`MalformedMessage` whatever the bytes."""
        try:
            with _GcPaused():
                if self.is_json(data):
                    return json_decoder.decode(data)
                return msgpack_decoder.decode(data)
        except _DECODE_ERRORS as exc:
            raise MalformedMessage(f"not a genevent {what} envelope: {_reason(exc)}") from None

    def decode_request(self, data: bytes) -> Request:
        """A request envelope, its version and operation checked (values still wire data)."""
        req = self._decode(data, self._dec_req_js, self._dec_req_mp, "request")
        if req.v != VERSION:
            raise MalformedMessage(unsupported(req.v))
        if req.op not in OPS:
            raise MalformedMessage(f"unknown operation {req.op!r}")
        return req

    def check_request(self, value: Any) -> Request:
        """A request envelope from already decoded data (an element of a batch)."""
        try:
            req = msgspec.convert(value, Request)
        except _DECODE_ERRORS as exc:
            raise MalformedMessage(f"not a genevent request envelope: {_reason(exc)}") from None
        if req.v != VERSION:
            raise MalformedMessage(unsupported(req.v))
        return req

    def decode_reply(self, data: bytes) -> Reply:
        """A reply envelope, version checked."""
        rep = self._decode(data, self._dec_rep_js, self._dec_rep_mp, "reply")
        if rep.v != VERSION:
            raise MalformedMessage(unsupported(rep.v, "in a reply "))
        return rep


def _reason(exc: BaseException) -> str:
    """Why bytes were refused, in a line (a string that is not UTF-8 named as such)."""
    if isinstance(exc, UnicodeDecodeError):
        return f"a string is not valid UTF-8 (byte {exc.start} of the string)"
    if isinstance(exc, RecursionError):
        return "nested too deeply"
    text = str(exc)
    return text if len(text) <= 200 else text[:200] + "..."


def unsupported(version: object, where: str = "") -> str:
    """The text of the error for a frame of another protocol version."""
    return f"protocol version {version!r} {where}is not supported: this node speaks {VERSION}"


def registered(types: Iterable[type]) -> TypeRegistry:
    """A :class:`TypeRegistry` holding ``types`` under their class names."""
    reg = TypeRegistry()
    for cls in types:
        reg.register(cls)
    return reg
