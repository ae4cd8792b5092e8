"""The asyncio runtime's drain loop: the manager task, one per manager, handles its mailbox
in arrival order, plain events on a path tuned per event, a slice of time at a time."""

from __future__ import annotations

import asyncio
import sys
import time
from itertools import repeat
from operator import length_hint as _left
from typing import Final

from .. import _registry
from .._core import Raised, Returned
from .._driver import CRASHES, FATAL, log
from ._common import _LIVE, _STOP, _Request
from ._dispatch import drive, event_outcome, handle
from ._server import _Server
from ._stop import cancel_inline, drop_backlog, finish

_BUDGET: Final = 1024
"""How many messages the manager task handles between two looks at the clock (counted per
batch of messages known to be in the mailbox, so the count costs nothing per message; a clock
read per message would add about 45 ns to a drain of about 125 ns per event)."""

_SLICE: Final = sys.getswitchinterval()
"""The fairness slice, like OTP's reductions: once the manager task has been draining for this
long (checked every :data:`_BUDGET` messages), it gives its event loop a turn (a ``sleep(0)``),
so that a mailbox that never empties (a producer thread, a handler notifying its own manager)
cannot starve the loop's other tasks, timers and timeouts. The runtime's, not the user's.

It is the interpreter's own thread switch interval (5 ms by default), measured against shorter
slices: a turn of the loop polls for I/O and so releases the GIL, and a producer thread that
takes it keeps it for a whole switch interval. A slice as long as that interval keeps the
manager and a flooding producer thread alternating as the interpreter alternates threads (the
flood's throughput within a few % of a manager that never yields); slices of 1024 messages
(about 130 µs) gave the producer nearly all the time and cost a quarter of that throughput."""
_yield = asyncio.sleep
_clock = time.monotonic


def launch(srv: _Server) -> None:
    """Register the manager (under its name, and among the running ones) and start its
    task."""
    face = srv.face
    name = face.name
    if name is not None:
        _registry.register(name, face)
    _LIVE.add(face)
    try:
        # asyncio.Task, not create_task: a task factory (say eager_task_factory on 3.12+)
        # must not start the manager before its server knows its task
        srv.task = asyncio.Task(run(srv), loop=srv.loop)
    except BaseException:
        _LIVE.discard(face)
        if name is not None:
            _registry.unregister(name, face)
        raise


async def run(srv: _Server) -> None:
    """The manager task: drain the mailbox, tuned per event (the hot path), until a stop."""
    mailbox = srv.mailbox
    popleft = mailbox.popleft
    core = srv.core
    face = srv.face
    task = asyncio.current_task()
    budget = _BUDGET
    create_future = srv.loop.create_future
    quick = srv.quick
    # (srv.sole is looked up per new snapshot, not kept: a bound method kept in this frame
    # would cost every idle manager its size)
    seen: object = None  # the snapshot ``sole`` was read from
    sole = None
    try:
        while True:
            if not mailbox:
                waiter = face._waiter = create_future()
                if mailbox:  # re-check: a thread may have posted before seeing the waiter
                    face._waiter = None
                else:
                    if srv.pending:  # calls passed on to isolated handlers: watched
                        srv.pending.watch()
                    await waiter
                continue
            if srv.dispatch_task is not None:
                # an inline request is awaiting a coroutine (rare): let it finish first
                done = srv.inline_done = srv.loop.create_future()
                srv.suspend()
                try:
                    await done
                finally:
                    srv.suspended -= 1
                continue
            srv.dispatch_task = task
            try:
                # the dispatch tuple is read once per batch and again after anything that
                # may change the table (a control request, a non-None outcome)
                targets = None
                spent = 0
                deadline = 0.0  # read from the clock once the first budget is spent
                while mailbox:
                    # the budget is counted per batch of messages known to be there, not
                    # per message: the loop below is a C iterator, as cheap as the plain
                    # ``while mailbox`` drain it replaces; the clock is read per budget
                    # (not per wake-up: a request's round trip is one wake-up)
                    if spent >= budget:
                        if not deadline:
                            deadline = _clock() + _SLICE
                        elif _clock() >= deadline:
                            break
                        spent = 0
                    batch = len(mailbox)
                    # comparisons, not max()/min(): a builtin call each costs per wake-up
                    if batch > srv.high_water:  # noqa: PLR1730
                        srv.high_water = batch
                    if batch > budget - spent:  # noqa: PLR1730
                        batch = budget - spent
                    spent += batch
                    # the event count (metrics) is brought up to date on the slow paths
                    # (a request, a callback that raised or returned something) and once
                    # per batch, never per event
                    base = core.events
                    requests = 0
                    it = repeat(None, batch)  # a C iterator: no int per message
                    for _ in it:
                        try:
                            msg = popleft()
                        except IndexError:  # taken by stop(drain=False) or drop_oldest
                            i = batch - _left(it) - 1
                            batch = i
                            break
                        if msg.__class__ is _Request:
                            i = batch - _left(it) - 1
                            core.events = base + i - requests
                            requests += 1
                            if msg.proc is _STOP:
                                fatal = await finish(srv, [msg])
                                if fatal is not None:
                                    raise fatal
                                return
                            if quick(msg):  # answered, a table edit among them
                                base = core.events - i - 1 + requests
                                targets = None  # read again (the same one unless edited)
                                continue
                            await handle(srv, msg)
                            base = core.events - i - 1 + requests  # handle may count one
                            targets = None
                            continue
                        if targets is None:
                            if core.async_count:
                                i = batch - _left(it) - 1
                                core.events = base + i + 1 - requests
                                await drive(srv, core.notify(msg))
                                continue
                            targets = core.cached_targets or core.event_targets
                            if targets is not seen:  # a new snapshot (not per wake-up)
                                seen = targets
                                sole = srv.sole(targets)
                        if sole:  # one handler: no walk over the snapshot (the core's rule)
                            try:
                                result = sole(msg)
                            except CRASHES as exc:
                                result = Raised(exc)  # (no local of its own: a smaller frame)
                            else:
                                if result is None:  # the core's needs_attention, inlined
                                    continue
                                result = Returned(result)
                            i = batch - _left(it) - 1
                            core.events = base + i + 1 - requests
                            await event_outcome(srv, targets[0][0], result, msg)
                            targets = None
                            continue
                        for entry, fn in targets:
                            try:
                                result = fn(msg)
                            except CRASHES as exc:
                                i = batch - _left(it) - 1
                                core.events = base + i + 1 - requests
                                await event_outcome(srv, entry, Raised(exc), msg)
                                targets = None
                            else:
                                if result is not None:
                                    i = batch - _left(it) - 1
                                    core.events = base + i + 1 - requests
                                    await event_outcome(srv, entry, Returned(result), msg)
                                    targets = None
                    core.events = base + batch - requests
                    if srv.room is not None:  # producers wait for room (notify_wait)
                        srv.wake_room()
            finally:
                srv.dispatch_task = None
            if mailbox:  # the slice is spent: the loop's other tasks and timers go first
                srv.suspend()
                try:
                    await _yield(0)
                finally:
                    srv.suspended -= 1
    except GeneratorExit:  # its loop was closed under it and the coroutine closed
        raise
    except asyncio.CancelledError:
        # the loop is shutting down or the task was cancelled: like a parent's exit in OTP,
        # every handler is terminated before the manager goes, as by stop(drain=False)
        # (after an inline request's pending work, if any, is cancelled too): what is
        # queued is dropped (counted), since a callback stuck in an await would stall a
        # drain for ever
        srv.face._closed = True
        drop_backlog(srv)
        srv.streams_stopping()
        for lane in list(srv.lanes):  # a callback stuck in an await gets it too
            task = getattr(lane, "task", None)
            if task is not None and not task.done() and lane.busy:
                task.cancel()
        await cancel_inline(srv)
        fatal = await finish(srv, [])
        if fatal is not None:
            raise fatal from None
        raise
    except BaseException as exc:
        # a KeyboardInterrupt or SystemExit (its request finished), or a bug: stop as by
        # stop, then let it go on out of the event loop
        if not isinstance(exc, FATAL):
            log.exception("genevent manager %r failed; terminating its handlers", srv.face)
        await finish(srv, [])
        raise
    finally:
        srv.shutdown()
