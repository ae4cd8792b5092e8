"""The same behaviour contract checked on a local asyncio manager and on a remote one.

The conformance checklist (``tests/conformance``) observes handlers through recorder objects
passed as handler arguments; those are local objects and do not cross a wire, so its cases
run on the local runtimes only. Here the handlers of ``tests.distributed.app`` are observed
through messages (calls), and every case runs twice: ``aio`` (a local manager, handlers
named by their registered names through a thin adapter) and ``nats`` (a manager hosted by
one node, called from another through NATS). Differences that are by design are tested as
such at the end.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest

from genevent import (
    CallNotSupported,
    EventHandler,
    HandlerCrashed,
    HandlerExists,
    HandlerInitFailed,
    HandlerNotFound,
    ManagerNotRunning,
    aio,
)
from genevent.examples import BroadcastEventHandler
from genevent.nats import ManagerNotFound, RemoteException, connect
from tests.distributed.app import HANDLERS, TYPES

_BY_NAME = {cls.__name__: cls for cls in HANDLERS}


class Local:
    """An asyncio manager addressed the remote way (handlers by registered name)."""

    def __init__(self, mgr: aio.EventManager[Any]) -> None:
        self.mgr = mgr

    @staticmethod
    def _ref(h: Any) -> Any:
        if isinstance(h, tuple):
            return (_BY_NAME[h[0]], h[1])
        return _BY_NAME[h]

    @staticmethod
    def _name(ref: Any) -> Any:
        return (ref[0].__name__, ref[1]) if isinstance(ref, tuple) else ref.__name__

    def notify(self, event: Any) -> None:
        self.mgr.notify(event)

    def send(self, message: Any) -> None:
        self.mgr.send(message)

    async def sync_notify(self, event: Any) -> None:
        await self.mgr.sync_notify(event)

    async def call(self, h: Any, request: Any) -> Any:
        return await self.mgr.call(self._ref(h), request)

    async def add_handler(self, h: Any, args: Any = None, **kw: Any) -> None:
        await self.mgr.add_handler(self._ref(h), args, **kw)

    async def delete_handler(self, h: Any, args: Any = None) -> Any:
        return await self.mgr.delete_handler(self._ref(h), args)

    async def swap_handler(self, old: Any, args1: Any, new: Any, args2: Any = None) -> None:
        await self.mgr.swap_handler(self._ref(old), args1, self._ref(new), args2)

    async def which_handlers(self) -> list[Any]:
        return [self._name(r) for r in await self.mgr.which_handlers()]

    async def get_state(self) -> list[tuple[Any, Any]]:
        return [(self._name(r), s) for r, s in await self.mgr.get_state()]

    async def stop(self) -> None:
        await self.mgr.stop()


@asynccontextmanager
async def manager(kind: str, url: str, ns: str) -> AsyncIterator[Any]:
    if kind == "aio":
        mgr = aio.start()
        try:
            yield Local(mgr)
        finally:
            if mgr.is_running:
                await mgr.stop()
        return
    opts: dict[str, Any] = {"ns": ns, "handlers": HANDLERS, "types": TYPES}
    host = await connect(url, node_id="host", **opts)
    caller = await connect(url, node_id="caller", **opts)
    async with host, caller:
        await host.start_manager("m")
        yield caller.manager("m")


KINDS = ["aio", "nats"]


@pytest.mark.parametrize("kind", KINDS)
async def test_started_manager_has_no_handlers(kind: str, url: str, ns: str) -> None:
    async with manager(kind, url, ns) as m:
        assert await m.which_handlers() == []


@pytest.mark.parametrize("kind", KINDS)
async def test_handlers_listed_newest_first_and_ids_distinct(kind: str, url: str, ns: str) -> None:
    async with manager(kind, url, ns) as m:
        await m.add_handler("Log")
        await m.add_handler(("Log", 1))
        await m.add_handler("Quiet")
        assert await m.which_handlers() == ["Quiet", ("Log", 1), "Log"]
        with pytest.raises(HandlerExists):
            await m.add_handler(("Log", 1))


@pytest.mark.parametrize("kind", KINDS)
async def test_events_reach_every_handler_in_order(kind: str, url: str, ns: str) -> None:
    async with manager(kind, url, ns) as m:
        await m.add_handler("Log")
        await m.add_handler(("Log", 2))
        for i in range(50):
            m.notify(i)
        await m.sync_notify("last")
        expected = [*range(50), "last"]
        assert await m.call("Log", "log") == expected
        assert await m.call(("Log", 2), "log") == expected


@pytest.mark.parametrize("kind", KINDS)
async def test_a_crashing_event_handler_is_removed_others_go_on(
    kind: str, url: str, ns: str
) -> None:
    async with manager(kind, url, ns) as m:
        await m.add_handler("Log")
        await m.add_handler(("Log", 2))
        await m.sync_notify("x")
        await m.delete_handler(("Log", 2))
        await m.add_handler("Quiet")
        m.notify("crash")
        m.notify("leave")
        m.notify("y")
        assert await m.which_handlers() == ["Quiet"]


@pytest.mark.parametrize("kind", KINDS)
async def test_call_errors(kind: str, url: str, ns: str) -> None:
    async with manager(kind, url, ns) as m:
        await m.add_handler("Log")
        await m.add_handler("Quiet")
        assert await m.call("Log", ("q", 1)) == ("echo", ("q", 1))
        with pytest.raises(HandlerNotFound):
            await m.call(("Log", 7), "log")
        with pytest.raises(CallNotSupported):
            await m.call("Quiet", "x")
        assert "Quiet" in await m.which_handlers()  # stays installed
        with pytest.raises(HandlerCrashed) as crash:
            await m.call("Log", "crash")
        cause = crash.value.cause
        name = cause.type_name if isinstance(cause, RemoteException) else type(cause).__name__
        assert name == "KeyError"
        assert await m.which_handlers() == ["Quiet"]


@pytest.mark.parametrize("kind", KINDS)
async def test_restart_policies_apply_on_the_serving_node(kind: str, url: str, ns: str) -> None:
    async with manager(kind, url, ns) as m:
        await m.add_handler("Log", restart="transient", max_restarts=5, restart_period=60.0)
        await m.add_handler(("Log", 2))
        with pytest.raises(HandlerCrashed):
            await m.call("Log", "crash")
        with pytest.raises(HandlerCrashed):
            await m.call(("Log", 2), "crash")
        assert await m.which_handlers() == ["Log"]  # re-added (fresh), the temporary one gone
        assert await m.call("Log", "log") == []


@pytest.mark.parametrize("kind", KINDS)
async def test_isolated_handlers(kind: str, url: str, ns: str) -> None:
    async with manager(kind, url, ns) as m:
        await m.add_handler("Log", isolation="task", maxsize=1000, stop_timeout=30.0)
        await m.add_handler("BroadcastEventHandler", isolation="thread", stop_timeout=30.0)
        for i in range(20):
            m.notify(("broadcast", str(i)))
        await m.sync_notify("last")
        assert await m.call("Log", "log") == [*(("broadcast", str(i)) for i in range(20)), "last"]
        texts = await m.call("BroadcastEventHandler", "broadcasts")
        assert texts == [str(i) for i in reversed(range(20))]


@pytest.mark.parametrize("kind", KINDS)
async def test_init_failure_installs_nothing(kind: str, url: str, ns: str) -> None:
    async with manager(kind, url, ns) as m:
        with pytest.raises(HandlerInitFailed):
            await m.add_handler("Log", "refuse")
        assert await m.which_handlers() == []


@pytest.mark.parametrize("kind", KINDS)
async def test_delete_returns_terminate_result(kind: str, url: str, ns: str) -> None:
    async with manager(kind, url, ns) as m:
        await m.add_handler("Log")
        m.notify(1)
        assert await m.delete_handler("Log", "bye") == {"events": 1}
        with pytest.raises(HandlerNotFound):
            await m.delete_handler("Log")


@pytest.mark.parametrize("kind", KINDS)
async def test_swap_hands_off_terminate_result(kind: str, url: str, ns: str) -> None:
    async with manager(kind, url, ns) as m:
        await m.add_handler("Log")
        m.notify(1)
        m.notify(2)
        await m.swap_handler("Log", "args1", "Heir", "args2")
        assert await m.which_handlers() == ["Heir"]
        assert await m.call("Heir", "handoff") == {"events": 2}
        await m.swap_handler("Log", None, ("Heir", 2))  # old missing: new installed anyway
        assert await m.call(("Heir", 2), "handoff") == "none"


@pytest.mark.parametrize("kind", KINDS)
async def test_infos_reach_handle_info(kind: str, url: str, ns: str) -> None:
    async with manager(kind, url, ns) as m:
        await m.add_handler("Log")
        m.send(("tick", 1))
        assert await m.call("Log", "infos") == [("tick", 1)]


@pytest.mark.parametrize("kind", KINDS)
async def test_get_state(kind: str, url: str, ns: str) -> None:
    async with manager(kind, url, ns) as m:
        await m.add_handler("BroadcastEventHandler")
        m.notify(("broadcast", "hi"))
        assert await m.get_state() == [("BroadcastEventHandler", {"broadcasts": ["hi"]})]


@pytest.mark.parametrize("kind", KINDS)
async def test_seed_session(kind: str, url: str, ns: str) -> None:
    async with manager(kind, url, ns) as m:
        await m.add_handler(BroadcastEventHandler.__name__)
        m.notify(("broadcast", "I dare you!"))
        m.notify(("broadcast", "Meetup at 10 o'clock"))
        name = "BroadcastEventHandler"
        assert await m.call(name, "broadcasts") == ["Meetup at 10 o'clock", "I dare you!"]
        assert await m.call(name, "broadcasts") == []
        m.notify(("broadcast", "Assemble in class"))
        assert await m.call(name, "broadcasts") == ["Assemble in class"]


@pytest.mark.parametrize("kind", KINDS)
async def test_stopped_manager(kind: str, url: str, ns: str) -> None:
    """By design: a stopped local manager says ManagerNotRunning (and refuses notify); a
    remote one is simply not served any more: ManagerNotFound, and notify stays
    fire-and-forget (nothing can tell a sender that nobody listens)."""
    async with manager(kind, url, ns) as m:
        await m.add_handler("Log")
        await m.stop()
        if kind == "aio":
            with pytest.raises(ManagerNotRunning):
                await m.call("Log", "log")
            with pytest.raises(ManagerNotRunning):
                m.notify(1)
        else:
            with pytest.raises(ManagerNotFound):
                await m.call("Log", "log")
            m.notify(1)


def test_blocking_node_from_threads(url: str, ns: str) -> None:
    from genevent import threads  # noqa: PLC0415 - the thread runtime's side of the story
    from genevent.nats import BlockingNode  # noqa: PLC0415

    opts: dict[str, Any] = {"ns": ns, "handlers": HANDLERS, "types": TYPES}
    with BlockingNode(url, node_id="host", **opts) as host, BlockingNode(url, **opts) as caller:
        host.start_manager("m")
        m = caller.manager("m")
        m.add_handler("Log")
        with threads.start() as local:  # a thread-runtime manager forwards to the remote one

            class Forward(EventHandler[Any, Any, Any]):
                def handle_event(self, event: Any, /) -> None:
                    m.notify(("fwd", event))

            local.add_handler(Forward)
            for i in range(20):
                local.notify(i)
                m.notify(("direct", i))
            local.sync_notify("last")
        log = m.call("Log", "log")
        assert [e for e in log if e[0] == "direct"] == [("direct", i) for i in range(20)]
        assert [e for e in log if e[0] == "fwd"] == [("fwd", i) for i in [*range(20), "last"]]
        assert caller.managers() == {"m": "host"}
        with pytest.raises(HandlerNotFound):
            m.call("Nope", 1)
