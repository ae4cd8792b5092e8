"""Settle, isolated entries, misused instructions and the departures record, in the core."""

from __future__ import annotations

from typing import Any

import pytest

from genevent import HandlerBadReturn, HandlerCrashed, HandlerInitFailed
from genevent._core import (
    BadReturn,
    Crashed,
    ManagerCore,
    Raised,
    Remove,
    Returned,
    Swap,
    restart_spec,
)
from tests.core.driver import Async, FakeClock, FakeLane, G, H, drive, entry_of, swap_to

BOOM = ValueError("boom")


def with_isolated() -> tuple[ManagerCore, FakeLane]:
    """``[(G, "iso") isolated, H plain]``."""
    core = ManagerCore("m")
    lane = FakeLane()
    assert drive(core, core.add_handler(H)).error is None
    run = drive(core, core.add_handler((G, "iso"), lane=lane))
    assert [getattr(e, "via", None) for e in run.raw] == [lane, lane]  # created in its lane
    assert core.isolated == 1
    return core, lane


# -- Settle ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("out", "settles"),
    [
        (Returned(None), False),
        (Raised(BOOM), True),
        (Returned(42), True),
        (Returned(Remove()), True),
        (Returned(Remove), True),
        (Returned(swap_to((H, 2))), True),
    ],
)
def test_event_result_settles_only_for_a_table_change(out: Any, settles: bool) -> None:
    core, _ = with_isolated()
    run = drive(core, core.event_result(entry_of(core, H), out, "ev"))
    assert (run.effects[:1] == [("settle",)]) == settles
    assert run.kinds().count("settle") == int(settles)


@pytest.mark.parametrize(
    ("out", "settles"),
    [
        (Returned("plain"), False),
        (Returned(None), False),
        (Returned(42), False),
        (Raised(BOOM), True),
        (Returned(Remove("r")), True),
        (Returned(Remove), True),
        (Returned(Swap), True),
        (Returned(Swap(1, (H, 2), reply="s")), True),
    ],
)
def test_call_result_settles_only_for_a_table_change(out: Any, settles: bool) -> None:
    core, _ = with_isolated()
    run = drive(core, core.call_result(entry_of(core, H), out, "q"))
    assert (run.effects[:1] == [("settle",)]) == settles
    assert run.kinds().count("settle") == int(settles)


def test_no_settle_without_isolated_handlers_or_for_the_isolated_entry_itself() -> None:
    core = ManagerCore()
    drive(core, core.add_handler(H))
    run = drive(core, core.event_result(entry_of(core, H), Raised(BOOM), "ev"))
    assert "settle" not in run.kinds()
    core, lane = with_isolated()
    iso = entry_of(core, (G, "iso"))
    run = drive(core, core.event_result(iso, Raised(BOOM), "ev"))
    assert run.effects[0] == ("call", "G.terminate", (Crashed(BOOM),), {})
    assert run.raw[0].via is lane
    assert core.isolated == 0
    assert core.lane_edits is not None
    assert core.lane_edits[-1] is iso
    run = drive(core, core.call_result(entry_of(core, H), Returned(Remove()), "q"))
    assert "settle" not in run.kinds()  # no isolated handler is left


def test_the_entry_gone_during_settle_ends_the_event_quietly() -> None:
    core, _ = with_isolated()
    entry = entry_of(core, H)

    def others_first() -> None:  # what the isolated handlers brought back removed it
        assert drive(core, core.delete_handler(H), check=False).error is None

    run = drive(core, core.event_result(entry, Raised(BOOM), "ev"), on_settle=others_first)
    assert run.effects == [("settle",)]
    assert core.which_handlers() == [(G, "iso")]


@pytest.mark.parametrize(
    ("out", "answer"),
    [(Raised(BOOM), HandlerCrashed), (Returned(Remove("r")), "r"), (Returned(Swap), None)],
)
def test_the_entry_gone_during_settle_still_answers_the_call_once(out: Any, answer: Any) -> None:
    core, _ = with_isolated()
    entry = entry_of(core, H)

    def others_first() -> None:
        drive(core, core.delete_handler(H), check=False)

    run = drive(core, core.call_result(entry, out, "q"), on_settle=others_first)
    assert run.effects == [("settle",)]
    if answer is None:
        assert isinstance(run.error, HandlerBadReturn)
    elif isinstance(answer, type):
        assert isinstance(run.error, answer)
    else:
        assert run.reply == answer


def test_dispatch_to_an_isolated_handler_only_queues() -> None:
    core, lane = with_isolated()
    run = drive(core, core.notify("ev"))
    assert [e[1] for e in run.effects] == ["FakeLane.post", "H.handle_event"]
    assert lane.posted == ["ev"]
    run = drive(core, core.info("i"))
    assert [e[1] for e in run.effects] == ["FakeLane.post_info", "H.handle_info"]
    assert lane.infos == ["i"]
    run = drive(core, core.get_state())
    assert [getattr(e, "via", None) for e in run.raw] == [lane, None]


def test_a_swap_in_place_keeps_the_lane() -> None:
    core, lane = with_isolated()
    iso = entry_of(core, (G, "iso"))
    run = drive(core, core.event_result(iso, Returned(Swap(1, (G, "new"))), "ev"))
    assert [getattr(e, "via", None) for e in run.raw] == [lane, lane, lane]
    assert entry_of(core, (G, "new")).lane is lane
    assert core.which_handlers() == [(G, "new"), H]
    assert core.isolated == 1


def test_an_api_swap_of_an_isolated_handler_keeps_the_lane() -> None:
    core, lane = with_isolated()
    drive(core, core.swap_handler((G, "iso"), 1, (H, 2)))
    assert entry_of(core, (H, 2)).lane is lane
    assert core.isolated == 1


# -- Remove / Swap misused -------------------------------------------------------------------


MISUSED = [Remove, Swap]


@pytest.mark.parametrize("value", MISUSED, ids=["Remove", "Swap"])
@pytest.mark.parametrize("callback", ["handle_event", "handle_info", "handle_call"])
def test_the_classes_themselves_are_a_bad_return_from_every_callback(
    value: Any, callback: str
) -> None:
    core = ManagerCore("m")
    drive(core, core.add_handler(H))
    proc = {
        "handle_event": core.notify("x"),
        "handle_info": core.info("x"),
        "handle_call": core.call(H, "x"),
    }[callback]
    run = drive(core, proc, {f"H.{callback}": Returned(value)})
    assert run.effects[1:] == [
        ("call", "H.terminate", (BadReturn(value),), {}),
        ("report", "crash", H),
    ]
    assert run.raw[2].callback == callback
    assert core.entries == []
    if callback == "handle_call":
        assert isinstance(run.error, HandlerBadReturn)
        assert "did you mean" in str(run.error)
    else:
        assert run.error is None


@pytest.mark.parametrize("value", [Remove, Swap, Remove(), Swap(1, G)])
def test_an_instruction_from_init_refuses_the_handler(value: Any) -> None:
    core = ManagerCore()
    run = drive(core, core.add_handler(H), {"H.init": Returned(value)})
    assert isinstance(run.error, HandlerInitFailed)
    assert run.error.returned is value
    assert run.terminated() == []


@pytest.mark.parametrize(
    "swap",
    [swap_to(2), swap_to("H"), swap_to((H,)), swap_to((H, 1, 2)), swap_to((H, {})), swap_to(int)],
)
def test_a_malformed_swap_is_a_bad_return_and_nothing_starts(swap: Any) -> None:
    core = ManagerCore()
    drive(core, core.add_handler(H))
    run = drive(core, core.call(H, "q"), {"H.handle_call": Returned(swap)})
    assert [e for e in run.effects if e[0] == "new"] == []
    assert isinstance(run.error, HandlerBadReturn)
    assert run.error.value is swap
    assert core.entries == []


def test_a_swap_into_an_installed_id_is_a_bad_return_and_the_other_stays() -> None:
    core = ManagerCore()
    drive(core, core.add_handler(H))
    drive(core, core.add_handler(G))
    run = drive(core, core.call(H, "q"), {"H.handle_call": Returned(Swap(1, G))})
    assert isinstance(run.error, HandlerBadReturn)
    assert "not installed" in str(run.error)
    assert core.which_handlers() == [G]
    assert run.calls("G.terminate") == []


def test_a_coroutine_handler_swapped_in_on_a_sync_core_is_a_bad_return() -> None:
    core = ManagerCore(allow_async=False)
    drive(core, core.add_handler(H))
    run = drive(core, core.notify("e"), {"H.handle_event": Returned(Swap(1, Async))})
    assert run.reports() == ["crash"]
    assert core.entries == []


# -- departures ------------------------------------------------------------------------------


def test_every_procedure_records_how_a_handler_left() -> None:
    clock = FakeClock()
    core = ManagerCore("m", clock=clock)
    add = core.add_handler
    for ref in [(H, i) for i in range(9)]:
        drive(core, add(ref, None, "own" if ref[1] == 5 else None))
    drive(core, add(G, None, restart=restart_spec("transient", None, 0, 1.0)))
    drive(core, core.delete_handler((H, 0)))
    drive(core, core.swap_handler((H, 1), None, (G, 1)))
    drive(core, core.call((H, 2), "q"), {"H.handle_call": Returned(Swap(1, (G, 2)))})
    drive(core, core.call((H, 3), "q"), {"H.handle_call": Returned(Remove())})
    drive(core, core.event_result(entry_of(core, (H, 4)), Raised(BOOM), "ev"))
    drive(core, core.owner_down("own", None))
    drive(core, core.event_result(entry_of(core, (H, 6)), Returned(Swap), "ev"))
    drive(core, core.event_result(entry_of(core, G), Raised(BOOM), "ev"))
    assert core.departed is not None
    assert {ref: d.how for ref, d in core.departed.items()} == {
        (H, 0): "deleted",
        (H, 1): "swapped",
        (H, 2): "swapped",
        (H, 3): "removed_itself",
        (H, 4): "crashed",
        (H, 5): "owner_exited",
        (H, 6): "bad_return",
        G: "restart_limit",
    }
    assert core.not_found((H, 5)).left == core.departed[(H, 5)]


def test_the_departures_keep_the_last_sixteen_and_a_second_departure_is_newest() -> None:
    core = ManagerCore()
    assert ManagerCore.DEPARTURES_KEPT == 16
    for i in range(20):
        drive(core, core.add_handler((H, i)))
    for i in range(20):
        drive(core, core.delete_handler((H, i)))
        assert core.departed is not None
        assert len(core.departed) == min(i + 1, 16)
    assert core.departed is not None
    assert list(core.departed) == [(H, i) for i in range(4, 20)]
    drive(core, core.add_handler((H, 4)))  # back: forgotten
    assert (H, 4) not in core.departed
    drive(core, core.delete_handler((H, 4)))  # left again: the newest
    assert list(core.departed)[-1] == (H, 4)
    assert len(core.departed) == 16
    assert core.not_found((H, 3)).left is None
    left = core.not_found((H, 19)).left
    assert left is not None
    assert left.how == "deleted"
