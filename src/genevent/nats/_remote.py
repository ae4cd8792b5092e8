"""A reference to a manager served by some node: the asyncio manager's API over a link that
carries requests (see :class:`RemoteLink`), with no knowledge of the transport."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, Literal, Protocol

import msgspec

from .._checks import check_timeout
from .._core import NO_ARGS, HandlerExit, restart_spec
from .._errors import InvalidHandler
from .._lanes import check_isolation
from .._mailbox import as_batch
from ._durable_api import DurableAck
from ._monitor import Monitor
from ._wire import VERSION, Codec, Request

__all__ = ("Enlisted", "RemoteLink", "RemoteManager")


class RemoteLink(Protocol):
    """What a :class:`RemoteManager` needs of its node."""

    @property
    def id(self) -> str:
        """The node's id."""
        ...

    @property
    def codec(self) -> Codec:
        """The codec requests are encoded with (the registered types included)."""
        ...

    def handler_name(self, cls: type) -> str:
        """The name a handler class is sent as."""
        ...

    def publish(self, name: str, env: Request) -> None:
        """Send ``env`` to the manager ``name``, fire and forget (raise if it cannot be
        sent)."""
        ...

    def publish_many(self, name: str, envs: list[Request]) -> None:
        """Send the notifies ``envs`` to the manager ``name`` in order, in as few frames as
        fit, fire and forget (raise, sending nothing, if one cannot be sent)."""
        ...

    async def request(self, name: str, env: Request, what: str, timeout: float | None) -> Any:
        """Send ``env`` to the manager ``name`` and return the reply's result (or raise the
        error it names; ``what`` names the request in a timeout)."""
        ...

    async def monitor(self, name: str) -> Monitor:
        """Watch the manager ``name``."""
        ...

    async def enlist(
        self,
        ref: RemoteManager,
        owner: Any,
        on_exit: Callable[[HandlerExit], object] | None,
        handler: Any,
    ) -> Enlisted:
        """Make ``owner`` (default: the current task) the owner of a supervised request to
        ``ref`` about ``handler`` (``name`` or ``(name, id)``)."""
        ...

    async def publish_durable(
        self, name: str, env: Request, msg_id: str | None, timeout: float | None
    ) -> DurableAck:
        """Store the notify ``env`` for ``name`` in JetStream; return its acknowledgement."""
        ...


class Enlisted(Protocol):
    """A supervised request being made (see :meth:`RemoteLink.enlist`)."""

    @property
    def owner(self) -> str:
        """The owner's wire id, ``<node id>.<n>``."""
        ...

    @property
    def inc(self) -> int:
        """The incarnation its node gave the request."""
        ...

    def done(self, error: BaseException | None) -> None:
        """The request returned (None) or failed with ``error``."""
        ...


class RemoteManager:
    """A reference to a manager served by some node, with the asyncio manager's API for
    everything that is plain data. Get one with :meth:`Node.manager`.

    A handler is named by its registered name (``"Broadcast"``), ``(name, id)``, or a handler
    class registered on this node (its registered name is sent). Values cross the wire as the
    codec allows: plain data, tuples, bytes, and types registered on both nodes.
    """

    __slots__ = ("_link", "name")

    def __init__(self, link: RemoteLink, name: str) -> None:
        self._link = link
        #: the manager's name
        self.name = name

    def __repr__(self) -> str:
        return f"<RemoteManager {self.name!r} via {self._link.id!r}>"

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, RemoteManager)
            and other.name == self.name
            and other._link is self._link
        )

    def __hash__(self) -> int:
        return hash((RemoteManager, self.name, id(self._link)))

    def _ref(self, handler: Any) -> tuple[str, Any]:
        ident: Any = msgspec.UNSET
        if isinstance(handler, tuple) and len(handler) == 2:
            handler, ident = handler
            ident = self._link.codec.to_wire(ident)
        if isinstance(handler, type):
            name = self._link.handler_name(handler)
        elif isinstance(handler, str):
            name = handler
        else:
            raise InvalidHandler(
                f"a remote handler is a registered name, (name, id) or a class, not {handler!r}"
            )
        return name, ident

    def _req(self, op: str, body: Any = None, handler: Any = None) -> Request:
        codec = self._link.codec
        env = Request(v=VERSION, op=op, body=codec.to_wire(body))
        if handler is not None:
            env.h, env.hid = self._ref(handler)
        return env

    def notify(self, event: Any) -> None:
        """Publish ``event`` to the manager and return at once. Fire-and-forget, as OTP's
        notify to ``{Name, Node}``: nothing tells whether anyone received it. Ordered with
        this node's other requests to the manager. Raises :class:`TransportDown`,
        :class:`NotEncodable` or :class:`PayloadTooLarge` (nothing was sent)."""
        self._link.publish(self.name, self._req("notify", event))

    def notify_many(self, events: Iterable[Any]) -> None:
        """Publish ``events``, in order, as one frame (the batch envelope), or as several in
        order when they do not fit in the server's max_payload together, and return at once:
        :meth:`notify` for each of them, fire-and-forget. Every event is encoded before
        anything is sent: :class:`TransportDown`, :class:`NotEncodable` or
        :class:`PayloadTooLarge` (one event larger than a frame) mean nothing was sent."""
        batch = as_batch(events)
        self._link.publish_many(self.name, [self._req("notify", event) for event in batch])

    async def notify_durable(
        self, event: Any, *, msg_id: str | None = None, timeout: float | None = 5.0
    ) -> DurableAck:
        """Store ``event`` in JetStream for the manager and return once JetStream acknowledged
        it (:class:`DurableAck`: its stream sequence). The node holding the name (now or
        later, a standby after a crash) delivers it at least once, with ``sync_notify``
        semantics, if it serves durable notifies (``start_manager(durable=True)``). ``msg_id``
        (default: a new unique id) is the ``Nats-Msg-Id``: a retry with the same id within two
        minutes is stored once (``duplicate=True``). Ordered with this node's other durable
        notifies to the manager, not with its core requests. Raises :class:`NotEncodable` or
        :class:`PayloadTooLarge` before sending, :class:`TransportDown` if JetStream did not
        acknowledge it in ``timeout`` seconds (then retry with the same ``msg_id``)."""
        env = self._req("notify", event)
        return await self._link.publish_durable(self.name, env, msg_id, check_timeout(timeout))

    def send(self, message: Any) -> None:
        """Publish an info ``message`` for every handler's ``handle_info``; as :meth:`notify`."""
        self._link.publish(self.name, self._req("info", message))

    async def sync_notify(self, event: Any, *, timeout: float | None = None) -> None:
        """Deliver ``event`` and return once every handler ran it."""
        await self._link.request(self.name, self._req("sync_notify", event), "sync_notify", timeout)

    async def call(self, handler: Any, request: Any, timeout: float | None = 5.0) -> Any:
        """One handler's ``handle_call(request)`` reply (default timeout 5 s, as OTP).
        Besides the local errors: :class:`ManagerNotFound`, :class:`NodeDown`,
        :class:`TransportDown`, :class:`~genevent.CallTimeout`. A timed-out or node-down call
        may still have run."""
        env = self._req("call", request, handler)
        return await self._link.request(self.name, env, "call", timeout)

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
        env = self._add_req(
            "add_handler", handler, args, timeout, restart, max_restarts, restart_period,
            isolation, maxsize, overflow, stop_timeout,
        )  # fmt: skip
        await self._link.request(self.name, env, "add_handler", timeout)

    def _add_req(
        self,
        op: str,
        handler: Any,
        args: Any,
        timeout: float | None,
        restart: Literal["temporary", "transient", "permanent"],
        max_restarts: int,
        restart_period: float,
        isolation: Literal["task", "thread"] | None,
        maxsize: int | None,
        overflow: Literal["drop_oldest", "drop_newest"],
        stop_timeout: float,
    ) -> Request:
        check_timeout(timeout)
        restart_spec(restart, None, max_restarts, restart_period)
        if isolation is not None and isolation not in ("task", "thread"):
            raise ValueError(f"isolation must be 'task', 'thread' or None, not {isolation!r}")
        check_isolation(maxsize, overflow, stop_timeout, isolation is not None)
        env = self._req(op, None if args is NO_ARGS else args, handler)
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
        return env

    async def add_sup_handler(
        self,
        handler: Any,
        args: Any = NO_ARGS,
        *,
        on_exit: Callable[[HandlerExit], object] | None,
        owner: Any = None,
        timeout: float | None = None,
        restart: Literal["temporary", "transient", "permanent"] = "temporary",
        max_restarts: int = 3,
        restart_period: float = 5.0,
        isolation: Literal["task", "thread"] | None = None,
        maxsize: int | None = None,
        overflow: Literal["drop_oldest", "drop_newest"] = "drop_oldest",
        stop_timeout: float = 5.0,
    ) -> None:
        """As :meth:`add_handler`, and tie the handler to ``owner``, a task or future of THIS
        node (default: the current task), as the local manager's ``add_sup_handler`` does.

        ``on_exit(HandlerExit(handler, reason, manager))`` runs here, in this node's loop, once
        per time the handler leaves: ``handler`` is named as :meth:`which_handlers` names it,
        ``manager`` is this reference, ``reason`` the local one (an exception in it arrives
        as a :class:`RemoteException`), or :class:`ManagerNodeDown` when the manager's node
        was declared down (or this node was cut off past its lease). When the owner ends, the
        handler is terminated with :class:`~genevent.OwnerExited` on the manager's node; when
        this node dies, with ``OwnerExited(OwnerNodeDown(node))`` once its lease expired."""
        env = self._add_req(
            "add_sup_handler", handler, args, timeout, restart, max_restarts, restart_period,
            isolation, maxsize, overflow, stop_timeout,
        )  # fmt: skip
        await self._supervised(env, owner, on_exit, self._named(handler), timeout)

    async def _supervised(
        self,
        env: Request,
        owner: Any,
        on_exit: Callable[[HandlerExit], object] | None,
        handler: Any,
        timeout: float | None,
    ) -> None:
        ticket = await self._link.enlist(self, owner, on_exit, handler)
        env.own, env.inc = ticket.owner, ticket.inc
        try:
            await self._link.request(self.name, env, env.op, timeout)
        except BaseException as exc:
            ticket.done(exc)
            raise
        ticket.done(None)

    def _named(self, handler: Any) -> Any:
        """``handler`` as notices name it: its registered name, or ``(name, id)``."""
        if isinstance(handler, tuple) and len(handler) == 2:
            return (self._ref(handler[0])[0], handler[1])
        return self._ref(handler)[0]

    async def delete_handler(
        self, handler: Any, args: Any = None, *, timeout: float | None = None
    ) -> Any:
        """Terminate and remove the handler; return what its ``terminate`` returned."""
        env = self._req("delete_handler", args, handler)
        return await self._link.request(self.name, env, "delete_handler", timeout)

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
        env = self._swap_req("swap_handler", old, args1, new, args2)
        await self._link.request(self.name, env, "swap_handler", timeout)

    async def swap_sup_handler(
        self,
        old: Any,
        args1: Any,
        new: Any,
        args2: Any = NO_ARGS,
        *,
        on_exit: Callable[[HandlerExit], object] | None,
        owner: Any = None,
        timeout: float | None = None,
    ) -> None:
        """As :meth:`swap_handler`, and ``owner`` (a task or future of this node; default: the
        current task) owns ``new``, told through ``on_exit`` (see :meth:`add_sup_handler`)."""
        check_timeout(timeout)
        env = self._swap_req("swap_sup_handler", old, args1, new, args2)
        await self._supervised(env, owner, on_exit, self._named(new), timeout)

    def _swap_req(self, op: str, old: Any, args1: Any, new: Any, args2: Any) -> Request:
        env = self._req(op, args1, old)
        env.h2, env.hid2 = self._ref(new)
        env.na2 = args2 is NO_ARGS
        env.body2 = None if env.na2 else self._link.codec.to_wire(args2)
        return env

    async def which_handlers(self, *, timeout: float | None = None) -> list[Any]:
        """The installed handlers, newest first, as registered names or ``(name, id)``."""
        result = await self._link.request(
            self.name, self._req("which_handlers"), "which_handlers", timeout
        )
        return list(result)

    async def get_state(self, *, timeout: float | None = None) -> list[tuple[Any, Any]]:
        """``[(handler, state)]``; a state the wire cannot carry comes as its ``repr``."""
        result = await self._link.request(self.name, self._req("get_state"), "get_state", timeout)
        return [tuple(x) for x in result]

    async def stats(self, *, timeout: float | None = None) -> dict[str, Any]:
        """The manager's :meth:`~genevent.aio.EventManager.stats` as plain data (the fields of
        :class:`~genevent.ManagerStats`, handler references as text), read on the serving node
        without waiting for the manager."""
        result = await self._link.request(self.name, self._req("stats"), "stats", timeout)
        return dict(result)

    async def stop(self, *, timeout: float | None = None) -> None:
        """Stop the manager (every handler terminated); its name is free once this returns."""
        await self._link.request(self.name, self._req("stop"), "stop", timeout)

    async def monitor(self) -> Monitor:
        """Shorthand for ``node.monitor(name)``."""
        return await self._link.monitor(self.name)
