"""asyncio: stop refuses at once, KeyboardInterrupt finishes its request before it leaves the
loop, loop shutdown terminates every handler, a closed loop is noticed."""

from __future__ import annotations

import asyncio
import gc
import logging
import threading
from collections.abc import Callable, Coroutine
from typing import Any

import pytest

import genevent
from genevent import EventHandler, ExitReason, ManagerNotRunning, Stopped, aio
from tests.handlers import WAIT, H, Recorder, Spec, raise_


def run_elsewhere(main: Callable[[], Coroutine[Any, Any, None]]) -> BaseException | None:
    """``asyncio.run(main())`` in a thread of its own; what it raised. (CPython 3.11 leaves a
    thread's recursion counter off after a KeyboardInterrupt leaves a task, which breaks a
    later ``ast.parse`` on that thread: keep it away from the test's thread.)"""
    box: list[BaseException | None] = []

    def target() -> None:
        try:
            asyncio.run(main())
        except BaseException as exc:
            box.append(exc)
        else:
            box.append(None)

    thread = threading.Thread(target=target)
    thread.start()
    thread.join(WAIT)
    assert box, "asyncio.run did not return"
    return box[0]


async def test_notify_and_send_are_refused_once_stop_is_requested(rec: Recorder) -> None:
    mgr = aio.start()
    await mgr.add_handler(H, Spec(rec))
    mgr.notify("before")
    stopper = asyncio.ensure_future(mgr.stop())
    await asyncio.sleep(0)  # stop() was requested; the manager has not handled it yet
    assert not mgr.is_running
    with pytest.raises(ManagerNotRunning):
        mgr.notify("after")
    with pytest.raises(ManagerNotRunning):
        mgr.send("after")
    await stopper
    assert [item[1:] for item in rec.log] == [
        ("init", genevent.NO_HANDOFF),
        ("event", "before"),
        ("terminate", Stopped()),
    ]


def _sup(rec: Recorder, name: Any, **kw: Any) -> tuple[Any, Spec]:
    return (H, name), Spec(rec, name, **kw)


@pytest.mark.parametrize("exc_type", [KeyboardInterrupt, SystemExit])
def test_interrupt_from_terminate_during_stop_finishes_the_stop(
    rec: Recorder, exc_type: type[BaseException]
) -> None:
    answered: list[Any] = []

    async def main() -> None:
        mgr = aio.start()
        for name in (1, 2, 3):
            kw = {"terminate": raise_(exc_type())} if name == 2 else {}
            ref, spec = _sup(rec, name, **kw)
            await mgr.add_sup_handler(ref, spec, on_exit=rec.notice)
        mgr.notify("queued")
        await mgr.stop()
        answered.append("stop")

    assert isinstance(run_elsewhere(main), exc_type)
    assert [n for n, _ in rec.terminations()] == [3, 2, 1]
    assert all(reason == Stopped() for _, reason in rec.terminations())
    assert [ref for ref, _ in rec.notices()] == [(H, 3), (H, 2), (H, 1)]
    assert rec.of(1, "event") == ["queued"]


@pytest.mark.parametrize("path", ["queued", "inline"])
def test_interrupt_from_handle_event_finishes_the_event_then_leaves_the_loop(
    rec: Recorder, path: str
) -> None:
    async def main() -> None:
        mgr = aio.start()
        await mgr.add_sup_handler((H, 1), Spec(rec, 1), on_exit=rec.notice)
        await mgr.add_handler((H, 2), Spec(rec, 2, event=raise_(KeyboardInterrupt())))
        await mgr.add_handler((H, 3), Spec(rec, 3))
        if path == "queued":
            mgr.notify("e")
            await mgr.wait_stopped()
        else:
            await mgr.sync_notify("e")

    assert isinstance(run_elsewhere(main), KeyboardInterrupt)
    assert rec.of(1, "event") == ["e"]  # the handler after it still got the event
    assert rec.of(2, "terminate")[0].__class__ is genevent.Crashed
    assert rec.of(1, "terminate") == [Stopped()]
    assert rec.of(3, "terminate") == [Stopped()]
    assert rec.notices() == [((H, 1), Stopped())]


@pytest.mark.parametrize("where", ["init", "terminate"])
def test_interrupt_from_a_queued_table_edit_finishes_it_then_leaves_the_loop(
    rec: Recorder, where: str
) -> None:
    # an add_handler (init) or delete_handler (terminate) queued behind an event, on a busy
    # manager: the edit is finished, then the KeyboardInterrupt goes on and the manager stops
    async def main() -> None:
        mgr = aio.start()
        await mgr.add_handler((H, "other"), Spec(rec, "other"))
        if where == "terminate":
            await mgr.add_handler((H, 1), Spec(rec, 1, terminate=raise_(KeyboardInterrupt())))
        mgr.notify("e")

        def interrupt(handler: Any) -> Any:
            raise KeyboardInterrupt

        edit = (
            mgr.add_handler((H, 1), Spec(rec, 1, init=interrupt))
            if where == "init"
            else mgr.delete_handler((H, 1))
        )
        with pytest.raises(ManagerNotRunning):
            await edit
        await mgr.wait_stopped()

    assert isinstance(run_elsewhere(main), KeyboardInterrupt)
    assert rec.of("other", "event") == ["e"]
    assert rec.of("other", "terminate") == [Stopped()]
    if where == "terminate":
        assert rec.of(1, "terminate") == [genevent.Deleted(None)]
    else:
        assert rec.of(1, "terminate") == []


class AwaitsInTerminate(EventHandler[Any, Any, Any]):
    def init(self, args: tuple[Recorder, asyncio.Task[None]], /) -> None:
        self.rec, self.other = args

    def handle_event(self, event: Any, /) -> None:
        return None

    async def terminate(self, reason: ExitReason, /) -> None:
        self.rec.add("awaiter", "terminate-start", reason)
        await self.other  # cancelled at loop shutdown too


def test_loop_shutdown_terminates_every_handler_even_if_one_is_cancelled(
    rec: Recorder, reports: pytest.LogCaptureFixture
) -> None:
    async def main() -> None:
        mgr = aio.start()
        other = asyncio.ensure_future(asyncio.sleep(3600))
        await mgr.add_handler((H, "first"), Spec(rec, "first"))
        await mgr.add_handler(AwaitsInTerminate, (rec, other))
        await mgr.add_handler((H, "last"), Spec(rec, "last"))
        mgr.notify("queued")  # accepted: handled before the handlers are terminated

    asyncio.run(main())  # returns with the manager running: asyncio.run cancels its task
    assert rec.of("awaiter", "terminate-start") == [Stopped()]
    assert rec.of("last", "terminate") == [Stopped()]
    assert rec.of("first", "terminate") == [Stopped()]
    assert rec.of("first", "event") == ["queued"]
    assert any("AwaitsInTerminate terminate raised" in r.getMessage() for r in reports.records)


def test_a_manager_whose_loop_was_closed_is_not_running(
    rec: Recorder, reports: pytest.LogCaptureFixture
) -> None:
    reports.set_level(logging.DEBUG, logger="asyncio")
    loop = asyncio.new_event_loop()

    async def make() -> aio.EventManager[Any]:
        mgr = aio.start("closed-loop")
        await mgr.add_handler(H, Spec(rec))
        await mgr.which_handlers()  # the manager is parked
        return mgr

    mgr = loop.run_until_complete(make())
    loop.close()
    with pytest.raises(ManagerNotRunning):
        mgr.notify("late")  # from the loop's own thread: no bare RuntimeError
    assert not mgr.is_running
    assert genevent.whereis("closed-loop") is None
    assert rec.terminations() == []

    async def again() -> None:
        async with aio.start("closed-loop") as fresh:  # the name is free
            assert genevent.whereis("closed-loop") is fresh

    asyncio.run(again())
    del mgr
    gc.collect()
    assert not [r for r in reports.records if "destroyed" in r.getMessage()]


def test_a_closed_loop_with_queued_events_frees_the_name_and_counts_them(
    rec: Recorder, reports: pytest.LogCaptureFixture
) -> None:
    reports.set_level(logging.DEBUG, logger="asyncio")
    loop = asyncio.new_event_loop()

    async def make() -> aio.EventManager[Any]:
        mgr = aio.start("closed-queued")
        await mgr.add_handler(H, Spec(rec))
        return mgr

    mgr = loop.run_until_complete(make())
    mgr.notify(1)
    mgr.notify(2)  # queued while the loop is not running: the manager never runs again
    loop.close()

    async def take_name() -> None:
        fresh = aio.start("closed-queued")  # the old holder is found gone: no NameTaken
        await fresh.stop()

    asyncio.run(take_name())
    assert not mgr.is_running
    with pytest.raises(ManagerNotRunning):
        mgr.notify(3)
    with pytest.raises(ManagerNotRunning):
        mgr.send(3)
    assert any("2 queued messages not handled" in r.getMessage() for r in reports.records)
    del mgr
    gc.collect()
    assert not [r for r in reports.records if "destroyed" in r.getMessage()]
