"""Differential test: random programs run on a bare :class:`ManagerCore` (the reference) and on
every runtime variant, whose observable traces must agree.

The reference is the core alone, driven by :func:`genevent._driver.drive_sync`: no runtime, no
mailbox, no fast path. Each step of a program is fed to it as the core procedure it stands for
(``add_handler``, ``delete_handler``, ``swap_handler``, ``notify``, ``info``, ``call``,
``owner_down``, ``stop``); what the procedure returns or raises is the step's answer. Owners
are opaque tokens there (the strings ``"main#0"``, ``"w1#0"``, ...), whose ``Watch`` and
``Unwatch`` effects the reference checks against the core's own count of owners.

The same program then runs on each runtime variant of ``tests/runtimes.py`` but nats (which
has no local owners), through the blocking :class:`~tests.runtimes.Facade`, one step answered
before the next (``notify`` and ``send`` are answered at once: they pile up in the mailbox
behind what follows, so requests behind them take the runtimes' queued paths). Owners there are
the variants' workers: the test's main worker, and a worker ``w1`` that a step may end (then a
new worker takes the label ``w1`` for later steps, as a new token does in the reference).

What must agree:

- each step's answer: a reply (``call``, ``delete_handler``, ``which_handlers``), ``None``, or
  the class of the error it raised;
- each handler instance's trace: its ``init`` with the hand-off, the events, infos and calls it
  handled in order, its ``terminate`` reason; a restarted instance goes on with its next
  ``init``;
- ``which_handlers`` at the end (and wherever a program asks);
- each owner's notices, in order.

On the variants without isolated handlers the whole log must agree, callbacks and notices
interleaved: one callback at a time, in the manager. On the isolated variants the order across
isolated handlers is free (they run side by side), so there the traces are compared per
instance, the notices per owner, and the notices of the final ``stop`` as a multiset.

Programs avoid what depends on timing: a handler whose ``init`` can fail never has a restart
policy (a failed restart is retried on the runtime's clock), intensity periods are an hour, a
step that ends an owner waits until the owner's handlers are terminated (the manager learns of
the end after everything the program sent before it), and on the isolated variants an ``add``
is issued only once the isolated handlers are past the events before it (docs/semantics.md P22:
adding an id that is not installed is the one request that does not take its place in the
mailbox order).

CI runs a few fixed programs and a fixed set of drawn ones (``derandomize=True``), under 10 s in
all. A longer run: ``GENEVENT_DIFFERENTIAL_EXAMPLES=500 pytest --timeout=0
tests/conformance/test_differential.py`` (examples per variant); add
``GENEVENT_DIFFERENTIAL_SEED=<n>`` to draw other programs than the fixed ones (a failure is then
reproduced with the same seed and count).
"""

from __future__ import annotations

import dataclasses
import os
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import hypothesis.strategies as st
import pytest
from hypothesis import HealthCheck, example, given, seed, settings

from genevent import (
    NO_HANDOFF,
    BadReturn,
    Crashed,
    Deleted,
    EventHandler,
    ExitReason,
    GenEventError,
    HandlerExit,
    OwnerExited,
    Remove,
    RemovedItself,
    StartFailed,
    Stopped,
    Swap,
    Swapped,
)
from genevent._core import ManagerCore, Procedure, Retry, Settle, Unwatch, Watch, restart_spec
from genevent._driver import drive_sync
from tests.handlers import H2, WAIT, H, Recorder, Spec
from tests.runtimes import RUNTIMES, Facade, Runtime, Worker

EXAMPLES = int(os.environ.get("GENEVENT_DIFFERENTIAL_EXAMPLES", "100"))
SEED = os.environ.get("GENEVENT_DIFFERENTIAL_SEED")  # None: the fixed (derandomized) examples
VARIANTS = [name for name in RUNTIMES if name != "nats"]
PERIOD = 3600.0  # restart intensity period: no program comes near it


class Quiet(EventHandler[Any, Any, Any]):
    """A handler without ``handle_call`` (``CallNotSupported``) or ``handle_info`` (the info is
    dropped with a warning); it records as :class:`~tests.handlers.H` does."""

    def init(self, spec: Spec, /, *, handoff: Any = NO_HANDOFF) -> Any:
        self.spec = spec
        spec.rec.add(spec.name, "init", handoff)
        return spec.init(self) if spec.init is not None else None

    def handle_event(self, event: Any, /) -> Any:
        self.spec.rec.add(self.spec.name, "event", event)
        return self.spec.event(self, event) if self.spec.event else None

    def terminate(self, reason: ExitReason, /) -> Any:
        self.spec.rec.add(self.spec.name, "terminate", reason)
        if self.spec.terminate:
            return self.spec.terminate(self, reason)
        return ("terminated", self.spec.name)


class Boom(BaseException):
    """Not an ``Exception``: raised by a callback, still a crash of that handler (P4)."""


REFS: list[Any] = [(H, 0), (H, 1), H2, (Quiet, 0)]
OWNERS = ["main", "w1"]
INIT_MODES = ["ok", "ok", "ok", "raise", "bad"]
TERMINATE_MODES = ["ok", "ok", "none", "raise"]
RESTARTS = ["temporary", "temporary", "transient", "permanent"]
EVENT_ACTIONS = [
    "plain",
    "crash",
    "boom",
    "bad",
    "remove",
    "remove_cls",
    "swap",
    "swap_fail",
    "swap_bad_init",
    "swap_invalid",
]
CALL_ACTIONS = [
    "plain",
    "none",
    "crash",
    "boom",
    "bad",
    "remove",
    "swap",
    "swap_fail",
    "swap_invalid",
]


# -- programs --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Add:
    ref: Any
    owner: str | None = None  # None: add_handler; else add_sup_handler made by that owner
    init: str = "ok"  # "ok", "raise" or "bad" (init returns a value)
    terminate: str = "ok"  # "ok" (returns a value), "none" or "raise"
    restart: str = "temporary"  # only with init "ok" (a failed restart waits on a clock)
    max_restarts: int = 1


@dataclass(frozen=True)
class Delete:
    ref: Any


@dataclass(frozen=True)
class SwapApi:
    old: Any
    new: Any
    owner: str | None = None  # None: swap_handler; else swap_sup_handler made by that owner
    init: str = "ok"
    terminate: str = "ok"


@dataclass(frozen=True)
class Notify:
    action: str  # what the handler under ``target`` does with it (see behave_event)
    target: Any
    new: Any = None  # the reference a swap by return value goes to
    sync: bool = False


@dataclass(frozen=True)
class Send:
    action: str  # as Notify, through handle_info
    target: Any
    new: Any = None


@dataclass(frozen=True)
class Call:
    ref: Any
    action: str = "plain"  # see behave_call
    new: Any = None


@dataclass(frozen=True)
class Which:
    pass


@dataclass(frozen=True)
class EndOwner:
    """``w1`` ends: the handlers it owns are terminated with ``OwnerExited``."""


Step = Add | Delete | SwapApi | Notify | Send | Call | Which | EndOwner


def _no_failing_restart(step: Add) -> Add:
    if step.init != "ok" and step.restart != "temporary":
        return Add(step.ref, step.owner, step.init, step.terminate, "temporary", step.max_restarts)
    return step


refs = st.sampled_from(REFS)
owners = st.sampled_from([None, *OWNERS])
adds = st.builds(
    Add,
    refs,
    owners,
    st.sampled_from(INIT_MODES),
    st.sampled_from(TERMINATE_MODES),
    st.sampled_from(RESTARTS),
    st.integers(0, 2),
).map(_no_failing_restart)
step_strategy: st.SearchStrategy[Step] = st.one_of(
    adds,
    st.builds(Delete, refs),
    st.builds(
        SwapApi, refs, refs, owners, st.sampled_from(INIT_MODES), st.sampled_from(TERMINATE_MODES)
    ),
    st.builds(Notify, st.sampled_from(EVENT_ACTIONS), refs, refs, st.booleans()),
    st.builds(Send, st.sampled_from(EVENT_ACTIONS), refs, refs),
    st.builds(Call, refs, st.sampled_from(CALL_ACTIONS), refs),
    st.just(Which()),
    st.just(EndOwner()),
)
# the first steps add handlers, so that events and calls find some
programs: st.SearchStrategy[list[Step]] = st.tuples(
    st.lists(
        st.builds(
            Add,
            refs,
            owners,
            st.just("ok"),
            st.sampled_from(TERMINATE_MODES),
            st.sampled_from(RESTARTS),
            st.integers(0, 2),
        ),
        min_size=1,
        max_size=4,
    ),
    st.lists(step_strategy, min_size=1, max_size=25),
).map(lambda parts: [*parts[0], *parts[1]])

_H0, _H1, _Q = (H, 0), (H, 1), (Quiet, 0)
PROGRAMS_ALWAYS_RUN: list[list[Step]] = [
    # each way of leaving, each told to the owner: delete (terminate raising), removal,
    # crash, BaseException crash, bad return, swap by the API keeping the owner
    [
        Add(_H0, "main", terminate="raise"),
        Add(_H1, "w1"),
        Add(H2, "main"),
        Notify("plain", _H0),
        Call(_H1, "plain"),
        Delete(_H0),
        Notify("remove", _H1, sync=True),
        Add(_H1, "w1", terminate="none"),
        Send("crash", _H1),
        Call(H2, "boom"),
        Add(_H0, "main"),
        Notify("bad", _H0),
        Add(_H1, "w1"),
        SwapApi(_H1, _Q, None),
        Which(),
    ],
    # swaps by return value: in place, onto a used id (bad), a target that fails, an invalid one
    [
        Add(_H0, "main"),
        Add(_H1, "w1"),
        Add(H2),
        Notify("swap", _H0, _Q),
        Call(_H1, "swap", _Q),
        Call(_H1, "swap", H2),
        Add(_H1, "w1"),
        Send("swap_fail", _H1, _H0),
        Notify("swap_bad_init", _Q, _H0, sync=True),
        Add(_Q, "main"),
        Call(_Q, "plain"),
        Send("plain", _Q),
        Notify("swap_invalid", H2),
        Which(),
    ],
    # restart policies with small limits, an owner's end, a new owner under the same label
    [
        Add(_H0, "w1", restart="transient", max_restarts=1),
        Add(_H1, "main", restart="permanent", max_restarts=2),
        Add(H2, "w1", restart="permanent", max_restarts=0),
        Notify("crash", _H0),
        Call(_H0, "plain"),
        Notify("crash", _H0),
        Call(_H1, "remove"),
        Notify("remove", _H1),
        Notify("bad", _H1),
        Call(_H1, "plain"),
        Notify("remove_cls", H2),
        Add(_H0, "w1", restart="transient"),
        EndOwner(),
        Add(H2, "w1"),
        SwapApi(_H1, _H0, "w1", terminate="raise"),
        Which(),
    ],
    # adds and swaps that fail: init raising or returning a value, ids in use
    [
        Add(_H0, init="raise"),
        Add(_H0, init="bad"),
        Add(_H0, "w1"),
        Add(_H0),
        SwapApi(H2, _H0, "main"),
        SwapApi(_H1, H2, "main"),
        SwapApi(H2, _H1, init="raise"),
        SwapApi(_H0, _H0, "main", init="bad"),
        Call(_H1, "plain"),
        Delete(_H1),
        Which(),
    ],
    # a call made after the event that makes its handler leave is answered after it, even
    # when that handler has no handle_call (HandlerNotFound, not CallNotSupported)
    [Add(_Q), Notify("crash", _Q), Call(_Q, "plain"), Which()],
    # an info queued behind a swap to a handler without handle_info: dropped with a warning
    [Add(_H0), Notify("swap", _H0, _Q), Send("plain", _H0), Notify("plain", _Q), Which()],
]


# -- handlers: their behaviour ---------------------------------------------------------------------


class Log(Recorder):
    """What handlers did and what owners were told, in one order: ``(who, kind, value)``."""

    def __init__(self) -> None:
        super().__init__()
        self._cond = threading.Condition()

    def add(self, *item: Any) -> None:
        super().add(*item)
        with self._cond:
            self._cond.notify_all()

    def count(self, kind: str) -> int:
        return len(self.kinds(kind))

    def wait_count(self, kind: str, n: int) -> bool:
        """Wait until ``n`` items of ``kind`` were added; False when they were not in time."""
        with self._cond:
            return self._cond.wait_for(lambda: len(self.kinds(kind)) >= n, WAIT)

    def snapshot(self) -> list[tuple[Any, ...]]:
        return list(self.log)


def make_spec(log: Recorder, name: str, ref: Any, init: str = "ok", terminate: str = "ok") -> Spec:
    def init_fn(handler: Any) -> Any:
        if init == "raise":
            raise ValueError(f"{name} refuses")
        if init == "bad":
            return ("refused", name)
        return None

    def terminate_fn(handler: Any, reason: ExitReason) -> Any:
        if terminate == "raise":
            raise RuntimeError(f"{name} fails to terminate")
        if terminate == "none":
            return None
        return ("terminated", name)

    return Spec(
        log,
        name,
        init=init_fn,
        event=behave_event,
        call=behave_call,
        info=behave_event,
        terminate=terminate_fn,
        extra={"ref": ref},
    )


def _swap_to(spec: Spec, action: str, new: Any, tag: str, args1: Any) -> Swap[Any]:
    if action == "swap_invalid":
        return Swap(args1, "not a handler class")  # type: ignore[arg-type]
    init = {"swap_fail": "raise", "swap_bad_init": "bad"}.get(action, "ok")
    new_spec = make_spec(spec.rec, tag, new, init)
    return Swap(args1, new, new_spec)


def behave_event(handler: Any, event: Any) -> Any:
    """An event or info ``(action, target, new, step)`` is acted on by the handler under
    ``target`` only."""
    action, target, new, step = event
    spec: Spec = handler.spec
    if target != spec.extra["ref"] or action == "plain":
        return None
    if action == "crash":
        raise RuntimeError(f"{spec.name} crashes on step {step}")
    if action == "boom":
        raise Boom(f"{spec.name} booms on step {step}")
    if action == "bad":
        return ("bad", spec.name)
    if action == "remove":
        return Remove()
    if action == "remove_cls":
        return Remove  # the class: a bad return
    return _swap_to(spec, action, new, f"e{step}", ("event-swap", step))


def behave_call(handler: Any, request: Any) -> Any:
    """A request ``(action, new, step)``."""
    action, new, step = request
    spec: Spec = handler.spec
    if action == "plain":
        return ("reply", spec.name, step)
    if action == "none":
        return None
    if action == "crash":
        raise RuntimeError(f"{spec.name} crashes on call {step}")
    if action == "boom":
        raise Boom(f"{spec.name} booms on call {step}")
    if action == "bad":
        return Remove  # the class, not an instance: a bad return
    if action == "remove":
        return Remove(("removed", spec.name))
    swap = _swap_to(spec, action, new, f"c{step}", ("call-swap", step))
    return Swap(swap.args1, swap.handler, swap.args2, reply=("swapped", spec.name))


# -- what is compared ------------------------------------------------------------------------------


def plain_value(value: Any) -> Any:
    """A value two runs can compare: exceptions by class and text, swaps by their parts."""
    if isinstance(value, BaseException):
        return ("exception", type(value).__name__, str(value))
    if value is NO_HANDOFF:
        return "NO_HANDOFF"
    if value is Remove:
        return "Remove (the class)"
    if isinstance(value, Swap):
        return ("Swap", value.args1, value.handler)
    return value


def plain_reason(reason: ExitReason, label_of: Callable[[Any], Any]) -> Any:
    """An exit reason as plain data; owners by their labels."""
    if isinstance(reason, Deleted):
        return ("Deleted", reason.args)
    if isinstance(reason, Swapped):
        owner = reason.new_owner
        return (
            "Swapped",
            reason.args,
            reason.new_handler,
            None if owner is None else label_of(owner),
        )
    if isinstance(reason, Crashed):
        return ("Crashed", plain_value(reason.exception))
    if isinstance(reason, BadReturn):
        return ("BadReturn", plain_value(reason.value))
    if isinstance(reason, StartFailed):
        cause = reason.cause
        if isinstance(cause, BadReturn):
            return ("StartFailed", ("BadReturn", plain_value(cause.value)))
        return ("StartFailed", plain_value(cause))
    if isinstance(reason, OwnerExited):
        return ("OwnerExited",)
    assert isinstance(reason, RemovedItself | Stopped), reason
    return (type(reason).__name__,)


@dataclass
class Outcome:
    """What one run of a program gives to compare."""

    answers: list[Any]
    log: list[tuple[Any, str, Any]]  # callbacks and notices, in the order they happened
    at_stop: int  # log items before the stop
    terminations: list[int] = field(default_factory=list)  # terminates done after each step

    def traces(self) -> dict[Any, list[Any]]:
        """Each instance's callbacks, in order (notices left out)."""
        out: dict[Any, list[Any]] = {}
        for who, kind, value in self.log:
            if kind != "notice":
                out.setdefault(who, []).append((kind, value))
        return out

    def notices(self, before_stop: bool) -> dict[Any, list[Any]]:
        """Each owner's notices, in order: those before the stop, or those of the stop."""
        out: dict[Any, list[Any]] = {}
        for k, (who, kind, value) in enumerate(self.log):
            if kind == "notice" and (k < self.at_stop) == before_stop:
                out.setdefault(who, []).append(value)
        return out


class Labels:
    """Plain data for what a run logs: exit reasons, hand-offs, owners by label."""

    def __init__(self, log: Log, label_of: Callable[[Any], Any]) -> None:
        self.log = log
        self.label_of = label_of

    def entries(self) -> list[tuple[Any, str, Any]]:
        out = []
        for who, kind, raw in self.log.snapshot():
            if kind == "terminate":
                value = plain_reason(raw, self.label_of)
            elif kind == "notice":
                value = (raw.handler, plain_reason(raw.reason, self.label_of))
            else:
                value = plain_value(raw)
            out.append((who, kind, value))
        return out

    def on_exit(self, label: str) -> Callable[[HandlerExit], None]:
        def on_exit(notice: HandlerExit) -> None:
            self.log.add(label, "notice", notice)

        return on_exit


def answer_of(run: Callable[[], Any]) -> Any:
    try:
        return ("ok", plain_value(run()))
    except GenEventError as exc:
        return ("raised", type(exc).__name__)


# -- the reference: the bare core, driven synchronously --------------------------------------------


class Reference:
    """The core alone: each step is the procedure it stands for, run by ``drive_sync``."""

    def __init__(self) -> None:
        self.log = Log()
        self.labels = Labels(self.log, lambda token: token.rpartition("#")[0])
        self.core = ManagerCore("reference", clock=lambda: 0.0)
        self.watched: set[Any] = set()
        self.generation = {"main": 0, "w1": 0}
        self.on_exit = {label: self.labels.on_exit(label) for label in OWNERS}

    def token(self, label: str) -> str:
        return f"{label}#{self.generation[label]}"

    def watch(self, effect: Watch | Unwatch | Retry | Settle) -> None:
        if type(effect) is Watch:
            assert effect.owner not in self.watched, effect
            self.watched.add(effect.owner)
        elif type(effect) is Unwatch:
            self.watched.remove(effect.owner)
        else:  # a program that depends on timing (a retry), or a lane: not one of ours
            raise AssertionError(f"the reference got {effect!r}")

    def drive(self, proc: Procedure) -> Any:
        return drive_sync(proc, "reference", self.watch)

    def step(self, i: int, step: Step) -> Any:
        core = self.core
        if isinstance(step, Add):
            spec = make_spec(self.log, f"a{i}", step.ref, step.init, step.terminate)
            restart = restart_spec(step.restart, spec, step.max_restarts, PERIOD)
            owner = None if step.owner is None else self.token(step.owner)
            on_exit = None if step.owner is None else self.on_exit[step.owner]
            return answer_of(
                lambda: self.drive(core.add_handler(step.ref, spec, owner, on_exit, restart))
            )
        if isinstance(step, Delete):
            return answer_of(lambda: self.drive(core.delete_handler(step.ref, ("del", i))))
        if isinstance(step, SwapApi):
            spec = make_spec(self.log, f"s{i}", step.new, step.init, step.terminate)
            sup = step.owner is not None
            proc = core.swap_handler(
                step.old,
                ("api-swap", i),
                step.new,
                spec,
                sup=sup,
                owner=self.token(step.owner) if step.owner is not None else None,
                on_exit=self.on_exit[step.owner] if step.owner is not None else None,
            )
            return answer_of(lambda: self.drive(proc))
        if isinstance(step, Notify):
            event = (step.action, step.target, step.new, i)
            return answer_of(lambda: self.drive(core.notify(event)))
        if isinstance(step, Send):
            message = (step.action, step.target, step.new, i)
            return answer_of(lambda: self.drive(core.info(message)))
        if isinstance(step, Call):
            request = (step.action, step.new, i)
            return answer_of(lambda: self.drive(core.call(step.ref, request)))
        if isinstance(step, Which):
            return ("ok", core.which_handlers())
        assert isinstance(step, EndOwner)
        self.drive(core.owner_down(self.token("w1"), None))
        self.generation["w1"] += 1
        return ("ok", None)

    def run(self, program: list[Step]) -> Outcome:
        answers = []
        terminations = []
        for i, step in enumerate(program):
            answers.append(self.step(i, step))
            assert self.watched == set(self.core.owners()), (self.watched, self.core.owners())
            terminations.append(self.log.count("terminate"))
        answers.append(("ok", self.core.which_handlers()))
        at_stop = len(self.log.snapshot())
        self.drive(self.core.stop())
        assert not self.watched, self.watched
        return Outcome(answers, self.labels.entries(), at_stop, terminations)


# -- a runtime variant, through the facade ---------------------------------------------------------


class Variant:
    """One program on one runtime variant, step by step."""

    def __init__(self, runtime: str) -> None:
        self.rt: Runtime = RUNTIMES[runtime]()
        self.log = Log()
        self.owners: dict[int, str] = {}  # id(owner) -> label (the owners are kept alive)
        self.labels = Labels(self.log, lambda owner: self.owners.get(id(owner), "unknown"))
        self.facade: Facade = self.rt.start()
        self.workers: list[Worker] = []
        self.w1: Worker | None = None
        self.owners[id(self.rt.main.owner)] = "main"
        self.on_exit = {label: self.labels.on_exit(label) for label in OWNERS}
        #: events or infos sent since the last ``which_handlers`` (which takes its place in the
        #: mailbox order, waiting for the isolated handlers: P22)
        self.pending = False

    def via(self, label: str) -> Facade:
        if label == "main":
            return self.facade
        if self.w1 is None:
            self.w1 = self.rt.worker()
            self.workers.append(self.w1)
            self.owners[id(self.w1.owner)] = "w1"
        return self.facade.via(self.w1)

    def barrier(self) -> None:
        """Wait until the manager (and every isolated handler) is past what came before."""
        self.facade.which_handlers(timeout=WAIT)
        self.pending = False

    def step(self, i: int, step: Step, terminations: int) -> Any:
        if isinstance(step, Add) and self.pending and self.rt.isolated:
            self.barrier()  # (see the module docstring)
        result = self._step(i, step, terminations)
        if isinstance(step, Send | Notify):
            self.pending = True
        elif isinstance(step, Which):
            self.pending = False
        return result

    def _step(self, i: int, step: Step, terminations: int) -> Any:
        m = self.facade
        if isinstance(step, Add):
            spec = make_spec(self.log, f"a{i}", step.ref, step.init, step.terminate)
            kw: dict[str, Any] = {"timeout": WAIT}
            if step.restart != "temporary":
                kw.update(
                    restart=step.restart, max_restarts=step.max_restarts, restart_period=PERIOD
                )
            if step.owner is None:
                return answer_of(lambda: m.add_handler(step.ref, spec, **kw))
            via = self.via(step.owner)
            on_exit = self.on_exit[step.owner]
            return answer_of(lambda: via.add_sup_handler(step.ref, spec, on_exit=on_exit, **kw))
        if isinstance(step, Delete):
            return answer_of(lambda: m.delete_handler(step.ref, ("del", i), timeout=WAIT))
        if isinstance(step, SwapApi):
            spec = make_spec(self.log, f"s{i}", step.new, step.init, step.terminate)
            args = (step.old, ("api-swap", i), step.new, spec)
            if step.owner is None:
                return answer_of(lambda: m.swap_handler(*args, timeout=WAIT))
            via = self.via(step.owner)
            on_exit = self.on_exit[step.owner]
            return answer_of(lambda: via.swap_sup_handler(*args, on_exit=on_exit, timeout=WAIT))
        if isinstance(step, Notify):
            event = (step.action, step.target, step.new, i)
            if step.sync:
                return answer_of(lambda: m.sync_notify(event, timeout=WAIT))
            return answer_of(lambda: m.notify(event))
        if isinstance(step, Send):
            return answer_of(lambda: m.send((step.action, step.target, step.new, i)))
        if isinstance(step, Call):
            return answer_of(lambda: m.call(step.ref, (step.action, step.new, i), timeout=WAIT))
        if isinstance(step, Which):
            return answer_of(lambda: m.which_handlers(timeout=WAIT))
        assert isinstance(step, EndOwner)
        if self.w1 is not None:
            self.w1.end()
            self.w1 = None
            # its handlers are terminated when the manager learns of its end: wait for that
            # (a divergence shows as a missing terminate in the comparison)
            self.log.wait_count("terminate", terminations)
        return ("ok", None)

    def run(self, program: list[Step], terminations: list[int]) -> Outcome:
        try:
            answers = [self.step(i, step, terminations[i]) for i, step in enumerate(program)]
            answers.append(answer_of(lambda: self.facade.which_handlers(timeout=WAIT)))
            at_stop = len(self.log.snapshot())
            self.facade.stop(timeout=WAIT)
            return Outcome(answers, self.labels.entries(), at_stop)
        finally:
            for worker in self.workers:
                if worker is self.w1:
                    worker.end()
            self.rt.close()


def differences(runtime: str, program: list[Step], want: Outcome, got: Outcome) -> list[str]:
    diffs: list[str] = []
    steps: list[Any] = [*program, "final which_handlers"]
    for i, (w, g) in enumerate(zip(want.answers, got.answers, strict=True)):
        if w != g:
            diffs.append(f"step {i} {show(steps[i])}: answered {g!r}, expected {w!r}")
    if not RUNTIMES[runtime].isolated:
        if got.log != want.log:
            diffs.append(_first_difference(want.log, got.log))
        elif got.at_stop != want.at_stop:
            diffs.append(f"the stop began after {got.at_stop} log items, expected {want.at_stop}")
        return diffs
    w_traces, g_traces = want.traces(), got.traces()
    for name in sorted(set(w_traces) | set(g_traces)):
        if w_traces.get(name) != g_traces.get(name):
            diffs.append(
                f"instance {name}: trace {g_traces.get(name)}, expected {w_traces.get(name)}"
            )
    w_before, g_before = want.notices(True), got.notices(True)
    w_stop, g_stop = want.notices(False), got.notices(False)
    for label in OWNERS:
        if g_before.get(label, []) != w_before.get(label, []):
            diffs.append(
                f"owner {label}: notices {g_before.get(label)}, expected {w_before.get(label)}"
            )
        if Counter(g_stop.get(label, [])) != Counter(w_stop.get(label, [])):
            diffs.append(
                f"owner {label}: notices of the stop {g_stop.get(label)}, expected "
                f"{w_stop.get(label)} (in any order)"
            )
    return diffs


def _first_difference(want: list[Any], got: list[Any]) -> str:
    k = next(
        (k for k, (w, g) in enumerate(zip(want, got, strict=False)) if w != g),
        min(len(want), len(got)),
    )
    return (
        f"the log differs at item {k}: got {got[k : k + 3]}, expected {want[k : k + 3]} "
        f"(before it: {want[max(k - 3, 0) : k]})"
    )


def show_ref(ref: Any) -> str:
    """``(H, 0)`` as ``H.0``, ``H2`` as ``H2``."""
    if isinstance(ref, tuple):
        return f"{ref[0].__name__}.{ref[1]}"
    return getattr(ref, "__name__", repr(ref))


def show(step: Any) -> str:
    """A step as it would be written, its fields at their defaults left out."""
    if not dataclasses.is_dataclass(step):
        return str(step)
    parts = []
    for f in dataclasses.fields(step):
        value = getattr(step, f.name)
        if f.default is dataclasses.MISSING:
            parts.append(
                show_ref(value) if f.name in ("ref", "target", "old", "new") else repr(value)
            )
        elif value != f.default:
            text = show_ref(value) if f.name in ("new",) else repr(value)
            parts.append(f"{f.name}={text}")
    return f"{type(step).__name__}({', '.join(parts)})"


def check_program(runtime: str, program: list[Step]) -> None:
    want = Reference().run(program)
    got = Variant(runtime).run(program, want.terminations)
    diffs = differences(runtime, program, want, got)
    listing = "\n".join(f"  {i}: {show(step)}" for i, step in enumerate(program))
    assert not diffs, f"{runtime}, program:\n{listing}\n" + "\n".join(diffs)


# -- the tests -------------------------------------------------------------------------------------


@pytest.mark.parametrize("program", range(len(PROGRAMS_ALWAYS_RUN)))
def test_reference_sees_what_the_semantics_say(program: int) -> None:
    """The reference itself on the fixed programs: a few answers pinned by hand, so that a
    reference broken the same way as the runtimes would not pass unseen."""
    out = Reference().run(PROGRAMS_ALWAYS_RUN[program])
    assert all(a[0] in ("ok", "raised") for a in out.answers)
    assert out.log  # the programs do something
    if program == 0:
        assert out.answers[5] == ("raised", "TerminateFailed")
        assert out.answers[9] == ("raised", "HandlerCrashed")
        notices = out.notices(True)
        assert [n[1][0] for n in notices["main"]] == ["Deleted", "Crashed", "BadReturn"]
        assert [n[1][0] for n in notices["w1"]] == ["RemovedItself", "Crashed", "Swapped"]
        assert out.answers[-1] == ("ok", [_Q])
    if program == 2:
        assert out.answers[4] == ("ok", ("reply", "a0", 4))  # restarted: same spec, same name
        assert ("OwnerExited",) in [v for _, k, v in out.log if k == "terminate"]
    if program == 3:
        assert out.answers[:4] == [
            ("raised", "HandlerInitFailed"),
            ("raised", "HandlerInitFailed"),
            ("ok", None),
            ("raised", "HandlerExists"),
        ]


@pytest.mark.parametrize("runtime", VARIANTS)
def test_runtime_matches_the_bare_core(runtime: str) -> None:
    @settings(
        max_examples=EXAMPLES,
        derandomize=SEED is None,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(program=programs)
    @example(program=PROGRAMS_ALWAYS_RUN[0])
    @example(program=PROGRAMS_ALWAYS_RUN[1])
    @example(program=PROGRAMS_ALWAYS_RUN[2])
    @example(program=PROGRAMS_ALWAYS_RUN[3])
    @example(program=PROGRAMS_ALWAYS_RUN[4])
    @example(program=PROGRAMS_ALWAYS_RUN[5])
    def check(program: list[Step]) -> None:
        check_program(runtime, program)

    if SEED is not None:
        check = seed(int(SEED))(check)
    check()
