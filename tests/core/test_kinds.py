"""The request kinds and how the core classifies them: both runtimes count, order and drop
requests by these sets only."""

from __future__ import annotations

import pytest

from genevent._core import (
    CONCERNED,
    COUNTED,
    DROPPABLE,
    LANE_RESULTS,
    ORDERED,
    TABLE_EDITS,
    Kind,
    caught_up_detail,
)

CALLERS = {
    Kind.CALL,
    Kind.SYNC_NOTIFY,
    Kind.WHICH_HANDLERS,
    Kind.GET_STATE,
    Kind.ADD_HANDLER,
    Kind.ADD_SUP_HANDLER,
    Kind.DELETE_HANDLER,
    Kind.SWAP_HANDLER,
    Kind.SWAP_SUP_HANDLER,
    Kind.SUBSCRIBE,
    Kind.STREAM,
    Kind.STOP,
}


def test_a_kind_reads_as_its_operation() -> None:
    assert isinstance(Kind.CALL, str)
    assert Kind.CALL.value == "call"
    assert f"handling {Kind.SYNC_NOTIFY}" == "handling sync_notify"
    assert Kind("lane order") is Kind.LANE_ORDER


def test_only_what_callers_ask_is_counted() -> None:
    assert COUNTED == CALLERS
    assert not COUNTED & LANE_RESULTS
    for internal in (Kind.INFO, Kind.OWNER_DOWN, Kind.STREAM_CLOSE, Kind.RESTART, Kind.SETTLE):
        assert internal not in COUNTED


def test_what_lanes_bring_back_is_neither_counted_nor_dropped_nor_ordered() -> None:
    assert {Kind.LANE, Kind.LANE_CALL, Kind.LANE_ORDER} == LANE_RESULTS
    assert not LANE_RESULTS & (COUNTED | DROPPABLE | ORDERED | CONCERNED)


def test_only_info_is_dropped_like_an_event() -> None:
    assert {Kind.INFO} == DROPPABLE


def test_requests_that_read_or_change_the_table_concern_isolated_handlers() -> None:
    assert ORDERED <= CONCERNED
    assert {Kind.CALL, Kind.SYNC_NOTIFY, Kind.ADD_HANDLER, Kind.ADD_SUP_HANDLER} <= CONCERNED
    assert Kind.STOP not in CONCERNED  # a stop has a sequence of its own
    assert Kind.WHICH_HANDLERS in ORDERED
    assert Kind.DELETE_HANDLER in ORDERED
    # a call and an add wait only in some cases (see takes_its_place)
    assert Kind.CALL not in ORDERED
    assert Kind.ADD_HANDLER not in ORDERED


@pytest.mark.parametrize(
    ("caught_up", "text"), [(False, "before sync_notify)"), (True, "caught up")]
)
def test_the_detail_of_a_dropped_request(caught_up: bool, text: str) -> None:
    assert text in caught_up_detail(Kind.SYNC_NOTIFY, caught_up)


def test_the_table_edits_are_the_callers_requests_that_add_delete_or_swap() -> None:
    """What a runtime may drive itself while the effects are plain callbacks: every request a
    caller makes but the ones that read (call, sync_notify, the queries) and stop."""
    reads = {Kind.CALL, Kind.SYNC_NOTIFY, Kind.WHICH_HANDLERS, Kind.GET_STATE, Kind.STOP}
    assert CALLERS - reads == TABLE_EDITS
