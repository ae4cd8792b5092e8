"""Who is alive: this node's lease (renewed every lease/5 s), the other nodes' heartbeats
(their lease renewals), the detector that declares a silent node down, "manager stopped"
notices (``ge.<ns>.down.<M>``, checked against the names bucket), and firing the monitors
they concern."""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from collections.abc import Awaitable, Callable

import nats.errors
from nats.aio.msg import Msg
from nats.js.kv import KeyValue

from ._denials import bucket_subjects
from ._errors import NodeDown, TransportDown
from ._link import Link, Throttled, lease_in
from ._monitor import DownReason, Monitor

__all__ = ("Liveness",)

log = logging.getLogger("genevent.nats")

_DENIED = re.compile(r'permissions violation for publish to "([^"]*)"', re.IGNORECASE)


class Liveness:
    """This node's lease and its watch over the other nodes and the managers it monitors."""

    def __init__(self, link: Link) -> None:
        self._link = link
        self.monitors: set[Monitor] = set()
        #: the bucket of node leases (set once it is open)
        self.leases: KeyValue | None = None
        #: what to do once this node's lease had lapsed (set by the node)
        self.on_lapse: Callable[[], Awaitable[None]] | None = None
        #: the live holder of a name and its claim's revision, or None (set by the node)
        self.claim_of: Callable[[str], Awaitable[tuple[str, int] | None]] | None = None
        #: "stopped" notices ignored: their claim is still held by a live node, or malformed
        self.ignored_notices = 0
        #: the error callback given in the node's NATS options, called after the node's own
        self.error_cb: Callable[[Exception], Awaitable[None]] | None = None
        #: called with a node's id when it is declared down (set by the node)
        self.on_node_down: list[Callable[[str], None]] = []
        #: the time between this node's last two lease renewals (seconds): longer than the
        #: lease means the others may have taken this node for gone meanwhile
        self.gap = 0.0
        self._renewed: float | None = None
        self._warn = Throttled()

    async def listen(self) -> None:
        """Subscribe to heartbeats and down notices."""
        nc = self._link.nc
        await nc.subscribe(f"$KV.ge_{self._link.ns}_nodes.>", cb=self._on_heartbeat)
        await nc.subscribe(f"{self._link.pfx}.down.*", cb=self._on_down_notice)

    def watch(self, name: str, where: str | None, claim: int | None = None) -> Monitor:
        """A monitor of ``name`` (hosted on ``where`` under the claim of revision ``claim``;
        None: unknown, it fires at once)."""
        mon = Monitor(self.monitors, name, where, claim)
        if where is None:
            mon._fire("noproc")
        else:
            self.monitors.add(mon)
        return mon

    def fire_all(self, reason: DownReason) -> None:
        """Fire every monitor with ``reason``."""
        for mon in list(self.monitors):
            mon._fire(reason)

    # -- this node's lease --------------------------------------------------------------------

    async def renew(self) -> None:
        """Write this node's lease."""
        assert self.leases is not None
        link = self._link
        put = self.leases.put(f"node.{link.id}", link.lease_record())
        await link.denials.guarded(bucket_subjects(f"ge_{link.ns}_nodes"), put)
        now = time.monotonic()
        if self._renewed is not None:
            self.gap = now - self._renewed
        self._renewed = now

    async def lease_loop(self) -> None:
        """Renew the lease every lease/5 s, for as long as the node runs."""
        link = self._link
        renewed = time.monotonic()
        while True:
            await asyncio.sleep(link.lease / 5)
            if link.nc.is_connected:
                try:
                    await self.renew()
                except Exception as exc:  # JetStream not ready yet after a restart, ...
                    log.debug("genevent.nats: lease renewal failed: %r", exc)
                    continue
                lapsed = time.monotonic() - renewed > link.lease
                renewed = time.monotonic()
                if lapsed and self.on_lapse is not None:
                    # we were stalled (or cut off) past our lease: names may be gone
                    await self.on_lapse()

    async def leave(self) -> None:
        """Delete this node's lease: the others see it gone at once."""
        if self.leases is not None:
            await self.leases.delete(f"node.{self._link.id}")

    # -- the other nodes ----------------------------------------------------------------------

    async def _on_heartbeat(self, msg: Msg) -> None:
        node = msg.subject.rsplit("node.", 1)[-1]
        if node == self._link.id:
            return
        headers = msg.headers or {}
        if headers.get("KV-Operation") in ("DEL", "PURGE") or not msg.data:
            self.node_down(node)  # it left (closed) or its lease was purged
            return
        # a record naming no usable lease (inf, nan, negative, ...) is read as our own
        self._link.seen[node] = (time.monotonic(), lease_in(msg.data, self._link.lease))

    async def detector(self) -> None:
        """Declare down every node silent past its lease, for as long as the node runs."""
        link = self._link
        while True:
            await asyncio.sleep(min(link.lease, 1.0) / 5)
            if not link.nc.is_connected:
                continue
            now = time.monotonic()
            for node, (seen, lease) in list(link.seen.items()):
                if now - seen > lease:
                    self.node_down(node)

    def node_down(self, node: str) -> None:
        """``node`` is gone: forget where it served, fail its requests, fire its monitors."""
        link = self._link
        link.seen.pop(node, None)
        for name, where in list(link.where.items()):
            if where == node:
                del link.where[name]
        for pending in list(link.pending.values()):
            if pending.node == node and not pending.fut.done():
                pending.fut.set_exception(NodeDown(pending.name, node))
        for mon in list(self.monitors):
            if mon.node == node:
                mon._fire("nodedown", node)
        for hook in self.on_node_down:
            hook(node)

    async def _on_down_notice(self, msg: Msg) -> None:
        name = msg.subject.rsplit(".", 1)[-1]
        try:
            notice = json.loads(msg.data)
            node, claim = notice["node"], notice["rev"]
            if type(node) is not str or type(claim) is not int:
                raise TypeError("node must be text, rev an integer")
        except (ValueError, KeyError, TypeError) as exc:
            self._ignore_notice(name, f"malformed ({exc!r})")
            return
        where = self._link.where
        # the monitors of the stopped claim: same node, same revision (a later claim of the
        # same name, even on the same node, is another manager)
        mons = [m for m in self.monitors if m.name == name and m.node == node]
        mons = [m for m in mons if m._claim in (claim, None)]
        if not mons and where.get(name) != node:
            return  # nothing of ours is about it
        # a node frees its claim before it tells: a notice whose claim a live node still holds
        # is forged (a later claim, here or elsewhere, does not contradict it)
        try:
            held = await self.claim_of(name) if self.claim_of is not None else None
        except Exception:
            held = None  # cannot tell now: believe the notice, as before the check
        if held is not None and held[1] == claim:
            self._ignore_notice(name, f"its claim {claim} is still held by {held[0]!r}")
            return
        if where.get(name) == node:
            del where[name]
        for mon in mons:
            mon._fire("noproc", node)

    def _ignore_notice(self, name: str, why: str) -> None:
        self.ignored_notices += 1
        self._warn.warn(
            "genevent.nats: %s ignored a 'stopped' notice for %r: %s", self._link.id, name, why
        )

    # -- this node's connection ---------------------------------------------------------------

    async def on_error(self, exc: Exception) -> None:
        """nats-py's error callback: a publish the server's permissions refused fails the
        requests sent on that subject with :class:`PermissionDenied`; frames nats-py dropped
        for a slow consumer are logged (a few lines a second)."""
        if isinstance(exc, nats.errors.SlowConsumerError):
            self._warn.warn(
                "genevent.nats: %s dropped frames to %s: they came faster than it served them "
                "(a slow consumer)",
                self._link.id,
                exc.subject,
            )
        elif (denied := _DENIED.search(str(exc))) is not None:
            self._link.denied(denied.group(1))
        else:
            log.debug("genevent.nats: %s: %r", self._link.id, exc)
        if self.error_cb is not None:
            await self.error_cb(exc)

    async def on_disconnected(self) -> None:
        """nats-py's disconnected callback."""
        self._link.fail_all(TransportDown(f"node {self._link.id!r} lost its NATS connection"))
        self.fire_all("noconnection")

    async def on_reconnected(self) -> None:
        """nats-py's reconnected callback."""
        link = self._link
        now = time.monotonic()
        link.seen = {node: (now, lease) for node, (_, lease) in link.seen.items()}
        try:
            await self.renew()
        except Exception as exc:  # JetStream not ready yet: the lease loop retries, and checks
            log.info(
                "genevent.nats: %s could not renew its lease on reconnecting (%r); retrying",
                link.id,
                exc,
            )
            return
        if self.on_lapse is not None:
            try:
                await self.on_lapse()
            except Exception:
                log.warning("genevent.nats: %s: checking its names failed", link.id, exc_info=True)

    async def on_closed(self) -> None:
        """nats-py's closed callback."""
        self._link.fail_all(TransportDown(f"node {self._link.id!r} is closed"))
