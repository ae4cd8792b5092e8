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
import dataclasses
import inspect
import itertools
import os
import queue
import threading
from collections.abc import Callable, Coroutine
from typing import Any, ClassVar

from genevent import (
    BadReturn,
    Crashed,
    Deleted,
    HandlerExit,
    StartFailed,
    Swapped,
    aio,
    threads,
)
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

    def notify_all(self, events: list[Any]) -> None:
        """``notify`` each of ``events`` in one turn of the worker (on asyncio, the manager
        does not run between them: they reach it as one batch)."""
        notify = self.mgr.notify
        self.worker.run(lambda: [notify(event) for event in events] and None)

    def notify_many(self, events: Any) -> None:
        """``notify_many(events)`` (``events`` read in the worker, as the manager would)."""
        self._run("notify_many", events)

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

    def stats(self) -> Any:
        """The manager's ``stats()`` (a remote one's is awaited)."""
        return self._run("stats")

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
    #: conformance tests (by name) that do not apply to the variant, with the reason
    exempt: ClassVar[dict[str, str]] = {}

    @staticmethod
    def unavailable() -> str | None:
        """Why the variant cannot run here (None: it can)."""
        return None

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
        mgr = self.main.run(lambda: self.new_manager(name))
        self.managers.append(mgr)
        return Facade(self, mgr, self.main)

    def new_manager(self, name: str | None = None) -> Any:
        """``aio.start(name)``, in the loop (a variant may set the manager up first: in the
        same step, before its task first runs)."""
        return aio.start(name)

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
            async with self.new_manager() as mgr:
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
    """The thread runtime with ``inline=True``: idle managers run requests in the caller.
    The drain loop's path for one handler (``sole``) is off: an event to a lone handler
    takes the walk over the snapshot that several handlers take."""

    name = "threads-inline"

    def start(self, name: str | None = None) -> Facade:
        mgr = threads.start(name, inline=True)
        srv = mgr._srv
        # a renamed method would leave the variant silently on the fast path; the drain loop
        # asks for it at its next snapshot, so it is off before the first handler is added
        assert inspect.isfunction(inspect.getattr_static(type(srv), "sole"))
        setattr(srv, "sole", _never)  # noqa: B010 - an instance attribute shadows the method
        self.managers.append(mgr)
        return Facade(self, mgr, self.main)


def _never(*args: Any) -> bool:
    return False


def _force_off(mgr: Any, *paths: str) -> Any:
    """Turn ``paths`` (methods of the asyncio manager's server that choose a fast path) off on
    ``mgr`` alone: an instance attribute answering False shadows each on its server, so the
    slow path is taken and the runtime's code is unchanged. Must run before the manager's task
    first runs (its drain loop reads ``quick`` once)."""
    srv = mgr._srv
    for path in paths:
        # a renamed method would leave the variant silently on the fast path
        assert inspect.isfunction(inspect.getattr_static(type(srv), path)), path
        setattr(srv, path, _never)
    return mgr


class QueuedAioRuntime(AioRuntime):
    """The asyncio runtime with requests never run inline in the caller (``can_inline``
    off): every ``call``, ``sync_notify``, ``which_handlers`` and ``get_state`` is queued and
    answered by the manager's drain loop, which answers plain handlers' requests itself
    (``quick``) and passes the rest to the core."""

    name = "aio-queued"

    def new_manager(self, name: str | None = None) -> Any:
        return _force_off(aio.start(name), "can_inline")


class CoreQueuedAioRuntime(AioRuntime):
    """The asyncio runtime with both request fast paths off (``can_inline`` and the drain
    loop's ``quick`` answers): every request is queued and runs through the core's
    procedures. The drain loop's path for one handler (``sole``) is off too: an event to a
    lone handler takes the walk over the snapshot that several handlers take."""

    name = "aio-queued-core"

    def new_manager(self, name: str | None = None) -> Any:
        return _force_off(aio.start(name), "can_inline", "quick", "sole")


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


class BoundedIsolatedTaskRuntime(AioRuntime):
    """The asyncio runtime, every handler isolated in a task with a bounded mailbox (large
    enough that nothing is dropped): a bounded lane takes each event on its own rather than in
    a batch, a path the unbounded variant never takes."""

    name = "aio-isolated-task-bounded"
    isolated = True

    def isolation_for(self, handler: Any) -> dict[str, Any]:
        return {"isolation": "task", "maxsize": 100_000}


class IsolatedThreadAioRuntime(AioRuntime):
    """The asyncio runtime, every plain handler added with ``isolation="thread"`` (handlers
    with coroutine methods, which a thread does not run, with ``"task"``)."""

    name = "aio-isolated-thread"
    isolated = True

    def isolation_for(self, handler: Any) -> dict[str, Any]:
        return {"isolation": "task" if _has_coroutines(handler) else "thread"}


class BoundedIsolatedThreadsRuntime(ThreadsRuntime):
    """The thread runtime, every handler isolated with a bounded mailbox (large enough that
    nothing is dropped): a bounded lane takes each event on its own rather than in a batch."""

    name = "threads-isolated-bounded"
    isolated = True

    def isolation_for(self, handler: Any) -> dict[str, Any]:
        return {"isolation": True, "maxsize": 100_000}


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
    "aio-queued": QueuedAioRuntime,
    "aio-queued-core": CoreQueuedAioRuntime,
    "threads": ThreadsRuntime,
    "threads-inline": InlineThreadsRuntime,
    "aio-isolated-task": IsolatedTaskRuntime,
    "aio-isolated-task-bounded": BoundedIsolatedTaskRuntime,
    "aio-isolated-thread": IsolatedThreadAioRuntime,
    "threads-isolated": IsolatedThreadsRuntime,
    "threads-isolated-bounded": BoundedIsolatedThreadsRuntime,
    "threads-inline-isolated": IsolatedInlineThreadsRuntime,
}
AVAILABLE = list(RUNTIMES)


# -- the NATS variant -------------------------------------------------------------------------
#
# Every request crosses NATS: the test talks to a RemoteManager on a *client* node, which
# reaches an ordinary asyncio manager hosted by a *serving* node. Both nodes live in this
# process (one loop thread, one nats-server for the session), which is what lets the harness
# stand in for the application on the serving side:
#
# * handler classes a test uses are registered on the serving node (and, for their names, on
#   the client node) just before use: the allow-list stays, the harness is the application;
# * test handler arguments (a Spec with a Recorder and callables) cannot cross the wire, so
#   the client sends an :class:`ArgToken` instead and the serving side resolves it to the real
#   object from a process-local table. This is a test-harness technique only: the wire carries
#   the token, never the object; in production the arguments are plain data. Replies that are
#   not plain data (a handler's state, what terminate returned) come back the same way.

try:
    import genevent.nats as _gnats
except ImportError:  # pragma: no cover - exercised without the nats extra
    _gnats = None  # type: ignore[assignment]


@dataclasses.dataclass(frozen=True)
class ArgToken:
    """Stands on the wire for a test argument the wire cannot carry (see above)."""

    n: int


_SCALAR = (type(None), bool, int, float, str, bytes)


def _plain(value: Any) -> bool:
    """Whether the wire carries ``value`` as it is (plain data, tuples included)."""
    if isinstance(value, _SCALAR):
        return True
    if type(value) in (list, tuple):
        return all(_plain(x) for x in value)
    if type(value) is dict:
        return all(_plain(k) and _plain(x) for k, x in value.items())
    return False


class NatsCluster:
    """One nats-server and two nodes (serving and client) for the whole test session, their
    loop in a thread of its own. Started the first time the nats variant runs."""

    def __init__(self) -> None:
        assert _gnats is not None
        self.server = _gnats.NatsServer(jetstream=True).start()
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.serving: Any = None
        self.client: Any = None
        try:
            self.serving = self.run(self._connect("serving"))
            self.client = self.run(self._connect("client"))
        except BaseException:
            self.close()
            raise
        self.names: dict[type, str] = {}  # handler class -> registered name
        self.classes: dict[str, type] = {}  # registered name -> handler class
        self.tokens: dict[int, Any] = {}  # ArgToken.n -> the object it stands for
        self.errors: dict[int, Exception] = {}  # id(hosted manager) -> the error it raised last
        self.raised: dict[tuple[str, str], BaseException] = {}  # kept for notices (see told)
        self._count = itertools.count(1)

    async def _connect(self, role: str) -> Any:
        assert _gnats is not None
        return await _gnats.connect(
            self.server.url,
            ns=f"conf{os.getpid()}",
            node_id=f"{role}-{os.getpid()}",
            types=[ArgToken],
        )

    def run(self, coro: Coroutine[Any, Any, Any]) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(WAIT)

    def next(self) -> int:
        return next(self._count)

    def register(self, cls: type) -> str:
        """``cls``'s name on both nodes (registered on first use)."""
        name = self.names.get(cls)
        if name is None:
            name = cls.__name__
            if name in self.classes:
                name = f"{name}_{self.next()}"
            self.serving.register_handler(cls, name)
            self.client.register_handler(cls, name)
            self.names[cls] = name
            self.classes[name] = cls
        return name

    def token(self, value: Any) -> Any:
        """``value`` as it may cross the wire: itself if plain data, else a token."""
        if _plain(value):
            return value
        n = self.next()
        self.tokens[n] = value
        return ArgToken(n)

    def resolve(self, value: Any) -> Any:
        """The object a token stands for (``value`` itself if it is no token)."""
        if isinstance(value, ArgToken):
            return self.tokens.pop(value.n)
        return value

    def told(self, on_exit: Callable[[HandlerExit], Any]) -> Callable[[HandlerExit], Any]:
        """The serving side's ``on_exit``: the notice's values as tokens, its exceptions kept
        (only their class name and text cross the wire; identity checks need the object)."""

        def told(ex: HandlerExit) -> Any:
            return on_exit(HandlerExit(ex.handler, self._tokens_in(ex.reason), ex.manager))

        return told

    def _kept(self, exc: Any) -> Any:
        if isinstance(exc, BaseException):
            self.raised[(type(exc).__name__, str(exc))] = exc
        return exc

    def _tokens_in(self, reason: Any) -> Any:
        tok = self.token
        if isinstance(reason, Deleted):
            return Deleted(tok(reason.args))
        if isinstance(reason, Swapped):
            return Swapped(tok(reason.args), reason.new_handler, reason.new_owner)
        if isinstance(reason, BadReturn):
            return BadReturn(tok(reason.value))
        if isinstance(reason, Crashed):
            self._kept(reason.exception)
        if isinstance(reason, StartFailed) and isinstance(reason.cause, BadReturn):
            return StartFailed(BadReturn(tok(reason.cause.value)))
        if isinstance(reason, StartFailed):
            self._kept(reason.cause)
        return reason

    def _raised(self, exc: Any) -> Any:
        if isinstance(exc, _gnats.RemoteException):
            return self.raised.pop((exc.type_name, exc.message), exc)
        return exc

    def untold(self, reason: Any) -> Any:
        """A notice's reason as the serving side had it (see :meth:`told`)."""
        res = self.resolve
        if isinstance(reason, Deleted):
            return Deleted(res(reason.args))
        if isinstance(reason, Swapped):
            new = reason.new_handler
            if isinstance(new, tuple):
                new = (self.classes.get(new[0], new[0]), new[1])
            return Swapped(res(reason.args), self.classes.get(new, new), reason.new_owner)
        if isinstance(reason, BadReturn):
            return BadReturn(res(reason.value))
        if isinstance(reason, Crashed):
            return Crashed(self._raised(reason.exception))
        if isinstance(reason, StartFailed) and isinstance(reason.cause, BadReturn):
            return StartFailed(BadReturn(res(reason.cause.value)))
        if isinstance(reason, StartFailed):
            return StartFailed(self._raised(reason.cause))
        return reason

    def close(self) -> None:
        async def down() -> None:
            for node in (self.client, self.serving):
                if node is not None:
                    with contextlib.suppress(Exception):
                        await node.close()
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        with contextlib.suppress(Exception):
            self.run(down())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(WAIT)
        self.loop.close()
        self.server.cleanup()


_CLUSTER: NatsCluster | None = None


def nats_cluster() -> NatsCluster:
    """The session's cluster, started on first use."""
    global _CLUSTER
    if _CLUSTER is None:
        _CLUSTER = NatsCluster()
    return _CLUSTER


def close_nats_cluster() -> None:
    """Stop the session's nodes and nats-server (if they were started)."""
    global _CLUSTER
    if _CLUSTER is not None:
        cluster, _CLUSTER = _CLUSTER, None
        cluster.close()


class NatsFacade(Facade):
    """A :class:`Facade` whose manager is a RemoteManager: every request crosses NATS."""

    def __init__(self, runtime: Runtime, mgr: Any, worker: Worker, hosted: Any, name: Any):
        super().__init__(runtime, mgr, worker)
        #: the asyncio manager the serving node hosts (its liveness only)
        self.hosted = hosted
        self._name = name

    def via(self, worker: Worker) -> Facade:
        return NatsFacade(self.runtime, self.mgr, worker, self.hosted, self._name)

    @property
    def cluster(self) -> NatsCluster:
        return nats_cluster()

    def _ref(self, handler: Any) -> Any:
        c = self.cluster
        if isinstance(handler, tuple) and len(handler) == 2 and isinstance(handler[0], type):
            return (self._ref(handler[0]), handler[1])
        if isinstance(handler, type) and hasattr(handler, "handle_event"):
            return c.register(handler)
        return handler  # the remote manager refuses it, as the local one would

    def _back(self, ref: Any) -> Any:
        classes = self.cluster.classes
        if isinstance(ref, tuple):
            return (classes.get(ref[0], ref[0]), ref[1])
        return classes.get(ref, ref)

    def _run(self, name: str, *args: Any, **kwargs: Any) -> Any:
        c = self.cluster
        if name in ("call", "add_handler", "delete_handler"):
            args = (self._ref(args[0]), c.token(args[1]))
        elif name == "swap_handler":
            old, a1, new, a2 = args
            args = (self._ref(old), c.token(a1), self._ref(new), c.token(a2))
        elif name == "add_sup_handler":
            args = (self._ref(args[0]), c.token(args[1]))
            kwargs["on_exit"] = self._told(kwargs.get("on_exit"))
        elif name == "swap_sup_handler":
            old, a1, new, a2 = args
            args = (self._ref(old), c.token(a1), self._ref(new), c.token(a2))
            kwargs["on_exit"] = self._told(kwargs.get("on_exit"))
        elif name in ("notify", "send", "sync_notify"):
            args = (c.token(args[0]),)
        elif name == "notify_many" and not isinstance(args[0], (str, bytes)):
            args = ([c.token(event) for event in args[0]],)
        c.errors.pop(id(self.hosted), None)
        try:
            result = super()._run(name, *args, **kwargs)
        except Exception as exc:
            raise self._original(exc)  # noqa: B904 - the original, with its own cause
        if name == "which_handlers":
            return [self._back(r) for r in result]
        if name == "get_state":
            return [(self._back(r), c.resolve(s)) for r, s in result]
        return c.resolve(result)

    def _told(self, on_exit: Any) -> Any:
        """``on_exit`` called with the notice as the test sent it: handler classes for names,
        the objects for the tokens and the exceptions the serving side kept (see
        :meth:`NatsCluster.told`)."""
        if not callable(on_exit):
            return on_exit  # refused by the remote reference, as locally
        c = self.cluster

        def told(ex: HandlerExit) -> Any:
            return on_exit(HandlerExit(self._back(ex.handler), c.untold(ex.reason), ex.manager))

        return told

    def _original(self, exc: Exception) -> Exception:
        """The error object the serving side raised, if ``exc`` is what crossed the wire for
        it: same class, and a cause of the same class name and text (a harness technique, as
        the tokens: only the class and text crossed; identity checks need the object)."""
        kept = self.cluster.errors.pop(id(self.hosted), None)
        if kept is None or type(kept) is not type(exc):
            return exc
        cause, wire = getattr(kept, "cause", None), getattr(exc, "cause", None)
        if (
            isinstance(cause, BaseException)
            and getattr(wire, "type_name", None) != type(cause).__name__
        ):
            return exc
        return kept

    @property
    def is_running(self) -> bool:
        return bool(self.hosted.is_running)

    @property
    def name(self) -> str | None:
        return self._name  # type: ignore[no-any-return]


class NatsRuntime(Runtime):
    """Remote managers over NATS: a manager hosted by a node in this process, every request
    made through a RemoteManager on a second node (see :data:`NATS_EXEMPT`)."""

    name = "nats"

    @staticmethod
    def unavailable() -> str | None:
        """Why the variant cannot run here (None: it can)."""
        if _gnats is None:
            return "the nats extra is not installed"
        try:
            _gnats.find_server_binary()
        except FileNotFoundError as exc:
            return str(exc)
        return None

    def __init__(self) -> None:
        super().__init__()
        self.cluster = nats_cluster()
        self.loop = self.cluster.loop
        self.main = TaskWorker(self.loop)
        self.workers = [self.main]

    def _serve_tokens(self, mgr: Any) -> None:
        """Let the hosted manager resolve argument tokens (and answer with tokens)."""
        c = self.cluster
        res = c.resolve

        def plain_in(method: str) -> None:
            orig = getattr(mgr, method)
            setattr(mgr, method, lambda value, *a, **k: orig(res(value), *a, **k))

        for method in ("notify", "send"):
            plain_in(method)

        def kept(fn: Any) -> Any:  # the serving side keeps the error object it answered with
            async def run(*a: Any, **kw: Any) -> Any:
                try:
                    return await fn(*a, **kw)
                except Exception as exc:
                    c.errors[id(mgr)] = exc
                    raise

            return run

        add, delete, swap = kept(mgr.add_handler), kept(mgr.delete_handler), kept(mgr.swap_handler)
        call, get_state = kept(mgr.call), kept(mgr.get_state)
        notify_wait, sync_notify = kept(mgr.notify_wait), kept(mgr.sync_notify)
        mgr.notify_wait = lambda value: notify_wait(res(value))
        mgr.sync_notify = lambda value, **kw: sync_notify(res(value), **kw)

        async def add_handler(ref: Any, args: Any, **kw: Any) -> Any:
            return await add(ref, res(args), **kw)

        async def delete_handler(ref: Any, args: Any = None, **kw: Any) -> Any:
            return c.token(await delete(ref, res(args), **kw))

        async def swap_handler(old: Any, a1: Any, new: Any, a2: Any = None, **kw: Any) -> Any:
            return await swap(old, res(a1), new, res(a2), **kw)

        async def call_(ref: Any, request: Any, *a: Any, **kw: Any) -> Any:
            return c.token(await call(ref, res(request), *a, **kw))

        async def get_state_(**kw: Any) -> Any:
            return [(r, c.token(s)) for r, s in await get_state(**kw)]

        add_sup, swap_sup = kept(mgr.add_sup_handler), kept(mgr.swap_sup_handler)

        async def add_sup_handler(ref: Any, args: Any, *, on_exit: Any, **kw: Any) -> Any:
            return await add_sup(ref, res(args), on_exit=c.told(on_exit), **kw)

        async def swap_sup_handler(
            old: Any, a1: Any, new: Any, a2: Any = None, *, on_exit: Any, **kw: Any
        ) -> Any:
            return await swap_sup(old, res(a1), new, res(a2), on_exit=c.told(on_exit), **kw)

        mgr.add_sup_handler, mgr.swap_sup_handler = add_sup_handler, swap_sup_handler
        mgr.add_handler, mgr.delete_handler, mgr.swap_handler = (
            add_handler,
            delete_handler,
            swap_handler,
        )
        mgr.call, mgr.get_state = call_, get_state_

    def start(self, name: str | None = None) -> Facade:
        c = self.cluster
        cluster_name = name if name is not None else f"anon{c.next()}"
        hosted = c.run(c.serving.start_manager(cluster_name))
        self._serve_tokens(hosted)
        self.managers.append(hosted)
        return NatsFacade(self, c.client.manager(cluster_name), self.main, hosted, name)

    def worker(self) -> Worker:
        w = TaskWorker(self.loop)
        self.workers.append(w)
        return w

    self_call_handler = AioRuntime.self_call_handler
    gated_handler = AioRuntime.gated_handler

    def linked(self, handler: Any, args: Any, exc: BaseException | None) -> Any:
        raise NotImplementedError("exempt: a linked manager is local (see NATS_EXEMPT)")

    def stop_then_call(self, facade: Facade, handler: Any, request: Any) -> BaseException:
        raise NotImplementedError("exempt: see NATS_EXEMPT")

    def close(self) -> None:
        c = self.cluster
        for hosted in self.managers:
            if hosted.is_running:
                with contextlib.suppress(Exception):
                    c.run(hosted.stop())

        async def unhosted() -> None:  # the serving node frees the names behind the stop
            while any(m in c.serving.hosted().values() for m in self.managers):
                await asyncio.sleep(0.001)

        c.run(unhosted())
        for w in self.workers:
            w.end()
        c.tokens.clear()


NATS_EXEMPT: dict[str, str] = {
    "test_c48_owner_end_terminates_its_handlers[nats-exception]": (
        "an owner's exception crosses the wire as its class name and text: the handlers "
        "are terminated with OwnerExited(RemoteException('LookupError', ...)), not with the "
        "owner's exception object (the normal end holds)"
    ),
    # function handlers are local only
    **dict.fromkeys(
        (
            "test_subscribe_plain_function_sees_every_event",
            "test_subscribe_by_event_type_is_isinstance",
            "test_subscribe_where_predicate_tells_tuples_apart",
            "test_same_function_twice_needs_an_id",
            "test_crashing_function_is_removed_and_reported",
            "test_function_returning_remove_unsubscribes_and_other_values_are_ignored",
            "test_subscribe_refuses_what_is_not_a_function",
            "test_on_decorator_subscribes",
        ),
        "a plain function is not a handler class: subscribe/on are local only",
    ),
    "test_c03_linked_manager_stops_when_block_exits": (
        "a linked manager (async with / with) is a local construct: a remote reference does "
        "not own the manager's lifetime"
    ),
    "test_c02_named_manager_found_and_name_unique": (
        "it looks the name up in the process registry (genevent.whereis); a cluster name is "
        "held in the cluster's table (Node.whereis, NameTaken from start_manager)"
    ),
    "test_c53_name_free_after_stop": (
        "the process registry again (genevent.whereis); the nodes' tests check that a stopped "
        "remote manager frees its cluster name"
    ),
    "test_c52_after_stop_calls_fail": (
        "a stopped remote manager frees its name, so requests fail with ManagerNotFound "
        "instead of ManagerNotRunning, and notify/send are fire-and-forget: they do not fail"
    ),
    "test_c61_queued_requests_answered_on_stop": (
        "a request behind a stop reaches no subscriber once the name is freed: "
        "ManagerNotFound, not ManagerNotRunning"
    ),
    "test_stop_racing_producers_loses_nothing_accepted": (
        "remote notify is fire-and-forget: an event published while the manager stops is "
        "not refused back to the producer, so 'accepted' cannot be counted by the caller"
    ),
    "test_c55_self_call_fails_clearly": (
        "a handler calling its own manager through NATS is a request like any other: it "
        "waits for the manager and times out (CallTimeout) instead of failing with CallingSelf"
    ),
    "test_crash_through_a_chain_of_managers_stays_small": (
        "its handlers hold the next manager's reference and pass 20 000-word errors along: "
        "a remote reference in a handler on the serving node is a different test (nodes)"
    ),
    **dict.fromkeys(
        (
            "test_invalid_handler_references_are_refused",
            "test_not_a_handler_reference_is_invalid_handler",
            "test_unhashable_handler_class_is_invalid_handler",
        ),
        "a remote handler reference is a registered name: a string is a valid reference "
        "(HandlerNotFound if nothing is installed under it) and the class check happens on "
        "registration, not per request",
    ),
    "test_zero_timeout_always_times_out_and_delivers": (
        "it waits on the local manager object (wait_stopped), which a remote reference has not"
    ),
    "test_call_timeout_says_what_the_manager_was_doing": (
        "it reads the local manager's queue (queued), which a remote reference has not"
    ),
    **dict.fromkeys(
        (
            "test_bad_return_report_is_bounded",
            "test_bad_return_error_is_bounded",
            "test_init_failure_is_bounded",
        ),
        "its values are megabytes: larger than NATS's max_payload, so the request or the "
        "reply is refused with PayloadTooLarge (by design) before any bound applies",
    ),
    "test_unreprable_errors_still_have_messages": (
        "its second half installs a handler under an id object that is not plain data: a "
        "remote handler id must cross the wire, so the caller gets NotEncodable (the first "
        "half, an error whose str() raises, is answered with a typed error over NATS too)"
    ),
    **dict.fromkeys(
        (
            "test_notify_many_on_a_stopped_manager_refuses_the_whole_batch",
            "test_notify_many_meets_a_full_mailbox_as_each_notify_would",
            "test_notify_many_under_block_waits_for_room_where_notify_does",
        ),
        "remote notify_many is fire-and-forget, as notify: a refusal by the serving node "
        "never reaches the producer, and a bounded hosted manager makes the node wait for "
        "room (back-pressure) rather than refuse (tests/distributed checks remote batches)",
    ),
    "test_c38_crash_report": (
        "the report names the local manager; the serving node's manager is known by its "
        "cluster name, which the local report does not carry"
    ),
}
"""Conformance tests that cannot hold for a remote manager (by test name), with the reason."""

NatsRuntime.exempt = NATS_EXEMPT
RUNTIMES["nats"] = NatsRuntime
AVAILABLE.append("nats")
