"""A supervised handler's exit notice on the wire, apart from any transport.

When a handler added with ``add_sup_handler`` through NATS leaves its manager, the manager's
node sends its owner's node a :class:`Notice` (the reason as plain data: class names and text
for exceptions, never the objects), and the owner's node turns it back into a
:class:`~genevent.HandlerExit` for the owner's ``on_exit``. When the manager's node itself goes
away, the owner's node makes the notice up locally, with :class:`ManagerNodeDown`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final, Literal

import msgspec

from .._core import (
    BadReturn,
    Crashed,
    Deleted,
    ExitReason,
    OwnerExited,
    RemovedItself,
    StartFailed,
    Stopped,
    Swapped,
)
from ._errors import MalformedMessage, NotEncodable, RemoteException
from ._wire import VERSION, Codec

__all__ = (
    "OWNER_CUT_OFF",
    "GoneReason",
    "ManagerNodeDown",
    "Notice",
    "OwnerNodeDown",
    "decode_notice",
    "encode_notice",
    "handler_of",
    "owner_exception",
    "owner_reason",
    "reason_of",
)


GoneReason = Literal["nodedown", "noconnection"]
"""Why a node is taken for gone: its lease expired (``nodedown``), or this node's own
connection was lost for longer than its lease (``noconnection``)."""


@dataclass(frozen=True, slots=True)
class ManagerNodeDown(Stopped):
    """The reason an owner is told when the node of the manager holding its handler went away:
    its lease expired (``reason="nodedown"``: killed, hung or cut off) or this node's own
    connection was lost for longer than its lease (``"noconnection"``). The handler is gone
    (or, if that node is only cut off, removed there for the same reason). A
    :class:`~genevent.Stopped`, so code that matches on a stopped manager handles it too."""

    node: str = ""
    reason: GoneReason = "nodedown"


class OwnerNodeDown(ConnectionError):
    """The :class:`~genevent.OwnerExited` reason of a handler whose owner's node went away (its
    lease expired, or the manager's node was cut off from it for longer than its lease)."""

    def __init__(self, node: str, reason: GoneReason = "nodedown") -> None:
        super().__init__(f"the owner's node {node!r} is down ({reason})")
        #: the owner's node id
        self.node = node
        #: ``"nodedown"`` or ``"noconnection"``
        self.reason = reason


class Notice(msgspec.Struct, omit_defaults=True):
    """An exit notice (sent to ``ge.<ns>.own.<owner node>.<n>`` as a request; the owner's node
    acknowledges it with an empty reply)."""

    v: int
    m: str  # the manager's name
    n: str  # the manager's node
    o: str  # the owner, <node id>.<n>
    i: int  # the incarnation the owner's node gave the handler when it asked for it
    x: int  # the notice's number in that incarnation (a retry repeats it)
    r: str  # the reason's kind (see _KINDS)
    h: str = ""  # the handler, as which_handlers names it
    hid: Any | msgspec.UnsetType = msgspec.UNSET
    a: Any = None  # the reason's arguments or value (wire data, or its repr)
    ct: str | None = None  # the reason's exception: class name and text
    cm: str = ""
    h2: str | None = None  # swapped: the new handler
    hid2: Any | msgspec.UnsetType = msgspec.UNSET
    o2: str | None = None  # swapped: the new handler's owner (None: unsupervised, or local)


_KINDS: Final = frozenset(
    {
        "deleted",
        "removed",
        "swapped",
        "stopped",
        "crashed",
        "bad_return",
        "start_failed",
        "owner",
        "node_down",
    }
)

_DECODERS: Final = (msgspec.msgpack.Decoder(Notice), msgspec.json.Decoder(Notice))


def _plain(codec: Codec, value: Any) -> Any:
    try:
        return codec.to_wire(value)
    except NotEncodable:
        return repr(value)


def _cause(notice: Notice, exc: BaseException) -> None:
    notice.ct = type(exc).__name__
    try:
        notice.cm = str(exc)[:1000]
    except Exception:
        notice.cm = "<str() raised>"


def encode_notice(
    codec: Codec,
    head: Notice,
    reason: ExitReason,
    wire_ref: Callable[[Any], Any],
    owner_id: Callable[[Any], str | None],
) -> bytes:
    """``head`` (its ``r``, ``h``... filled in from ``reason``) as a frame. ``wire_ref`` names a
    handler as callers see it; ``owner_id`` gives a new owner's wire id (None if it has none)."""
    notice = head
    if isinstance(reason, Deleted):
        notice.r, notice.a = "deleted", _plain(codec, reason.args)
    elif isinstance(reason, RemovedItself):
        notice.r = "removed"
    elif isinstance(reason, Swapped):
        notice.r, notice.a = "swapped", _plain(codec, reason.args)
        notice.h2, notice.hid2 = _split(codec, wire_ref(reason.new_handler))
        notice.o2 = owner_id(reason.new_owner)
    elif isinstance(reason, Crashed):
        notice.r = "crashed"
        _cause(notice, reason.exception)
    elif isinstance(reason, BadReturn):
        notice.r, notice.a = "bad_return", _plain(codec, reason.value)
    elif isinstance(reason, StartFailed):
        notice.r = "start_failed"
        if isinstance(reason.cause, BaseException):
            _cause(notice, reason.cause)
        else:
            notice.a = _plain(codec, getattr(reason.cause, "value", reason.cause))
    elif isinstance(reason, ManagerNodeDown):  # this node was cut off: the owner must know
        notice.r, notice.a = "node_down", reason.reason
    elif isinstance(reason, OwnerExited):  # never told locally; carried for completeness
        notice.r = "owner"
        if reason.reason is not None:
            _cause(notice, reason.reason)
    else:  # Stopped
        notice.r = "stopped"
    if codec.json:
        return msgspec.json.encode(notice)
    return msgspec.msgpack.encode(notice)


def _split(codec: Codec, ref: Any) -> tuple[str, Any]:
    if isinstance(ref, tuple):
        return str(ref[0]), _plain(codec, ref[1])
    return str(ref), msgspec.UNSET


def decode_notice(data: bytes) -> Notice:
    """A notice from either encoding, or :class:`MalformedMessage` whatever the bytes."""
    try:
        notice = _DECODERS[1 if Codec.is_json(data) else 0].decode(data)
    except (msgspec.DecodeError, msgspec.ValidationError, ValueError, TypeError) as exc:
        raise MalformedMessage(f"not a genevent exit notice: {exc}") from None
    except RecursionError:
        raise MalformedMessage("not a genevent exit notice: nested too deeply") from None
    if notice.v != VERSION:
        raise MalformedMessage(f"an exit notice of protocol version {notice.v!r}")
    if notice.r not in _KINDS:
        raise MalformedMessage(f"an exit notice of an unknown kind {notice.r!r}")
    return notice


def handler_of(codec: Codec, name: str, hid: Any) -> Any:
    """A handler reference as the caller's side names it: ``name`` or ``(name, id)``."""
    if hid is msgspec.UNSET:
        return name
    return (name, codec.from_wire(hid))


def reason_of(codec: Codec, notice: Notice, new_owner: Callable[[str | None], Any]) -> ExitReason:
    """The :data:`~genevent.ExitReason` a notice stands for (``new_owner`` maps a wire owner id
    to what the caller knows it as). Raises :class:`MalformedMessage` for bad values."""
    kind = notice.r
    cause = RemoteException(notice.ct or "Exception", notice.cm)
    if kind == "deleted":
        return Deleted(codec.from_wire(notice.a))
    if kind == "removed":
        return RemovedItself()
    if kind == "swapped":
        new = handler_of(codec, notice.h2 or "", notice.hid2)
        return Swapped(codec.from_wire(notice.a), new, new_owner(notice.o2))
    if kind == "crashed":
        return Crashed(cause)
    if kind == "bad_return":
        return BadReturn(codec.from_wire(notice.a))
    if kind == "start_failed":
        return StartFailed(cause if notice.ct else BadReturn(codec.from_wire(notice.a)))
    if kind == "owner":
        return OwnerExited(cause if notice.ct else None)
    if kind == "node_down":
        return ManagerNodeDown(notice.n, "nodedown" if notice.a == "nodedown" else "noconnection")
    return Stopped()


def owner_reason(future: asyncio.Future[Any]) -> tuple[str | None, str]:
    """How an owner ended, for the wire: ``(None, "")`` normally, ``("CancelledError", "")``
    when cancelled, else its exception's class name and text."""
    if future.cancelled():
        return "CancelledError", ""
    exc = future.exception()
    if exc is None:
        return None, ""
    try:
        text = str(exc)[:1000]
    except Exception:
        text = "<str() raised>"
    return type(exc).__name__, text


OWNER_CUT_OFF: Final = "OwnerNodeDown"
"""The ``owner_exit`` kind its node sends for an owner whose handlers it forgot because it was
cut off past its lease (the owner itself lives on)."""


def owner_exception(kind: str | None, text: str, node: str = "") -> BaseException | None:
    """The :class:`~genevent.OwnerExited` reason for an owner (of ``node``) that ended as the
    wire says."""
    if kind is None:
        return None
    if kind == "CancelledError":
        return asyncio.CancelledError()
    if kind == OWNER_CUT_OFF:
        return OwnerNodeDown(node, "noconnection")
    return RemoteException(kind, text)
