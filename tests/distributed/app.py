"""Handlers the NATS tests register on their nodes, and the module ``genevent node`` loads in
the tests' child processes (``setup`` starts the managers named in ``$GE_TEST_MANAGERS``)."""

from __future__ import annotations

import asyncio
import dataclasses
import os
from typing import Any

from genevent import NO_HANDOFF, EventHandler, Remove
from genevent.examples import BroadcastEventHandler
from genevent.nats import Node

GATES: dict[str, asyncio.Event] = {}
"""Events a test opens to let a ``call(("wait", key))`` answer (in-process nodes only)."""


@dataclasses.dataclass
class Point:
    """A user type registered by name on both ends."""

    x: int
    y: int
    label: tuple[str, ...] = ()


class Log(EventHandler[Any, Any, Any]):
    """Keeps every event and info it sees; ``call("log")`` returns them, ``call("infos")`` the
    infos, ``call(("sleep", s))`` sleeps s seconds first and ``call(("wait", key))`` waits for
    ``GATES[key]`` (a request in flight)."""

    def init(self, args: Any = None, /) -> None:
        if args == "refuse":
            raise ValueError("refused")
        self.events: list[Any] = []
        self.infos: list[Any] = []

    def handle_event(self, event: Any, /) -> Any:
        if event == "leave":
            return Remove()
        if event == "crash":
            raise RuntimeError("crashed on purpose")
        self.events.append(event)
        return None

    def handle_info(self, message: Any, /) -> None:
        self.infos.append(message)

    async def handle_call(self, request: Any, /) -> Any:
        if request == "log":
            return list(self.events)
        if request == "count":
            return len(self.events)
        if request == "infos":
            return list(self.infos)
        if isinstance(request, tuple) and request[0] == "wait":
            await GATES[request[1]].wait()
            return "opened"
        if isinstance(request, tuple) and request[0] == "sleep":
            await asyncio.sleep(request[1])
            return "slept"
        if request == "crash":
            raise KeyError("boom")
        if request == "unencodable":
            return object()
        return ("echo", request)

    def terminate(self, reason: Any, /) -> Any:
        return {"events": len(self.events)}


class Heir(Log):
    """Takes part in swaps: keeps the hand-off it got."""

    def init(self, args: Any = None, /, *, handoff: Any = NO_HANDOFF) -> None:
        super().init(args)
        self.handoff = "none" if handoff is NO_HANDOFF else handoff

    async def handle_call(self, request: Any, /) -> Any:
        if request == "handoff":
            return self.handoff
        return await super().handle_call(request)


class Quiet(EventHandler[Any, Any, Any]):
    """No handle_call."""

    def handle_event(self, event: Any, /) -> None:
        return None


ENDED: list[tuple[Any, Any]] = []
"""``(label, reason)`` of every :class:`Owned` handler terminated in this process."""


class Owned(Log):
    """A handler whose ``terminate`` reason is kept in :data:`ENDED` (``args`` is its label)."""

    def init(self, args: Any = None, /) -> None:
        super().init(args)
        self.label = args

    def terminate(self, reason: Any, /) -> Any:
        ENDED.append((self.label, reason))
        return super().terminate(reason)


HANDLERS: tuple[type, ...] = (BroadcastEventHandler, Log, Heir, Quiet, Owned)
TYPES: tuple[type, ...] = (Point,)


async def setup(node: Node) -> None:
    """Register the test handlers and start the managers in ``$GE_TEST_MANAGERS``."""
    for cls in HANDLERS:
        node.register_handler(cls)
    for cls in TYPES:
        node.register_type(cls)
    for name in filter(None, os.environ.get("GE_TEST_MANAGERS", "").split(",")):
        mgr = await node.start_manager(name)
        await mgr.add_handler(Log)
    # supervised handlers owned by this node's main task (it lives as long as the node)
    for name in filter(None, os.environ.get("GE_TEST_SUPERVISE", "").split(",")):
        await node.manager(name).add_sup_handler(Owned, node.id, on_exit=None)
