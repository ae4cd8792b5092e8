"""A lane run by an asyncio task of its own, in the manager's loop (:class:`TaskLane`)."""

from __future__ import annotations

import asyncio
import inspect
import itertools
from collections import deque
from collections.abc import Callable
from typing import Any

from .._core import Entry, Invoke, Raised, Returned
from .._driver import CRASHES, awaited_frames, callback_in
from ._items import BUDGET, IDLE, NOTHING, SPECIAL, CallItem, InfoItem, JobItem, MarkItem
from ._lane import RUNNING, Lane

__all__ = ("TaskLane",)


class TaskLane(Lane):
    """A lane run by an asyncio task of its own, in the manager's loop (started at its first
    job). Its coroutine callbacks are awaited there, so a slow ``await`` delays nobody else."""

    kind = "task"
    __slots__ = ("loop", "task", "waiter")

    def __init__(self, *args: Any, loop: asyncio.AbstractEventLoop, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.loop = loop
        self.waiter: asyncio.Future[None] | None = None
        self.task: asyncio.Task[None] | None = None

    def post(self, event: Any) -> None:
        """Queue an event (as :meth:`Lane.post`, the wake-up inlined: the manager's hot path)."""
        if self.maxsize is not None and not self._room():
            return
        self._seqs_append(self._next_seq())
        self._fifo_append(event)
        if self.waiter is not None:
            self._wake()

    def _wake(self) -> None:
        waiter = self.waiter
        if waiter is not None:
            self.waiter = None
            if not waiter.done():
                waiter.set_result(None)

    def start(self) -> None:
        """Start the task (once)."""
        if not self.started:
            self.started = True
            self.task = asyncio.Task(self._main(), loop=self.loop)

    async def _main(self) -> None:
        RUNNING.set(self)  # in the task's own copy of the context
        await self._run()

    def caught_up(self) -> bool:
        # waiting for work (``waiter`` is set only then, and taken by whoever wakes it), with
        # nothing queued and no outcome waiting in the manager's mailbox
        return self.closed or (
            self.waiter is not None and not self.fifo and not self.jobs and self.pending is None
        )

    def job(self, eff: Invoke) -> asyncio.Future[Raised | Returned]:
        """Run the manager's invocation ``eff`` in the lane, before anything queued. Once its
        task was cancelled (its loop shuts down), the invocation runs in a task of its own:
        a handler whose callback received that cancellation is still terminated."""
        fut: asyncio.Future[Raised | Returned]
        if self.abandoned:
            fut = self.loop.create_future()
            fut.set_result(self.left_behind_outcome(eff))
            return fut
        task = self.task
        if task is not None and task.done():
            return asyncio.ensure_future(self._call(eff.fn, eff.args, eff.kwargs), loop=self.loop)
        fut = self.loop.create_future()
        self.start()
        self.jobs.append(JobItem(eff, fut))
        self._wake()
        return fut

    def abandon(self) -> None:
        """Cancel the task: nothing more runs in it."""
        self.abandoned = self.closed = True
        self._abandon_calls()
        if self.task is not None:
            self.task.cancel()

    def running_callback(self) -> str | None:
        task = self.task
        if task is None or task.done():
            return None
        return callback_in(awaited_frames(task.get_coro()))

    async def _call(self, fn: Callable[..., Any], args: Any, kwargs: Any) -> Raised | Returned:
        try:
            value = fn(*args, **kwargs) if kwargs else fn(*args)
            if inspect.isawaitable(value):
                value = await value
        except asyncio.CancelledError as exc:
            task = self.task
            if task is not None and task.cancelling() and task is asyncio.current_task():
                raise  # the lane itself is cancelled (left behind, or its loop closes)
            return Raised(exc)
        except CRASHES as exc:
            return Raised(exc)
        return Returned(value)

    async def _run(self) -> None:
        host = self.host
        spent = 0
        try:
            while True:
                item = self._next()
                if item is NOTHING:
                    if self.closed and not self.jobs:
                        self._drain_closed()
                        self._passed()
                        host.lane_wake()
                        return
                    self._passed()
                    self.waiter = self.loop.create_future()
                    host.lane_wake()
                    await self.waiter
                    continue
                cls = item.__class__
                if cls not in SPECIAL and cls is not JobItem and self.maxsize is None:
                    # the hot path: plain events to a plain handle_event, in a batch
                    entry = self.entry
                    if not self.closed and not self.vacant and entry is not None:
                        if entry is not self._cached:
                            self._load(entry)
                        if not self._event_async:
                            spent = await self._drain(entry, item, spent)
                            self._passed()
                            continue
                spent += 1
                if spent >= BUDGET:  # fairness: the loop's other tasks get a turn
                    spent = 0
                    if item.__class__ is JobItem:
                        self.jobs.appendleft(item)
                    else:
                        self.seqs.appendleft(int(self.current))
                        self.fifo.appendleft(item)
                    self.current = IDLE
                    await asyncio.sleep(0)
                    continue
                self.busy = True
                try:
                    await self._do(item)
                finally:
                    self.busy = False
                if item.__class__ is not JobItem:
                    self._passed()
        finally:
            self.closed = True
            self.current = IDLE
            while self.jobs:  # cancelled with jobs waiting: they run in tasks of their own
                job = self.jobs.popleft()
                if not job.fut.done():
                    self._job_elsewhere(job)
            self._drain_closed()
            self.busy = False
            if self.watch is not None:
                self.watch = None
                host.lane_recheck()
            host.lane_wake()  # a stop may wait for it

    def _job_elsewhere(self, job: JobItem) -> None:
        eff = job.eff
        done = asyncio.ensure_future(self._call(eff.fn, eff.args, eff.kwargs), loop=self.loop)

        def _copy(task: asyncio.Future[Raised | Returned]) -> None:
            if not job.fut.done():
                if task.cancelled():
                    job.fut.set_result(Raised(asyncio.CancelledError()))
                else:
                    job.fut.set_result(task.result())

        done.add_done_callback(_copy)

    async def _drain(self, entry: Entry, item: Any, spent: int) -> int:
        """Plain events in a row, while nothing else is queued before them. The places in
        mailbox order of the events it takes are brought up to date before anything else can
        read them (the manager runs in this thread: only at an await, or an outcome), not per
        event."""
        fn = self._event
        assert fn is not None
        fifo = self.fifo
        taken = 0  # events taken since the place was last brought up to date
        self.busy = True
        try:
            while True:
                try:
                    value = fn(item)
                except CRASHES as exc:
                    taken = self._catch_up(taken)
                    self._settle(entry, Raised(exc), item, "handle_event")
                    return spent
                if value is not None:
                    taken = self._catch_up(taken)
                    self._settle(entry, Returned(value), item, "handle_event")
                    return spent
                spent += 1
                if spent >= BUDGET:
                    taken = self._catch_up(taken)
                    await asyncio.sleep(0)
                    spent = 0
                    if self.pending is not None or not entry.alive or self.jobs:
                        return spent
                    if self.watch is not None:
                        return spent  # an outcome waits for this lane to move on: say so
                if not fifo or fifo[0].__class__ in SPECIAL or self.jobs:
                    return spent
                item = fifo.popleft()
                taken += 1
        finally:
            self._catch_up(taken)
            self.busy = False

    def _catch_up(self, taken: int) -> int:
        """``taken`` events left the queue since ``current`` was set: their places go, and
        ``current`` is the last one's. Returns 0."""
        if taken:
            seqs = self.seqs
            if taken > 1:  # in C: popleft called taken - 1 times, the results dropped
                deque(itertools.islice(iter(seqs.popleft, None), taken - 1), maxlen=0)
            self.current = seqs.popleft()
        return 0

    async def _do(self, item: Any) -> None:
        cls = item.__class__
        if cls is JobItem:
            eff = item.eff
            out = await self._call(eff.fn, eff.args, eff.kwargs)
            if not item.fut.done():
                item.fut.set_result(out)
            return
        if self.closed or self.vacant:
            self._closed_item(item)
            return
        entry = self.entry
        assert entry is not None
        if cls is MarkItem:
            item.barrier.reach()
        elif cls is CallItem:
            fn = self._answers(entry, item)
            if fn is None:
                return
            self.calling = item
            self._settle_call(entry, item, await self._call(fn, (item.request,), None))
        elif cls is InfoItem:
            if self._no_info(entry, item):
                return
            out = await self._call(entry.instance.handle_info, (item.message,), None)
            self._settle(entry, out, item.message, "handle_info")
        else:
            if entry is not self._cached:
                self._load(entry)
            fn = self._event
            assert fn is not None
            if self._event_async:
                out = await self._call(fn, (item,), None)
            else:
                try:
                    value = fn(item)
                except CRASHES as exc:
                    out = Raised(exc)
                else:
                    if value is None:
                        if self.maxsize is not None:
                            self.counts.handled += 1
                        return
                    out = Returned(value)
            self._settle(entry, out, item, "handle_event")
