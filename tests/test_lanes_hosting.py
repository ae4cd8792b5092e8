"""The manager's side of lanes and the stop's decisions, shared by both runtimes
(genevent._lanes._hosting, genevent._lanes._stopping): driven here by hand, with a real core,
real lanes (not started) and a clock the test moves. The runtimes drive the same steps with
their own ways to park (the isolation and stop tests run them end to end)."""

from __future__ import annotations

import logging
from collections import deque
from contextlib import closing
from typing import Any

import pytest

from genevent import ManagerNotRunning
from genevent._core import Kind, ManagerCore
from genevent._lanes import (
    AtStop,
    Lane,
    Order,
    ThreadLane,
    at_stop,
    holding,
    in_order,
    leftovers,
    refusal,
    settling,
    split_backlog,
    still_busy,
    unanswered,
)


class Plain:
    def handle_event(self, event: Any) -> None:
        return None


def _stop_proc() -> None:  # stands for a runtime's stop procedure
    return None


class Req:
    """A runtime's request, as the shared steps see one."""

    def __init__(self, what: Kind, proc: object = None, caught_up: bool = False) -> None:
        self.what = what
        self.proc = proc
        self.caught_up = caught_up
        self.via: Any = None


class Seat:
    """A manager server as the shared hosting sees one (see genevent._lanes.Hosting)."""

    def __init__(self) -> None:
        self.core = ManagerCore("mgr")
        self.mailbox: deque[Any] = deque()
        self.lanes: dict[Lane, None] = {}
        self.left_behind = 0
        self.stop_started: float | None = None
        self._lane_order = Order()
        self.rechecks = 0

    def label(self) -> Any:
        return "mgr"

    def lane_recheck(self) -> None:
        self.rechecks += 1

    def lane_fail(self, req: Any, exc: BaseException) -> None:
        raise AssertionError("no call is queued in these tests")


def _lane(seat: Seat, stop_timeout: float = 5.0) -> ThreadLane:
    lane = ThreadLane(seat, Plain, stop_timeout=stop_timeout)
    seat.lanes[lane] = None
    return lane


@pytest.mark.parametrize(
    ("msg", "dropping", "todo"),
    [
        ("an event", False, AtStop.DISPATCH),
        ("an event", True, AtStop.DROP),
        (Req(Kind.INFO), False, AtStop.HANDLE),
        (Req(Kind.INFO), True, AtStop.DROP),
        (Req(Kind.STOP, _stop_proc), False, AtStop.STOP),
        (Req(Kind.STOP, _stop_proc), True, AtStop.STOP),
        (Req(Kind.CALL), False, AtStop.HANDLE),
        (Req(Kind.CALL), True, AtStop.REFUSE),
        (Req(Kind.LANE), True, AtStop.HANDLE),
        (Req(Kind.LANE_CALL), True, AtStop.HANDLE),
        (Req(Kind.LANE_ORDER), True, AtStop.HANDLE),
    ],
)
def test_what_a_stopping_manager_does_with_each_message(
    msg: Any, dropping: bool, todo: AtStop
) -> None:
    assert at_stop(msg, Req, _stop_proc, dropping) is todo


def test_a_dropped_backlog_keeps_stops_and_what_lanes_brought_back_in_order() -> None:
    stop, lane, call, order, add = (
        Req(Kind.STOP, _stop_proc),
        Req(Kind.LANE),
        Req(Kind.CALL),
        Req(Kind.LANE_ORDER),
        Req(Kind.ADD_HANDLER),
    )
    kept, refused = split_backlog([call, stop, lane, add, order], _stop_proc)
    assert kept == [stop, lane, order]
    assert refused == [call, add]


def test_a_refused_request_says_whether_it_waited_for_isolated_handlers() -> None:
    plain = refusal("mgr", Req(Kind.SYNC_NOTIFY))
    waited = refusal("mgr", Req(Kind.SYNC_NOTIFY, caught_up=True))
    assert isinstance(plain, ManagerNotRunning)
    assert isinstance(waited, ManagerNotRunning)
    assert str(plain) != str(waited)


def test_what_a_shut_down_manager_still_held_is_counted_logged_and_answered(
    caplog: pytest.LogCaptureFixture,
) -> None:
    call, info = Req(Kind.CALL), Req(Kind.INFO)
    with caplog.at_level(logging.ERROR, logger="genevent"):
        assert leftovers("mgr", ["e1", call, "e2", info], Req, drained=False) == (2, [call, info])
        assert "dropped 2 queued events" in caplog.text
        caplog.clear()
        assert leftovers("mgr", [call], Req, drained=False) == (0, [call])
        assert leftovers("mgr", ["e1"], Req, drained=True) == (0, [])
        assert not caplog.text
    assert "before answering call" in str(unanswered("mgr", call))


def test_settling_ends_at_once_without_busy_lanes_or_with_mail() -> None:
    seat = Seat()
    _lane(seat)  # idle
    steps = settling(seat, lambda: 7.0, seat.lane_recheck)
    with pytest.raises(StopIteration) as done:
        next(steps)
    assert done.value.value is False
    assert seat.stop_started == 7.0
    seat.mailbox.append("an outcome")
    with pytest.raises(StopIteration) as done:
        next(settling(seat, lambda: 8.0, seat.lane_recheck))
    assert done.value.value is True
    assert seat.stop_started == 7.0  # counted from the first time


def test_settling_parks_until_the_stop_timeout_then_leaves_the_lane_behind(
    caplog: pytest.LogCaptureFixture,
) -> None:
    seat = Seat()
    lane = _lane(seat, stop_timeout=2.0)
    lane.busy = True
    clock = [10.0]
    steps = settling(seat, lambda: clock[0], seat.lane_recheck)
    busy, timeout = next(steps)
    assert busy == [lane]
    assert timeout == 2.0
    assert still_busy(seat, busy)
    clock[0] = 11.5  # woken early (say, by another lane): parks for the rest
    assert next(steps) == ([lane], 0.5)
    clock[0] = 12.0
    with caplog.at_level(logging.ERROR, logger="genevent"), pytest.raises(StopIteration) as done:
        next(steps)
    assert done.value.value is False
    assert lane.abandoned
    assert seat.left_behind == 1
    assert seat.rechecks == 1
    assert "left behind" in caplog.text


def test_settling_gives_up_at_the_given_time() -> None:
    seat = Seat()
    _lane(seat).busy = True
    steps = settling(seat, lambda: 3.0, seat.lane_recheck, lambda: 3.0)
    with pytest.raises(StopIteration) as done:
        next(steps)
    assert done.value.value is False
    assert seat.left_behind == 0


def test_holding_applies_lane_results_and_puts_the_rest_back_in_order() -> None:
    seat = Seat()
    order = seat._lane_order
    lane = _lane(seat)
    lane.seqs.append(next(order.seq))  # the lane has an event to handle
    req = Req(Kind.WHICH_HANDLERS)
    assert not order.take_place(seat.lanes, req)  # it waits for the lane
    behind = Req(Kind.CALL)
    recheck = Req(Kind.LANE_ORDER)
    seat.mailbox.extend(["an event", behind])
    applied: list[Any] = []
    with closing(holding(seat, order, req, Req, _stop_proc)) as steps:
        for msg in steps:
            if msg is None:  # the runtime parks: meanwhile the lane passes the event
                lane.seqs.popleft()
                seat.mailbox.extend([recheck, "a later event"])
                continue
            applied.extend(in_order(order, seat.lanes, msg))
    assert applied == [req]
    assert list(seat.mailbox) == ["an event", behind, "a later event"]


def test_a_stop_ends_the_hold() -> None:
    seat = Seat()
    order = seat._lane_order
    lane = _lane(seat)
    lane.seqs.append(next(order.seq))
    req = Req(Kind.WHICH_HANDLERS)
    assert not order.take_place(seat.lanes, req)
    stop = Req(Kind.STOP, _stop_proc)
    seat.mailbox.extend(["an event", stop, "after the stop"])
    with closing(holding(seat, order, req, Req, _stop_proc)) as steps:
        assert list(steps) == []
    assert list(seat.mailbox) == ["an event", stop, "after the stop"]
    assert order.holds(req)  # it runs in its turn while the manager stops


def test_an_outcome_waits_for_the_lanes_behind_its_place() -> None:
    seat = Seat()
    order = seat._lane_order
    first, second = _lane(seat), _lane(seat)
    second.seqs.append(next(order.seq))  # second is behind place 0
    outcome = Req(Kind.LANE)
    outcome.via = (first, next(order.seq))  # first's outcome from place 1
    assert list(in_order(order, seat.lanes, outcome)) == []
    second.seqs.popleft()
    assert list(in_order(order, seat.lanes, Req(Kind.LANE_ORDER))) == [outcome]
