"""One blocking test facade over every runtime, so the conformance suite runs unchanged on each.

A test talks to a :class:`Facade`, whose methods block until the manager answered. Where a
request runs matters for supervision (the default owner is the caller), so every request runs in
a *worker*: for asyncio a long-lived task in a loop thread (a request is awaited inside it), for
threads a thread (or the test's own thread for the main worker). A worker is an owner that lives
until the test ends it with :meth:`Worker.end`.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import inspect
import queue
import threading
from collections.abc import Callable, Coroutine
from typing import Any

from genevent import aio, threads
from tests.handlers import WAIT, H

_END = object()


class Worker:
    """Runs requests in one owner context (a task or a thread)."""

    owner: Any

    def run(self, fn: Callable[[], Any]) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    def end(self, exc: BaseException | None = None) -> None:  # pragma: no cover - abstract
        raise NotImplementedError


class TaskWorker(Worker):
    """A task in the runtime's loop; ``fn()`` may return an awaitable, which it awaits."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        started: concurrent.futures.Future[Any] = concurrent.futures.Future()

        async def main() -> None:
            q: asyncio.Queue[Any] = asyncio.Queue()
            started.set_result(q)
            while True:
                item = await q.get()
                if item[0] is _END:
                    if item[1] is not None:
                        raise item[1]
                    return
                fn, fut = item
                try:
                    result = fn()
                    if inspect.isawaitable(result):
                        result = await result
                except BaseException as exc:
                    fut.set_exception(exc)
                else:
                    fut.set_result(result)

        self.task = asyncio.run_coroutine_threadsafe(self._spawn(main()), loop).result(WAIT)
        self.queue: asyncio.Queue[Any] = started.result(WAIT)
        self.owner = self.task

    @staticmethod
    async def _spawn(coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = asyncio.create_task(coro)
        await asyncio.sleep(0)  # let it create its queue
        return task

    def run(self, fn: Callable[[], Any]) -> Any:
        fut: concurrent.futures.Future[Any] = concurrent.futures.Future()
        self.loop.call_soon_threadsafe(self.queue.put_nowait, (fn, fut))
        return fut.result(WAIT)

    def end(self, exc: BaseException | None = None) -> None:
        self.loop.call_soon_threadsafe(self.queue.put_nowait, (_END, exc))


class ThreadWorker(Worker):
    """A thread of its own."""

    def __init__(self) -> None:
        self.queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self.thread = threading.Thread(target=self._main, daemon=True)
        self.owner = self.thread
        self.thread.start()

    def _main(self) -> None:
        while True:
            item = self.queue.get()
            if item[0] is _END:
                if item[1] is not None:
                    raise item[1]
                return
            fn, fut = item
            try:
                fut.set_result(fn())
            except BaseException as exc:
                fut.set_exception(exc)

    def run(self, fn: Callable[[], Any]) -> Any:
        fut: concurrent.futures.Future[Any] = concurrent.futures.Future()
        self.queue.put((fn, fut))
        return fut.result(WAIT)

    def end(self, exc: BaseException | None = None) -> None:
        self.queue.put((_END, exc))


class CallerWorker(Worker):
    """The test's own thread (threads runtime main worker)."""

    def __init__(self) -> None:
        self.owner = threading.current_thread()

    def run(self, fn: Callable[[], Any]) -> Any:
        return fn()

    def end(self, exc: BaseException | None = None) -> None:  # pragma: no cover - never ended
        raise AssertionError("the test's own thread cannot be ended")


class Facade:
    """Blocking access to one manager, through one worker."""

    def __init__(self, runtime: Runtime, mgr: Any, worker: Worker) -> None:
        self.runtime = runtime
        self.mgr = mgr
        self.worker = worker

    def via(self, worker: Worker) -> Facade:
        """The same manager, requests made from ``worker`` (its owner context)."""
        return Facade(self.runtime, self.mgr, worker)

    def _iso(self, handler: Any, kw: dict[str, Any]) -> dict[str, Any]:
        """``kw`` with the runtime's isolation for ``handler`` unless the test chose one."""
        if "isolation" in kw:
            return kw
        return {**self.runtime.isolation_for(handler), **kw}

    def _run(self, name: str, *args: Any, **kwargs: Any) -> Any:
        method = getattr(self.mgr, name)
        return self.worker.run(lambda: method(*args, **kwargs))

    def notify(self, event: Any) -> None:
        self._run("notify", event)

    def send(self, message: Any) -> None:
        self._run("send", message)

    def sync_notify(self, event: Any, **kw: Any) -> None:
        self._run("sync_notify", event, **kw)

    def call(self, handler: Any, request: Any, **kw: Any) -> Any:
        return self._run("call", handler, request, **kw)

    def add_handler(self, handler: Any, args: Any = None, **kw: Any) -> None:
        self._run("add_handler", handler, args, **self._iso(handler, kw))

    def add_sup_handler(self, handler: Any, args: Any = None, **kw: Any) -> None:
        self._run("add_sup_handler", handler, args, **self._iso(handler, kw))

    def delete_handler(self, handler: Any, args: Any = None, **kw: Any) -> Any:
        return self._run("delete_handler", handler, args, **kw)

    def swap_handler(self, old: Any, args1: Any, new: Any, args2: Any = None, **kw: Any) -> None:
        self._run("swap_handler", old, args1, new, args2, **kw)

    def swap_sup_handler(
        self, old: Any, args1: Any, new: Any, args2: Any = None, **kw: Any
    ) -> None:
        self._run("swap_sup_handler", old, args1, new, args2, **kw)

    def which_handlers(self, **kw: Any) -> list[Any]:
        return self._run("which_handlers", **kw)  # type: ignore[no-any-return]

    def subscribe(self, fn: Any, event_type: Any = None, **kw: Any) -> Any:
        return self._run("subscribe", fn, event_type, **self._iso(fn, kw))

    def on(self, event_type: Any = None, **kw: Any) -> Any:
        """``mgr.on(...)``: returns the decorator (called in the worker by the test)."""
        return self._run("on", event_type, **kw)

    def stop(self, **kw: Any) -> None:
        self._run("stop", **kw)

    def get_state(self, **kw: Any) -> list[tuple[Any, Any]]:
        return self._run("get_state", **kw)  # type: ignore[no-any-return]

    @property
    def is_running(self) -> bool:
        return bool(self.mgr.is_running)

    @property
    def name(self) -> str | None:
        return self.mgr.name  # type: ignore[no-any-return]


class Runtime:
    """A runtime under test: starts managers and workers; cleans up after the test."""

    name: str
    main: Worker

    #: the variant's handlers are all isolated: ``isolation_for`` gives the keyword
    isolated = False

    def __init__(self) -> None:
        self.managers: list[Any] = []
        self.workers: list[Worker] = []

    def isolation_for(self, handler: Any) -> dict[str, Any]:
        """The keywords that isolate ``handler`` in this variant ({}: not isolated)."""
        return {}

    def start(self, name: str | None = None) -> Facade:
        raise NotImplementedError  # pragma: no cover

    def worker(self) -> Worker:
        raise NotImplementedError  # pragma: no cover

    def self_call_handler(self) -> type:
        """A handler class whose handle_event makes a synchronous call to its own manager
        (``spec.extra["mgr"]``), recording the exception it gets as ``(name, "self_call", e)``."""
        raise NotImplementedError  # pragma: no cover

    def gated_handler(self) -> type:
        """A handler class whose handle_event and handle_call first record ``"waiting"``, then
        wait for ``spec.extra["gate"]`` (a threading.Event) without blocking its runtime's
        timers, then behave as :class:`~tests.handlers.H`."""
        raise NotImplementedError  # pragma: no cover

    def linked(self, handler: Any, args: Any, exc: BaseException | None) -> Any:
        """Start a linked manager (``async with`` / ``with``), add ``handler``, leave the block
        (raising ``exc`` inside it if given); return the manager."""
        raise NotImplementedError  # pragma: no cover

    def stop_then_call(self, facade: Facade, handler: Any, request: Any) -> BaseException:
        """Queue a stop, then (behind it) a call; return what the call raised."""
        raise NotImplementedError  # pragma: no cover

    def close(self) -> None:
        for mgr in self.managers:
            if mgr.is_running:
                with contextlib.suppress(Exception):  # best effort: the test failed already
                    Facade(self, mgr, self.main).stop()


class AioRuntime(Runtime):
    """The asyncio runtime, its loop in a thread of its own."""

    name = "aio"

    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.main = TaskWorker(self.loop)

    def start(self, name: str | None = None) -> Facade:
        mgr = self.main.run(lambda: aio.start(name))
        self.managers.append(mgr)
        return Facade(self, mgr, self.main)

    def worker(self) -> Worker:
        return TaskWorker(self.loop)

    def self_call_handler(self) -> type:
        class SelfCaller(H):
            async def handle_event(self, event: Any, /) -> Any:
                try:
                    await self.spec.extra["mgr"].call(SelfCaller, "x")
                except Exception as exc:
                    self.spec.rec.add(self.spec.name, "self_call", exc)
                    raise
                return None

        return SelfCaller

    def gated_handler(self) -> type:
        class Gated(H):
            async def handle_event(self, event: Any, /) -> Any:
                self.spec.rec.add(self.spec.name, "waiting", event)
                await asyncio.to_thread(self.spec.extra["gate"].wait, WAIT)
                return H.handle_event(self, event)

            async def handle_call(self, request: Any, /) -> Any:
                self.spec.rec.add(self.spec.name, "waiting", request)
                await asyncio.to_thread(self.spec.extra["gate"].wait, WAIT)
                return H.handle_call(self, request)

        return Gated

    def linked(self, handler: Any, args: Any, exc: BaseException | None) -> Any:
        box: list[Any] = []

        async def body() -> None:
            async with aio.start() as mgr:
                box.append(mgr)
                await mgr.add_handler(handler, args, **self.isolation_for(handler))
                if exc is not None:
                    raise exc

        try:
            self.main.run(body)
        except BaseException as raised:
            if raised is not exc:
                raise
        return box[0]

    def stop_then_call(self, facade: Facade, handler: Any, request: Any) -> BaseException:
        mgr = facade.mgr

        async def both() -> BaseException:
            stop = asyncio.ensure_future(mgr.stop())
            call = asyncio.ensure_future(mgr.call(handler, request))
            results = await asyncio.gather(stop, call, return_exceptions=True)
            assert results[0] is None, results
            assert isinstance(results[1], BaseException), results
            return results[1]

        result: BaseException = facade.worker.run(both)
        return result

    def close(self) -> None:
        super().close()
        self.main.end()

        async def drain() -> None:
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        asyncio.run_coroutine_threadsafe(drain(), self.loop).result(WAIT)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(WAIT)
        self.loop.close()


class ThreadsRuntime(Runtime):
    """The thread runtime; the test's own thread is the main worker."""

    name = "threads"

    def __init__(self) -> None:
        super().__init__()
        self.main = CallerWorker()

    def start(self, name: str | None = None) -> Facade:
        mgr = threads.start(name)
        self.managers.append(mgr)
        return Facade(self, mgr, self.main)

    def worker(self) -> Worker:
        return ThreadWorker()

    def self_call_handler(self) -> type:
        class SelfCaller(H):
            def handle_event(self, event: Any, /) -> Any:
                try:
                    self.spec.extra["mgr"].call(SelfCaller, "x")
                except Exception as exc:
                    self.spec.rec.add(self.spec.name, "self_call", exc)
                    raise
                return None

        return SelfCaller

    def gated_handler(self) -> type:
        class Gated(H):
            def handle_event(self, event: Any, /) -> Any:
                self.spec.rec.add(self.spec.name, "waiting", event)
                self.spec.extra["gate"].wait(WAIT)
                return H.handle_event(self, event)

            def handle_call(self, request: Any, /) -> Any:
                self.spec.rec.add(self.spec.name, "waiting", request)
                self.spec.extra["gate"].wait(WAIT)
                return H.handle_call(self, request)

        return Gated

    def linked(self, handler: Any, args: Any, exc: BaseException | None) -> Any:
        box: list[Any] = []
        try:
            with threads.start() as mgr:
                box.append(mgr)
                mgr.add_handler(handler, args, **self.isolation_for(handler))
                if exc is not None:
                    raise exc
        except BaseException as raised:
            if raised is not exc:
                raise
        return box[0]

    def stop_then_call(self, facade: Facade, handler: Any, request: Any) -> BaseException:
        mgr = facade.mgr
        stop = mgr.stop_future()
        call = mgr.call_future(handler, request)
        assert stop.result(WAIT) is None
        exc = call.exception(WAIT)
        assert exc is not None
        return exc  # type: ignore[no-any-return,unused-ignore]


class InlineThreadsRuntime(ThreadsRuntime):
    """The thread runtime with ``inline=True``: idle managers run requests in the caller."""

    name = "threads-inline"

    def start(self, name: str | None = None) -> Facade:
        mgr = threads.start(name, inline=True)
        self.managers.append(mgr)
        return Facade(self, mgr, self.main)


def _has_coroutines(handler: Any) -> bool:
    cls = (
        handler if isinstance(handler, type) else handler[0] if isinstance(handler, tuple) else None
    )
    if cls is None:  # a function given to subscribe
        return inspect.iscoroutinefunction(handler)
    return any(
        inspect.iscoroutinefunction(getattr(cls, name, None))
        for name in ("init", "handle_event", "handle_call", "handle_info", "terminate")
    )


class IsolatedTaskRuntime(AioRuntime):
    """The asyncio runtime, every handler added with ``isolation="task"``."""

    name = "aio-isolated-task"
    isolated = True

    def isolation_for(self, handler: Any) -> dict[str, Any]:
        return {"isolation": "task"}


class IsolatedThreadAioRuntime(AioRuntime):
    """The asyncio runtime, every plain handler added with ``isolation="thread"`` (handlers
    with coroutine methods, which a thread does not run, with ``"task"``)."""

    name = "aio-isolated-thread"
    isolated = True

    def isolation_for(self, handler: Any) -> dict[str, Any]:
        return {"isolation": "task" if _has_coroutines(handler) else "thread"}


class IsolatedThreadsRuntime(ThreadsRuntime):
    """The thread runtime, every handler added with ``isolation=True``."""

    name = "threads-isolated"
    isolated = True

    def isolation_for(self, handler: Any) -> dict[str, Any]:
        return {"isolation": True}


class IsolatedInlineThreadsRuntime(InlineThreadsRuntime):
    """The thread runtime with ``inline=True``, every handler added with ``isolation=True``
    (requests are then queued: they must wait for the isolated handlers)."""

    name = "threads-inline-isolated"
    isolated = True

    def isolation_for(self, handler: Any) -> dict[str, Any]:
        return {"isolation": True}


ISOLATION_EXEMPT: dict[str, str] = {
    "test_call_timeout_says_what_the_manager_was_doing": (
        "it needs a slow handler to hold up the manager's mailbox; an isolated handler's "
        "slowness stays in its own mailbox, so the manager's queue does not grow"
    ),
    "test_c12_every_handler_sees_each_event_newest_first": (
        "the order across handlers is that of one thread running them one after the other; "
        "isolated handlers run side by side, each seeing the events in notify order"
    ),
    "test_handlers_sharing_one_handle_event_object": (
        "which of the two handlers fails is the one that runs second, an order across "
        "handlers: isolated handlers run side by side, so either may be second"
    ),
    "test_c26_info_reaches_every_handler": (
        "the same order across handlers, for an info message: isolated handlers run side by "
        "side, each seeing the messages in the order they were sent"
    ),
}
"""Conformance tests that do not apply when every handler is isolated (by test name), with
the reason: each is about a slow handler holding up the others, which isolation is for."""

RUNTIMES: dict[str, type[Runtime]] = {
    "aio": AioRuntime,
    "threads": ThreadsRuntime,
    "threads-inline": InlineThreadsRuntime,
    "aio-isolated-task": IsolatedTaskRuntime,
    "aio-isolated-thread": IsolatedThreadAioRuntime,
    "threads-isolated": IsolatedThreadsRuntime,
    "threads-inline-isolated": IsolatedInlineThreadsRuntime,
}
AVAILABLE = list(RUNTIMES)
