"""A reference to a process group (OTP's ``pg``): every manager that joined it, wherever it
runs, reached through a link that knows the members (see :class:`GroupLink`), with no
knowledge of the transport."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any, Protocol

from .._checks import check_timeout
from .._errors import CallTimeout, GenEventError, ManagerNotRunning
from .._mailbox import as_batch
from ._errors import ManagerNotFound, NodeDown, TransportDown
from ._wire import VERSION, Codec, Request

__all__ = ("GroupIncomplete", "GroupLink", "RemoteGroup")


class GroupLink(Protocol):
    """What a :class:`RemoteGroup` needs of its node."""

    @property
    def id(self) -> str:
        """The node's id."""
        ...

    @property
    def codec(self) -> Codec:
        """The codec requests are encoded with."""
        ...

    async def members(self, group: str, fresh: bool) -> list[str]:
        """The live members of ``group`` (``fresh``: read now; else a copy that nothing has
        contradicted yet may do)."""
        ...

    def publish(self, members: list[str], env: Request) -> None:
        """Send the notify ``env`` to each of ``members``, fire and forget."""
        ...

    def publish_many(self, name: str, envs: list[Request]) -> None:
        """Send the notifies ``envs`` to the manager ``name`` in order, fire and forget."""
        ...

    async def request(self, name: str, env: Request, what: str, timeout: float | None) -> Any:
        """Send ``env`` to the manager ``name`` and return the reply's result."""
        ...


class GroupIncomplete(GenEventError):
    """A group's :meth:`~RemoteGroup.sync_notify` could not confirm every member: the members
    in :attr:`failed` did not answer (the others handled the event). :attr:`reasons` says why,
    per member: ``"timeout"`` (no answer in time: it may still handle the event), ``"nodedown"``
    (its node died), ``"noproc"`` (nobody serves that manager any more),
    ``"noconnection"`` (this node's NATS connection dropped), or the error's class name."""

    def __init__(self, group: str, failed: dict[str, Exception], delivered: list[str]) -> None:
        reasons = {member: _reason(exc) for member, exc in failed.items()}
        listed = ", ".join(f"{m} ({r})" for m, r in reasons.items())
        total = len(failed) + len(delivered)
        super().__init__(
            f"{len(failed)} of the {total} members of the group {group!r} did not confirm "
            f"the event: {listed}"
        )
        #: the group's name
        self.group = group
        #: the members that did not confirm, and the error each one's request ended with
        self.failed = failed
        #: why each of them did not confirm (see the class's docstring)
        self.reasons = reasons
        #: the members that handled the event
        self.delivered = delivered


def _reason(exc: Exception) -> str:
    if isinstance(exc, CallTimeout):
        return "timeout"
    if isinstance(exc, NodeDown):
        return "nodedown"
    if isinstance(exc, ManagerNotFound | ManagerNotRunning):
        return "noproc"
    if isinstance(exc, TransportDown):
        return "noconnection"
    return type(exc).__name__


class RemoteGroup:
    """A process group: the managers that joined it (:meth:`Node.join`), on any node. Get one
    with :meth:`Node.group`. A member is a manager under one claim of its name: it leaves when
    it stops, when its node dies (after the lease time), or by :meth:`Node.leave`."""

    __slots__ = ("_link", "name")

    def __init__(self, link: GroupLink, name: str) -> None:
        self._link = link
        #: the group's name
        self.name = name

    def __repr__(self) -> str:
        return f"<RemoteGroup {self.name!r} via {self._link.id!r}>"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, RemoteGroup) and (other.name, other._link) == (
            self.name,
            self._link,
        )

    def __hash__(self) -> int:
        return hash((RemoteGroup, self.name, id(self._link)))

    def _req(self, op: str, body: Any) -> Request:
        return Request(v=VERSION, op=op, body=self._link.codec.to_wire(body))

    async def members(self) -> list[str]:
        """The group's live members, sorted (read from NATS now)."""
        return await self._link.members(self.name, True)

    async def notify(self, event: Any) -> int:
        """Publish ``event`` to every member and return how many it went to. Fire and forget,
        as a notify to each of them: nothing tells whether they received it. Each member gets
        this node's events in the order it sent them. The members are the ones this node
        knows: read again once the group changed, a member stopped or its node went silent.
        Raises :class:`TransportDown`, :class:`NotEncodable` or :class:`PayloadTooLarge`
        (nothing was sent)."""
        env = self._req("notify", event)
        members = await self._link.members(self.name, False)
        if members:
            self._link.publish(members, env)
        return len(members)

    async def notify_many(self, events: Iterable[Any]) -> int:
        """Publish ``events``, in order, to every member (as :meth:`RemoteManager.notify_many`
        to each of them: batched in as few frames as fit) and return how many members they
        went to. Every event is encoded first: an error means nothing was sent."""
        envs = [self._req("notify", event) for event in as_batch(events)]
        members = await self._link.members(self.name, False)
        for name in members:
            self._link.publish_many(name, envs)
        return len(members)

    async def sync_notify(self, event: Any, *, timeout: float | None = 5.0) -> list[str]:
        """Deliver ``event`` to every member (read now) and return the members, once each of
        them ran it through all its handlers. Every member is asked at once and waited for at
        most ``timeout`` seconds (None: no limit). If some did not confirm, the others still
        handled it and :class:`GroupIncomplete` names the missing ones and why."""
        timeout = check_timeout(timeout)
        env = self._req("sync_notify", event)
        members = await self._link.members(self.name, True)
        results = await asyncio.gather(
            *(self._link.request(m, env, "sync_notify", timeout) for m in members),
            return_exceptions=True,
        )
        failed: dict[str, Exception] = {}
        delivered: list[str] = []
        for member, result in zip(members, results, strict=True):
            if isinstance(result, Exception):
                failed[member] = result
            elif isinstance(result, BaseException):  # pragma: no cover - cancelled, ...
                raise result
            else:
                delivered.append(member)
        if failed:
            raise GroupIncomplete(self.name, failed, delivered)
        return members
