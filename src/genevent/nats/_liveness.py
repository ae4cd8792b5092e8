"""Who is alive: this node's lease (renewed every lease/5 s), the other nodes' heartbeats
(their lease renewals), the detector that declares a silent node down, "manager stopped"
notices (``ge.<ns>.down.<M>``), and firing the monitors they concern."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable

import nats.errors
from nats.aio.msg import Msg
from nats.js.kv import KeyValue

from ._errors import NodeDown, TransportDown
from ._link import Link, lease_in
from ._monitor import DownReason, Monitor
from ._throttle import Throttle

__all__ = ("Liveness",)

log = logging.getLogger("genevent.nats")


class Liveness:
    """This node's lease and its watch over the other nodes and the managers it monitors."""

    def __init__(self, link: Link) -> None:
        self._link = link
        self.monitors: set[Monitor] = set()
        #: the bucket of node leases (set once it is open)
        self.leases: KeyValue | None = None
        #: what to do once this node's lease had lapsed (set by the node)
        self.on_lapse: Callable[[], Awaitable[None]] | None = None
        self._throttle = Throttle(time.monotonic)

    async def listen(self) -> None:
        """Subscribe to heartbeats and down notices."""
        nc = self._link.nc
        await nc.subscribe(f"$KV.ge_{self._link.ns}_nodes.>", cb=self._on_heartbeat)
        await nc.subscribe(f"{self._link.pfx}.down.*", cb=self._on_down_notice)

    def watch(self, name: str, where: str | None) -> Monitor:
        """A monitor of ``name`` (hosted on ``where``; None: unknown, it fires at once)."""
        mon = Monitor(self.monitors, name, where)
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
        await self.leases.put(f"node.{link.id}", link.lease_record())

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

    async def _on_down_notice(self, msg: Msg) -> None:
        name = msg.subject.rsplit(".", 1)[-1]
        try:
            node = str(json.loads(msg.data)["node"])
        except (ValueError, KeyError, TypeError):
            return
        where = self._link.where
        if where.get(name) == node:
            del where[name]
        for mon in list(self.monitors):
            if mon.name == name and mon.node in (node, None):
                mon._fire("noproc", node)

    # -- this node's connection ---------------------------------------------------------------

    async def on_error(self, exc: Exception) -> None:
        """nats-py's error callback."""
        if isinstance(exc, nats.errors.SlowConsumerError):  # frames were dropped: say so
            if self._throttle.allow():
                log.warning(
                    "genevent.nats: %s dropped frames to %s: they came faster than it served "
                    "them (a slow consumer; %d more such drops not logged)",
                    self._link.id,
                    exc.subject,
                    self._throttle.take_suppressed(),
                )
            return
        log.debug("genevent.nats: %s: %r", self._link.id, exc)

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
