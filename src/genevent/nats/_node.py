"""A node: one NATS connection that hosts local asyncio managers and reaches remote ones.

Subjects (``ns`` is the namespace, ``M`` a manager name, ``N`` a node id)::

    ge.<ns>.mgr.<M>        every request to M (notify without a reply subject, the rest
                           request-reply); ONE subscription per hosted manager, so a call
                           never overtakes an earlier notify from the same connection
    ge.<ns>.down.<M>       "M stopped" notices for monitors
    KV ge_<ns>_names       key mgr.<M> -> {"node": N}   (atomic claim by create)
    KV ge_<ns>_nodes       key node.<N> -> lease, renewed every lease/5 s, expires after lease
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import os
import socket
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable, Hashable, Iterable
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Final, Literal

import msgspec
import nats
import nats.errors
import nats.js.errors
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js.api import KeyValueConfig, StorageType
from nats.js.kv import KeyValue

from .. import aio
from .._checks import check_timeout
from .._core import NO_ARGS, restart_spec
from .._errors import (
    CallNotSupported,
    CallTimeout,
    GenEventError,
    HandlerBadReturn,
    HandlerCrashed,
    HandlerExists,
    HandlerInitFailed,
    HandlerNotFound,
    InvalidHandler,
    MailboxFull,
    ManagerNotRunning,
    NameTaken,
    TerminateFailed,
    WrongRuntime,
)
from .._lanes import check_isolation
from .._metrics import plain_stats
from .._text import short
from ._errors import (
    InvalidName,
    MalformedMessage,
    ManagerNotFound,
    NodeDown,
    NotEncodable,
    PayloadTooLarge,
    RemoteError,
    RemoteException,
    TransportDown,
)
from ._wire import VERSION, Codec, Reply, Request, TypeRegistry, check_name

__all__ = ("Down", "DownReason", "Monitor", "Node", "RemoteManager", "connect")

log = logging.getLogger("genevent.nats")

DownReason = Literal["noproc", "nodedown", "noconnection"]
"""Why a monitor fired: the manager stopped (``noproc``), its node's lease expired
(``nodedown``), or this node's own NATS connection went down (``noconnection``)."""


@dataclass(frozen=True, slots=True)
class Down:
    """A monitor's notice (Erlang's ``{'DOWN', Ref, process, {Name, Node}, Reason}``)."""

    name: str
    node: str | None
    reason: DownReason


class Monitor:
    """Watches one remote manager; fires once. Await :meth:`wait` (or ``await monitor``)."""

    def __init__(self, node: Node, name: str, where: str | None) -> None:
        self._node = node
        #: the manager name
        self.name = name
        #: the node that hosted it when the monitor was set (None if unknown)
        self.node = where
        self._fut: asyncio.Future[Down] = asyncio.get_running_loop().create_future()

    def _fire(self, reason: DownReason, node: str | None = None) -> None:
        if not self._fut.done():
            self._fut.set_result(Down(self.name, node or self.node, reason))
        self._node._monitors.discard(self)

    def done(self) -> bool:
        """Whether the notice arrived."""
        return self._fut.done()

    async def wait(self, timeout: float | None = None) -> Down:
        """The :class:`Down` notice, once the manager or its node is gone."""
        try:
            return await asyncio.wait_for(asyncio.shield(self._fut), timeout)
        except TimeoutError:
            raise CallTimeout(f"monitor of {self.name!r}", timeout or 0.0) from None

    def __await__(self) -> Any:
        return self.wait().__await__()

    def cancel(self) -> None:
        """Stop watching (no notice will come)."""
        self._node._monitors.discard(self)
        if not self._fut.done():
            self._fut.cancel()


class _Pending:
    __slots__ = ("fut", "name", "node")

    def __init__(self, fut: asyncio.Future[bytes], name: str, node: str | None) -> None:
        self.fut = fut
        self.name = name
        self.node = node


class _Hosted:
    __slots__ = ("bounded", "busy", "idle", "mgr", "name", "revision", "sub", "watcher")

    def __init__(self, name: str, mgr: aio.EventManager[Any]) -> None:
        self.name = name
        self.mgr = mgr
        self.sub: Any = None
        self.revision = 0
        self.watcher: asyncio.Task[None] | None = None
        self.bounded = False  # a bounded mailbox under "block": notify waits for room
        self.busy = 0  # requests being served (the subscription's callback is running)
        self.idle = asyncio.Event()


_ERRORS_BY_HANDLER: Final[dict[type[GenEventError], str]] = {
    HandlerNotFound: "HandlerNotFound",
    HandlerExists: "HandlerExists",
    HandlerInitFailed: "HandlerInitFailed",
    HandlerCrashed: "HandlerCrashed",
    HandlerBadReturn: "HandlerBadReturn",
    CallNotSupported: "CallNotSupported",
    TerminateFailed: "TerminateFailed",
}
_SEP: Final = "\x00"


def _default_node_id() -> str:
    host = "".join(c if c.isalnum() or c in "_-" else "-" for c in socket.gethostname())[:24]
    return f"{host or 'node'}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


class Node:
    """One OS process's presence in a genevent cluster: a NATS connection, the managers it
    hosts (asyncio managers, served by name), and the way to reach everyone else's.

    Create it with :func:`connect` (or ``await Node.connect(...)``); use ``async with``.
    Register the handler classes remote callers may add (:meth:`register_handler`) and the
    user types that may travel (:meth:`register_type`): nothing else is ever instantiated
    from the wire.
    """

    def __init__(
        self,
        *,
        ns: str = "default",
        node_id: str | None = None,
        codec: Literal["msgpack", "json"] = "msgpack",
        lease: float = 1.5,
        max_frame: int | None = None,
    ) -> None:
        """Internal: use :func:`connect`."""
        #: the namespace: nodes only see managers of their own namespace
        self.ns = check_name(ns, "namespace")
        #: this node's id (unique in the cluster)
        self.id = check_name(node_id or _default_node_id(), "node id")
        if codec not in ("msgpack", "json"):
            raise ValueError(f"codec must be 'msgpack' or 'json', not {codec!r}")
        if lease <= 0:
            raise ValueError("lease must be > 0 seconds")
        self.types = TypeRegistry()
        self._codec = Codec(self.types, json=codec == "json")
        self._json_codec = self._codec if codec == "json" else Codec(self.types, json=True)
        self._mp_codec = self._codec if codec == "msgpack" else Codec(self.types, json=False)
        #: lease time in seconds: a node silent for this long is declared down
        self.lease = lease
        self._max_frame = max_frame
        self._handlers: dict[str, type] = {}
        self._handler_names: dict[type, str] = {}
        self._hosted: dict[str, _Hosted] = {}
        self._pending: dict[str, _Pending] = {}
        self._monitors: set[Monitor] = set()
        self._where: dict[str, str] = {}  # manager name -> node id (from claims and replies)
        self._seen: dict[str, tuple[float, float]] = {}  # node id -> (last heartbeat, lease)
        self._tokens = itertools.count(1)
        self._out: deque[tuple[str, str | None, bytes]] = deque()  # reply None: a notify
        self._out_ready = asyncio.Event()
        self._tasks: list[asyncio.Task[Any]] = []
        self._background: set[asyncio.Task[Any]] = set()
        self._leaving: dict[str, asyncio.Event] = {}
        self._closing = False
        self._nc: Client = Client()
        self._names: KeyValue | None = None
        self._nodes: KeyValue | None = None
        self._inbox = ""
        self._pfx = f"ge.{self.ns}"
        #: frames refused as malformed (or too large) since the start
        self.refused = 0

    # -- lifecycle ----------------------------------------------------------------------------

    @classmethod
    async def connect(
        cls,
        servers: str | list[str] = "nats://127.0.0.1:4222",
        *,
        ns: str = "default",
        node_id: str | None = None,
        codec: Literal["msgpack", "json"] = "msgpack",
        lease: float = 1.5,
        max_frame: int | None = None,
        handlers: Iterable[type] = (),
        types: Iterable[type] = (),
        **nats_options: Any,
    ) -> Node:
        """Connect a node. ``nats_options`` pass through to :func:`nats.connect` (``user``,
        ``password``, ``token``, ``user_credentials``, ``nkeys_seed``, ``tls``,
        ``tls_hostname``, ``max_reconnect_attempts``, ...)."""
        node = cls(ns=ns, node_id=node_id, codec=codec, lease=lease, max_frame=max_frame)
        for h in handlers:
            node.register_handler(h)
        for t in types:
            node.register_type(t)
        await node._start(servers, nats_options)
        return node

    async def _start(self, servers: str | list[str], options: dict[str, Any]) -> None:
        opts: dict[str, Any] = {
            "name": self.id,
            "max_reconnect_attempts": -1,
            "reconnect_time_wait": 0.25,
            "error_cb": self._on_error,
            "disconnected_cb": self._on_disconnected,
            "reconnected_cb": self._on_reconnected,
            "closed_cb": self._on_closed,
        }
        opts.update(options)
        try:
            await self._nc.connect(servers, **opts)
        except BaseException:
            # nats-py leaves the socket of a refused connection (bad credentials) open
            with contextlib.suppress(Exception):
                await self._nc.close()
            transport = getattr(self._nc, "_transport", None)
            if transport is not None:
                transport.close()
            raise
        try:
            js = self._nc.jetstream()
            self._names = await self._bucket(js, f"ge_{self.ns}_names", None)
            self._nodes = await self._bucket(js, f"ge_{self.ns}_nodes", self.lease)
            self._inbox = self._nc.new_inbox()
            await self._nc.subscribe(self._inbox + ".*", cb=self._on_reply)
            await self._nc.subscribe(f"$KV.ge_{self.ns}_nodes.>", cb=self._on_heartbeat)
            await self._nc.subscribe(f"{self._pfx}.down.*", cb=self._on_down_notice)
            await self._renew()
            await sync(self._nc)
        except BaseException:
            await self._nc.close()
            raise
        loop = asyncio.get_running_loop()
        self._tasks = [
            loop.create_task(self._writer()),
            loop.create_task(self._lease_loop()),
            loop.create_task(self._detector()),
        ]

    @staticmethod
    async def _bucket(js: Any, name: str, ttl: float | None) -> KeyValue:
        try:
            kv: KeyValue = await js.key_value(name)
            return kv
        except nats.js.errors.BucketNotFoundError:
            pass
        config = KeyValueConfig(bucket=name, history=1, ttl=ttl, storage=StorageType.FILE)
        try:
            kv = await js.create_key_value(config)
        except nats.js.errors.APIError:  # created by another node meanwhile
            kv = await js.key_value(name)
        return kv

    async def close(self) -> None:
        """Stop every hosted manager (handlers terminated, names freed), leave the cluster
        (the node's lease is deleted, so others see it gone at once) and disconnect."""
        if self._closing:
            return
        self._closing = True
        for hosted in list(self._hosted.values()):
            with contextlib.suppress(GenEventError):
                if hosted.mgr.is_running:
                    await hosted.mgr.stop()
            await self._unhost(hosted.name)
        if self._nc.is_connected and self._nodes is not None:
            with contextlib.suppress(Exception):
                await self._nodes.delete(f"node.{self.id}")
        self._fail_all(TransportDown("the node is closing"))
        for mon in list(self._monitors):
            mon._fire("noconnection")
        with contextlib.suppress(Exception):
            await self._flush_out()
        await asyncio.gather(*self._background, return_exceptions=True)
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._nc.is_connected:
            with contextlib.suppress(Exception):
                await self._nc.drain()
        if not self._nc.is_closed:
            await self._nc.close()

    async def __aenter__(self) -> Node:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    def __repr__(self) -> str:
        return f"<genevent.nats.Node {self.id!r} ns={self.ns!r} hosting={sorted(self._hosted)}>"

    @property
    def is_connected(self) -> bool:
        """Whether the NATS connection is up right now."""
        return bool(self._nc.is_connected) and not self._closing

    @property
    def nats(self) -> Client:
        """The underlying nats-py client (for subjects of your own)."""
        return self._nc

    # -- registries ---------------------------------------------------------------------------

    def register_handler(self, cls: type, name: str | None = None) -> str:
        """Allow remote callers to add ``cls`` under ``name`` (default: the class name); the
        name is also how this node's handlers are reported to callers. Return the name."""
        if not isinstance(cls, type) or not hasattr(cls, "handle_event"):
            raise InvalidHandler(f"{cls!r} is not a handler class (no handle_event)")
        name = check_name(cls.__name__ if name is None else name, "handler name")
        held = self._handlers.get(name)
        if held is not None and held is not cls:
            raise ValueError(f"the handler name {name!r} is registered for {held!r}")
        self._handlers[name] = cls
        self._handler_names[cls] = name
        return name

    def register_type(self, cls: type, name: str | None = None) -> str:
        """Allow instances of ``cls`` (a dataclass or msgspec Struct) to travel as events,
        requests and replies, under ``name`` (default: the class name). Both ends register."""
        return self.types.register(cls, name)

    # -- hosting ------------------------------------------------------------------------------

    async def start_manager(
        self,
        name: str,
        *,
        maxsize: int | None = None,
        overflow: Literal["block", "drop_newest", "drop_oldest", "raise"] = "block",
        timing: bool = False,
    ) -> aio.EventManager[Any]:
        """Start a local asyncio manager, claim ``name`` across the cluster and serve it.

        Raises :class:`~genevent.NameTaken` if a live node holds the name (a name whose node's
        lease expired is taken over) and :class:`InvalidName` for a name NATS cannot carry.
        The manager is an ordinary :mod:`genevent.aio` manager: use it locally as usual;
        stopping it (locally or remotely) frees the name. ``maxsize``, ``overflow`` and
        ``timing`` are :func:`genevent.aio.start`'s; under ``"block"`` a full mailbox makes
        this node wait before it takes the next remote request for the manager (NATS keeps
        them meanwhile)."""
        check_name(name)
        self._check_up()
        if name in self._hosted:
            raise NameTaken(name, self.id)
        mgr: aio.EventManager[Any] = aio.start(maxsize=maxsize, overflow=overflow, timing=timing)
        try:
            revision = await self._claim(name)
        except BaseException:
            await mgr.stop()
            raise
        hosted = _Hosted(name, mgr)
        hosted.revision = revision
        hosted.bounded = maxsize is not None and overflow == "block"
        self._hosted[name] = hosted
        self._where[name] = self.id
        try:
            hosted.sub = await self._nc.subscribe(
                f"{self._pfx}.mgr.{name}", cb=self._server(hosted)
            )
            await sync(self._nc)  # the server has the subscription: requests reach it
        except BaseException:
            await mgr.stop()
            await self._unhost(name)
            raise
        hosted.watcher = asyncio.get_running_loop().create_task(self._watch_stop(hosted))
        return mgr

    async def _claim(self, name: str) -> int:
        assert self._names is not None
        assert self._nodes is not None
        key = f"mgr.{name}"
        value = json.dumps({"node": self.id}).encode()
        try:
            return await self._names.create(key, value)
        except nats.js.errors.KeyWrongLastSequenceError:
            pass
        try:
            entry = await self._names.get(key)
        except nats.js.errors.KeyNotFoundError:  # freed meanwhile: one more try
            try:
                return await self._names.create(key, value)
            except nats.js.errors.KeyWrongLastSequenceError:
                raise NameTaken(name, "another node") from None
        holder = _holder(entry.value)
        if holder != self.id and await self._alive(holder):
            raise NameTaken(name, holder)
        try:  # the holder's lease expired: take the name over, atomically
            return await self._names.update(key, value, last=entry.revision)
        except nats.js.errors.KeyWrongLastSequenceError:
            raise NameTaken(name, "another node") from None

    async def _alive(self, node: str | None) -> bool:
        assert self._nodes is not None
        if node is None:
            return False
        try:
            await self._nodes.get(f"node.{node}")
        except nats.js.errors.KeyNotFoundError:
            return False
        return True

    async def _watch_stop(self, hosted: _Hosted) -> None:
        await hosted.mgr.wait_stopped()
        await self._unhost(hosted.name)

    async def _unhost(self, name: str) -> None:
        hosted = self._hosted.pop(name, None)
        if hosted is None:  # someone else is un-hosting it: return when they are done
            leaving = self._leaving.get(name)
            if leaving is not None:
                await leaving.wait()
            return
        leaving = self._leaving[name] = asyncio.Event()
        try:
            if self._where.get(name) == self.id:
                del self._where[name]
            current = asyncio.current_task()
            if hosted.watcher is not None and hosted.watcher is not current:
                hosted.watcher.cancel()
            if self._names is not None and self._nc.is_connected and hosted.revision >= 0:
                with contextlib.suppress(Exception):
                    await self._names.delete(f"mgr.{name}", last=hosted.revision)
            # unsubscribing cancels the subscription's task, which may be serving the very
            # request that stopped the manager: a task of its own waits until it answered
            task = asyncio.get_running_loop().create_task(self._unsubscribe(hosted))
            self._background.add(task)
            task.add_done_callback(self._background.discard)
        finally:
            del self._leaving[name]
            leaving.set()

    async def _unsubscribe(self, hosted: _Hosted) -> None:
        while hosted.busy:
            hosted.idle.clear()
            await hosted.idle.wait()
        with contextlib.suppress(Exception):
            if hosted.sub is not None:
                await hosted.sub.unsubscribe()
            if self._nc.is_connected:
                await sync(self._nc)  # the server stopped routing to it before monitors hear
        notice = json.dumps({"node": self.id, "reason": "noproc"}).encode()
        with contextlib.suppress(Exception):
            await self._nc.publish(f"{self._pfx}.down.{hosted.name}", notice)

    def hosted(self) -> dict[str, aio.EventManager[Any]]:
        """The managers this node serves, by name."""
        return {name: h.mgr for name, h in self._hosted.items()}

    # -- reaching managers --------------------------------------------------------------------

    def manager(self, name: str) -> RemoteManager:
        """A reference to the manager ``name`` wherever it runs (this node included: requests
        then still go through NATS, in order with everyone else's)."""
        return RemoteManager(self, check_name(name))

    async def managers(self) -> dict[str, str]:
        """The cluster's managers in this namespace: ``{name: node id}``, only those whose
        node holds a live lease."""
        assert self._names is not None
        assert self._nodes is not None
        self._check_up()
        js = self._nc.jetstream()
        names = await _entries(js, self._names, f"ge_{self.ns}_names")
        live = set(await _entries(js, self._nodes, f"ge_{self.ns}_nodes"))
        out = {}
        for key, value in names.items():
            holder = _holder(value)
            if key.startswith("mgr.") and holder is not None and f"node.{holder}" in live:
                out[key[4:]] = holder
        return dict(sorted(out.items()))

    async def nodes(self) -> list[str]:
        """The ids of the nodes holding a live lease in this namespace."""
        assert self._nodes is not None
        self._check_up()
        live = await _entries(self._nc.jetstream(), self._nodes, f"ge_{self.ns}_nodes")
        return sorted(k[5:] for k in live if k.startswith("node."))

    async def whereis(self, name: str) -> str | None:
        """The id of the node serving ``name``, or None."""
        assert self._names is not None
        check_name(name)
        self._check_up()
        try:
            entry = await self._names.get(f"mgr.{name}")
        except nats.js.errors.KeyNotFoundError:
            return None
        holder = _holder(entry.value)
        if holder is None or not await self._alive(holder):
            return None
        self._where[name] = holder
        self._seen.setdefault(holder, (time.monotonic(), self.lease))
        return holder

    async def monitor(self, name: str) -> Monitor:
        """Watch the manager ``name``: the monitor fires once with a :class:`Down` when it
        stops (``noproc``), its node dies (``nodedown``, after the lease time) or this node's
        connection drops (``noconnection``). Unknown name: fires at once with ``noproc``."""
        where = await self.whereis(name)
        mon = Monitor(self, name, where)
        if where is None:
            mon._fire("noproc")
        else:
            self._monitors.add(mon)
        return mon

    # -- the caller's side --------------------------------------------------------------------

    def _check_up(self) -> None:
        if self._closing:
            raise TransportDown(f"node {self.id!r} is closed")
        if not self._nc.is_connected:
            raise TransportDown(f"node {self.id!r} is not connected to NATS")

    def _limit(self) -> int:
        return int(self._nc.max_payload or 1024 * 1024)

    def _encode(self, env: Request | Reply, codec: Codec | None = None) -> bytes:
        data = (codec or self._codec).encode(env)
        if len(data) > self._limit():
            raise PayloadTooLarge(
                f"a {len(data)}-byte frame is larger than the server's max_payload "
                f"({self._limit()} bytes)"
            )
        return data

    def _post(self, subject: str, reply: str | None, payload: bytes) -> None:
        self._out.append((subject, reply, payload))
        self._out_ready.set()

    def _publish(self, name: str, env: Request) -> None:
        """Fire and forget (notify, info)."""
        self._check_up()
        self._post(f"{self._pfx}.mgr.{name}", None, self._encode(env))

    async def _request(self, name: str, env: Request, what: str, timeout: float | None) -> Any:
        timeout = check_timeout(timeout)  # as the local manager: refused before it is sent
        self._check_up()
        payload = self._encode(env)
        node = self._where.get(name)
        if node is None:
            try:  # best effort: knowing the node lets a lapsed lease fail the request early
                node = await self.whereis(name)
            except GenEventError:
                raise
            except Exception:
                node = None
            self._check_up()
        token = str(next(self._tokens))
        fut: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        self._pending[token] = _Pending(fut, name, node)
        self._post(f"{self._pfx}.mgr.{name}", f"{self._inbox}.{token}", payload)
        try:
            if timeout is None:
                data = await fut
            else:
                try:
                    data = await asyncio.wait_for(fut, timeout)
                except TimeoutError:
                    raise CallTimeout(f"{what} to {name!r}", timeout) from None
        finally:
            self._pending.pop(token, None)
        rep = self._codec.decode_reply(data)
        if rep.n is not None:
            self._where[name] = rep.n
            self._seen.setdefault(rep.n, (time.monotonic(), self.lease))
        if rep.err is not None:
            raise _error_from(rep, name)
        return self._codec.from_wire(rep.ok)

    async def _on_reply(self, msg: Msg) -> None:
        token = msg.subject.rsplit(".", 1)[-1]
        pending = self._pending.get(token)
        if pending is None or pending.fut.done():
            return  # a late reply (the caller timed out) or a stray message
        headers = msg.headers or {}
        if headers.get("Status") == "503":
            pending.fut.set_exception(ManagerNotFound(pending.name))
        else:
            pending.fut.set_result(msg.data)

    async def _writer(self) -> None:
        # one writer, so everything this node publishes leaves in the order it was posted
        while True:
            await self._out_ready.wait()
            self._out_ready.clear()
            await self._flush_out()

    async def _flush_out(self) -> None:
        out = self._out
        while out:
            subject, reply, payload = out.popleft()
            if reply is None and out and out[0][1] is None and out[0][0] == subject:
                # several notifies to one manager are queued: one frame carries them, in order
                payload = self._batch(subject, payload)
            try:
                await self._nc.publish(subject, payload, reply=reply or "")
            except Exception as exc:
                if reply:
                    pending = self._pending.get(reply.rsplit(".", 1)[-1])
                    if pending is not None and not pending.fut.done():
                        pending.fut.set_exception(_transport_error(exc))
                else:
                    log.warning("genevent.nats: a publish to %s failed: %r", subject, exc)

    def _batch(self, subject: str, first: bytes) -> bytes:
        out = self._out
        limit = self._limit() - 64
        frames = [msgspec.Raw(first)]
        size = len(first)
        while out and out[0][1] is None and out[0][0] == subject and len(frames) < 4096:
            nxt = out[0][2]
            if size + len(nxt) + 8 > limit:
                break
            out.popleft()
            frames.append(msgspec.Raw(nxt))
            size += len(nxt) + 8
        return self._codec.encode(Request(v=VERSION, op="batch", body=frames))

    def _fail_all(self, exc: GenEventError) -> None:
        for pending in list(self._pending.values()):
            if not pending.fut.done():
                pending.fut.set_exception(exc)

    # -- the serving side ---------------------------------------------------------------------

    def _server(self, hosted: _Hosted) -> Callable[[Msg], Awaitable[None]]:
        async def serve(msg: Msg) -> None:
            # nats-py runs one subscription's callbacks one after the other: each request is
            # handed to the manager (and a control request answered) before the next one
            hosted.busy += 1
            try:
                await self._serve(hosted, msg)
            finally:
                hosted.busy -= 1
                if not hosted.busy:
                    hosted.idle.set()

        return serve

    async def _serve(self, hosted: _Hosted, msg: Msg) -> None:
        data = msg.data
        reply_to = msg.reply
        codec = self._json_codec if Codec.is_json(data) else self._mp_codec
        max_frame = self._max_frame
        if max_frame is not None and len(data) > max_frame:
            self.refused += 1
            err = PayloadTooLarge(f"a {len(data)}-byte frame; this node takes {max_frame}")
            self._answer(reply_to, _error_reply(err, self.id, self._handler_names), codec)
            return
        try:
            req = codec.decode_request(data)
            if req.op == "batch":
                await self._serve_batch(hosted, req, codec)
                self._answer(reply_to, Reply(v=VERSION, n=self.id), codec)
                return
            body = codec.from_wire(req.body)
        except MalformedMessage as exc:
            self.refused += 1
            log.warning("genevent.nats: refused a frame for %r: %s", hosted.name, exc)
            self._answer(reply_to, _error_reply(exc, self.id, self._handler_names), codec)
            return
        mgr = hosted.mgr
        op = req.op
        try:
            if op == "notify":
                if hosted.bounded:  # back-pressure: NATS holds the rest meanwhile
                    await mgr.notify_wait(body)
                else:
                    mgr.notify(body)
                result: Any = None
            elif op == "info":
                mgr.send(body)
                result = None
            elif op == "sync_notify":
                await mgr.sync_notify(body)
                result = None
            elif op == "call":
                result = await mgr.call(self._local_ref(req.h, req.hid, codec, False), body, None)
            elif op == "add_handler":
                ref = self._local_ref(req.h, req.hid, codec, True)
                opts: dict[str, Any] = {}
                if req.restart is not None:
                    opts["restart"] = req.restart
                if req.max_restarts is not None:
                    opts["max_restarts"] = req.max_restarts
                if req.restart_period is not None:
                    opts["restart_period"] = req.restart_period
                if req.isolation is not None:
                    opts["isolation"] = req.isolation
                    if req.maxsize is not None:
                        opts["maxsize"] = req.maxsize
                    if req.overflow is not None:
                        opts["overflow"] = req.overflow
                    if req.stop_timeout is not None:
                        opts["stop_timeout"] = req.stop_timeout
                await mgr.add_handler(ref, NO_ARGS if req.na else body, **opts)
                result = None
            elif op == "delete_handler":
                ref = self._local_ref(req.h, req.hid, codec, False)
                result = await mgr.delete_handler(ref, body)
            elif op == "swap_handler":
                old = self._local_ref(req.h, req.hid, codec, False, missing_ok=True)
                new = self._local_ref(req.h2, req.hid2, codec, True)
                args2 = NO_ARGS if req.na2 else codec.from_wire(req.body2)
                await mgr.swap_handler(old, body, new, args2)
                result = None
            elif op == "which_handlers":
                result = [self._wire_ref(r) for r in await mgr.which_handlers()]
            elif op == "get_state":
                result = [
                    (self._wire_ref(r), _plain_or_repr(codec, s)) for r, s in await mgr.get_state()
                ]
            elif op == "stats":  # genevent top's cluster view: plain data, read, never waits
                result = plain_stats(mgr.stats())
            else:  # "stop"
                await mgr.stop()
                await self._unhost(hosted.name)
                result = None
            rep = Reply(v=VERSION, ok=codec.to_wire(result), n=self.id)
        except (GenEventError, MalformedMessage) as exc:
            rep = _error_reply(exc, self.id, self._handler_names)
        except Exception as exc:  # never let a request crash the node
            log.exception("genevent.nats: %s on %r failed", op, hosted.name)
            rep = Reply(v=VERSION, err=type(exc).__name__, msg=_text_of(exc), n=self.id)
        self._answer(reply_to, rep, codec)

    async def _serve_batch(self, hosted: _Hosted, req: Request, codec: Codec) -> None:
        """Several notifies (or infos) in one frame, handled in order; a malformed one is
        refused alone."""
        if type(req.body) is not list:
            raise MalformedMessage("a batch takes a list of notify/info envelopes")
        mgr = hosted.mgr
        for item in req.body:
            try:
                one = codec.check_request(item)
                if one.op not in ("notify", "info"):
                    raise MalformedMessage(f"a batch carries notify and info only, not {one.op!r}")
                value = codec.from_wire(one.body)
            except MalformedMessage as exc:
                self.refused += 1
                log.warning("genevent.nats: refused a batched frame for %r: %s", hosted.name, exc)
                continue
            try:
                if one.op == "info":
                    mgr.send(value)
                elif hosted.bounded:
                    await mgr.notify_wait(value)
                else:
                    mgr.notify(value)
            except GenEventError as exc:  # fire-and-forget: nobody to tell
                log.debug("genevent.nats: a batched %s for %r failed: %r", one.op, hosted.name, exc)

    def _answer(self, reply_to: str, rep: Reply, codec: Codec) -> None:
        if not reply_to:
            return
        try:
            payload = self._encode(rep, codec)
        except (NotEncodable, PayloadTooLarge) as exc:
            payload = self._encode(_error_reply(exc, self.id, self._handler_names), codec)
        self._post(reply_to, "", payload)

    def _local_ref(
        self, name: str | None, hid: Any, codec: Codec, adding: bool, missing_ok: bool = False
    ) -> Any:
        cls = self._handlers.get(name) if name is not None else None
        ident = msgspec.UNSET if hid is msgspec.UNSET else codec.from_wire(hid)
        if cls is None:
            if adding or not missing_ok:
                if adding:
                    raise InvalidHandler(
                        f"no handler class is registered as {name!r} on node {self.id!r}"
                    )
                raise HandlerNotFound(name if ident is msgspec.UNSET else (name, ident))
            return (_Unregistered, name)  # never installed: a swap treats it as missing
        if ident is msgspec.UNSET:
            return cls
        if not isinstance(ident, Hashable):
            raise MalformedMessage("a handler id must be hashable")
        return (cls, ident)

    def _wire_ref(self, ref: Any) -> Any:
        if isinstance(ref, tuple):
            return (self._handler_names.get(ref[0], ref[0].__qualname__), ref[1])
        return self._handler_names.get(ref, getattr(ref, "__qualname__", repr(ref)))

    # -- liveness -----------------------------------------------------------------------------

    async def _renew(self) -> None:
        assert self._nodes is not None
        info = {"lease": self.lease, "pid": os.getpid(), "host": socket.gethostname()}
        await self._nodes.put(f"node.{self.id}", json.dumps(info).encode())

    async def _lease_loop(self) -> None:
        renewed = time.monotonic()
        while True:
            await asyncio.sleep(self.lease / 5)
            if self._nc.is_connected:
                try:
                    await self._renew()
                except Exception as exc:  # JetStream not ready yet after a restart, ...
                    log.debug("genevent.nats: lease renewal failed: %r", exc)
                    continue
                lapsed = time.monotonic() - renewed > self.lease
                renewed = time.monotonic()
                if lapsed:  # we were stalled (or cut off) past our lease: names may be gone
                    await self._verify_names()

    async def _verify_names(self) -> None:
        """Stop serving every name another node claimed while our lease had lapsed."""
        assert self._names is not None
        for name, hosted in list(self._hosted.items()):
            try:
                entry = await self._names.get(f"mgr.{name}")
                holder = _holder(entry.value)
            except nats.js.errors.KeyNotFoundError:
                holder = None
            except Exception:
                continue  # cannot tell now; the next lapse checks again
            if holder == self.id:
                continue
            log.warning(
                "genevent.nats: node %r lost the name %r to %r while its lease had lapsed; "
                "stopping its manager",
                self.id,
                name,
                holder,
            )
            hosted.revision = -1  # never delete the new holder's claim
            with contextlib.suppress(GenEventError):
                await hosted.mgr.stop()
            await self._unhost(name)

    async def _on_heartbeat(self, msg: Msg) -> None:
        node = msg.subject.rsplit("node.", 1)[-1]
        if node == self.id:
            return
        headers = msg.headers or {}
        if headers.get("KV-Operation") in ("DEL", "PURGE") or not msg.data:
            self._node_down(node)  # it left (closed) or its lease was purged
            return
        try:
            lease = float(json.loads(msg.data)["lease"])
        except (ValueError, KeyError, TypeError):
            lease = self.lease
        self._seen[node] = (time.monotonic(), lease)

    async def _detector(self) -> None:
        while True:
            await asyncio.sleep(min(self.lease, 1.0) / 5)
            if not self._nc.is_connected:
                continue
            now = time.monotonic()
            for node, (seen, lease) in list(self._seen.items()):
                if now - seen > lease:
                    self._node_down(node)

    def _node_down(self, node: str) -> None:
        self._seen.pop(node, None)
        for name, where in list(self._where.items()):
            if where == node:
                del self._where[name]
        for pending in list(self._pending.values()):
            if pending.node == node and not pending.fut.done():
                pending.fut.set_exception(NodeDown(pending.name, node))
        for mon in list(self._monitors):
            if mon.node == node:
                mon._fire("nodedown", node)

    async def _on_down_notice(self, msg: Msg) -> None:
        name = msg.subject.rsplit(".", 1)[-1]
        try:
            node = str(json.loads(msg.data)["node"])
        except (ValueError, KeyError, TypeError):
            return
        if self._where.get(name) == node:
            del self._where[name]
        for mon in list(self._monitors):
            if mon.name == name and mon.node in (node, None):
                mon._fire("noproc", node)

    async def _on_error(self, exc: Exception) -> None:
        log.debug("genevent.nats: %s: %r", self.id, exc)

    async def _on_disconnected(self) -> None:
        self._fail_all(TransportDown(f"node {self.id!r} lost its NATS connection"))
        for mon in list(self._monitors):
            mon._fire("noconnection")

    async def _on_reconnected(self) -> None:
        now = time.monotonic()
        self._seen = {node: (now, lease) for node, (_, lease) in self._seen.items()}
        with contextlib.suppress(Exception):
            await self._renew()
            await self._verify_names()

    async def _on_closed(self) -> None:
        self._fail_all(TransportDown(f"node {self.id!r} is closed"))


class _Unregistered:
    """Stands for a handler name this node does not know (never installed)."""


class RemoteManager:
    """A reference to a manager served by some node, with the asyncio manager's API for
    everything that is plain data. Get one with :meth:`Node.manager`.

    A handler is named by its registered name (``"Broadcast"``), ``(name, id)``, or a handler
    class registered on this node (its registered name is sent). Values cross the wire as the
    codec allows: plain data, tuples, bytes, and types registered on both nodes.
    """

    __slots__ = ("_node", "name")

    def __init__(self, node: Node, name: str) -> None:
        self._node = node
        #: the manager's name
        self.name = name

    def __repr__(self) -> str:
        return f"<RemoteManager {self.name!r} via {self._node.id!r}>"

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, RemoteManager)
            and other.name == self.name
            and other._node is self._node
        )

    def __hash__(self) -> int:
        return hash((RemoteManager, self.name, id(self._node)))

    def _ref(self, handler: Any) -> tuple[str, Any]:
        ident: Any = msgspec.UNSET
        if isinstance(handler, tuple) and len(handler) == 2:
            handler, ident = handler
            ident = self._node._codec.to_wire(ident)
        if isinstance(handler, type):
            name = self._node._handler_names.get(handler, handler.__name__)
        elif isinstance(handler, str):
            name = handler
        else:
            raise InvalidHandler(
                f"a remote handler is a registered name, (name, id) or a class, not {handler!r}"
            )
        return name, ident

    def _req(self, op: str, body: Any = None, handler: Any = None) -> Request:
        codec = self._node._codec
        env = Request(v=VERSION, op=op, body=codec.to_wire(body))
        if handler is not None:
            env.h, env.hid = self._ref(handler)
        return env

    def notify(self, event: Any) -> None:
        """Publish ``event`` to the manager and return at once. Fire-and-forget, as OTP's
        notify to ``{Name, Node}``: nothing tells whether anyone received it. Ordered with
        this node's other requests to the manager. Raises :class:`TransportDown`,
        :class:`NotEncodable` or :class:`PayloadTooLarge` (nothing was sent)."""
        self._node._publish(self.name, self._req("notify", event))

    def send(self, message: Any) -> None:
        """Publish an info ``message`` for every handler's ``handle_info``; as :meth:`notify`."""
        self._node._publish(self.name, self._req("info", message))

    async def sync_notify(self, event: Any, *, timeout: float | None = None) -> None:
        """Deliver ``event`` and return once every handler ran it."""
        await self._node._request(
            self.name, self._req("sync_notify", event), "sync_notify", timeout
        )

    async def call(self, handler: Any, request: Any, timeout: float | None = 5.0) -> Any:
        """One handler's ``handle_call(request)`` reply (default timeout 5 s, as OTP).
        Besides the local errors: :class:`ManagerNotFound`, :class:`NodeDown`,
        :class:`TransportDown`, :class:`~genevent.CallTimeout`. A timed-out or node-down call
        may still have run."""
        env = self._req("call", request, handler)
        return await self._node._request(self.name, env, "call", timeout)

    async def add_handler(
        self,
        handler: Any,
        args: Any = NO_ARGS,
        *,
        timeout: float | None = None,
        restart: Literal["temporary", "transient", "permanent"] = "temporary",
        max_restarts: int = 3,
        restart_period: float = 5.0,
        isolation: Literal["task", "thread"] | None = None,
        maxsize: int | None = None,
        overflow: Literal["drop_oldest", "drop_newest"] = "drop_oldest",
        stop_timeout: float = 5.0,
    ) -> None:
        """Install the handler class registered under ``handler`` on the serving node
        (:class:`~genevent.InvalidHandler` if it registered none by that name). The restart
        and isolation options are the local manager's; the serving node applies them (they are
        checked here first, so a bad one raises ``TypeError``/``ValueError`` as locally)."""
        check_timeout(timeout)
        restart_spec(restart, None, max_restarts, restart_period)
        if isolation is not None and isolation not in ("task", "thread"):
            raise ValueError(f"isolation must be 'task', 'thread' or None, not {isolation!r}")
        check_isolation(maxsize, overflow, stop_timeout, isolation is not None)
        env = self._req("add_handler", None if args is NO_ARGS else args, handler)
        env.na = args is NO_ARGS
        if restart != "temporary":
            env.restart = restart
            env.max_restarts = max_restarts
            env.restart_period = restart_period
        if isolation is not None:
            env.isolation = isolation
            env.maxsize = maxsize
            env.overflow = overflow
            env.stop_timeout = stop_timeout
        await self._node._request(self.name, env, "add_handler", timeout)

    async def delete_handler(
        self, handler: Any, args: Any = None, *, timeout: float | None = None
    ) -> Any:
        """Terminate and remove the handler; return what its ``terminate`` returned."""
        env = self._req("delete_handler", args, handler)
        return await self._node._request(self.name, env, "delete_handler", timeout)

    async def swap_handler(
        self,
        old: Any,
        args1: Any,
        new: Any,
        args2: Any = NO_ARGS,
        *,
        timeout: float | None = None,
    ) -> None:
        """Swap ``old`` for ``new`` on the serving node (the hand-off stays there)."""
        env = self._req("swap_handler", args1, old)
        env.h2, env.hid2 = self._ref(new)
        env.na2 = args2 is NO_ARGS
        env.body2 = None if env.na2 else self._node._codec.to_wire(args2)
        await self._node._request(self.name, env, "swap_handler", timeout)

    async def which_handlers(self, *, timeout: float | None = None) -> list[Any]:
        """The installed handlers, newest first, as registered names or ``(name, id)``."""
        result = await self._node._request(
            self.name, self._req("which_handlers"), "which_handlers", timeout
        )
        return list(result)

    async def get_state(self, *, timeout: float | None = None) -> list[tuple[Any, Any]]:
        """``[(handler, state)]``; a state the wire cannot carry comes as its ``repr``."""
        result = await self._node._request(self.name, self._req("get_state"), "get_state", timeout)
        return [tuple(x) for x in result]

    async def stats(self, *, timeout: float | None = None) -> dict[str, Any]:
        """The manager's :meth:`~genevent.aio.EventManager.stats` as plain data (the fields of
        :class:`~genevent.ManagerStats`, handler references as text), read on the serving node
        without waiting for the manager."""
        result = await self._node._request(self.name, self._req("stats"), "stats", timeout)
        return dict(result)

    async def stop(self, *, timeout: float | None = None) -> None:
        """Stop the manager (every handler terminated); its name is free once this returns."""
        await self._node._request(self.name, self._req("stop"), "stop", timeout)

    async def monitor(self) -> Monitor:
        """Shorthand for ``node.monitor(name)``."""
        return await self._node.monitor(self.name)


async def connect(servers: str | list[str] = "nats://127.0.0.1:4222", **options: Any) -> Node:
    """Connect a :class:`Node` (see :meth:`Node.connect` for the options)."""
    return await Node.connect(servers, **options)


# -- helpers ------------------------------------------------------------------------------------


async def sync(nc: Client) -> None:
    """Return once the server has processed everything ``nc`` sent so far.

    nats-py 2.16's ``flush()`` writes its PING straight to the socket, ahead of commands still
    in the client's buffer (a SUBSCRIBE, say), so its PONG can come back before the server saw
    them. Write the buffer out first."""
    flush_pending = getattr(nc, "_flush_pending", None)
    if flush_pending is not None:
        await flush_pending(force_flush=True)
    await nc.flush()


def _holder(value: bytes | None) -> str | None:
    try:
        node = json.loads(value or b"")["node"]
    except (ValueError, KeyError, TypeError):
        return None
    return node if isinstance(node, str) else None


async def _entries(js: Any, kv: KeyValue, bucket: str) -> dict[str, bytes]:
    """The live keys of a bucket and their values.

    The subjects come from the stream's info (one request, exact), not from ``kv.keys()``,
    whose watcher can report "no keys" when its messages are still on the way."""
    info = await js.stream_info(f"KV_{bucket}", subjects_filter=f"$KV.{bucket}.>")
    prefix = f"$KV.{bucket}."
    out: dict[str, bytes] = {}
    for subject in sorted(info.state.subjects or {}):
        key = subject[len(prefix) :]
        with contextlib.suppress(nats.js.errors.KeyNotFoundError):  # deleted or expired
            entry = await kv.get(key)
            out[key] = entry.value or b""
    return out


def _plain_or_repr(codec: Codec, value: Any) -> Any:
    try:
        codec.to_wire(value)
    except NotEncodable:
        return repr(value)
    return value


def _transport_error(exc: Exception) -> GenEventError:
    if isinstance(exc, nats.errors.MaxPayloadError):
        return PayloadTooLarge(str(exc) or "larger than the server's max_payload")
    return TransportDown(f"publish failed: {exc!r}")


_TEXT_LIMIT: Final = 1000


def _text_of(obj: object) -> str:
    """``str(obj)`` for an error reply, never raising and never huge (an error whose ``__str__``
    raises must still be answered, not leave its caller waiting for a timeout)."""
    try:
        text = str(obj)
    except Exception as exc:
        text = f"<{type(obj).__name__}: str() raised {type(exc).__name__}>"
    return text if len(text) <= _TEXT_LIMIT else text[:_TEXT_LIMIT] + "..."


def _error_reply(exc: Exception, node: str, names: dict[type, str]) -> Reply:
    rep = Reply(v=VERSION, err=type(exc).__name__, msg=_text_of(exc), n=node)
    for cls, kind in _ERRORS_BY_HANDLER.items():
        if isinstance(exc, cls):
            rep.err = kind
            ref = getattr(exc, "handler", None)
            if isinstance(ref, tuple) and len(ref) == 2:
                head, ident = ref
                if isinstance(head, type):
                    head = names.get(head, head.__qualname__)
                rep.h = _text_of(head)
                with contextlib.suppress(NotEncodable):
                    rep.hid = Codec().to_wire(ident)
            elif isinstance(ref, type):
                rep.h = names.get(ref, ref.__qualname__)
            elif ref is not None:
                rep.h = _text_of(ref)
            cause = getattr(exc, "cause", None)
            if isinstance(cause, BaseException):
                rep.ct = type(cause).__name__
                rep.cm = _text_of(cause)
            elif isinstance(exc, HandlerBadReturn):
                rep.ct, rep.cm = "BadReturn", short(exc.value)
            break
    else:
        if isinstance(exc, ManagerNotRunning):
            rep.err = "ManagerNotRunning"
        elif isinstance(exc, MailboxFull):
            rep.err, rep.cm = "MailboxFull", str(exc.maxsize)
    return rep


def _error_from(rep: Reply, name: str) -> GenEventError:
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
        simple: dict[str, type[GenEventError]] = {
            "InvalidHandler": InvalidHandler,
            "MalformedMessage": MalformedMessage,
            "PayloadTooLarge": PayloadTooLarge,
            "NotEncodable": NotEncodable,
            "InvalidName": InvalidName,
            "WrongRuntime": WrongRuntime,
        }
        cls = simple.get(kind)
        exc = cls(rep.msg) if cls is not None else RemoteError(kind, rep.msg)
    if kind in ("HandlerInitFailed", "HandlerCrashed", "TerminateFailed"):
        exc.__cause__ = cause
    return exc
