"""A thin blocking face of a node, for code on the thread runtime (or no event loop at all)."""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
import weakref
from collections.abc import Callable, Coroutine, Iterable
from types import TracebackType
from typing import Any, TypeVar

from .._core import NO_ARGS, HandlerExit
from .._mailbox import as_batch
from ..threads._owners import _check_owner as check_owner
from ._durable_api import DurableAck
from ._group import RemoteGroup
from ._monitor import Down, Monitor
from ._node import Node
from ._remote import RemoteManager

__all__ = ("BlockingMonitor", "BlockingNode", "BlockingRemoteGroup", "BlockingRemoteManager")

T = TypeVar("T")


class BlockingNode:
    """A :class:`Node` running in an event loop thread of its own; every method blocks the
    calling thread until the node answered. Use as ``with BlockingNode(url) as node:``.

    Managers it hosts (:meth:`start_manager`) are asyncio managers in that loop; their plain
    (non-coroutine) handlers run there too."""

    def __init__(self, servers: str | list[str] = "nats://127.0.0.1:4222", **options: Any):
        """Connect (blocking); ``options`` are :meth:`Node.connect`'s."""
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="genevent-nats-node", daemon=True
        )
        self._thread.start()
        self._owners: weakref.WeakKeyDictionary[threading.Thread, asyncio.Future[None]] = (
            weakref.WeakKeyDictionary()
        )
        try:
            self.node: Node = self._run(Node.connect(servers, **options))
        except BaseException:
            self._stop_loop()
            raise

    def _run(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        fut: concurrent.futures.Future[T] = asyncio.run_coroutine_threadsafe(coro, self._loop)
        return fut.result(timeout)

    def _stop_loop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._loop.close()

    def register_handler(self, cls: type, name: str | None = None) -> str:
        """As :meth:`Node.register_handler`."""
        return self.node.register_handler(cls, name)

    def register_type(self, cls: type, name: str | None = None) -> str:
        """As :meth:`Node.register_type`."""
        return self.node.register_type(cls, name)

    def start_manager(self, name: str, **options: Any) -> Any:
        """As :meth:`Node.start_manager`; the manager lives in the node's loop (reach it from
        threads through :meth:`manager`, like any remote one)."""
        return self._run(self.node.start_manager(name, **options))

    def manager(self, name: str) -> BlockingRemoteManager:
        """A blocking reference to the manager ``name``."""
        return BlockingRemoteManager(self, self.node.manager(name))

    def managers(self) -> dict[str, str]:
        """As :meth:`Node.managers`."""
        return self._run(self.node.managers())

    def nodes(self) -> list[str]:
        """As :meth:`Node.nodes`."""
        return self._run(self.node.nodes())

    def whereis(self, name: str) -> str | None:
        """As :meth:`Node.whereis`."""
        return self._run(self.node.whereis(name))

    def monitor(self, name: str) -> BlockingMonitor:
        """As :meth:`Node.monitor`, with a blocking :meth:`BlockingMonitor.wait`."""
        return BlockingMonitor(self, self._run(self.node.monitor(name)))

    def _owner(self, owner: Any) -> Any:
        """The future in the node's loop that stands for the owner thread ``owner`` (default:
        the calling thread), ended when the thread ends; an asyncio future is itself."""
        if asyncio.isfuture(owner):
            return owner
        thread, watch = check_owner(owner)
        fut = self._owners.get(thread)
        if fut is None:
            fut = self._run(_future())
            self._owners[thread] = fut
            if watch is not None:
                watch.subscribe(_ThreadEnd(self, fut))
        return fut

    def join(self, group: str, manager: str) -> None:
        """As :meth:`Node.join`."""
        self._run(self.node.join(group, manager))

    def leave(self, group: str, manager: str) -> bool:
        """As :meth:`Node.leave`."""
        return self._run(self.node.leave(group, manager))

    def members(self, group: str) -> list[str]:
        """As :meth:`Node.members`."""
        return self._run(self.node.members(group))

    def groups(self) -> dict[str, list[str]]:
        """As :meth:`Node.groups`."""
        return self._run(self.node.groups())

    def group(self, name: str) -> BlockingRemoteGroup:
        """A blocking reference to the process group ``name``."""
        return BlockingRemoteGroup(self, self.node.group(name))

    def close(self) -> None:
        """Close the node (hosted managers stopped) and end its thread."""
        if self._loop.is_closed():
            return
        try:
            self._run(self.node.close())
        finally:
            self._stop_loop()

    def __enter__(self) -> BlockingNode:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


async def _future() -> asyncio.Future[None]:
    return asyncio.get_running_loop().create_future()


class _ThreadEnd:
    """Ends the future standing for an owner thread when the thread ends."""

    __slots__ = ("_fut", "_node")

    def __init__(self, node: BlockingNode, fut: asyncio.Future[None]) -> None:
        self._node = node
        self._fut = fut

    def owner_down(self, owner: Any, reason: BaseException | None) -> None:
        self._node._owners.pop(owner, None)
        loop = self._node._loop
        if not loop.is_closed():
            loop.call_soon_threadsafe(_end, self._fut, reason)


def _end(fut: asyncio.Future[None], reason: BaseException | None) -> None:
    if fut.done():
        return
    if reason is None:
        fut.set_result(None)
    else:
        fut.set_exception(reason)
        fut.exception()  # read: the managers' nodes are told, nobody else needs it


class BlockingRemoteManager:
    """:class:`RemoteManager`'s API, blocking. Requests from one thread keep their order (a
    call never overtakes an earlier notify), as in asyncio."""

    __slots__ = ("_node", "_ref")

    def __init__(self, node: BlockingNode, ref: RemoteManager) -> None:
        self._node = node
        self._ref = ref

    @property
    def name(self) -> str:
        """The manager's name."""
        return self._ref.name

    def __repr__(self) -> str:
        return f"<BlockingRemoteManager {self._ref.name!r}>"

    async def _notify(self, event: Any, info: bool) -> None:
        if info:
            self._ref.send(event)
        else:
            self._ref.notify(event)

    def notify(self, event: Any) -> None:
        """As :meth:`RemoteManager.notify` (returns once the node has queued it to send)."""
        self._node._run(self._notify(event, False))

    async def _notify_many(self, events: list[Any]) -> None:
        self._ref.notify_many(events)

    def notify_many(self, events: Iterable[Any]) -> None:
        """As :meth:`RemoteManager.notify_many` (returns once the node has queued the batch to
        send)."""
        self._node._run(self._notify_many(list(events)))

    def send(self, message: Any) -> None:
        """As :meth:`RemoteManager.send`."""
        self._node._run(self._notify(message, True))

    def notify_durable(
        self, event: Any, *, msg_id: str | None = None, timeout: float | None = 5.0
    ) -> DurableAck:
        """As :meth:`RemoteManager.notify_durable` (returns once JetStream stored it)."""
        return self._node._run(self._ref.notify_durable(event, msg_id=msg_id, timeout=timeout))

    def sync_notify(self, event: Any, *, timeout: float | None = None) -> None:
        """As :meth:`RemoteManager.sync_notify`."""
        self._node._run(self._ref.sync_notify(event, timeout=timeout))

    def call(self, handler: Any, request: Any, timeout: float | None = 5.0) -> Any:
        """As :meth:`RemoteManager.call`."""
        return self._node._run(self._ref.call(handler, request, timeout))

    def add_handler(self, handler: Any, args: Any = NO_ARGS, **options: Any) -> None:
        """As :meth:`RemoteManager.add_handler`."""
        self._node._run(self._ref.add_handler(handler, args, **options))

    def add_sup_handler(
        self,
        handler: Any,
        args: Any = NO_ARGS,
        *,
        on_exit: Callable[[HandlerExit], object] | None,
        owner: Any = None,
        **options: Any,
    ) -> None:
        """As :meth:`RemoteManager.add_sup_handler`, with a thread as the owner (default: the
        calling thread; the main thread never ends before the interpreter), as the thread
        runtime's. ``on_exit`` runs in the node's event loop thread."""
        fut = self._node._owner(owner)
        self._node._run(
            self._ref.add_sup_handler(handler, args, on_exit=on_exit, owner=fut, **options)
        )

    def swap_sup_handler(
        self,
        old: Any,
        args1: Any,
        new: Any,
        args2: Any = NO_ARGS,
        *,
        on_exit: Callable[[HandlerExit], object] | None,
        owner: Any = None,
        **options: Any,
    ) -> None:
        """As :meth:`RemoteManager.swap_sup_handler`, with a thread as the owner (see
        :meth:`add_sup_handler`)."""
        fut = self._node._owner(owner)
        ref = self._ref
        self._node._run(
            ref.swap_sup_handler(old, args1, new, args2, on_exit=on_exit, owner=fut, **options)
        )

    def delete_handler(self, handler: Any, args: Any = None, **options: Any) -> Any:
        """As :meth:`RemoteManager.delete_handler`."""
        return self._node._run(self._ref.delete_handler(handler, args, **options))

    def swap_handler(
        self, old: Any, args1: Any, new: Any, args2: Any = NO_ARGS, **options: Any
    ) -> None:
        """As :meth:`RemoteManager.swap_handler`."""
        self._node._run(self._ref.swap_handler(old, args1, new, args2, **options))

    def which_handlers(self, **options: Any) -> list[Any]:
        """As :meth:`RemoteManager.which_handlers`."""
        return self._node._run(self._ref.which_handlers(**options))

    def get_state(self, **options: Any) -> list[tuple[Any, Any]]:
        """As :meth:`RemoteManager.get_state`."""
        return self._node._run(self._ref.get_state(**options))

    def stats(self, **options: Any) -> dict[str, Any]:
        """As :meth:`RemoteManager.stats`."""
        return self._node._run(self._ref.stats(**options))

    def stop(self, **options: Any) -> None:
        """As :meth:`RemoteManager.stop`."""
        self._node._run(self._ref.stop(**options))

    def monitor(self) -> BlockingMonitor:
        """Shorthand for ``node.monitor(name)``."""
        return self._node.monitor(self._ref.name)


class BlockingRemoteGroup:
    """:class:`RemoteGroup`'s API, blocking."""

    __slots__ = ("_node", "_ref")

    def __init__(self, node: BlockingNode, ref: RemoteGroup) -> None:
        self._node = node
        self._ref = ref

    @property
    def name(self) -> str:
        """The group's name."""
        return self._ref.name

    def __repr__(self) -> str:
        return f"<BlockingRemoteGroup {self._ref.name!r}>"

    def members(self) -> list[str]:
        """As :meth:`RemoteGroup.members`."""
        return self._node._run(self._ref.members())

    def notify(self, event: Any) -> int:
        """As :meth:`RemoteGroup.notify` (returns once the node has queued it to send)."""
        return self._node._run(self._ref.notify(event))

    def notify_many(self, events: Iterable[Any]) -> int:
        """As :meth:`RemoteGroup.notify_many`."""
        return self._node._run(self._ref.notify_many(list(as_batch(events))))

    def sync_notify(self, event: Any, *, timeout: float | None = 5.0) -> list[str]:
        """As :meth:`RemoteGroup.sync_notify`."""
        return self._node._run(self._ref.sync_notify(event, timeout=timeout))


class BlockingMonitor:
    """:class:`Monitor`'s API, blocking: :meth:`wait` blocks the calling thread."""

    __slots__ = ("_mon", "_node")

    def __init__(self, node: BlockingNode, mon: Monitor) -> None:
        self._node = node
        self._mon = mon

    @property
    def name(self) -> str:
        """The manager name."""
        return self._mon.name

    @property
    def node(self) -> str | None:
        """The node that hosted it when the monitor was set (None if unknown)."""
        return self._mon.node

    def __repr__(self) -> str:
        return f"<BlockingMonitor {self._mon.name!r}>"

    def done(self) -> bool:
        """Whether the notice arrived."""
        return self._mon.done()

    def wait(self, timeout: float | None = None) -> Down:
        """As :meth:`Monitor.wait`."""
        return self._node._run(self._mon.wait(timeout))

    def cancel(self) -> None:
        """As :meth:`Monitor.cancel`."""
        self._node._loop.call_soon_threadsafe(self._mon.cancel)
