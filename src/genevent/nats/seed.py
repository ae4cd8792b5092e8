"""The seed example as a node module: ``genevent node --module genevent.nats.seed`` hosts a
manager named ``seed`` with the seed's ``BroadcastEventHandler`` installed."""

from __future__ import annotations

from ..examples import BroadcastEventHandler
from ._node import Node

__all__ = ("setup",)


async def setup(node: Node) -> None:
    """Register ``BroadcastEventHandler`` and start the ``seed`` manager with it installed."""
    node.register_handler(BroadcastEventHandler)
    mgr = await node.start_manager("seed")
    await mgr.add_handler(BroadcastEventHandler)
