"""Thread-runtime-only behaviour: refusing coroutine handlers, leaving no thread behind,
garbage managers, interpreter exit, crossing into asyncio, foreign owner threads."""

from __future__ import annotations

import asyncio
import gc
import subprocess
import sys
import textwrap
import threading
from typing import Any

import pytest

import genevent
from genevent import (
    CallingSelf,
    HandlerExit,
    InvalidHandler,
    InvalidOwner,
    OwnerExited,
    Stopped,
    aio,
    threads,
)
from genevent.threads import _state
from tests.handlers import WAIT, H, Recorder, Spec


class AsyncEvent(H):
    async def handle_event(self, event: Any, /) -> None:
        return None


def _genevent_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("genevent:")]


def test_coroutine_handlers_are_refused(rec: Recorder) -> None:
    with threads.start() as mgr:
        with pytest.raises(InvalidHandler, match="coroutine"):
            mgr.add_handler(AsyncEvent, Spec(rec))
        assert mgr.which_handlers() == []


def test_stopped_manager_leaves_no_thread(rec: Recorder) -> None:
    before = set(_genevent_threads())
    managers = [threads.start() for _ in range(5)]
    for mgr in managers:
        mgr.add_handler(H, Spec(rec))
    for mgr in managers:
        mgr.stop()
        assert not mgr.thread.is_alive()
    assert set(_genevent_threads()) == before


def test_garbage_running_manager_is_stopped_and_reported(rec: Recorder) -> None:
    mgr = threads.start()
    mgr.add_handler(H, Spec(rec))
    thread = mgr.thread
    # the last reference goes inside the block: CPython finalizes the manager right there
    with pytest.warns(ResourceWarning, match="garbage collected while running"):  # noqa: PT031
        del mgr
        gc.collect()
    thread.join(WAIT)
    assert not thread.is_alive()
    assert rec.terminations() == [("h", Stopped())]


def test_interpreter_exit_with_running_managers_does_not_hang() -> None:
    script = textwrap.dedent(
        """
        import threading
        from genevent import EventHandler, threads

        LOCK = threading.Lock()

        class Bye(EventHandler):
            def handle_event(self, event): pass
            def terminate(self, reason):
                with LOCK:
                    print("terminated", type(reason).__name__, flush=True)

        keep = [threads.start() for _ in range(3)]
        for m in keep:
            m.add_handler(Bye)
            m.notify("x")
        print("exiting", flush=True)
        """
    )
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == ["exiting"] + ["terminated Stopped"] * 3


async def test_asyncio_code_calls_a_thread_manager_without_blocking(rec: Recorder) -> None:
    gate = threading.Event()

    class Gated(H):
        def handle_call(self, request: Any, /) -> Any:
            gate.wait(WAIT)
            return ("done", request)

    with threads.start() as mgr:
        mgr.add_handler(Gated, Spec(rec))
        pending = asyncio.ensure_future(mgr.acall(Gated, "q"))
        # the loop keeps running while the thread manager works
        for _ in range(3):
            await asyncio.sleep(0)
        assert not pending.done()
        gate.set()
        assert await pending == ("done", "q")
        fut = mgr.call_future(Gated, "f")
        assert await asyncio.wrap_future(fut) == ("done", "f")
        await mgr.async_sync_notify("e")
        assert rec.of("h", "event") == ["e"]


def test_thread_handler_feeds_asyncio_manager(rec: Recorder) -> None:
    """Crossing runtimes: a thread-runtime handler notifies an asyncio manager."""

    async def main() -> list[Any]:
        async with aio.start() as amgr:
            await amgr.add_handler(H, Spec(rec, "aio"))

            class Forward(H):
                def handle_event(self, event: Any, /) -> None:
                    amgr.notify(("forwarded", event))

            done = asyncio.Event()
            loop = asyncio.get_running_loop()

            def run_threads() -> None:
                with threads.start() as tmgr:
                    tmgr.add_handler(Forward, Spec(rec, "thr"))
                    for i in range(100):
                        tmgr.notify(i)
                    tmgr.sync_notify("last")
                loop.call_soon_threadsafe(done.set)

            await asyncio.to_thread(run_threads)
            await done.wait()
            await amgr.sync_notify("barrier")
            return rec.of("aio", "event")

    events = asyncio.run(main())
    assert events == [("forwarded", i) for i in range(100)] + [("forwarded", "last"), "barrier"]


def test_self_calls_fail_clearly_including_futures_and_stop(rec: Recorder) -> None:
    got: list[BaseException] = []

    class Reentrant(H):
        def handle_call(self, request: Any, /) -> Any:
            try:
                request(mgr)
            except CallingSelf as exc:
                got.append(exc)
            return "ok"

    with threads.start() as mgr:
        mgr.add_handler(Reentrant, Spec(rec))
        ops = [
            lambda m: m.call_future(Reentrant, 1),
            lambda m: m.sync_notify_future(1),
            lambda m: m.stop(),
            lambda m: m.wait_stopped(),
            lambda m: m.which_handlers(),
        ]
        for op in ops:
            assert mgr.call(Reentrant, op) == "ok"
        assert len(got) == len(ops)


def test_on_exit_runs_on_manager_thread_and_cannot_block_on_it(rec: Recorder) -> None:
    seen: list[Any] = []

    def on_exit(notice: HandlerExit) -> None:
        seen.append(threading.current_thread())
        try:
            mgr.which_handlers()
        except CallingSelf as exc:
            seen.append(exc)

    with threads.start() as mgr:
        mgr.add_sup_handler(H, Spec(rec), on_exit=on_exit)
        mgr.delete_handler(H)
        assert seen[0] is mgr.thread
        assert isinstance(seen[1], CallingSelf)


def test_owner_may_be_another_thread(rec: Recorder) -> None:
    release = threading.Event()
    other = threading.Thread(target=release.wait, args=(WAIT,))
    other.start()
    with threads.start() as mgr:
        mgr.add_sup_handler(H, Spec(rec), owner=other, on_exit=rec.notice)
        release.set()
        other.join(WAIT)
        rec.wait("h", "terminate")
        assert rec.of("h", "terminate") == [OwnerExited(None)]
        assert mgr.which_handlers() == []
        with pytest.raises(InvalidOwner):
            mgr.add_sup_handler(
                H,
                Spec(rec),
                owner="not a thread",  # type: ignore[arg-type]
                on_exit=rec.notice,
            )
        with pytest.raises(InvalidOwner):
            mgr.add_sup_handler(H, Spec(rec), owner=threading.Thread(), on_exit=rec.notice)


def test_ended_owner_thread_removes_handler_at_once(rec: Recorder) -> None:
    dead = threading.Thread(target=lambda: None)
    dead.start()
    dead.join(WAIT)
    with threads.start() as mgr:
        mgr.add_sup_handler(H, Spec(rec), owner=dead, on_exit=rec.notice)
        rec.wait("h", "terminate")
        assert rec.of("h", "terminate") == [OwnerExited(None)]


def test_repr_and_thread_name(rec: Recorder) -> None:
    with threads.start("thr-repr") as mgr:
        mgr.add_handler(H, Spec(rec))
        assert "thr-repr" in repr(mgr)
        assert "handlers=1" in repr(mgr)
        assert mgr.thread.name.startswith("genevent:")
        assert mgr.thread.daemon
    assert "stopped" in repr(mgr)


def test_many_calls_in_flight_with_futures(rec: Recorder) -> None:
    """docs/semantics.md P12: OTP's send_request/receive_response is call_future in threads."""
    with threads.start() as mgr:
        mgr.add_handler(H, Spec(rec))
        futures = [mgr.call_future(H, i) for i in range(50)]
        missing = mgr.call_future((H, "missing"), 0)
        assert [f.result(WAIT)[1] for f in futures] == list(range(50))
        assert isinstance(missing.exception(WAIT), genevent.HandlerNotFound)


def test_failed_supervised_adds_leave_no_owner_watch(rec: Recorder) -> None:
    """Review finding: a refused add_sup_handler for another thread must not register a
    watch that nothing will ever release."""
    ended = threading.Thread(target=lambda: None)
    ended.start()
    ended.join(WAIT)
    with threads.start() as mgr:
        for _ in range(5):
            with pytest.raises(genevent.HandlerInitFailed):
                mgr.add_sup_handler(
                    H, Spec(rec, init=lambda h: 1 / 0), owner=ended, on_exit=rec.notice
                )
    assert not _state.is_watched(ended)


def test_stopped_manager_forgets_its_thread_id(rec: Recorder) -> None:
    """Second review: a new thread may reuse a stopped manager's thread id; it must get
    ManagerNotRunning, not CallingSelf."""
    mgr = threads.start()
    mgr.stop()
    assert mgr._srv.ident is None
    box: list[BaseException] = []

    def later() -> None:
        try:
            mgr.which_handlers()
        except genevent.GenEventError as exc:
            box.append(exc)

    t = threading.Thread(target=later)
    t.start()
    t.join(WAIT)
    assert isinstance(box[0], genevent.ManagerNotRunning)
