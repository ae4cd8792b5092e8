"""A lane run by a daemon thread of its own (:class:`ThreadLane`)."""

from __future__ import annotations

import concurrent.futures
import contextlib
import sys
import threading
from collections.abc import Callable
from typing import Any

from .._core import Entry, Invoke, Raised, Returned
from .._driver import CRASHES, callback_in, stack_frames
from .._errors import _name
from ._items import NOTHING, SPECIAL, CallItem, InfoItem, JobItem, MarkItem
from ._lane import RUNNING, Lane

__all__ = ("ThreadLane",)


def _outcome(fn: Callable[..., Any], args: tuple[Any, ...], kwargs: Any) -> Raised | Returned:
    try:
        return Returned(fn(*args, **kwargs) if kwargs else fn(*args))
    except CRASHES as exc:
        return Raised(exc)


class ThreadLane(Lane):
    """A lane run by a daemon thread of its own (started at its first job)."""

    kind = "thread"
    __slots__ = ("_token", "sleeping", "thread")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.sleeping = False
        self._token = threading.Lock()
        self._token.acquire()
        self.thread: threading.Thread | None = None

    def post(self, event: Any) -> None:
        """Queue an event (as :meth:`Lane.post`, the wake-up inlined: the manager's hot path)."""
        if self.maxsize is not None and not self._room():
            return
        self._seqs_append(self._next_seq())
        self._fifo_append(event)
        if self.sleeping:
            self._wake()

    def _wake(self) -> None:
        if self.sleeping:
            self.sleeping = False
            try:  # noqa: SIM105 - cheaper than contextlib.suppress on the notify path
                self._token.release()
            except RuntimeError:  # woken already
                pass

    def start(self) -> None:
        """Start the thread (once)."""
        if not self.started:
            self.started = True
            self.thread = threading.Thread(
                target=self._main, name=f"genevent-lane:{_name(self.ref)}", daemon=True
            )
            self.thread.start()

    def _main(self) -> None:
        RUNNING.set(self)
        self._run()

    def caught_up(self) -> bool:
        # parked (``sleeping`` is set only once nothing it may run is left, and cleared by
        # whoever queues), with nothing queued (the manager is the one that queues, and the one
        # asking) and no outcome of it waiting in the manager's mailbox
        return self.closed or (
            self.sleeping and not self.fifo and not self.jobs and self.pending is None
        )

    def job(self, eff: Invoke) -> concurrent.futures.Future[Raised | Returned]:
        """Run the manager's invocation ``eff`` in the lane, before anything queued."""
        fut: concurrent.futures.Future[Raised | Returned] = concurrent.futures.Future()
        if self.abandoned:
            fut.set_result(self.left_behind_outcome(eff))
            return fut
        self.start()
        self.jobs.append(JobItem(eff, fut))
        self._wake()
        return fut

    def abandon(self) -> None:
        """Leave the thread behind (it is a daemon); nothing more runs in it."""
        self.abandoned = self.closed = True
        self._abandon_calls()
        self._wake()

    def on_thread(self, ident: int) -> bool:
        """True on this lane's thread."""
        thread = self.thread
        return thread is not None and thread.ident == ident

    def running_callback(self) -> str | None:
        thread = self.thread
        frame = sys._current_frames().get(thread.ident) if thread and thread.ident else None
        return callback_in(stack_frames(frame))

    def _run(self) -> None:
        host = self.host
        while not self.abandoned:
            # busy from before it takes an item (the manager never sees it idle with an item
            # in hand) until it finds nothing to run
            self.busy = True
            item = self._next()
            if item is NOTHING:
                if self.closed and not self.jobs:
                    self._drain_closed()
                    self._passed()
                    self.busy = False
                    host.lane_wake()
                    return
                self.sleeping = True
                if self._next_ready():
                    self.sleeping = False
                    continue
                self._passed()
                self.busy = False
                host.lane_wake()
                self._token.acquire()
                continue
            cls = item.__class__
            if cls not in SPECIAL and cls is not JobItem and self.maxsize is None:
                entry = self.entry
                if not self.closed and not self.vacant and entry is not None:
                    self._drain(entry, item)  # the hot path: plain events in a row
                    self._passed()
                    continue
            self._do(item)
            if cls is not JobItem:
                self._passed()

    def _drain(self, entry: Entry, item: Any) -> None:
        """Plain events in a row, while nothing else is queued before them (no method call
        per event: the lane's thread competes for the interpreter with the manager's)."""
        if entry is not self._cached:
            self._load(entry)
        fn = self._event
        assert fn is not None
        fifo = self.fifo
        seqs = self.seqs
        jobs = self.jobs
        while True:
            try:
                value = fn(item)
            except CRASHES as exc:
                self._settle(entry, Raised(exc), item, "handle_event")
                return
            if value is not None:
                self._settle(entry, Returned(value), item, "handle_event")
                return
            if not fifo or fifo[0].__class__ in SPECIAL or jobs or self.watch is not None:
                return  # something else is next, or an outcome waits for this lane to move on
            if self.closed or self.vacant or not entry.alive:
                return
            item = fifo.popleft()
            self.current = seqs.popleft()

    def _next_ready(self) -> bool:
        return (
            bool(self.jobs)
            or self.closed
            or (bool(self.fifo) and (self.vacant or self._serving() is not None))
        )

    def _do(self, item: Any) -> None:
        cls = item.__class__
        if cls is JobItem:
            eff = item.eff
            out = _outcome(eff.fn, eff.args, eff.kwargs)
            # the manager may have stopped waiting (a stop timed out on it: on asyncio its
            # wait cancels the future)
            with contextlib.suppress(concurrent.futures.InvalidStateError):
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
            self._settle_call(entry, item, _outcome(fn, (item.request,), None))
        elif cls is InfoItem:
            if self._no_info(entry, item):
                return
            out = _outcome(entry.instance.handle_info, (item.message,), None)
            self._settle(entry, out, item.message, "handle_info")
        else:
            if entry is not self._cached:
                self._load(entry)
            out = _outcome(self._event, (item,), None)  # type: ignore[arg-type]
            self._settle(entry, out, item, "handle_event")
