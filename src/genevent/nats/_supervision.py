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
from collections.abc import AsyncIterator
from typing import Any, Final

import msgspec

from .._core import HandlerExit, Swapped
from .._errors import GenEventError
from ._errors import MalformedMessage, ManagerNotFound, NodeDown, TransportDown
from ._exits import (
    GoneReason,
    ManagerNodeDown,
    Notice,
    OwnerNodeDown,
    encode_notice,
    owner_exception,
)
from ._link import Link, Throttled
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
        #: the node's link (the tellers send through it)
        self.link = link
        self._standins: dict[str, asyncio.Future[None]] = {}
        self._ids: dict[asyncio.Future[None], str] = {}
        self._adding: dict[str, int] = {}  # supervised requests in progress, per owner
        #: the on_exit callbacks of each remote owner's handlers still installed
        self._tellers: dict[str, set[_Teller]] = {}
        self._sending: set[asyncio.Task[None]] = set()
        self._warn = Throttled()
        #: notices given up on: their owner's node was declared down before it acknowledged,
        #: or sending them failed for good (the server refused them, say)
        self.unacked = 0

    # -- requests -----------------------------------------------------------------------------

    def _standin(self, owner: str, node: str) -> asyncio.Future[None]:
        fut = self._standins.get(owner)
        if fut is None:
            fut = asyncio.get_running_loop().create_future()
            self._standins[owner] = fut
            self._ids[fut] = owner
        link = self._link
        if node != link.id:  # its lease is watched from now on, even before a heartbeat
            link.seen.setdefault(node, (time.monotonic(), link.lease))
        return fut

    async def add(self, served: Served, req: Request, ref: Any, args: Any, opts: Any) -> None:
        """``add_sup_handler`` on ``served``'s manager for the remote owner ``req.own``."""
        owner, node, inc = owner_of(req)
        standin = self._standin(owner, node)
        teller = _Teller(self, served, owner, node, inc, standin)
        async with self._adding_for(owner):
            await served.mgr.add_sup_handler(ref, args, on_exit=teller, owner=standin, **opts)
        self._track(teller, ref)

    async def swap(
        self, served: Served, req: Request, old: Any, args1: Any, new: Any, args2: Any
    ) -> None:
        """``swap_sup_handler`` on ``served``'s manager; the remote owner owns ``new``."""
        owner, node, inc = owner_of(req)
        standin = self._standin(owner, node)
        teller = _Teller(self, served, owner, node, inc, standin)
        async with self._adding_for(owner):
            await served.mgr.swap_sup_handler(old, args1, new, args2, on_exit=teller, owner=standin)
        for other in list(self._tellers.get(owner, ())):  # the old one's, if the same owner
            if other.name == teller.name:
                other.live.discard(new)
                if not other.live:
                    self.told(other)
        self._track(teller, new)

    @contextlib.asynccontextmanager
    async def _adding_for(self, owner: str) -> AsyncIterator[None]:
        """A supervised request for ``owner`` in progress; if it fails, the owner's stand-in
        goes unless a handler here (or another request in progress) still uses it."""
        self._adding[owner] = self._adding.get(owner, 0) + 1
        try:
            yield
        except Exception:  # refused (a cancelled one may have been installed: kept)
            self._unused(owner)
            raise
        finally:
            left = self._adding.pop(owner) - 1
            if left:
                self._adding[owner] = left

    def _unused(self, owner: str) -> None:
        if self._adding.get(owner, 0) > 1 or any(t.live for t in self._tellers.get(owner, ())):
            return
        self._tellers.pop(owner, None)
        fut = self._standins.pop(owner, None)
        if fut is not None:
            self._ids.pop(fut, None)

    def _track(self, teller: _Teller, ref: Any) -> None:
        teller.live.add(ref)
        self._tellers.setdefault(teller.owner, set()).add(teller)

    def told(self, teller: _Teller) -> None:
        """``teller``'s handlers all left."""
        tellers = self._tellers.get(teller.owner)
        if tellers is not None:
            tellers.discard(teller)

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
        self._end(owner, owner_exception(kind, text, owner.rpartition(".")[0]))

    def _end(self, owner: str, reason: BaseException | None) -> None:
        self._tellers.pop(owner, None)
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
        if node == self._link.id:
            return
        for owner in [o for o in self._standins if o.rpartition(".")[0] == node]:
            self._end(owner, OwnerNodeDown(node, reason))

    def cut_off(self) -> None:
        """This node's lease lapsed (it was cut off or stalled past it): the owners' nodes
        took it for gone and told their owners; end every stand-in."""
        for owner in list(self._standins):
            for teller in list(self._tellers.get(owner, ())):
                teller.gone()  # the owner is told, whether or not its node saw us lapse
            self._end(owner, OwnerNodeDown(owner.rpartition(".")[0], "noconnection"))

    # -- notices ------------------------------------------------------------------------------

    def owner_id(self, obj: Any) -> str | None:
        """The wire id of the remote owner ``obj`` stands for (None: not a stand-in)."""
        return self._ids.get(obj) if isinstance(obj, asyncio.Future) else None

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
            except GenEventError as exc:  # refused (PermissionDenied, say): again won't help
                self.unacked += 1
                self._warn.warn(
                    "genevent.nats: an exit notice to %s was not acknowledged: %s", subj, exc
                )
                return
            finally:
                link.pending.pop(token, None)
            if (node != link.id and node not in link.seen) or link.closing:
                break  # declared down (or we are leaving): the owner's node tells its owner
            if not link.nc.is_connected:
                await asyncio.sleep(wait)
                continue
            wait = min(wait * 2, max(link.lease, _FIRST_WAIT))
            token, fut = link.expect(subj, node, subj)
            link.post(subj, f"{link.inbox}.{token}", payload)
        self.unacked += 1
        log.info("genevent.nats: an exit notice to %s was not acknowledged: its node is down", subj)

    def send(self, subj: str, node: str, payload: bytes) -> None:
        """Send a notice (see :meth:`_send`)."""
        self._send(subj, node, payload)

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


class _Teller:
    """The ``on_exit`` of the handlers of one incarnation: sends their exit notices, and
    knows which of them are still installed."""

    __slots__ = (
        "_numbers",
        "_sup",
        "inc",
        "live",
        "name",
        "node",
        "owner",
        "standin",
        "subj",
        "wire_ref",
    )

    def __init__(
        self,
        sup: Supervision,
        served: Served,
        owner: str,
        node: str,
        inc: int,
        standin: asyncio.Future[None],
    ) -> None:
        self._sup = sup
        self._numbers = itertools.count(1)
        self.name = served.name
        self.wire_ref = served.handlers.wire_ref
        self.owner = owner
        self.node = node
        self.inc = inc
        self.standin = standin
        self.subj = f"{sup.link.pfx}.own.{node}.{owner.rpartition('.')[2]}"
        self.live: set[Any] = set()

    def __call__(self, ex: HandlerExit) -> None:
        self.live.discard(ex.handler)
        reason = ex.reason
        if isinstance(reason, Swapped) and reason.new_owner is self.standin:
            self.live.add(reason.new_handler)  # it carries this on_exit (a plain swap)
        if not self.live:
            self._sup.told(self)
        self._tell(ex.handler, reason)

    def gone(self) -> None:
        """Tell the owner each handler still installed is gone with this node (cut off)."""
        link = self._sup.link
        for handler in list(self.live):
            self._tell(handler, ManagerNodeDown(link.id, "noconnection"))
        self.live.clear()

    def _tell(self, handler: Any, reason: Any) -> None:
        sup = self._sup
        link = sup.link
        head = Notice(
            v=VERSION, m=self.name, n=link.id, o=self.owner, i=self.inc, x=next(self._numbers),
            r="",
        )  # fmt: skip
        head.h, head.hid = split_ref(link.codec, self.wire_ref(handler))
        payload = encode_notice(link.codec, head, reason, self.wire_ref, sup.owner_id)
        sup.send(self.subj, self.node, payload)
