"""The owner's side of supervised handlers across nodes.

An owner (any asyncio task or future of this node) gets the wire id ``<node id>.<n>`` the first
time it supervises a remote handler; each ``add_sup_handler``/``swap_sup_handler`` through NATS
gets an *incarnation* number from this node before it is sent. The node subscribes once to
``ge.<ns>.own.<node id>.>`` (on the first supervised request) for the exit notices of the
managers' nodes, acknowledges each, and calls the owner's ``on_exit`` once per notice: a notice
sent again (its acknowledgement was lost) carries the same (manager, incarnation, number) and
is only acknowledged.

When an owner ends, this node sends ``owner_exit`` to every manager it still supervises through.
When a manager's node is declared down (its lease expired), this node makes up the notice of
each handler still installed there: :class:`ManagerNodeDown`. When this node was itself cut off
past its lease (or closes), it does the same with ``reason="noconnection"``: the managers'
nodes have taken it for gone and removed the handlers.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any, Final, Protocol

from nats.aio.msg import Msg

from .._checks import check_on_exit
from .._core import HandlerExit, Swapped, TellOwner
from .._driver import tell_owner
from .._errors import CallTimeout, GenEventError, InvalidOwner
from .._text import short
from ._errors import MalformedMessage, TransportDown
from ._exits import (
    OWNER_CUT_OFF,
    GoneReason,
    ManagerNodeDown,
    Notice,
    decode_notice,
    handler_of,
    owner_reason,
    reason_of,
)
from ._link import Link, Throttled, sync
from ._wire import VERSION, Reply, Request

__all__ = ("Owners", "Ticket")

log = logging.getLogger("genevent.nats")

_REMEMBERED: Final = 65_536
"""How many notices (and ended incarnations) are remembered to recognise one sent again."""

_RETRY: Final = 0.5  # seconds between two tries of an owner_exit that could not be sent


class _Ref(Protocol):
    """The remote manager reference an owner is told about (a ``RemoteManager``)."""

    @property
    def name(self) -> str: ...


class _Owner:
    __slots__ = ("future", "id", "incs", "managers", "n")

    def __init__(self, future: asyncio.Future[Any], node: str, n: str) -> None:
        self.future = future
        self.n = n
        self.id = f"{node}.{n}"
        #: the managers it has an incarnation with (told owner_exit when it ends)
        self.managers: dict[str, _Ref] = {}
        self.incs: dict[str, int] = {}  # how many incarnations, per manager


class _Sup:
    """One incarnation: the handlers it still has installed, and whom to tell."""

    __slots__ = ("inc", "live", "node", "on_exit", "owner", "ref")

    def __init__(
        self, owner: _Owner, inc: int, ref: _Ref, on_exit: Callable[[HandlerExit], object] | None
    ) -> None:
        self.owner = owner
        self.inc = inc
        self.ref = ref
        self.on_exit = on_exit
        self.live: set[Any] = set()
        self.node: str | None = None


class Ticket:
    """A supervised request being made: its owner's wire id and its incarnation."""

    __slots__ = ("_owners", "_sup", "inc", "owner")

    def __init__(self, owners: Owners, sup: _Sup) -> None:
        self._owners = owners
        self._sup = sup
        self.owner = sup.owner.id
        self.inc = sup.inc

    def done(self, error: BaseException | None) -> None:
        """The request returned (``error``: None) or failed: forget the incarnation unless the
        handler may be installed (a timeout)."""
        self._owners.settled(self._sup, error)


def _key(ref: Any) -> Any:
    return ref if isinstance(ref, Hashable) else repr(ref)


class Owners:
    """This node's owners of remote supervised handlers."""

    def __init__(self, link: Link) -> None:
        self._link = link
        self._by_future: dict[asyncio.Future[Any], _Owner] = {}
        self._by_n: dict[str, _Owner] = {}
        self._sups: dict[tuple[str, int], _Sup] = {}
        self._told: OrderedDict[tuple[str, int, int], None] = OrderedDict()
        self._ended: OrderedDict[tuple[str, int], None] = OrderedDict()
        self._numbers = itertools.count(1)
        self._incs = itertools.count(1)
        self._sub: Any = None
        self._listening: asyncio.Lock | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._warn = Throttled()
        #: notices ignored: malformed, not for an owner of ours, or claiming another node
        #: than the one that holds the handler
        self.ignored = 0

    # -- supervised requests ------------------------------------------------------------------

    async def enlist(
        self,
        ref: _Ref,
        owner: Any,
        on_exit: Callable[[HandlerExit], object] | None,
        handler: Any,
    ) -> Ticket:
        """A ticket for a supervised request to ``ref`` about ``handler`` (``name`` or
        ``(name, id)``) for ``owner`` (default: the current task)."""
        check_on_exit(on_exit)
        if owner is None:
            owner = asyncio.current_task()
            if owner is None:
                raise InvalidOwner("add_sup_handler needs a current task (or owner=)")
        elif not asyncio.isfuture(owner):
            raise InvalidOwner(
                f"owner {short(owner)} cannot be watched: pass an asyncio task or future"
            )
        await self._listen()
        link = self._link
        own = self._by_future.get(owner)
        if own is None:
            own = _Owner(owner, link.id, str(next(self._numbers)))
            self._by_future[owner] = own
            self._by_n[own.n] = own
            owner.add_done_callback(self._owner_done)
        own.managers[ref.name] = ref
        own.incs[ref.name] = own.incs.get(ref.name, 0) + 1
        sup = _Sup(own, next(self._incs), ref, on_exit)
        sup.live.add(_key(handler))
        sup.node = link.where.get(ref.name)
        self._sups[(own.n, sup.inc)] = sup
        return Ticket(self, sup)

    def settled(self, sup: _Sup, error: BaseException | None) -> None:
        """See :meth:`Ticket.done`."""
        if error is None or isinstance(error, CallTimeout):
            node = self._link.where.get(sup.ref.name)
            if node is not None:
                sup.node = node
            for other in list(self._sups.values()):  # a swap's new handler: no more the old's
                if other is not sup and other.owner is sup.owner and other.ref.name == sup.ref.name:
                    other.live -= sup.live
                    if not other.live:
                        self._forget(other)
            if error is None and sup.owner.future.done():  # ended meanwhile: tell it again
                self._tell_end(sup.owner, sup.ref)
            return
        self._forget(sup)

    def _forget(self, sup: _Sup) -> None:
        key = (sup.owner.n, sup.inc)
        if self._sups.pop(key, None) is None:
            return
        _remember(self._ended, key)
        own, name = sup.owner, sup.ref.name
        left = own.incs.pop(name, 0) - 1
        if left > 0:
            own.incs[name] = left
        else:  # none left with that manager: nothing to tell it when the owner ends
            own.managers.pop(name, None)

    async def _listen(self) -> None:
        if self._sub is not None:
            return
        if self._listening is None:
            self._listening = asyncio.Lock()
        async with self._listening:
            if self._sub is None:
                link = self._link
                link.check_up()
                sub = await link.nc.subscribe(f"{link.pfx}.own.{link.id}.*", cb=self._on_notice)
                await sync(link.nc)  # the server routes notices to us before we ask
                self._sub = sub

    # -- the owners' ends ---------------------------------------------------------------------

    def _owner_done(self, future: asyncio.Future[Any]) -> None:
        own = self._by_future.pop(future, None)
        if own is None:
            return
        for ref in own.managers.values():
            self._tell_end(own, ref)

    def _tell_end(self, own: _Owner, ref: _Ref, cut_off: bool = False) -> None:
        if self._link.closing:
            return  # the node's lease goes with it: its managers' nodes end the handlers
        task = asyncio.get_running_loop().create_task(self._owner_exit(own, ref, cut_off))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _owner_exit(self, own: _Owner, ref: _Ref, cut_off: bool) -> None:
        link = self._link
        kind, text = (OWNER_CUT_OFF, "") if cut_off else owner_reason(own.future)
        env = Request(v=VERSION, op="owner_exit", body=None if kind is None else [kind, text])
        env.own = own.id
        while not link.closing:
            try:
                await link.request(ref.name, env, "owner_exit", max(link.lease, 1.0))
            except (CallTimeout, TransportDown):
                await asyncio.sleep(_RETRY)  # the manager's node may still hold the handlers
                continue
            except GenEventError:
                pass  # the manager or its node is gone: so are the handlers
            break
        if cut_off:
            return  # the owner lives on, and may supervise more
        for sup in list(self._sups.values()):
            if sup.owner is own and sup.ref.name == ref.name:
                self._forget(sup)
        if not any(sup.owner is own for sup in self._sups.values()):
            self._by_n.pop(own.n, None)

    # -- notices ------------------------------------------------------------------------------

    async def _on_notice(self, msg: Msg) -> None:
        link = self._link
        n = msg.subject.rpartition(".")[2]
        try:
            notice = decode_notice(msg.data)
            if notice.o != f"{link.id}.{n}":
                raise MalformedMessage(f"a notice for {notice.o!r} on the subject of {n!r}")
        except MalformedMessage as exc:
            self._ignore(f"a malformed exit notice: {exc}")
            self._answer(msg, str(exc))
            return
        key = (n, notice.i)
        told = (n, notice.i, notice.x)
        if told in self._told or key in self._ended:
            self._answer(msg)  # sent again, or about a handler this node took for gone
            return
        sup = self._sups.get(key)
        if sup is None:
            self._ignore(f"an exit notice from {notice.n!r} for an unknown incarnation")
            self._answer(msg)
            return
        if notice.m != sup.ref.name or not await self._from_holder(sup, notice):
            # a consistency check of the sender the notice claims against the name's holder,
            # not an authentication: whoever may publish here is trusted with exit notices
            self._ignore(f"an exit notice about {notice.m!r} from {notice.n!r}, not its node")
            return
        if key not in self._sups or told in self._told:
            self._answer(msg)  # told (or forgotten) while the holder was looked up
            return
        try:
            ex = self._exit_of(sup, notice)
        except MalformedMessage as exc:
            self._ignore(f"an exit notice with a bad value: {exc}")
            self._answer(msg, str(exc))
            return
        _remember(self._told, told)
        sup.live.discard(_key(ex.handler))
        reason = ex.reason
        if isinstance(reason, Swapped) and reason.new_owner is sup.owner.future:
            sup.live.add(_key(reason.new_handler))  # a plain swap: the owner carries over
        if not sup.live:
            self._forget(sup)
        self._tell(sup, ex)
        self._answer(msg)

    async def _from_holder(self, sup: _Sup, notice: Notice) -> bool:
        """Whether ``notice`` claims the node that holds its manager's name: the node that
        answered the request, else the names bucket's holder (looked up then); a name the
        bucket has no holder for leaves nothing to check against."""
        link = self._link
        holder = sup.node or link.where.get(notice.m)
        if holder is None and link.locate is not None:
            try:
                holder = await link.locate(notice.m)
            except Exception:  # the bucket cannot be read now: the notice is believed
                holder = None
            if holder is not None and sup.node is None:
                sup.node = holder
        return holder is None or holder == notice.n

    def _exit_of(self, sup: _Sup, notice: Notice) -> HandlerExit:
        codec = self._link.codec
        own = sup.owner

        def new_owner(wire: str | None) -> Any:
            if wire is None:
                return None
            node, _, n = wire.rpartition(".")
            found = self._by_n.get(n) if node == self._link.id else None
            return own.future if wire == own.id else found.future if found else wire

        handler = handler_of(codec, notice.h, notice.hid)
        return HandlerExit(handler, reason_of(codec, notice, new_owner), sup.ref)

    def _tell(self, sup: _Sup, ex: HandlerExit) -> None:
        if sup.on_exit is not None:  # as locally: a raising callback is logged, nothing else
            tell_owner(TellOwner(sup.on_exit, ex), asyncio.ensure_future)

    def _answer(self, msg: Msg, error: str | None = None) -> None:
        if not msg.reply:
            return
        link = self._link
        rep = Reply(v=VERSION, n=link.id)
        if error is not None:
            rep.err, rep.msg = "MalformedMessage", error
        with contextlib.suppress(GenEventError):
            link.post(msg.reply, "", link.encode(rep))

    def _ignore(self, why: str) -> None:
        self.ignored += 1
        self._warn.warn("genevent.nats: %s ignored %s", self._link.id, why)

    # -- the managers' nodes ------------------------------------------------------------------

    def node_down(self, node: str, reason: GoneReason = "nodedown") -> None:
        """``node`` is gone: tell the owners of the handlers installed there."""
        if node == self._link.id:
            return
        for sup in [s for s in self._sups.values() if s.node == node]:
            self._gone(sup, node, reason)

    def cut_off(self, reason: GoneReason = "noconnection") -> None:
        """This node was cut off past its lease (or is closing): tell every owner its
        handlers are gone. The managers' nodes took this node for gone; after a cut-off
        (the node lives on), each manager is also sent ``owner_exit`` for the live owners
        it held handlers of, in case its node did not see the lapse. On close nothing is
        sent: the managers' nodes learn it from the lease this node deletes as it leaves
        (or that lapses), and end the handlers of its owners then."""
        ends = {(sup.owner.id, sup.ref.name): sup for sup in self._sups.values()}
        for sup in list(self._sups.values()):
            self._gone(sup, sup.node or "", reason)
        for sup in ends.values():
            if not sup.owner.future.done():
                self._tell_end(sup.owner, sup.ref, cut_off=True)

    def _gone(self, sup: _Sup, node: str, reason: GoneReason) -> None:
        self._forget(sup)
        if sup.owner.future.done():
            return  # the owner is gone: nobody to tell
        for handler in list(sup.live):
            self._tell(sup, HandlerExit(handler, ManagerNodeDown(node, reason), sup.ref))
        sup.live.clear()

    async def close(self) -> None:
        """Tell every owner its handlers are gone (``noconnection``), stop listening."""
        self.cut_off()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._sub is not None:
            with contextlib.suppress(Exception):
                await self._sub.unsubscribe()


def _remember(seen: OrderedDict[Any, None], key: Any) -> None:
    seen[key] = None
    if len(seen) > _REMEMBERED:
        seen.popitem(last=False)
