"""The manager's side of supervised handlers across nodes.

A handler added with ``add_sup_handler`` through NATS is installed as an ordinary local
supervised handler whose owner is a *stand-in*: a local future for the remote owner
(``<node id>.<n>``), one per owner, shared by every handler it owns on this node. The stand-in
ends, and with it (as with any owner) the handlers it owns, terminated with
:class:`~genevent.OwnerExited`, when:

- the owner's node says the owner ended (the ``owner_exit`` request, on the control subject
  of a manager): the reason is what the owner ended with (None, a cancellation, or a
  :class:`RemoteException`);
- the owner's node is declared down (its lease expired): the reason is an
  :class:`OwnerNodeDown`;
- this node was cut off past its lease (the owner's node then takes this one for gone, and
  tells its owners so): :class:`OwnerNodeDown` with ``reason="noconnection"``.

The handler's ``on_exit`` here sends an exit notice to ``ge.<ns>.own.<owner node>.<n>`` as a
request, at once (so that it leaves before the reply to the request that removed the handler),
and again until the owner's node acknowledges it or is declared down.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from collections.abc import Callable
from typing import Any, Final

import msgspec

from .._core import HandlerExit
from ._errors import MalformedMessage, ManagerNotFound, NodeDown, TransportDown
from ._exits import GoneReason, Notice, OwnerNodeDown, encode_notice, owner_exception
from ._link import Link
from ._protocol import Served
from ._wire import VERSION, Codec, Request, check_name

__all__ = ("Supervision", "owner_of", "split_ref")

log = logging.getLogger("genevent.nats")

_FIRST_WAIT: Final = 0.5
"""How long a notice waits for its acknowledgement before it is sent again (seconds; doubled
each time, up to the lease)."""


def owner_of(req: Request, incarnation: bool = True) -> tuple[str, str, int]:
    """``(owner id, its node, incarnation)`` of a supervised request (or of an
    ``owner_exit``: ``incarnation=False``, 0), checked."""
    owner, inc = req.own, req.inc if incarnation else 0
    if not isinstance(owner, str) or type(inc) is not int:
        raise MalformedMessage("a supervised request names its owner (own) and incarnation (inc)")
    node, _, n = owner.rpartition(".")
    try:
        check_name(node, "node id")
        check_name(n, "owner number")
    except ValueError:
        raise MalformedMessage(f"an owner is <node id>.<n>, not {owner!r}") from None
    return owner, node, inc


def split_ref(codec: Codec, ref: Any) -> tuple[str, Any]:
    """A handler reference as callers see it (``name`` or ``(name, id)``) as ``(h, hid)``."""
    if isinstance(ref, tuple):
        try:
            hid = codec.to_wire(ref[1])
        except Exception:
            hid = repr(ref[1])
        return str(ref[0]), hid
    return str(ref), msgspec.UNSET


class Supervision:
    """The stand-ins of remote owners on this node, and the notices to them in flight."""

    def __init__(self, link: Link) -> None:
        self._link = link
        self._standins: dict[str, asyncio.Future[None]] = {}
        self._ids: dict[asyncio.Future[None], str] = {}
        self._sending: set[asyncio.Task[None]] = set()
        #: notices given up on: their owner's node was declared down before it acknowledged
        self.unacked = 0

    # -- requests -----------------------------------------------------------------------------

    def _standin(self, owner: str, node: str) -> asyncio.Future[None]:
        fut = self._standins.get(owner)
        if fut is None:
            fut = asyncio.get_running_loop().create_future()
            self._standins[owner] = fut
            self._ids[fut] = owner
        link = self._link
        # its lease is watched from now on, even if no heartbeat of it was seen yet
        link.seen.setdefault(node, (time.monotonic(), link.lease))
        return fut

    async def add(self, served: Served, req: Request, ref: Any, args: Any, opts: Any) -> None:
        """``add_sup_handler`` on ``served``'s manager for the remote owner ``req.own``."""
        owner, node, inc = owner_of(req)
        on_exit = self._teller(served, owner, node, inc)
        await served.mgr.add_sup_handler(
            ref, args, on_exit=on_exit, owner=self._standin(owner, node), **opts
        )

    async def swap(
        self, served: Served, req: Request, old: Any, args1: Any, new: Any, args2: Any
    ) -> None:
        """``swap_sup_handler`` on ``served``'s manager; the remote owner owns ``new``."""
        owner, node, inc = owner_of(req)
        on_exit = self._teller(served, owner, node, inc)
        await served.mgr.swap_sup_handler(
            old, args1, new, args2, on_exit=on_exit, owner=self._standin(owner, node)
        )

    def owner_exit(self, req: Request, body: Any) -> None:
        """The owner ``req.own`` ended (``body``: ``None`` or ``[kind, text]``): its
        handlers here are terminated with :class:`~genevent.OwnerExited`."""
        owner, _, _ = owner_of(req, incarnation=False)
        if body is None:
            kind, text = None, ""
        elif (
            isinstance(body, list | tuple)
            and len(body) == 2
            and isinstance(body[0], str)
            and isinstance(body[1], str)
        ):
            kind, text = body
        else:
            raise MalformedMessage("owner_exit takes None or [kind, text]")
        self._end(owner, owner_exception(kind, text))

    def _end(self, owner: str, reason: BaseException | None) -> None:
        fut = self._standins.pop(owner, None)
        if fut is None:
            return
        self._ids.pop(fut, None)
        if fut.done():
            return
        if reason is None:
            fut.set_result(None)
        elif isinstance(reason, asyncio.CancelledError):
            fut.cancel()
        else:
            fut.set_exception(reason)
            fut.exception()  # read: no "never retrieved" warning if no manager watches it now

    # -- the owners' nodes --------------------------------------------------------------------

    def node_down(self, node: str, reason: GoneReason = "nodedown") -> None:
        """``node`` is gone: end every stand-in of an owner on it."""
        for owner in [o for o in self._standins if o.rpartition(".")[0] == node]:
            self._end(owner, OwnerNodeDown(node, reason))

    def cut_off(self) -> None:
        """This node's lease lapsed (it was cut off or stalled past it): the owners' nodes
        took it for gone and told their owners; end every stand-in."""
        for owner in list(self._standins):
            self._end(owner, OwnerNodeDown(owner.rpartition(".")[0], "noconnection"))

    # -- notices ------------------------------------------------------------------------------

    def _teller(
        self, served: Served, owner: str, node: str, inc: int
    ) -> Callable[[HandlerExit], None]:
        link = self._link
        name = served.name
        wire_ref = served.handlers.wire_ref
        numbers = itertools.count(1)
        subj = f"{link.pfx}.own.{node}.{owner.rpartition('.')[2]}"

        def owner_id(obj: Any) -> str | None:
            return self._ids.get(obj) if isinstance(obj, asyncio.Future) else None

        def on_exit(ex: HandlerExit) -> None:
            head = Notice(v=VERSION, m=name, n=link.id, o=owner, i=inc, x=next(numbers), r="")
            head.h, head.hid = split_ref(link.codec, wire_ref(ex.handler))
            payload = encode_notice(link.codec, head, ex.reason, wire_ref, owner_id)
            self._send(subj, node, payload)

        return on_exit

    def _send(self, subj: str, node: str, payload: bytes) -> None:
        link = self._link
        if link.closing and not link.nc.is_connected:
            return
        token, fut = link.expect(subj, node, subj)
        # posted now: it leaves before the reply to the request that removed the handler
        link.post(subj, f"{link.inbox}.{token}", payload)
        task = asyncio.get_running_loop().create_task(
            self._until_acked(subj, node, payload, token, fut)
        )
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)

    async def _until_acked(
        self, subj: str, node: str, payload: bytes, token: str, fut: asyncio.Future[Any]
    ) -> None:
        link = self._link
        wait = _FIRST_WAIT
        while True:
            try:
                await asyncio.wait_for(fut, wait)
                return  # acknowledged (or refused as malformed: sending it again won't help)
            except NodeDown:
                break
            except (TimeoutError, ManagerNotFound, TransportDown):
                pass  # lost, nobody subscribed (yet, or any more), or our link is down
            finally:
                link.pending.pop(token, None)
            if node not in link.seen or link.closing:
                break  # declared down (or we are leaving): the owner's node tells its owner
            if not link.nc.is_connected:
                await asyncio.sleep(wait)
                continue
            wait = min(wait * 2, max(link.lease, _FIRST_WAIT))
            token, fut = link.expect(subj, node, subj)
            link.post(subj, f"{link.inbox}.{token}", payload)
        self.unacked += 1
        log.info("genevent.nats: an exit notice to %s was not acknowledged: its node is down", subj)

    async def settle(self, timeout: float) -> None:
        """Wait (up to ``timeout`` seconds) until every notice sent was acknowledged."""
        if self._sending:
            await asyncio.wait(set(self._sending), timeout=timeout)

    async def close(self) -> None:
        """Stop sending notices."""
        for task in list(self._sending):
            task.cancel()
        with contextlib.suppress(Exception):
            await asyncio.gather(*self._sending, return_exceptions=True)
