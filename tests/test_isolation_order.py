"""Isolated handlers' outcomes are applied in the mailbox order of the messages that caused
them, not in the order the lanes finish (docs/semantics.md P22), forced with latches.

Two isolated handlers, A and B. Event 1 makes A leave (a crash, a bad return, ``Remove()`` or a
swap to another id); event 2 makes B swap itself into A's id. A's lane is held inside
``handle_event`` for event 1 until B has returned its swap for event 2, so B's outcome is ready
first. Applied in mailbox order, A has left when B's swap is applied: the swap succeeds and the
new handler runs under A's id.
"""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass, field
from typing import Any

import pytest

from genevent import (
    BadReturn,
    Crashed,
    EventHandler,
    ExitReason,
    Remove,
    RemovedItself,
    Swap,
    Swapped,
    aio,
    threads,
)
from tests.handlers import WAIT

A = "a"
B = "b"
LEAVES = ["crash", "bad", "remove", "swap_away"]
EXPECTED_REASON: dict[str, type] = {
    "crash": Crashed,
    "bad": BadReturn,
    "remove": RemovedItself,
    "swap_away": Swapped,
}


@dataclass
class Scene:
    leave: str
    held: threading.Event = field(default_factory=threading.Event)  # A is in event 1
    release: threading.Event = field(default_factory=threading.Event)  # A may go on
    b_returned: threading.Event = field(default_factory=threading.Event)
    reasons: dict[Any, list[ExitReason]] = field(default_factory=dict)


class Node(EventHandler[Any, Any, Any]):
    """A or B, or what replaces them; ``args``: (scene, its name)."""

    def init(self, args: tuple[Scene, str], /, *, handoff: Any = None) -> None:
        self.scene, self.name = args

    def outcome(self, event: Any) -> Any:
        if event == 1 and self.name == A:
            leave = self.scene.leave
            if leave == "crash":
                raise RuntimeError("A crashes")
            if leave == "bad":
                return ("not", "an instruction")
            if leave == "remove":
                return Remove()
            return Swap("away", (Elsewhere, "gone"), (self.scene, "gone"))
        if event == 2 and self.name == B:
            self.scene.b_returned.set()  # the last thing before the return
            return Swap("into-a", (Node, A), (self.scene, "new-a"))
        return None

    def handle_event(self, event: Any, /) -> Any:
        if event == 1 and self.name == A:
            self.scene.held.set()
            assert self.scene.release.wait(WAIT)
        return self.outcome(event)

    def handle_call(self, request: Any, /) -> Any:
        if request == "swap-into-a" and self.name == B:  # as event 2, from a call
            self.scene.b_returned.set()
            return Swap("into-a", (Node, A), (self.scene, "new-a"), reply="swapped")
        return self.name

    def terminate(self, reason: ExitReason, /) -> Any:
        self.scene.reasons.setdefault(self.name, []).append(reason)
        return None


class AsyncNode(Node):
    """Node for a task lane: it waits for its latch without holding the event loop."""

    async def handle_event(self, event: Any, /) -> Any:
        if event == 1 and self.name == A:
            self.scene.held.set()
            assert await asyncio.to_thread(self.scene.release.wait, WAIT)
        return self.outcome(event)


class Elsewhere(Node):
    """Where A swaps itself away to."""


def _check(scene: Scene, handlers: list[Any]) -> None:
    expected = [(Node, A)] if scene.leave != "swap_away" else [(Node, A), (Elsewhere, "gone")]
    assert handlers == expected
    assert [type(r) for r in scene.reasons[A]] == [EXPECTED_REASON[scene.leave]]
    assert [type(r) for r in scene.reasons[B]] == [Swapped]
    assert "new-a" not in scene.reasons  # the new handler under A's id is running


@pytest.mark.parametrize("leave", LEAVES)
@pytest.mark.parametrize("isolation", ["thread", "task"])
async def test_aio_outcomes_apply_in_mailbox_order(isolation: str, leave: str) -> None:
    scene = Scene(leave)
    cls = AsyncNode if isolation == "task" else Node
    mgr = aio.start()
    try:
        await mgr.add_handler((cls, A), (scene, A), isolation=isolation)  # type: ignore[arg-type]
        await mgr.add_handler((cls, B), (scene, B), isolation=isolation)  # type: ignore[arg-type]
        mgr.notify(1)
        mgr.notify(2)
        assert await asyncio.to_thread(scene.held.wait, WAIT)
        assert await asyncio.to_thread(scene.b_returned.wait, WAIT)
        scene.release.set()
        await asyncio.wait_for(mgr.sync_notify(3), WAIT)
        handlers = await asyncio.wait_for(mgr.which_handlers(), WAIT)
        _check(scene, handlers)
        assert await asyncio.wait_for(mgr.call((Node, A), "who"), WAIT) == "new-a"
    finally:
        scene.release.set()
        await asyncio.wait_for(mgr.stop(), WAIT)


@pytest.mark.parametrize("leave", LEAVES)
def test_threads_outcomes_apply_in_mailbox_order(leave: str) -> None:
    scene = Scene(leave)
    mgr = threads.start()
    try:
        mgr.add_handler((Node, A), (scene, A), isolation=True)
        mgr.add_handler((Node, B), (scene, B), isolation=True)
        mgr.notify(1)
        mgr.notify(2)
        assert scene.held.wait(WAIT)
        assert scene.b_returned.wait(WAIT)
        scene.release.set()
        mgr.sync_notify(3, timeout=WAIT)
        handlers = mgr.which_handlers(timeout=WAIT)
        _check(scene, handlers)
        assert mgr.call((Node, A), "who", timeout=WAIT) == "new-a"
    finally:
        scene.release.set()
        mgr.stop(timeout=WAIT)


@pytest.mark.parametrize("leave", LEAVES)
def test_threads_a_call_outcome_waits_for_an_earlier_event_outcome(leave: str) -> None:
    """B's swap comes from a call made after event 1: it is applied after A's outcome."""
    scene = Scene(leave)
    mgr = threads.start()
    try:
        mgr.add_handler((Node, A), (scene, A), isolation=True)
        mgr.add_handler((Node, B), (scene, B), isolation=True)
        mgr.notify(1)
        assert scene.held.wait(WAIT)
        reply = mgr.call_future((Node, B), "swap-into-a")
        assert scene.b_returned.wait(WAIT)
        scene.release.set()
        assert reply.result(WAIT) == "swapped"
        mgr.sync_notify(3, timeout=WAIT)
        _check(scene, mgr.which_handlers(timeout=WAIT))
    finally:
        scene.release.set()
        mgr.stop(timeout=WAIT)


@pytest.mark.parametrize("leave", LEAVES)
@pytest.mark.parametrize("isolation", ["thread", "task"])
async def test_aio_a_call_outcome_waits_for_an_earlier_event_outcome(
    isolation: str, leave: str
) -> None:
    """B's swap comes from a call made after event 1: it is applied after A's outcome."""
    scene = Scene(leave)
    cls = AsyncNode if isolation == "task" else Node
    mgr = aio.start()
    try:
        await mgr.add_handler((cls, A), (scene, A), isolation=isolation)  # type: ignore[arg-type]
        await mgr.add_handler((cls, B), (scene, B), isolation=isolation)  # type: ignore[arg-type]
        mgr.notify(1)
        assert await asyncio.to_thread(scene.held.wait, WAIT)
        reply = asyncio.create_task(mgr.call((cls, B), "swap-into-a", timeout=WAIT))
        assert await asyncio.to_thread(scene.b_returned.wait, WAIT)
        scene.release.set()
        assert await reply == "swapped"
        await asyncio.wait_for(mgr.sync_notify(3), WAIT)
        _check(scene, await asyncio.wait_for(mgr.which_handlers(), WAIT))
    finally:
        scene.release.set()
        await asyncio.wait_for(mgr.stop(), WAIT)


class Plain(Node):
    """Not isolated: on event 2 it swaps itself into A's id (after A's outcome, in order)."""

    def handle_event(self, event: Any, /) -> Any:
        if event == 2 and self.name == B:
            self.scene.b_returned.set()
            return Swap("into-a", (Node, A), (self.scene, "new-a"))
        return None


@pytest.mark.parametrize("leave", LEAVES)
def test_threads_a_plain_handlers_change_waits_for_an_earlier_isolated_outcome(
    leave: str,
) -> None:
    """B is not isolated: its swap on event 2 is applied after A's outcome on event 1, which A
    returns later (the manager waits for A at B's change, holding what comes after)."""
    scene = Scene(leave)
    mgr = threads.start()
    try:
        mgr.add_handler((Node, A), (scene, A), isolation=True)
        mgr.add_handler((Plain, B), (scene, B))
        mgr.notify(1)
        assert scene.held.wait(WAIT)
        mgr.notify(2)
        assert scene.b_returned.wait(WAIT)  # B returned its swap; the manager holds it
        scene.release.set()
        mgr.sync_notify(3, timeout=WAIT)
        _check(scene, mgr.which_handlers(timeout=WAIT))
    finally:
        scene.release.set()
        mgr.stop(timeout=WAIT)


@pytest.mark.parametrize("leave", LEAVES)
@pytest.mark.parametrize("isolation", ["thread", "task"])
async def test_aio_a_plain_handlers_change_waits_for_an_earlier_isolated_outcome(
    isolation: str, leave: str
) -> None:
    """As on threads: B (not isolated) swaps into A's id after A's earlier outcome."""
    scene = Scene(leave)
    cls = AsyncNode if isolation == "task" else Node
    mgr = aio.start()
    try:
        await mgr.add_handler((cls, A), (scene, A), isolation=isolation)  # type: ignore[arg-type]
        await mgr.add_handler((Plain, B), (scene, B))
        mgr.notify(1)
        assert await asyncio.to_thread(scene.held.wait, WAIT)
        mgr.notify(2)
        assert await asyncio.to_thread(scene.b_returned.wait, WAIT)
        scene.release.set()
        await asyncio.wait_for(mgr.sync_notify(3), WAIT)
        _check(scene, await asyncio.wait_for(mgr.which_handlers(), WAIT))
    finally:
        scene.release.set()
        await asyncio.wait_for(mgr.stop(), WAIT)
