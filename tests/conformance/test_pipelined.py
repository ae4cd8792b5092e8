"""docs/semantics.md items 62, 63 and P22 with requests in flight together: random programs of
notify, sync_notify, call, add, delete, swap, crashes, bad returns, ``Remove()``, swaps by
return value and restarts, run on every isolated variant without waiting for a step to be
answered before the next one is issued, then compared with the same program run step by step
on the plain asyncio runtime (no handler isolated).

What must agree (P22): a change to the handler set that a callback causes (a crash, a bad
return, ``Remove()``, ``Swap``, a restart) is applied in the mailbox order of the message that
caused it, whichever lane ran the callback and whenever it finished, exactly as if no handler
were isolated. So the two runs agree on

- every request's answer (a reply, ``None``, or the class of the error it raised);
- each handler instance's trace: its ``init`` (with the hand-off), then the events and calls
  it handled, in order, then its ``terminate`` reason; a restarted handler's trace goes on
  with its next ``init``;
- ``which_handlers`` (during the program and at its end);
- each owner's notices, in order, up to the final ``stop``; the notices of the stop as a
  multiset (isolated handlers are terminated side by side).

Only the order *across* isolated handlers' plain event handling is free, which the per-instance
traces leave open.

How steps are pipelined: on asyncio every step is a task of its own, created in program order
(a task's first step queues its request, so the mailbox order is the program's) and not awaited
before the next; on threads ``notify`` and the future forms (``sync_notify_future``,
``call_future``) are issued without waiting; add, delete, swap and ``which_handlers`` have no
future form: they are issued while what came before is in flight, and block, so the step after
one of them is issued once it is answered. A program also draws its
window: how many steps may be unanswered at once before the oldest is waited for (``None``: no
limit). A ``notify`` has no answer to wait for: it counts as answered at once, so events pile
up behind whatever is in flight.

Besides the drawn programs, a few small ones always run (``EXAMPLES_ALWAYS_RUN``): each
pins down one way a request or an outcome could overtake, or be overtaken by, a message
queued after it.

The test also runs on the runtimes without isolated handlers (``aio``, ``threads``,
``threads-inline``), pipelined the same way: there the answer is known (one mailbox, one
callback at a time), so that part checks the harness (the pipelining keeps the program's
mailbox order) rather than the runtimes.

CI runs a fixed set of examples (``derandomize=True``). A longer run:
``GENEVENT_PIPELINE_EXAMPLES=2000 pytest tests/conformance/test_pipelined.py`` (examples per
isolated variant; add ``-p no:timeout`` or ``--timeout=0`` for long runs).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import threading
from collections import Counter
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

import hypothesis.strategies as st
import pytest
from hypothesis import HealthCheck, example, given, settings

from genevent import (
    NO_HANDOFF,
    BadReturn,
    Crashed,
    Deleted,
    ExitReason,
    HandlerExit,
    OwnerExited,
    Remove,
    RemovedItself,
    StartFailed,
    Stopped,
    Swap,
    Swapped,
)
from tests.handlers import H2, WAIT, H, Recorder, Spec
from tests.runtimes import RUNTIMES, AioRuntime, Facade, Runtime, Worker

REFS: list[Any] = [(H, i) for i in range(3)] + [(H2, i) for i in range(2)]
OWNERS = ["main", "w1"]
EVENT_ACTIONS = ["plain", "crash", "bad", "remove", "swap", "swap_fail"]
CALL_ACTIONS = ["plain", "crash", "bad", "remove", "swap"]
ISOLATED = [name for name, cls in RUNTIMES.items() if cls.isolated]
PLAIN = ["aio", "aio-queued", "aio-queued-core", "threads", "threads-inline"]
REFERENCE = "aio"
EXAMPLES = int(os.environ.get("GENEVENT_PIPELINE_EXAMPLES", "60"))


# -- programs ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Add:
    ref: Any
    owner: str | None  # None: add_handler; else add_sup_handler owned by that owner
    fail: bool  # init refuses
    restart: str  # "temporary", "transient" or "permanent" (at most one restart)


@dataclass(frozen=True)
class Delete:
    ref: Any


@dataclass(frozen=True)
class SwapApi:
    old: Any
    new: Any
    owner: str | None  # None: swap_handler; else swap_sup_handler owned by that owner
    fail: bool  # the new handler's init refuses


@dataclass(frozen=True)
class Notify:
    action: str  # what the handler under ``target`` does with it (see behave_event)
    target: Any
    new: Any  # the reference a swap by return value goes to
    sync: bool  # sync_notify instead of notify


@dataclass(frozen=True)
class Call:
    ref: Any
    action: str  # see behave_call
    new: Any


@dataclass(frozen=True)
class Which:
    pass


Step = Add | Delete | SwapApi | Notify | Call | Which

refs = st.sampled_from(REFS)
owners = st.sampled_from([None, *OWNERS])
step_strategy: st.SearchStrategy[Step] = st.one_of(
    st.builds(
        Add,
        refs,
        owners,
        st.booleans(),
        st.sampled_from(["temporary", "temporary", "transient", "permanent"]),
    ),
    st.builds(Delete, refs),
    st.builds(SwapApi, refs, refs, owners, st.booleans()),
    st.builds(Notify, st.sampled_from(EVENT_ACTIONS), refs, refs, st.booleans()),
    st.builds(Call, refs, st.sampled_from(CALL_ACTIONS), refs),
    st.just(Which()),
)
# the first steps add handlers, so that events and calls find some
programs: st.SearchStrategy[list[Step]] = st.tuples(
    st.lists(st.builds(Add, refs, owners, st.just(False), st.just("temporary")), max_size=3),
    st.lists(step_strategy, min_size=1, max_size=30),
).map(lambda parts: [*parts[0], *parts[1]])
windows = st.sampled_from([2, 3, None])

_H0, _H1 = REFS[0], REFS[1]
EXAMPLES_ALWAYS_RUN: list[list[Step]] = [
    # a request that waits for an isolated handler to catch up (here a delete) and a notify
    # queued behind it: the deleted handler must not see the event
    [Add(_H0, None, False, "temporary"), Delete(_H0), Notify("plain", _H0, _H0, False)],
    # which_handlers, then an add queued behind it: the answer is the table before the add
    [Add(_H0, None, False, "temporary"), Which(), Add(_H1, None, False, "temporary")],
    # a call to a handler that is not installed, then an add of it: HandlerNotFound
    [
        Add(_H0, None, False, "temporary"),
        Call(_H1, "plain", _H1),
        Add(_H1, None, False, "temporary"),
    ],
    # a handler swaps itself (by return value) to another id; a call to its old id queued
    # behind: HandlerNotFound, not an answer from the new handler
    [Add(_H0, None, False, "temporary"), Notify("swap", _H0, _H1, False), Call(_H0, "plain", _H0)],
    [Add(_H0, None, False, "temporary"), Call(_H0, "swap", _H1), Call(_H0, "plain", _H0)],
    # an outcome (Remove) of a sync_notify's event is applied before the delete behind it:
    # the owner is told in that order
    [
        Add(_H0, "main", False, "temporary"),
        Add(_H1, "main", False, "temporary"),
        Notify("remove", _H0, _H0, True),
        Delete(_H1),
    ],
]


# -- handlers: their behaviour ---------------------------------------------------------------------


def make_spec(rec: Recorder, name: str, ref: Any, fail: bool = False) -> Spec:
    def init(handler: Any) -> None:
        if fail:
            raise ValueError(f"{name} refuses")

    return Spec(rec, name, init=init, event=behave_event, call=behave_call, extra={"ref": ref})


def behave_event(handler: Any, event: Any) -> Any:
    """An event ``(action, target, new, step)`` is acted on by the handler under ``target``."""
    action, target, new, step = event
    spec: Spec = handler.spec
    if target != spec.extra["ref"]:
        return None
    if action == "crash":
        raise RuntimeError(f"{spec.name} crashes on step {step}")
    if action == "bad":
        return ("bad", spec.name)
    if action == "remove":
        return Remove()
    if action in ("swap", "swap_fail"):
        new_spec = make_spec(spec.rec, f"r{step}", new, fail=action == "swap_fail")
        return Swap(("event-swap", step), new, new_spec)
    return None


def behave_call(handler: Any, request: Any) -> Any:
    """A request ``(action, new, step)``."""
    action, new, step = request
    spec: Spec = handler.spec
    if action == "crash":
        raise RuntimeError(f"{spec.name} crashes on call {step}")
    if action == "bad":
        return Remove  # the class, not an instance: a bad return
    if action == "remove":
        return Remove(("removed", spec.name))
    if action == "swap":
        new_spec = make_spec(spec.rec, f"r{step}", new)
        return Swap(("call-swap", step), new, new_spec, reply=("swapped", spec.name))
    return ("reply", spec.name)


# -- one run of a program ------------------------------------------------------------------------


@dataclass
class Outcome:
    """What a run gives to compare."""

    answers: list[Any]
    handlers: list[Any]
    traces: dict[str, list[Any]]
    notices: dict[str, list[Any]]  # up to the stop, in order
    stop_notices: dict[str, Counter[Any]]


class Run:
    """One program on one runtime; ``window=1`` runs it step by step."""

    def __init__(self, runtime: str) -> None:
        self.rt: Runtime = RUNTIMES[runtime]()
        self.aio = isinstance(self.rt, AioRuntime)
        self.rec = Recorder()
        self.lock = threading.Lock()
        self.notices: list[tuple[str, Any, Any]] = []
        self.facade: Facade = self.rt.start()
        self.mgr = self.facade.mgr
        self.w1: Worker = self.rt.worker()
        self.owner_of = {"main": self.rt.main.owner, "w1": self.w1.owner}
        self.labels = {id(owner): label for label, owner in self.owner_of.items()}
        self.on_exit = {label: self._notice_to(label) for label in OWNERS}

    # -- recording, and what is compared -------------------------------------------------------

    def _notice_to(self, label: str) -> Callable[[HandlerExit], None]:
        def on_exit(notice: HandlerExit) -> None:
            with self.lock:
                self.notices.append((label, notice.handler, self.reason(notice.reason)))

        return on_exit

    def reason(self, reason: ExitReason) -> Any:
        """``reason`` as plain data that two runs can compare."""
        if isinstance(reason, Deleted):
            return ("Deleted", reason.args)
        if isinstance(reason, Swapped):
            owner = reason.new_owner
            label = None if owner is None else self.labels.get(id(owner), "unknown owner")
            return ("Swapped", reason.args, reason.new_handler, label)
        if isinstance(reason, Crashed):
            return ("Crashed", type(reason.exception).__name__, str(reason.exception))
        if isinstance(reason, BadReturn):
            value = reason.value
            if isinstance(value, Swap):
                value = ("Swap", value.args1, value.handler)
            elif value is Remove:
                value = "Remove (the class)"
            return ("BadReturn", value)
        if isinstance(reason, StartFailed):
            return ("StartFailed", type(reason.cause).__name__)
        if isinstance(reason, OwnerExited):
            return ("OwnerExited",)
        assert isinstance(reason, RemovedItself | Stopped), reason
        return (type(reason).__name__,)

    def traces(self) -> dict[str, list[Any]]:
        out: dict[str, list[Any]] = {}
        for name, kind, value in list(self.rec.log):
            seen = value
            if kind == "init":
                seen = "none" if value is NO_HANDOFF else value
            elif kind == "terminate":
                seen = self.reason(value)
            out.setdefault(name, []).append((kind, seen))
        return out

    @staticmethod
    def answer(fut: concurrent.futures.Future[Any]) -> Any:
        exc = fut.exception(WAIT)
        if exc is not None:
            return ("raised", type(exc).__name__)
        return fut.result()

    # -- the requests ------------------------------------------------------------------------

    def event(self, i: int, step: Notify) -> Any:
        return (step.action, step.target, step.new, i)

    def add_kw(self, step: Add) -> dict[str, Any]:
        kw: dict[str, Any] = {"timeout": WAIT, **self.rt.isolation_for(step.ref)}
        if step.restart != "temporary":
            kw.update(restart=step.restart, max_restarts=1, restart_period=3600.0)
        if step.owner is not None:
            kw.update(owner=self.owner_of[step.owner], on_exit=self.on_exit[step.owner])
        return kw

    def swap_kw(self, step: SwapApi) -> dict[str, Any]:
        kw: dict[str, Any] = {"timeout": WAIT}
        if step.owner is not None:
            kw.update(owner=self.owner_of[step.owner], on_exit=self.on_exit[step.owner])
        return kw

    def request(self, i: int, step: Step) -> tuple[str, tuple[Any, ...], dict[str, Any]]:
        """The manager method ``step`` calls, with its arguments."""
        rec = self.rec
        if isinstance(step, Add):
            spec = make_spec(rec, f"a{i}", step.ref, step.fail)
            name = "add_handler" if step.owner is None else "add_sup_handler"
            return name, (step.ref, spec), self.add_kw(step)
        if isinstance(step, Delete):
            return "delete_handler", (step.ref, ("del", i)), {"timeout": WAIT}
        if isinstance(step, SwapApi):
            spec = make_spec(rec, f"s{i}", step.new, step.fail)
            name = "swap_handler" if step.owner is None else "swap_sup_handler"
            return name, (step.old, ("api-swap", i), step.new, spec), self.swap_kw(step)
        if isinstance(step, Notify):
            name = "sync_notify" if step.sync else "notify"
            return name, (self.event(i, step),), {"timeout": WAIT} if step.sync else {}
        if isinstance(step, Call):
            return "call", (step.ref, (step.action, step.new, i)), {"timeout": WAIT}
        return "which_handlers", (), {"timeout": WAIT}

    # -- driving -----------------------------------------------------------------------------

    def drive(self, program: list[Step], window: int | None) -> list[Any]:
        if self.aio:
            futures = self.rt.main.run(lambda: self._drive_aio(program, window))
        else:
            futures = self._drive_threads(program, window)
        return [self.answer(f) for f in futures]

    async def _drive_aio(
        self, program: list[Step], window: int | None
    ) -> list[concurrent.futures.Future[Any]]:
        """Each step a task, created in program order and not awaited before the next (each
        task's first step queues its request, or runs it when the manager is idle)."""
        mgr = self.mgr
        tasks: list[asyncio.Future[Any]] = []
        for i, step in enumerate(program):
            if window is not None and i >= window:
                await asyncio.wait([tasks[i - window]])
            name, args, kw = self.request(i, step)
            method = getattr(mgr, name)
            if name == "notify":

                async def notify(method: Any = method, args: Any = args) -> None:
                    method(*args)

                coro: Coroutine[Any, Any, Any] = notify()
            else:
                coro = method(*args, **kw)
            tasks.append(asyncio.ensure_future(coro))
        await asyncio.wait(tasks)
        out: list[concurrent.futures.Future[Any]] = []
        for task in tasks:
            fut: concurrent.futures.Future[Any] = concurrent.futures.Future()
            exc = task.exception()
            if exc is not None:
                fut.set_exception(exc)
            else:
                fut.set_result(task.result())
            out.append(fut)
        return out

    def _drive_threads(
        self, program: list[Step], window: int | None
    ) -> list[concurrent.futures.Future[Any]]:
        """``notify``, ``sync_notify_future`` and ``call_future`` are not waited for; the
        requests without a future form block, behind what is in flight."""
        mgr = self.mgr
        futures: list[concurrent.futures.Future[Any]] = []
        for i, step in enumerate(program):
            if window is not None and i >= window:
                concurrent.futures.wait([futures[i - window]], WAIT)
            name, args, kw = self.request(i, step)
            if name == "sync_notify":
                futures.append(mgr.sync_notify_future(*args))
                continue
            if name == "call":
                futures.append(mgr.call_future(*args))
                continue
            fut: concurrent.futures.Future[Any] = concurrent.futures.Future()
            try:
                fut.set_result(getattr(mgr, name)(*args, **kw))
            except Exception as exc:
                fut.set_exception(exc)
            futures.append(fut)
        concurrent.futures.wait(futures, WAIT)
        return futures

    def run(self, program: list[Step], window: int | None) -> Outcome:
        try:
            answers = self.drive(program, window)
            handlers = self.facade.which_handlers(timeout=WAIT)
            with self.lock:
                before = len(self.notices)
            self.facade.stop(timeout=WAIT)
            with self.lock:
                notices = list(self.notices)
        finally:
            self.w1.end()
            self.rt.close()
        by_owner: dict[str, list[Any]] = {label: [] for label in OWNERS}
        at_stop: dict[str, Counter[Any]] = {label: Counter() for label in OWNERS}
        for k, (label, ref, reason) in enumerate(notices):
            if k < before:
                by_owner[label].append((ref, reason))
            else:
                at_stop[label][(ref, reason)] += 1
        return Outcome(answers, handlers, self.traces(), by_owner, at_stop)


def run_program(runtime: str, program: list[Step], window: int | None) -> Outcome:
    return Run(runtime).run(program, window)


def _differences(program: list[Step], want: Outcome, got: Outcome) -> list[str]:
    diffs: list[str] = []
    for i, (w, g) in enumerate(zip(want.answers, got.answers, strict=True)):
        if w != g:
            diffs.append(f"step {i} {program[i]}: answered {g!r}, expected {w!r}")
    if got.handlers != want.handlers:
        diffs.append(f"which_handlers at the end: {got.handlers}, expected {want.handlers}")
    for name in sorted(set(want.traces) | set(got.traces)):
        w_trace, g_trace = want.traces.get(name), got.traces.get(name)
        if w_trace != g_trace:
            diffs.append(f"instance {name}: trace {g_trace}, expected {w_trace}")
    for label in OWNERS:
        if got.notices[label] != want.notices[label]:
            diffs.append(
                f"owner {label}: notices {got.notices[label]}, expected {want.notices[label]}"
            )
        if got.stop_notices[label] != want.stop_notices[label]:
            diffs.append(
                f"owner {label}: notices of the stop {dict(got.stop_notices[label])}, "
                f"expected {dict(want.stop_notices[label])}"
            )
    return diffs


def check_program(runtime: str, program: list[Step], window: int | None) -> None:
    want = run_program(REFERENCE, program, 1)
    got = run_program(runtime, program, window)
    diffs = _differences(program, want, got)
    assert not diffs, f"{runtime}, window {window}, program {program}:\n" + "\n".join(diffs)


# -- the tests -----------------------------------------------------------------------------------


@pytest.mark.parametrize("runtime", ISOLATED + PLAIN)
def test_pipelined_program_matches_the_plain_runtime(runtime: str) -> None:
    @settings(
        max_examples=EXAMPLES,
        derandomize=True,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(program=programs, window=windows)
    @example(program=EXAMPLES_ALWAYS_RUN[0], window=None)
    @example(program=EXAMPLES_ALWAYS_RUN[1], window=None)
    @example(program=EXAMPLES_ALWAYS_RUN[2], window=None)
    @example(program=EXAMPLES_ALWAYS_RUN[3], window=None)
    @example(program=EXAMPLES_ALWAYS_RUN[4], window=None)
    @example(program=EXAMPLES_ALWAYS_RUN[5], window=None)
    def check(program: list[Step], window: int | None) -> None:
        check_program(runtime, program, window)

    check()
