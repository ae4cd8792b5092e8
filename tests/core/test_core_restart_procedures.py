"""Restart policies in the core, driven with a fake clock: the exact effects of each rule."""

from __future__ import annotations

from typing import Any

import pytest

from genevent import HandlerExists
from genevent._core import (
    BadReturn,
    Crashed,
    HandlerExit,
    ManagerCore,
    Raised,
    Remove,
    RemovedItself,
    Restart,
    Returned,
    StartFailed,
    Swap,
    restart_spec,
)
from tests.core.driver import FakeClock, FakeLane, G, H, drive, entry_of

A, B = "owner-a", "owner-b"
BOOM = ValueError("boom")
NOPE = RuntimeError("init refused")


def setup(
    policy: str = "transient",
    max_restarts: int = 3,
    period: float = 5.0,
    lane: Any = None,
) -> tuple[ManagerCore, FakeClock, Restart, list[HandlerExit]]:
    """A manager with G (no policy) then H (``policy``, owned by A) installed: ``[H, G]``."""
    clock = FakeClock(100.0)
    core = ManagerCore("m", clock=clock)
    notices: list[HandlerExit] = []
    drive(core, core.add_handler(G))
    spec = restart_spec(policy, "args", max_restarts, period)
    assert spec is not None
    run = drive(core, core.add_handler(H, "args", A, notices.append, spec, lane))
    assert run.error is None
    return core, clock, spec, notices


def crash(core: ManagerCore, out: Any = None, **answers: Any) -> Any:
    """``H`` produced ``out`` (default: raised BOOM) from handle_event."""
    entry = entry_of(core, H)
    return drive(core, core.event_result(entry, out or Raised(BOOM), "ev"), answers)


def move_to_back(core: ManagerCore) -> None:
    """Put H last (so that a restart visibly moves it to the front)."""
    drive(core, core.swap_handler(G, None, G))
    assert core.which_handlers() == [G, H]


def test_a_crash_restarts_at_once_at_the_front_without_telling_the_owner() -> None:
    core, _, spec, notices = setup()
    move_to_back(core)
    old = entry_of(core, H).instance
    run = crash(core)
    assert run.effects == [
        ("call", "H.terminate", (Crashed(BOOM),), {}),
        ("report", "crash", H),
        ("new", "H"),
        ("call", "H.init", ("args",), {}),  # its original args, no handoff
        ("report", "restarted", H),
    ]
    assert run.raw[-1].message == 1
    assert run.terminated() == [old]
    assert core.which_handlers() == [H, G]
    assert entry_of(core, H).instance is not old
    assert entry_of(core, H).owner == A
    assert entry_of(core, H).restart is spec
    assert (spec.restarts, spec.failures, core.restarts) == (1, 0, 1)
    assert core.owners() == [A]
    assert notices == []


@pytest.mark.parametrize(
    ("policy", "out", "restarted"),
    [
        ("transient", Raised(BOOM), True),
        ("transient", Returned(42), True),
        ("transient", Returned(Remove), True),  # a bad return
        ("transient", Returned(Remove()), False),
        ("permanent", Returned(Remove()), True),
        ("permanent", Returned(Swap(1, (G, 2))), False),
        ("permanent", Returned(None), False),
    ],
)
def test_which_departures_restart(policy: str, out: Any, restarted: bool) -> None:
    core, _, _, notices = setup(policy)
    run = crash(core, out)
    assert ("restarted" in run.reports()) == restarted
    stays = restarted or (isinstance(out, Returned) and out.value is None)  # None: no change
    assert (core.find(H) is not None) == stays
    assert (notices == []) == stays


@pytest.mark.parametrize("how", ["delete", "swap", "sup_swap", "owner_down", "stop"])
def test_never_restarted_after_delete_swap_owner_end_or_stop(how: str) -> None:
    core, _, spec, _ = setup("permanent")
    proc = {
        "delete": core.delete_handler(H),
        "swap": core.swap_handler(H, 1, (H, 2)),
        "sup_swap": core.swap_handler(H, 1, (H, 2), sup=True, owner=B, on_exit=print),
        "owner_down": core.owner_down(A, None),
        "stop": core.stop(),
    }[how]
    run = drive(core, proc)
    assert [k for k in run.kinds() if k == "report"] == []
    assert core.find(H) is None
    assert spec.restarts == 0
    assert core.retrying == {}


def test_a_failed_restart_counts_and_is_retried_with_growing_capped_delays() -> None:
    core, clock, spec, notices = setup(max_restarts=10, period=5.0)
    run = crash(core, **{"H.init": Raised(NOPE)})
    assert run.effects == [
        ("call", "H.terminate", (Crashed(BOOM),), {}),
        ("report", "crash", H),
        ("new", "H"),
        ("call", "H.init", ("args",), {}),
        ("report", "restart_failed", H),
        ("retry", H, 0.1),
    ]
    assert run.raw[4].reason == StartFailed(NOPE)
    assert (spec.restarts, spec.failures, core.restarts) == (1, 1, 1)
    assert core.find(H) is None
    assert list(core.retrying) == [H]
    assert core.owners() == [A]  # still watched while it waits
    assert notices == []
    cap = 5.0 / 11
    delays = [0.1]
    while True:
        clock.advance(delays[-1])
        run = drive(core, core.retry_restart(H), {"H.init": Raised(NOPE)})
        if run.effects[0][0] != "new":
            break
        assert run.effects[:2] == [("new", "H"), ("call", "H.init", ("args",), {})]
        assert run.effects[2] == ("report", "restart_failed", H)
        assert run.effects[3][:2] == ("retry", H)
        assert len(run.effects) == 4
        delays.append(run.effects[3][2])
    assert delays == pytest.approx([0.1, 0.2, 0.4] + [cap] * 7)
    assert spec.restarts == 10  # every attempt counted
    assert run.effects == [
        ("report", "restart_limit", H),
        ("tell", HandlerExit(H, StartFailed(NOPE), "m")),
        ("unwatch", A),
    ]
    assert notices == [HandlerExit(H, StartFailed(NOPE), "m")]  # told once
    assert core.retrying == {}
    assert core.owners() == []
    assert core.which_handlers() == [G]
    left = core.not_found(H).left
    assert left is not None
    assert left.how == "restart_limit"
    assert drive(core, core.retry_restart(H)).effects == []  # a stale Retry does nothing


def test_a_retry_that_succeeds_reinstalls_and_resets_the_failures() -> None:
    core, clock, spec, notices = setup()
    crash(core, **{"H.init": Raised(NOPE)})
    clock.advance(0.1)
    run = drive(core, core.retry_restart(H), {"H.init": Returned("bad")})
    assert run.effects[-1] == ("retry", H, 0.2)
    clock.advance(0.2)
    run = drive(core, core.retry_restart(H))
    assert run.effects == [
        ("new", "H"),
        ("call", "H.init", ("args",), {}),
        ("report", "restarted", H),
    ]
    assert run.raw[-1].reason == StartFailed(BadReturn("bad"))
    assert core.which_handlers() == [H, G]
    assert (spec.restarts, spec.failures) == (3, 0)
    assert core.retrying == {}
    assert core.owners() == [A]
    assert notices == []


def test_the_intensity_limit_ends_it_and_tells_the_owner_the_last_reason() -> None:
    core, clock, spec, notices = setup(max_restarts=1, period=5.0)
    crash(core)
    assert core.find(H) is not None
    clock.advance(4.9)
    run = crash(core, Returned(7))
    assert run.effects == [
        ("call", "H.terminate", (BadReturn(7),), {}),
        ("report", "crash", H),
        ("report", "restart_limit", H),
        ("tell", HandlerExit(H, BadReturn(7), "m")),
        ("unwatch", A),
    ]
    assert run.raw[2].message is spec
    assert notices == [HandlerExit(H, BadReturn(7), "m")]
    assert core.which_handlers() == [G]


def test_the_intensity_window_slides_with_the_clock() -> None:
    core, clock, spec, _ = setup(max_restarts=1, period=5.0)
    for _ in range(4):
        assert "restarted" in crash(core).reports()
        clock.advance(5.0)
    assert spec.restarts == 4


def test_zero_restarts_allowed_reports_the_limit_at_once() -> None:
    core, _, spec, notices = setup(max_restarts=0)
    assert crash(core).reports() == ["crash", "restart_limit"]
    assert notices == [HandlerExit(H, Crashed(BOOM), "m")]
    assert spec.restarts == 0


def test_begin_stop_keeping_the_backlog_restarts_but_does_not_retry() -> None:
    core, _, _, notices = setup()
    core.begin_stop(drop=False)
    assert "restarted" in crash(core).reports()
    run = crash(core, **{"H.init": Raised(NOPE)})
    assert run.effects == [
        ("call", "H.terminate", (Crashed(BOOM),), {}),
        ("report", "crash", H),
        ("new", "H"),
        ("call", "H.init", ("args",), {}),
        ("report", "restart_failed", H),
        ("tell", HandlerExit(H, StartFailed(NOPE), "m")),
        ("unwatch", A),
    ]
    assert core.retrying == {}
    assert notices == [HandlerExit(H, StartFailed(NOPE), "m")]
    left = core.not_found(H).left
    assert left is not None
    assert left.how == "restart_failed"  # not the limit: it was stopping


def test_begin_stop_dropping_the_backlog_restarts_nothing() -> None:
    core, _, spec, _ = setup()
    core.begin_stop(drop=True)
    run = crash(core)
    assert run.effects == [
        ("call", "H.terminate", (Crashed(BOOM),), {}),
        ("report", "crash", H),
        ("tell", HandlerExit(H, Crashed(BOOM), "m")),
        ("unwatch", A),
    ]
    assert spec.restarts == 0
    left = core.not_found(H).left
    assert left is not None
    assert left.how == "crashed"


def test_a_pending_retry_after_begin_stop() -> None:
    core, clock, _, notices = setup()
    crash(core, **{"H.init": Raised(NOPE)})
    core.begin_stop(drop=False)
    clock.advance(0.1)
    run = drive(core, core.retry_restart(H), {"H.init": Raised(NOPE)})
    assert run.kinds() == ["new", "call", "report", "tell", "unwatch"]  # no other Retry
    assert notices == [HandlerExit(H, StartFailed(NOPE), "m")]
    core, clock, _, notices = setup()
    crash(core, **{"H.init": Raised(NOPE)})
    core.begin_stop(drop=True)
    run = drive(core, core.retry_restart(H))
    assert run.effects == [("tell", HandlerExit(H, StartFailed(NOPE), "m")), ("unwatch", A)]


def test_stop_gives_up_pending_retries_telling_their_owners() -> None:
    core, _, _, notices = setup()
    g_notices: list[HandlerExit] = []
    drive(core, core.add_handler((G, 2), None, B, g_notices.append))
    crash(core, **{"H.init": Raised(NOPE)})
    run = drive(core, core.stop())
    assert run.effects[:2] == [("tell", HandlerExit(H, StartFailed(NOPE), "m")), ("unwatch", A)]
    assert run.kinds()[2:] == ["call", "tell", "unwatch", "call"]  # (G, 2) then G
    assert notices == [HandlerExit(H, StartFailed(NOPE), "m")]
    assert core.retrying == {}
    assert core.owners() == []
    assert drive(core, core.retry_restart(H)).effects == []


def test_owner_down_cancels_a_pending_retry() -> None:
    core, _, _, notices = setup()
    crash(core, **{"H.init": Raised(NOPE)})
    run = drive(core, core.owner_down(A, None))
    assert run.effects == [("unwatch", A)]
    assert core.retrying == {}
    assert notices == []
    assert drive(core, core.retry_restart(H)).effects == []


def test_a_restarted_isolated_handler_keeps_its_lane() -> None:
    lane = FakeLane()
    core, _, _, _ = setup(lane=lane)
    run = crash(core)
    assert all(eff.via is lane for eff in run.raw if hasattr(eff, "via"))
    assert entry_of(core, H).lane is lane
    assert core.isolated == 1


def test_owner_down_lets_go_of_the_lane_kept_for_a_retry() -> None:
    lane = FakeLane()
    core, _, _, _ = setup(lane=lane)
    crash(core, **{"H.init": Raised(NOPE)})
    core.lane_edits = None  # the runtime looked: the lane stays, vacant, for the retry
    drive(core, core.owner_down(A, None))
    edits: list[Any] = core.lane_edits or []
    assert [edit.lane for edit in edits] == [lane]


def test_stop_lets_go_of_the_lane_kept_for_a_retry() -> None:
    lane = FakeLane()
    core, _, _, _ = setup(lane=lane)
    crash(core, **{"H.init": Raised(NOPE)})
    core.lane_edits = None
    drive(core, core.stop())
    edits: list[Any] = core.lane_edits or []
    assert [edit.lane for edit in edits] == [lane]


def test_the_same_id_added_while_a_restart_waits() -> None:
    """The user re-adds the id meanwhile: the retry gives up and tells the old owner."""
    core, clock, _, notices = setup()
    crash(core, **{"H.init": Raised(NOPE)})
    drive(core, core.add_handler(H, "mine", B, print))
    assert core.owners() == [A, B]
    run = drive(core, core.add_handler(H))
    assert isinstance(run.error, HandlerExists)
    clock.advance(0.1)
    run = drive(core, core.retry_restart(H))
    assert run.effects == [("tell", HandlerExit(H, StartFailed(NOPE), "m")), ("unwatch", A)]
    assert entry_of(core, H).instance.args == "mine"
    assert core.owners() == [B]
    assert notices == [HandlerExit(H, StartFailed(NOPE), "m")]


def test_a_retry_given_up_for_a_readded_id_counts_no_restart() -> None:
    core, clock, spec, _ = setup()
    crash(core, **{"H.init": Raised(NOPE)})
    drive(core, core.add_handler(H, "mine", B, print))
    before = len(spec.intensity.times)
    clock.advance(0.1)
    drive(core, core.retry_restart(H))
    assert len(spec.intensity.times) == before
    assert H not in (core.departed or {})


def test_removed_itself_is_restarted_by_permanent_only() -> None:
    core, _, _, notices = setup("permanent")
    run = crash(core, Returned(Remove()))
    assert run.effects == [
        ("call", "H.terminate", (RemovedItself(),), {}),
        ("new", "H"),
        ("call", "H.init", ("args",), {}),
        ("report", "restarted", H),
    ]
    assert notices == []


def test_restart_at_call_answers_the_caller_once() -> None:
    core, _, _, notices = setup()
    run = drive(core, core.call(H, "q"), {"H.handle_call": Raised(BOOM)})
    assert run.kinds() == ["call", "call", "report", "new", "call", "report"]
    assert type(run.error).__name__ == "HandlerCrashed"
    assert core.which_handlers() == [H, G]
    assert notices == []


def test_a_second_waiting_restart_of_an_id_keeps_the_first_owner() -> None:
    core, _, _, notices = setup()
    crash(core, **{"H.init": Raised(NOPE)})  # H (owner A) waits for its retry
    spec = restart_spec("transient", "args")
    drive(core, core.add_handler(H, "mine", B, print, spec))  # the user adds H again
    crash(core, **{"H.init": Raised(NOPE)})  # and that one waits too
    drive(core, core.stop())
    assert core.owners() == []
    assert notices == [HandlerExit(H, StartFailed(NOPE), "m")]
