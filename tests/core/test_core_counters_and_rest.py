"""Two rules of the core that the runtimes' fast paths lean on: the rest of an event's dispatch
after the first outcome that was more than ``None`` (:meth:`ManagerCore.notify_rest`), and the
counters, written by the core only (the runtimes and lanes call its methods)."""

from __future__ import annotations

from typing import Any

import pytest

from genevent._core import ManagerCore, Outcome, Raised, Remove, Returned, restart_spec
from genevent._lanes import pass_call
from tests.core.driver import Async, FakeClock, FakeLane, H, drive, entry_of, swap_to


class A1(H):
    pass


class A2(H):
    pass


class A3(H):
    pass


HANDLERS = (A3, A2, A1)  # added in this order: A1 is the newest, visited first
BOOM = ValueError("boom")


def installed(clock: FakeClock | None = None, **kw: Any) -> ManagerCore:
    core = ManagerCore("m", clock=clock)
    for ref in HANDLERS:
        run = drive(core, core.add_handler(ref, **kw))
        assert run.error is None
    return core


# -- notify_rest: the first outcome, then the rest ---------------------------------------------

OUTCOMES: list[Outcome] = [
    Raised(BOOM),
    Returned(42),
    Returned(Remove()),
    Returned(Remove),
    Returned(swap_to((A1, 2))),
]


@pytest.mark.parametrize("first", range(3))
@pytest.mark.parametrize("out", OUTCOMES, ids=repr)
@pytest.mark.parametrize("later", [None, Raised(BOOM), Returned(Remove())], ids=repr)
def test_notify_rest_does_what_notify_does(first: int, out: Outcome, later: Any) -> None:
    """A runtime that called the handlers before ``first`` itself (each returned None) and
    hands ``first``'s outcome and the rest to the core gets what ``notify`` does from
    ``first`` on: the same effects, the same table."""
    names = [f"{cls.__name__}.handle_event" for cls in reversed(HANDLERS)]
    script: dict[str, Any] = {names[first]: out}
    if later is not None:
        for name in names[first + 1 :]:
            script[name] = later
    whole = installed()
    run = drive(whole, whole.notify("ev"), script)

    split = installed()
    targets = split.event_targets
    entry, _ = targets[first]
    rest = drive(split, split.notify_rest(entry, out, "ev", targets[first + 1 :]), script)
    assert run.effects[:first] == [("call", n, ("ev",), {}) for n in names[:first]]
    assert run.effects[first] == ("call", names[first], ("ev",), {})
    assert rest.effects == run.effects[first + 1 :]
    assert split.which_handlers() == whole.which_handlers()
    assert (split.crashes, split.events) == (whole.crashes, whole.events)
    assert (rest.reply, rest.error) == (None, None)


def test_notify_rest_skips_a_handler_of_the_rest_that_left_meanwhile() -> None:
    core = installed()
    targets = core.event_targets
    drive(core, core.delete_handler(A2))  # left after the runtime took its targets
    run = drive(core, core.notify_rest(targets[0][0], Raised(BOOM), "ev", targets[1:]))
    calls = [e[1] for e in run.effects if e[0] == "call"]
    assert calls == ["A1.terminate", "A3.handle_event"]
    assert core.which_handlers() == [A3]


def test_notify_rest_of_a_plain_first_outcome_only_visits_the_rest() -> None:
    core = installed()
    targets = core.event_targets
    run = drive(core, core.notify_rest(targets[0][0], Returned(None), "ev", targets[1:]))
    assert run.effects == [
        ("call", "A2.handle_event", ("ev",), {}),
        ("call", "A3.handle_event", ("ev",), {}),
    ]
    assert core.which_handlers() == [A1, A2, A3]


def test_notify_rest_with_nothing_left_applies_the_first_outcome_only() -> None:
    core = installed()
    entry = entry_of(core, A3)
    run = drive(core, core.notify_rest(entry, Returned(Remove()), "ev", ()))
    assert [e[1] for e in run.effects if e[0] == "call"] == ["A3.terminate"]
    assert core.which_handlers() == [A1, A2]


# -- counters -----------------------------------------------------------------------------------


def test_count_request_and_count_events() -> None:
    core = ManagerCore()
    assert (core.requests, core.events) == (0, 0)
    core.count_request()
    assert (core.requests, core.events) == (1, 0)
    core.count_request(events=1)  # a sync_notify: a request that handled one event
    assert (core.requests, core.events) == (2, 1)
    core.count_events(3)
    assert (core.requests, core.events) == (2, 4)
    core.count_events(0)
    assert (core.requests, core.events) == (2, 4)


@pytest.mark.parametrize(
    ("out", "crash"),
    [
        (Raised(BOOM), True),
        (Returned(42), True),
        (Returned(Remove), True),  # a forgotten "()": a bad return
        (Returned(Remove()), False),
        (Returned(None), False),
    ],
    ids=repr,
)
def test_crashes_count_crashes_and_bad_returns_only(out: Outcome, crash: bool) -> None:
    core = installed()
    drive(core, core.event_result(entry_of(core, A2), out, "ev"))
    assert core.crashes == int(crash)


def test_crashes_by_handler_add_up_while_it_is_restarted_and_go_with_it() -> None:
    """Per handler, crashes add up across its restarts; once it is gone for good its count
    goes (the total stays)."""
    clock = FakeClock()
    core = installed(clock, restart=None)
    drive(core, core.add_handler((A1, 2), restart=restart_spec("transient", None, 2, 60.0)))
    for n in (1, 2):
        drive(core, core.event_result(entry_of(core, (A1, 2)), Raised(BOOM), "ev"))
        assert core.crashes_by_ref == {(A1, 2): n}
        assert (core.crashes, core.restarts) == (n, n)
    drive(core, core.event_result(entry_of(core, (A1, 2)), Raised(BOOM), "ev"))  # limit
    assert core.find((A1, 2)) is None
    assert core.crashes_by_ref == {}
    assert (core.crashes, core.restarts) == (3, 2)
    drive(core, core.event_result(entry_of(core, A1), Returned(7), "ev"))
    assert core.crashes_by_ref == {}  # gone at once: counted in the total only
    assert core.crashes == 4


class _CallLane(FakeLane):
    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[Any, Any, Any]] = []

    def post_call(self, request: Any, req: Any, ref: Any) -> None:
        self.calls.append((request, req, ref))


def test_a_call_passed_to_a_lane_is_counted_as_a_request() -> None:
    core = installed()
    lane = _CallLane()
    drive(core, core.add_handler((A1, "iso"), lane=lane))
    assert not pass_call(core, A1, "q", "req-1")  # not isolated: the manager runs it
    assert core.requests == 0
    assert pass_call(core, (A1, "iso"), "q", "req-2")
    assert lane.calls == [("q", "req-2", (A1, "iso"))]
    assert core.requests == 1
    assert not pass_call(core, (A1, "gone"), "q", "req-3")  # not installed: not counted
    assert core.requests == 1


# -- what the fast paths rely on ----------------------------------------------------------------


@pytest.mark.parametrize("out", [*OUTCOMES, Returned(None)], ids=repr)
def test_an_outcome_of_a_handler_that_left_changes_nothing(out: Outcome) -> None:
    """A fast path may bring an outcome back after its handler left (an isolated handler's,
    or one a re-entrant callback deleted): the core answers nothing, raises nothing, and the
    id added again meanwhile is not touched."""
    core = installed()
    old = entry_of(core, A2)
    drive(core, core.delete_handler(A2))
    drive(core, core.add_handler(A2, "again"))
    run = drive(core, core.event_result(old, out, "ev"))
    assert (run.effects, run.reply, run.error) == ([], None, None)
    assert core.which_handlers() == [A2, A1, A3]
    assert entry_of(core, A2).instance.args == "again"
    assert core.crashes == 0


def test_timing_wraps_only_the_callbacks_the_manager_runs_itself() -> None:
    """With timing on (``wrap_event``), the hot path's targets are wrapped for plain handlers
    only: an isolated handler's target is its lane's ``post`` (timed in the lane, not here) and
    a coroutine handler's is awaited by the core's general path."""
    core = installed()
    drive(core, core.add_handler((A1, "iso"), lane=FakeLane()))
    drive(core, core.add_handler(Async))
    wrapped: list[Any] = []

    def wrap(entry: Any, fn: Any) -> Any:
        wrapped.append(entry.ref)
        return fn

    core.wrap_event = wrap
    core.cached_targets = None
    refs = [entry.ref for entry, _ in core.event_targets]
    assert refs == [Async, (A1, "iso"), A1, A2, A3]
    assert wrapped == [A1, A2, A3]
