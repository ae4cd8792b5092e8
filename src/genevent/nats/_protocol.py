"""The request protocol, apart from any transport: what each operation does on the serving
node (a table, with each operation's kind), how handler references cross the wire, and how
errors become reply envelopes and back.

The kinds group the operations by what they may do to a manager: ``notify`` (fire and forget:
notify, info, batch), ``call`` (waits for handlers: call, sync_notify), ``read`` (reads figures,
never changes anything: which_handlers, stats) and ``control`` (changes or exposes the handler
set: add_handler, delete_handler, swap_handler, their supervised forms, owner_exit, get_state,
stop).

Each kind has a subject of its own, ``ge.<ns>.mgr.<M>.<kind>``, so that NATS permissions can
allow one kind and deny another; the serving node refuses an operation that arrives on the
subject of another kind (a client allowed to publish notifies must not be able to put a
``stop`` in the envelope).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Hashable, Mapping
from dataclasses import asdict, dataclass
from typing import Any, Final, Literal, Protocol

import msgspec

from .. import aio
from .._core import NO_ARGS
from .._errors import (
    CallNotSupported,
    GenEventError,
    HandlerBadReturn,
    HandlerCrashed,
    HandlerExists,
    HandlerInitFailed,
    HandlerNotFound,
    InvalidHandler,
    MailboxFull,
    ManagerNotRunning,
    TerminateFailed,
    WrongRuntime,
)
from .._metrics import plain_stats
from .._text import short
from ._errors import (
    InvalidName,
    MalformedMessage,
    NotEncodable,
    PayloadTooLarge,
    RemoteError,
    RemoteException,
)
from ._wire import MAX_BATCH, VERSION, Codec, Reply, Request, check_name

__all__ = (
    "KINDS",
    "OPERATIONS",
    "HandlerNames",
    "Op",
    "OpKind",
    "Served",
    "Supervising",
    "error_from",
    "error_reply",
    "kind_of",
    "subject",
    "text_of",
)

log = logging.getLogger("genevent.nats")

OpKind = Literal["notify", "call", "read", "control"]
"""What an operation may do to a manager (see the module's docstring)."""

KINDS: Final[tuple[OpKind, ...]] = ("notify", "call", "read", "control")
"""Every kind, in the order of what it allows (the last allows everything)."""


class HandlerNames:
    """The handler classes a node lets remote callers add, by registered name, and the way
    handler references cross the wire in both directions."""

    __slots__ = ("by_class", "by_name", "node")

    def __init__(self, node: str) -> None:
        self.node = node
        self.by_name: dict[str, type] = {}
        self.by_class: dict[type, str] = {}

    def register(self, cls: type, name: str | None = None) -> str:
        """Register ``cls`` under ``name`` (default: the class name); return the name."""
        if not isinstance(cls, type) or not hasattr(cls, "handle_event"):
            raise InvalidHandler(f"{cls!r} is not a handler class (no handle_event)")
        name = check_name(cls.__name__ if name is None else name, "handler name")
        held = self.by_name.get(name)
        if held is not None and held is not cls:
            raise ValueError(f"the handler name {name!r} is registered for {held!r}")
        self.by_name[name] = cls
        self.by_class[cls] = name
        return name

    def name_of(self, cls: type) -> str:
        """The name a class is sent as (its registered name, else its own)."""
        return self.by_class.get(cls, cls.__name__)

    def local_ref(
        self, name: str | None, hid: Any, codec: Codec, adding: bool, missing_ok: bool = False
    ) -> Any:
        """The local handler reference a wire reference names."""
        cls = self.by_name.get(name) if name is not None else None
        ident = msgspec.UNSET if hid is msgspec.UNSET else codec.from_wire(hid)
        if cls is None:
            if adding or not missing_ok:
                if adding:
                    raise InvalidHandler(
                        f"no handler class is registered as {name!r} on node {self.node!r}"
                    )
                raise HandlerNotFound(name if ident is msgspec.UNSET else (name, ident))
            return (_Unregistered, name)  # never installed: a swap treats it as missing
        if ident is msgspec.UNSET:
            return cls
        if not isinstance(ident, Hashable):
            raise MalformedMessage("a handler id must be hashable")
        return (cls, ident)

    def wire_ref(self, ref: Any) -> Any:
        """How a local handler reference is reported to callers."""
        if isinstance(ref, tuple):
            return (self.by_class.get(ref[0], ref[0].__qualname__), ref[1])
        return self.by_class.get(ref, getattr(ref, "__qualname__", repr(ref)))


class _Unregistered:
    """Stands for a handler name this node does not know (never installed)."""


class Served(Protocol):
    """What an operation needs of the manager it is served on."""

    @property
    def name(self) -> str:
        """The manager's name."""
        ...

    @property
    def mgr(self) -> aio.EventManager[Any]:
        """The hosted manager."""
        ...

    @property
    def bounded(self) -> bool:
        """Whether a notify waits for room in the manager's mailbox."""
        ...

    @property
    def handlers(self) -> HandlerNames:
        """The serving node's handler names."""
        ...

    @property
    def supervision(self) -> Supervising:
        """The serving node's supervision of remote owners."""
        ...

    def refuse(self, what: str, exc: MalformedMessage, count: int = 1) -> None:
        """Count ``count`` refused frames (or batch items) and log them."""
        ...

    async def stop(self) -> None:
        """Stop the manager and stop serving it."""
        ...


class Supervising(Protocol):
    """What the supervised operations need of the serving node (its stand-ins for remote
    owners, and the notices to them)."""

    async def add(self, served: Served, req: Request, ref: Any, args: Any, opts: Any) -> None:
        """Add ``ref`` to ``served``'s manager, owned by the remote owner ``req.own``."""
        ...

    async def swap(
        self, served: Served, req: Request, old: Any, args1: Any, new: Any, args2: Any
    ) -> None:
        """Swap ``old`` for ``new`` on ``served``'s manager; ``req.own`` owns ``new``."""
        ...

    def owner_exit(self, req: Request, body: Any) -> None:
        """The remote owner ``req.own`` ended (``body`` says how)."""
        ...


OpRun = Callable[[Served, Request, Any, Codec], Awaitable[Any]]
"""An operation: ``(served, request, body, codec) -> result`` (``body`` decoded from
``request.body``, except for ``batch``, which reads the request's raw items itself)."""


@dataclass(frozen=True, slots=True)
class Op:
    """One operation of the protocol: what it does and what kind it is."""

    run: OpRun
    kind: OpKind


async def _notify(served: Served, req: Request, body: Any, codec: Codec) -> None:
    if served.bounded:  # back-pressure: NATS holds the rest meanwhile
        await served.mgr.notify_wait(body)
    else:
        served.mgr.notify(body)


async def _info(served: Served, req: Request, body: Any, codec: Codec) -> None:
    served.mgr.send(body)


_SLICE: Final = 0.001
"""The longest a batch keeps the event loop before it yields (seconds)."""


async def _batch(served: Served, req: Request, body: Any, codec: Codec) -> MalformedMessage | None:
    """Several notifies (or infos) in one frame, handled in order; a malformed one is refused
    alone (counted one by one, logged once for the batch). A batch serves :data:`MAX_BATCH`
    items at most: the rest is refused as one error, which is returned (for the reply, if the
    sender asked for one)."""
    items = req.body
    if type(items) is not list:
        raise MalformedMessage("a batch takes a list of notify/info envelopes")
    over = len(items) - MAX_BATCH
    if over > 0:
        items = items[:MAX_BATCH]
    mgr = served.mgr
    bad = 0
    first: MalformedMessage | None = None
    clock = time.monotonic
    yielded = clock()
    for item in items:
        if clock() - yielded >= _SLICE:  # a long batch never keeps the lease from being renewed
            await asyncio.sleep(0)
            yielded = clock()
        try:
            if type(item) is not dict:  # the cheap refusal first: junk costs little
                raise MalformedMessage(
                    f"a batch carries notify/info envelopes, not a {type(item).__qualname__}"
                )
            one = codec.check_request(item)
            if one.op not in ("notify", "info"):
                raise MalformedMessage(f"a batch carries notify and info only, not {one.op!r}")
            value = codec.from_wire(one.body)
        except MalformedMessage as exc:
            bad += 1
            first = first or exc
            continue
        try:
            if one.op == "info":
                mgr.send(value)
            elif served.bounded:
                await mgr.notify_wait(value)
            else:
                mgr.notify(value)
        except GenEventError as exc:  # fire-and-forget: nobody to tell
            log.debug("genevent.nats: a batched %s for %r failed: %r", one.op, served.name, exc)
    if first is not None:
        served.refuse(f"{bad} batched frame(s), the first one", first, bad)
    if over <= 0:
        return None
    refused = MalformedMessage(
        f"a batch carries at most {MAX_BATCH} notifies: the {over} after them were refused"
    )
    served.refuse("the rest of a batch", refused, over)
    return refused


async def _sync_notify(served: Served, req: Request, body: Any, codec: Codec) -> None:
    await served.mgr.sync_notify(body)


async def _call(served: Served, req: Request, body: Any, codec: Codec) -> Any:
    ref = served.handlers.local_ref(req.h, req.hid, codec, False)
    return await served.mgr.call(ref, body, None)


def _add_options(req: Request) -> dict[str, Any]:
    opts = _given(req, ("restart", "max_restarts", "restart_period"))
    if req.isolation is not None:
        opts.update(_given(req, ("isolation", "maxsize", "overflow", "stop_timeout")))
    return opts


async def _add_handler(served: Served, req: Request, body: Any, codec: Codec) -> None:
    ref = served.handlers.local_ref(req.h, req.hid, codec, True)
    await served.mgr.add_handler(ref, NO_ARGS if req.na else body, **_add_options(req))


async def _add_sup_handler(served: Served, req: Request, body: Any, codec: Codec) -> None:
    ref = served.handlers.local_ref(req.h, req.hid, codec, True)
    args = NO_ARGS if req.na else body
    await served.supervision.add(served, req, ref, args, _add_options(req))


def _given(req: Request, fields: tuple[str, ...]) -> dict[str, Any]:
    """The options among ``fields`` that the request sets."""
    return {f: v for f in fields if (v := getattr(req, f)) is not None}


async def _delete_handler(served: Served, req: Request, body: Any, codec: Codec) -> Any:
    ref = served.handlers.local_ref(req.h, req.hid, codec, False)
    return await served.mgr.delete_handler(ref, body)


def _swap_refs(served: Served, req: Request, codec: Codec) -> tuple[Any, Any, Any]:
    old = served.handlers.local_ref(req.h, req.hid, codec, False, missing_ok=True)
    new = served.handlers.local_ref(req.h2, req.hid2, codec, True)
    return old, new, NO_ARGS if req.na2 else codec.from_wire(req.body2)


async def _swap_handler(served: Served, req: Request, body: Any, codec: Codec) -> None:
    old, new, args2 = _swap_refs(served, req, codec)
    await served.mgr.swap_handler(old, body, new, args2)


async def _swap_sup_handler(served: Served, req: Request, body: Any, codec: Codec) -> None:
    old, new, args2 = _swap_refs(served, req, codec)
    await served.supervision.swap(served, req, old, body, new, args2)


async def _owner_exit(served: Served, req: Request, body: Any, codec: Codec) -> None:
    served.supervision.owner_exit(req, body)


async def _which_handlers(served: Served, req: Request, body: Any, codec: Codec) -> Any:
    return [served.handlers.wire_ref(r) for r in await served.mgr.which_handlers()]


async def _get_state(served: Served, req: Request, body: Any, codec: Codec) -> Any:
    wire_ref = served.handlers.wire_ref
    return [(wire_ref(r), _plain_or_repr(codec, s)) for r, s in await served.mgr.get_state()]


async def _stats(served: Served, req: Request, body: Any, codec: Codec) -> Any:
    # genevent top's cluster view: plain data, read, never waits
    result = plain_stats(served.mgr.stats())
    durable = getattr(served, "durable", None)  # its durable notifies' consumer, if any
    if durable is not None:
        result["durable"] = asdict(durable.stats)
    return result


async def _stop(served: Served, req: Request, body: Any, codec: Codec) -> None:
    await served.stop()


OPERATIONS: Final[Mapping[str, Op]] = {
    "notify": Op(_notify, "notify"),
    "info": Op(_info, "notify"),
    "batch": Op(_batch, "notify"),
    "sync_notify": Op(_sync_notify, "call"),
    "call": Op(_call, "call"),
    "which_handlers": Op(_which_handlers, "read"),
    "stats": Op(_stats, "read"),
    "add_handler": Op(_add_handler, "control"),
    "delete_handler": Op(_delete_handler, "control"),
    "swap_handler": Op(_swap_handler, "control"),
    "get_state": Op(_get_state, "control"),
    "stop": Op(_stop, "control"),
    "add_sup_handler": Op(_add_sup_handler, "control"),
    "swap_sup_handler": Op(_swap_sup_handler, "control"),
    "owner_exit": Op(_owner_exit, "control"),
}
"""Every operation a request may name, by name."""


def kind_of(op: str) -> OpKind:
    """The kind of the operation ``op`` (one of :data:`OPERATIONS`)."""
    return OPERATIONS[op].kind


def subject(prefix: str, name: str, kind: OpKind) -> str:
    """The subject of the manager ``name``'s operations of ``kind`` (``prefix``: ``ge.<ns>``)."""
    return f"{prefix}.mgr.{name}.{kind}"


def _plain_or_repr(codec: Codec, value: Any) -> Any:
    try:
        codec.to_wire(value)
    except NotEncodable:
        return repr(value)
    return value


# -- errors ------------------------------------------------------------------------------------

_ERRORS_BY_HANDLER: Final[dict[type[GenEventError], str]] = {
    HandlerNotFound: "HandlerNotFound",
    HandlerExists: "HandlerExists",
    HandlerInitFailed: "HandlerInitFailed",
    HandlerCrashed: "HandlerCrashed",
    HandlerBadReturn: "HandlerBadReturn",
    CallNotSupported: "CallNotSupported",
    TerminateFailed: "TerminateFailed",
}

_TEXT_LIMIT: Final = 1000


def text_of(obj: object) -> str:
    """``str(obj)`` for an error reply, never raising and never huge (an error whose ``__str__``
    raises must still be answered, not leave its caller waiting for a timeout)."""
    try:
        text = str(obj)
    except Exception as exc:
        text = f"<{type(obj).__name__}: str() raised {type(exc).__name__}>"
    return text if len(text) <= _TEXT_LIMIT else text[:_TEXT_LIMIT] + "..."


def error_reply(exc: Exception, node: str, names: Mapping[type, str]) -> Reply:
    """The reply envelope that tells a caller about ``exc`` (handler classes by ``names``)."""
    rep = Reply(v=VERSION, err=type(exc).__name__, msg=text_of(exc), n=node)
    for cls, kind in _ERRORS_BY_HANDLER.items():
        if isinstance(exc, cls):
            rep.err = kind
            ref = getattr(exc, "handler", None)
            if isinstance(ref, tuple) and len(ref) == 2:
                head, ident = ref
                if isinstance(head, type):
                    head = names.get(head, head.__qualname__)
                rep.h = text_of(head)
                with contextlib.suppress(NotEncodable):
                    rep.hid = Codec().to_wire(ident)
            elif isinstance(ref, type):
                rep.h = names.get(ref, ref.__qualname__)
            elif ref is not None:
                rep.h = text_of(ref)
            cause = getattr(exc, "cause", None)
            if isinstance(cause, BaseException):
                rep.ct = type(cause).__name__
                rep.cm = text_of(cause)
            elif isinstance(exc, HandlerBadReturn):
                rep.ct, rep.cm = "BadReturn", short(exc.value)
            break
    else:
        if isinstance(exc, ManagerNotRunning):
            rep.err = "ManagerNotRunning"
        elif isinstance(exc, MailboxFull):
            rep.err, rep.cm = "MailboxFull", str(exc.maxsize)
    return rep


_SIMPLE_ERRORS: Final[dict[str, type[GenEventError]]] = {
    "InvalidHandler": InvalidHandler,
    "MalformedMessage": MalformedMessage,
    "PayloadTooLarge": PayloadTooLarge,
    "NotEncodable": NotEncodable,
    "InvalidName": InvalidName,
    "WrongRuntime": WrongRuntime,
}


def error_from(rep: Reply, name: str) -> GenEventError:
    """The error an error reply from the manager ``name`` stands for."""
    kind = rep.err or "RemoteError"
    handler: Any = rep.h
    if rep.hid is not msgspec.UNSET:
        with contextlib.suppress(MalformedMessage):
            handler = (rep.h, Codec().from_wire(rep.hid))
    cause = RemoteException(rep.ct or "Exception", rep.cm)
    exc: GenEventError
    if kind == "HandlerNotFound":  # the hosting node's explanation (how it left) kept
        exc = HandlerNotFound(handler, detail=(rep.msg or "").partition(" is not installed")[2])
    elif kind == "HandlerExists":
        exc = HandlerExists(handler)
    elif kind == "HandlerInitFailed":
        exc = HandlerInitFailed(handler, cause)
    elif kind == "HandlerCrashed":
        exc = HandlerCrashed(handler, cause)
    elif kind == "HandlerBadReturn":
        exc = HandlerBadReturn(handler, rep.cm)
    elif kind == "CallNotSupported":
        exc = CallNotSupported(handler)
    elif kind == "TerminateFailed":
        exc = TerminateFailed(handler, cause)
    elif kind == "ManagerNotRunning":
        exc = ManagerNotRunning(name, f" (remote: {rep.msg})")
    elif kind == "MailboxFull":
        exc = MailboxFull(name, int(rep.cm) if rep.cm.isdigit() else 0)
    else:
        cls = _SIMPLE_ERRORS.get(kind)
        exc = cls(rep.msg) if cls is not None else RemoteError(kind, rep.msg)
    if kind in ("HandlerInitFailed", "HandlerCrashed", "TerminateFailed"):
        exc.__cause__ = cause
    return exc
