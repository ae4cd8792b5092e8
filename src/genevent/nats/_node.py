"""A node: one NATS connection that hosts local asyncio managers and reaches remote ones.

Subjects (``ns`` is the namespace, ``M`` a manager name, ``N`` a node id)::

    ge.<ns>.mgr.<M>.<kind> the requests to M of one kind: notify, call, read or control
                           (notify without a reply subject, the rest request-reply); ONE
                           subscription per hosted manager (``ge.<ns>.mgr.<M>.*``), so a
                           call never overtakes an earlier notify from the same connection
    _INBOX_ge.<ns>.<N>.>   N's replies (the connection's inbox prefix)
    ge.<ns>.down.<M>       "M stopped" notices for monitors
    ge.<ns>.own.<N>.<n>    exit notices to the owner n of N (of handlers it supervises
                           through NATS), as requests; N subscribes on its first one
    KV ge_<ns>_names       key mgr.<M> -> {"node": N}   (atomic claim by create)
    KV ge_<ns>_nodes       key node.<N> -> lease, renewed every lease/5 s, expires after lease

The node composes its parts: the link (connection, writer, requests), the names, liveness
(leases, heartbeats, monitors) and serving (the hosted managers).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import uuid
from collections.abc import Awaitable, Callable, Iterable
from types import TracebackType
from typing import Any, Literal

from nats.aio.client import Client

from .. import aio
from .._core import NO_ARGS, HandlerExit
from ._connect import DEFAULT_CONNECT_TIMEOUT, cancel_until_done, first_connect
from ._durable import publish as publish_durable
from ._durable import replay, setup_of
from ._durable_api import Durable, DurableAck, DurableStats
from ._errors import ManagerNotFound, TransportDown
from ._group import RemoteGroup
from ._groups import Groups, GroupVia
from ._link import Link, sync
from ._liveness import Liveness
from ._monitor import Monitor
from ._names import Names
from ._owners import Owners, Ticket
from ._protocol import HandlerNames
from ._remote import RemoteManager
from ._serving import Serving
from ._supervision import Supervision
from ._wire import Codec, Request, TypeRegistry, check_name

_CLOSE_STEP = 3.0  # seconds: the longest a close waits on the server at each step

__all__ = ("Node", "connect")


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
        #: lease time in seconds: a node silent for this long is declared down
        self.lease = lease
        self._link = Link(self.ns, self.id, self.types, codec == "json", lease)
        self._handlers = HandlerNames(self.id)
        self._names = Names(self._link, self.ns)
        self._liveness = Liveness(self._link)
        self._supervision = Supervision(self._link)
        self._owners = Owners(self._link)
        self._serving = Serving(
            self._link, self._names, self._handlers, max_frame, self._supervision
        )
        self._link.locate = self._names.whereis
        self._liveness.on_lapse = self._on_lapse
        self._liveness.on_node_down += [self._supervision.node_down, self._owners.node_down]
        self._liveness.claim_of = self._names.lookup
        self._via = _Via(self)
        self._groups = Groups(self._link, self._names)
        self._group_via = GroupVia(self._link, self._groups)
        self._tasks: list[asyncio.Task[Any]] = []

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
        ``tls_hostname``, ``max_reconnect_attempts``, ...): authentication and encryption are
        NATS's. The node's replies come under the inbox prefix ``_INBOX_ge.<ns>.<node_id>``
        (``inbox_prefix`` overrides it), which NATS permissions can give to this node alone.
        The first connection must come up within ``connect_timeout`` seconds (default 5):
        else, or at once when the server refuses the credentials or TLS fails,
        :class:`ConnectFailed` is raised."""
        node = cls(ns=ns, node_id=node_id, codec=codec, lease=lease, max_frame=max_frame)
        for h in handlers:
            node.register_handler(h)
        for t in types:
            node.register_type(t)
        await node._start(servers, nats_options)
        return node

    async def _start(self, servers: str | list[str], options: dict[str, Any]) -> None:
        link, liveness = self._link, self._liveness
        opts: dict[str, Any] = {
            "name": self.id,
            "max_reconnect_attempts": -1,
            "reconnect_time_wait": 0.25,
            "error_cb": liveness.on_error,
            "disconnected_cb": liveness.on_disconnected,
            "reconnected_cb": liveness.on_reconnected,
            "closed_cb": liveness.on_closed,
            "inbox_prefix": f"_INBOX_ge.{self.ns}.{self.id}",
        }
        opts.update(options)
        # the node needs the server's errors (a denied publish fails its requests): a
        # callback given in the options is called after it
        liveness.error_cb = options.get("error_cb")
        opts["error_cb"] = liveness.on_error
        timeout = opts.get("connect_timeout", DEFAULT_CONNECT_TIMEOUT)  # the whole first try
        await first_connect(lambda o: link.open(servers, o), servers, opts, timeout)
        try:
            await self._names.open(self.lease)
            liveness.leases = self._names.leases
            await link.listen()
            await liveness.listen()
            await liveness.renew()
            await sync(link.nc)
        except BaseException:
            await link.nc.close()
            raise
        loop = asyncio.get_running_loop()
        self._tasks = [
            loop.create_task(link.writer()),
            loop.create_task(liveness.lease_loop()),
            loop.create_task(liveness.detector()),
        ]

    async def _on_lapse(self) -> None:
        if self._liveness.gap > self.lease:  # the others may have taken this node for gone
            self._supervision.cut_off()
            self._owners.cut_off()
        await self._serving.verify_names()

    async def close(self) -> None:
        """Stop every hosted manager (handlers terminated, names freed), leave the cluster
        (the node's lease is deleted, so others see it gone at once) and disconnect."""
        link = self._link
        if link.closing:
            return
        link.closing = True
        await self._serving.stop_all()
        # the exit notices of the handlers stopped: acknowledged before the lease goes
        with contextlib.suppress(Exception):
            await self._supervision.settle(_CLOSE_STEP)
        await self._owners.close()
        # each step that waits on the server is bounded: a server busy with a flood (or gone)
        # delays a close by seconds, never for good (the lease then lapses on its own)
        if link.nc.is_connected:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._liveness.leave(), _CLOSE_STEP)
        link.fail_all(TransportDown("the node is closing"))
        self._liveness.fire_all("noconnection")
        with contextlib.suppress(Exception):
            await asyncio.wait_for(link.flush_out(), _CLOSE_STEP)
        if self._serving.background:
            await asyncio.wait(self._serving.background, timeout=_CLOSE_STEP)
        await self._supervision.close()
        # cancelled again until they end: a lease renewal (nats-py waits with wait_for) can
        # lose a cancellation on Python 3.11 and go on renewing for good
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            await cancel_until_done(task)
        if link.nc.is_connected:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(link.nc.drain(), _CLOSE_STEP)
        if not link.nc.is_closed:
            # nats-py's close writes out what it buffered: a server already gone (killed,
            # unreachable) resets the connection, and the node is closed all the same
            with contextlib.suppress(OSError):
                await asyncio.wait_for(link.nc.close(), _CLOSE_STEP)

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
        hosting = sorted(self._serving.hosted)
        return f"<genevent.nats.Node {self.id!r} ns={self.ns!r} hosting={hosting}>"

    @property
    def is_connected(self) -> bool:
        """Whether the NATS connection is up right now."""
        return bool(self._link.nc.is_connected) and not self._link.closing

    @property
    def nats(self) -> Client:
        """The underlying nats-py client (for subjects of your own)."""
        return self._link.nc

    @property
    def refused(self) -> int:
        """Frames refused as malformed (or too large) since the start."""
        return self._serving.refused

    @property
    def ignored(self) -> dict[str, int]:
        """Frames this node ignored since the start as not coming from where they claim:
        ``replies`` (from another node than the name's holder, or malformed while the holder
        is known), ``down_notices`` (a "stopped" notice whose claim a live node still
        holds, or a malformed one) and ``exit_notices`` (a supervised handler's exit notice
        that is malformed, for an incarnation this node does not know, or not from the node
        holding the handler)."""
        return {
            "replies": self._link.ignored_replies,
            "down_notices": self._liveness.ignored_notices,
            "exit_notices": self._owners.ignored,
        }

    # -- registries ---------------------------------------------------------------------------

    def register_handler(self, cls: type, name: str | None = None) -> str:
        """Allow remote callers to add ``cls`` under ``name`` (default: the class name); the
        name is also how this node's handlers are reported to callers. Return the name."""
        return self._handlers.register(cls, name)

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
        durable: bool | Durable = False,
        standby: bool = False,
        setup: Callable[[aio.EventManager[Any]], Awaitable[None] | None] | None = None,
    ) -> aio.EventManager[Any]:
        """Start a local asyncio manager, claim ``name`` across the cluster and serve it.

        Raises :class:`~genevent.NameTaken` if a live node holds the name (a name whose node's
        lease expired is taken over) and :class:`InvalidName` for a name NATS cannot carry.
        The manager is an ordinary :mod:`genevent.aio` manager: use it locally as usual;
        stopping it (locally or remotely) frees the name. ``maxsize``, ``overflow`` and
        ``timing`` are :func:`genevent.aio.start`'s; under ``"block"`` a full mailbox makes
        this node wait before it takes the next remote request for the manager (NATS keeps
        them meanwhile).

        ``setup(mgr)`` (a function, or an async one) runs once the name is claimed and before
        the manager serves anything: add its handlers there. ``standby=True`` waits until
        no live node holds the name (it is taken over once its node's lease lapsed) instead of
        raising :class:`~genevent.NameTaken`. ``durable=True`` (or a :class:`Durable` with
        its options) also serves the manager's durable notifies
        (:meth:`RemoteManager.notify_durable`) from its JetStream consumer, bound once the name
        is claimed: one event at a time, acknowledged after every handler ran, at least
        once."""
        options = Durable() if durable is True else durable or None
        return await self._serving.start(
            name, maxsize, overflow, timing, options, standby, setup_of(setup)
        )

    def durable_stats(self, name: str) -> DurableStats | None:
        """What the durable consumer of the hosted manager ``name`` did (None if it has
        none): events handled, redelivered, undecodable, retried, replayed, dead letters."""
        hosted = self._serving.hosted.get(name)
        if hosted is None or hosted.durable is None:
            return None
        return hosted.durable.stats

    async def add_replayed_handler(
        self, name: str, handler: Any, args: Any = NO_ARGS, *, timeout: float | None = 60.0
    ) -> int:
        """Add ``handler`` to the hosted durable manager ``name`` after it was fed every durable
        event the manager handled so far, in order, and before the durable events still to
        come: it is built and fed in a manager aside, then handed over the way
        :meth:`~genevent.aio.EventManager.swap_handler` hands a state over (its ``terminate``
        returns its state, its ``init`` takes it back as ``handoff=``). Durable events wait
        meanwhile. Return how many events it was fed. If waiting for the turn (the event in
        flight) and the replay take more than ``timeout`` seconds (None: no limit), it raises
        :class:`TransportDown` when the link is down, else
        :class:`~genevent.CallTimeout`, and the handler is not added."""
        hosted = self._serving.hosted.get(check_name(name))
        if hosted is None or hosted.durable is None:
            raise ManagerNotFound(name, "this node hosts no durable manager by that name")
        return await hosted.durable.add_replayed(handler, args, timeout)

    async def replay(
        self,
        name: str,
        into: aio.EventManager[Any] | Callable[[Any], Awaitable[None]],
        *,
        until: int | None = None,
    ) -> int:
        """Deliver the durable notifies of ``name`` kept in the stream, oldest first, up to the
        stream sequence ``until`` (default: the newest now), to ``into`` (a local manager,
        with ``sync_notify``, or an async function); return how many. Rebuilds a handler's
        state from the log in a manager of its own, without touching the live one."""
        self._link.check_up()
        return await replay(self._link, check_name(name), into, until=until)

    def hosted(self) -> dict[str, aio.EventManager[Any]]:
        """The managers this node serves, by name."""
        return {name: h.mgr for name, h in self._serving.hosted.items()}

    # -- reaching managers --------------------------------------------------------------------

    def manager(self, name: str) -> RemoteManager:
        """A reference to the manager ``name`` wherever it runs (this node included: requests
        then still go through NATS, in order with everyone else's)."""
        return RemoteManager(self._via, check_name(name))

    async def managers(self) -> dict[str, str]:
        """The cluster's managers in this namespace: ``{name: node id}``, only those whose
        node holds a live lease."""
        return await self._names.managers()

    async def nodes(self) -> list[str]:
        """The ids of the nodes holding a live lease in this namespace."""
        return await self._names.nodes()

    async def whereis(self, name: str) -> str | None:
        """The id of the node serving ``name``, or None."""
        return await self._names.whereis(name)

    async def monitor(self, name: str) -> Monitor:
        """Watch the manager ``name``: the monitor fires once with a :class:`Down` when it
        stops (``noproc``), its node dies (``nodedown``, after the lease time) or this node's
        connection drops (``noconnection``). Unknown name: fires at once with ``noproc``."""
        found = await self._names.lookup(name)
        if found is None:
            return self._liveness.watch(name, None)
        return self._liveness.watch(name, *found)

    # -- process groups -----------------------------------------------------------------------

    async def join(self, group: str, manager: str) -> None:
        """Make the manager ``manager`` (served by any live node) a member of ``group``, as
        OTP's ``pg:join``: it stays one until :meth:`leave`, until it stops (a later manager
        under the same name is not a member) or until its node dies (after the lease time).
        Joining twice is joining once. Raises :class:`ManagerNotFound` if no live node serves
        it and :class:`InvalidName` for a name NATS cannot carry."""
        await self._groups.join(group, manager)

    async def leave(self, group: str, manager: str) -> bool:
        """Take ``manager`` out of ``group``; False if it was not in it."""
        return await self._groups.leave(group, manager)

    async def members(self, group: str) -> list[str]:
        """The live members of ``group``, sorted (read from NATS now)."""
        return await self._groups.members(group)

    async def groups(self) -> dict[str, list[str]]:
        """Every group with a live member, and its members: ``{group: [manager, ...]}``."""
        return await self._groups.groups()

    def group(self, name: str) -> RemoteGroup:
        """A reference to the process group ``name``: notify every member, or sync_notify
        them and learn which did not answer."""
        return RemoteGroup(self._group_via, check_name(name, "group name"))


class _Via:
    """What a :class:`RemoteManager` needs of its node (a ``RemoteLink``)."""

    __slots__ = ("_node",)

    def __init__(self, node: Node) -> None:
        self._node = node

    @property
    def id(self) -> str:
        return self._node.id

    @property
    def codec(self) -> Codec:
        return self._node._link.codec

    def handler_name(self, cls: type) -> str:
        return self._node._handlers.name_of(cls)

    def publish(self, name: str, env: Request) -> None:
        self._node._link.publish(name, env)

    def publish_many(self, name: str, envs: list[Request]) -> None:
        self._node._link.publish_many(name, envs)

    async def request(self, name: str, env: Request, what: str, timeout: float | None) -> Any:
        return await self._node._link.request(name, env, what, timeout)

    async def publish_durable(
        self, name: str, env: Request, msg_id: str | None, timeout: float | None
    ) -> DurableAck:
        return await publish_durable(self._node._link, name, env, msg_id, timeout)

    async def monitor(self, name: str) -> Monitor:
        return await self._node.monitor(name)

    async def enlist(
        self,
        ref: RemoteManager,
        owner: Any,
        on_exit: Callable[[HandlerExit], object] | None,
        handler: Any,
    ) -> Ticket:
        return await self._node._owners.enlist(ref, owner, on_exit, handler)


async def connect(servers: str | list[str] = "nats://127.0.0.1:4222", **options: Any) -> Node:
    """Connect a :class:`Node` (see :meth:`Node.connect` for the options)."""
    return await Node.connect(servers, **options)
