"""The conformance list of ``docs/semantics.md``, one test (or more) per item, on every runtime.

Each test names its item (``c07`` = item 7; ``addenda_15_16`` = items A15 and A16). Items
that apply only to asyncio (coroutine handlers, cancelling a caller) are in
``tests/test_aio.py``; thread-only behaviour is in ``tests/test_threads.py``.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import threading
from typing import Any

import pytest

import genevent
from genevent import (
    NO_HANDOFF,
    BadReturn,
    CallingSelf,
    CallNotSupported,
    CallTimeout,
    Crashed,
    Deleted,
    HandlerBadReturn,
    HandlerCrashed,
    HandlerExists,
    HandlerInitFailed,
    HandlerNotFound,
    InvalidHandler,
    ManagerNotRunning,
    NameTaken,
    OwnerExited,
    Remove,
    RemovedItself,
    StartFailed,
    Stopped,
    Swap,
    Swapped,
    TerminateFailed,
)
from genevent.examples import BroadcastEventHandler
from tests.handlers import H2, WAIT, H, NoInfo, Recorder, Spec, raise_, returns
from tests.runtimes import Runtime


def spec(rec: Recorder, name: Any = "h", **kw: Any) -> Spec:
    return Spec(rec, name, **kw)


# -- starting -------------------------------------------------------------------------------


def test_c01_started_manager_has_no_handlers(rt: Runtime) -> None:
    m = rt.start()
    assert m.which_handlers() == []
    assert m.is_running


def test_c02_named_manager_found_and_name_unique(rt: Runtime) -> None:
    m = rt.start("c02-name")
    assert genevent.whereis("c02-name") is m.mgr
    assert m.name == "c02-name"
    with pytest.raises(NameTaken) as info:
        rt.start("c02-name")
    assert info.value.holder is m.mgr
    assert genevent.whereis("c02-nobody") is None


@pytest.mark.parametrize("exc", [None, KeyError("boom")], ids=["normal", "exception"])
def test_c03_linked_manager_stops_when_block_exits(
    rt: Runtime, rec: Recorder, exc: BaseException | None
) -> None:
    mgr = rt.linked(H, spec(rec), exc)
    assert not mgr.is_running
    assert rec.terminations() == [("h", Stopped())]


# -- adding -----------------------------------------------------------------------------------


def test_c04_add_handler_inits_with_args_and_installs(rt: Runtime, rec: Recorder) -> None:
    m = rt.start()
    s = spec(rec)
    m.add_handler(H, s)
    assert rec.log == [("h", "init", NO_HANDOFF)]
    assert m.which_handlers() == [H]
    assert m.call(H, "state") == ("h", "state", [])


def test_c05_init_refusing_is_reported_nothing_installed(rt: Runtime, rec: Recorder) -> None:
    m = rt.start()
    refusal = PermissionError("not today")
    with pytest.raises(HandlerInitFailed) as info:
        m.add_handler(H, spec(rec, init=raise_(refusal)))
    assert info.value.cause is refusal
    assert info.value.__cause__ is refusal
    assert info.value.handler is H
    # returning something other than None is a refusal too
    with pytest.raises(HandlerInitFailed) as info2:
        m.add_handler(H, spec(rec, init=returns(("error", "no"))))
    assert info2.value.returned == ("error", "no")
    assert m.which_handlers() == []


def test_c06_c36_init_raising_reported_and_never_terminated(rt: Runtime, rec: Recorder) -> None:
    m = rt.start()
    with pytest.raises(HandlerInitFailed, match="ZeroDivisionError"):
        m.add_handler(H, spec(rec, init=lambda h: 1 / 0))
    assert m.which_handlers() == []
    m.stop()
    assert rec.terminations() == []


def test_c07_adding_installed_id_fails(rt: Runtime, rec: Recorder) -> None:
    m = rt.start()
    m.add_handler(H, spec(rec))
    with pytest.raises(HandlerExists):
        m.add_handler(H, spec(rec, "again"))
    m.add_handler((H, 1), spec(rec, 1))
    with pytest.raises(HandlerExists):
        m.add_handler((H, 1), spec(rec, "again"))
    assert rec.of("again", "init") == []  # refused before init ran
    assert m.which_handlers() == [(H, 1), H]


def test_c08_one_class_many_ids(rt: Runtime, rec: Recorder) -> None:
    m = rt.start()
    for i in range(3):
        m.add_handler((H, i), spec(rec, i))
    m.add_handler(H, spec(rec, "plain"))
    assert m.which_handlers() == [H, (H, 2), (H, 1), (H, 0)]
    assert m.call((H, 1), "q")[0] == 1
    m.delete_handler(H)
    assert m.which_handlers() == [(H, 2), (H, 1), (H, 0)]  # (H, id) untouched


def test_c09_new_handler_first(rt: Runtime, rec: Recorder) -> None:
    m = rt.start()
    m.add_handler(H, spec(rec, "a"))
    m.add_handler(H2, spec(rec, "b"))
    assert m.which_handlers() == [H2, H]


def test_invalid_handler_references_are_refused(rt: Runtime, rec: Recorder) -> None:
    m = rt.start()
    for bad in (object(), "H", (H,), (H, []), (H, 1, 2), int):
        with pytest.raises(InvalidHandler):
            m.add_handler(bad, spec(rec))
    assert m.which_handlers() == []


# -- events -----------------------------------------------------------------------------------


def test_c10_notify_returns_before_handlers_run(rt: Runtime, rec: Recorder) -> None:
    m = rt.start()
    gate = threading.Event()
    m.add_handler(rt.gated_handler(), spec(rec, extra={"gate": gate}))
    m.notify("e1")
    assert rec.of("h", "event") == []  # notify returned; the handler has not handled it
    gate.set()
    m.sync_notify("e2")
    assert rec.of("h", "event") == ["e1", "e2"]


def test_c11_events_from_one_caller_in_order(rt: Runtime, rec: Recorder) -> None:
    m = rt.start()
    m.add_handler(H, spec(rec))
    for i in range(200):
        m.notify(i)
    m.sync_notify("end")
    assert rec.of("h", "event") == [*range(200), "end"]


def test_c12_every_handler_sees_each_event_newest_first(rt: Runtime, rec: Recorder) -> None:
    m = rt.start()
    for name in ("old", "mid", "new"):
        m.add_handler((H, name), spec(rec, name))
    m.notify("x")
    m.sync_notify("y")
    assert [(i[0], i[2]) for i in rec.kinds("event")] == [
        ("new", "x"),
        ("mid", "x"),
        ("old", "x"),
        ("new", "y"),
        ("mid", "y"),
        ("old", "y"),
    ]


def test_c13_sync_notify_returns_after_all_handled(rt: Runtime, rec: Recorder) -> None:
    m = rt.start()
    gate = threading.Event()
    gate.set()
    m.add_handler(rt.gated_handler(), spec(rec, "gated", extra={"gate": gate}))
    m.add_handler(H, spec(rec, "plain"))
    m.sync_notify("e")
    assert rec.of("plain", "event") == ["e"]
    assert rec.of("gated", "event") == ["e"]


# -- calls ------------------------------------------------------------------------------------


def test_c14_call_reaches_exactly_the_named_handler(rt: Runtime, rec: Recorder) -> None:
    m = rt.start()
    m.add_handler((H, "a"), spec(rec, "a"))
    m.add_handler((H, "b"), spec(rec, "b"))
    m.notify("ev")
    assert m.call((H, "a"), "q") == ("a", "q", ["ev"])
    assert rec.of("a", "call") == ["q"]
    assert rec.of("b", "call") == []


def test_c15_call_unknown_handler(rt: Runtime, rec: Recorder) -> None:
    m = rt.start()
    m.add_handler(H, spec(rec))
    with pytest.raises(HandlerNotFound) as info:
        m.call(H2, "q")
    assert isinstance(info.value, LookupError)
    with pytest.raises(HandlerNotFound):
        m.call((H, "nope"), "q")


def test_c16_c17_call_timeout_and_late_reply_dropped(rt: Runtime, rec: Recorder) -> None:
    assert inspect.signature(rt.start().mgr.call).parameters["timeout"].default == 5.0
    if rt.name == "threads-inline":
        pytest.skip(
            "inline=True runs an idle manager's call in the caller's thread, where a running "
            "handler cannot be interrupted: the timeout is checked when it returns (documented)"
        )
    m = rt.start()
    gate = threading.Event()
    gated = rt.gated_handler()
    m.add_handler(gated, spec(rec, extra={"gate": gate}))
    with pytest.raises(CallTimeout) as info:
        m.call(gated, "slow", timeout=0.05)
    assert isinstance(info.value, TimeoutError)
    gate.set()
    # the manager still handled the request; the next call gets its own reply, not the late one
    assert m.call(gated, "next") == ("h", "next", [])
    assert rec.of("h", "call") == ["slow", "next"]


def test_call_not_supported_keeps_handler(rt: Runtime, rec: Recorder) -> None:
    m = rt.start()
    m.add_handler(NoInfo, spec(rec))
    with pytest.raises(CallNotSupported):
        m.call(NoInfo, "q")
    assert m.which_handlers() == [NoInfo]


def test_c18_call_raising(rt: Runtime, rec: Recorder, reports: Any) -> None:
    m = rt.start()
    boom = RuntimeError("boom")
    m.add_handler(H, spec(rec, call=raise_(boom)))
    with pytest.raises(HandlerCrashed) as info:
        m.call(H, "q")
    assert info.value.cause is boom
    assert info.value.__cause__ is boom
    assert m.which_handlers() == []
    assert rec.terminations() == [("h", Crashed(boom))]


def test_c19_call_bad_return(rt: Runtime, rec: Recorder) -> None:
    m = rt.start()
    bad: Swap[str] = Swap("a1", "not a handler", "a2", reply="r")  # type: ignore[arg-type]
    m.add_handler(H, spec(rec, call=returns(bad)))
    with pytest.raises(HandlerBadReturn) as info:
        m.call(H, "q")
    assert info.value.value is bad
    assert m.which_handlers() == []
    assert rec.terminations() == [("h", BadReturn(bad))]


def test_c20_call_reply_then_remove(rt: Runtime, rec: Recorder) -> None:
    m = rt.start()
    m.add_handler(H, spec(rec, call=returns(Remove("last words"))))
    assert m.call(H, "q") == "last words"
    assert m.which_handlers() == []
    assert rec.terminations() == [("h", RemovedItself())]


def test_c21_call_reply_then_swap_in_place(rt: Runtime, rec: Recorder) -> None:
    m = rt.start()
    new_spec = spec(rec, "new")
    m.add_handler((H, "first"), spec(rec, "first"))
    m.add_handler(H, spec(rec, call=returns(Swap("bye", H2, new_spec, reply="swapped!"))))
    m.add_handler((H, "last"), spec(rec, "last"))
    assert m.call(H, "q") == "swapped!"
    assert m.which_handlers() == [(H, "last"), H2, (H, "first")]
    assert rec.of("new", "init") == [("terminated", "h")]
    assert rec.terminations() == [("h", Swapped("bye", H2, None))]


# -- event outcomes ---------------------------------------------------------------------------


def test_c22_event_raising_removes_only_that_handler(rt: Runtime, rec: Recorder) -> None:
    m = rt.start()
    m.add_handler((H, "after"), spec(rec, "after"))
    m.add_handler((H, "bad"), spec(rec, "bad", event=raise_(ValueError("x"))))
    m.add_handler((H, "before"), spec(rec, "before"))
    m.sync_notify("e")
    assert rec.of("after", "event") == ["e"]
    assert m.which_handlers() == [(H, "before"), (H, "after")]
    m.sync_notify("f")
    assert rec.of("after", "event") == ["e", "f"]


def test_c22_a_crashed_handler_sees_no_event_queued_with_its_crash(
    rt: Runtime, rec: Recorder
) -> None:
    # the events reach the manager together: the handler that crashed on the first must not
    # be called for the ones behind it in the same batch
    m = rt.start()
    m.add_handler((H, "after"), spec(rec, "after"))
    m.add_handler((H, "bad"), spec(rec, "bad", event=lambda h, e: 1 / 0 if e == 1 else None))
    m.add_handler((H, "before"), spec(rec, "before"))
    m.notify_all([1, 2, 3])
    m.sync_notify(4)
    assert rec.of("bad", "event") == [1]
    assert rec.of("before", "event") == [1, 2, 3, 4]
    assert rec.of("after", "event") == [1, 2, 3, 4]
    assert m.which_handlers() == [(H, "before"), (H, "after")]


@pytest.mark.parametrize("leaves", ["crash", "remove"])
def test_c22_a_lone_handler_that_left_sees_no_event_queued_behind(
    rt: Runtime, rec: Recorder, leaves: str
) -> None:
    # the only handler leaves on the first event of a batch (a crash, or Remove): the events
    # behind it in the same batch reach nobody, and one added afterwards sees the later ones
    m = rt.start()

    def event(h: Any, e: Any) -> Any:
        if e != 1:
            return None
        return 1 / 0 if leaves == "crash" else Remove()

    m.add_handler((H, "lone"), spec(rec, "lone", event=event))
    m.notify_all([1, 2, 3])
    m.sync_notify(4)
    assert rec.of("lone", "event") == [1]
    assert m.which_handlers() == []
    m.add_handler((H, "next"), spec(rec, "next"))
    m.notify_all([5, 6])
    m.sync_notify(7)
    assert rec.of("next", "event") == [5, 6, 7]


def test_c22_every_handler_after_the_first_outcome_sees_the_event(
    rt: Runtime, rec: Recorder
) -> None:
    # the first handler that does more than return None ends no round: each handler after it
    # still gets the event, whether or not it returns something too
    m = rt.start()
    m.add_handler((H, "last"), spec(rec, "last"))
    m.add_handler((H, "third"), spec(rec, "third", event=lambda h, e: Remove() if e == 1 else None))
    m.add_handler((H, "second"), spec(rec, "second"))
    m.add_handler((H, "first"), spec(rec, "first", event=raise_(ValueError("x"))))
    m.sync_notify(1)
    m.notify_all([2, 3])
    m.sync_notify(4)
    assert rec.of("first", "event") == [1]
    assert rec.of("second", "event") == [1, 2, 3, 4]
    assert rec.of("third", "event") == [1]
    assert rec.of("last", "event") == [1, 2, 3, 4]
    assert m.which_handlers() == [(H, "second"), (H, "last")]


def test_c23_event_bad_return_removes_only_that_handler(rt: Runtime, rec: Recorder) -> None:
    m = rt.start()
    m.add_handler((H, "after"), spec(rec, "after"))
    m.add_handler((H, "bad"), spec(rec, "bad", event=returns(("ok", "state"))))
    m.sync_notify("e")
    assert rec.of("after", "event") == ["e"]
    assert m.which_handlers() == [(H, "after")]
    assert rec.terminations() == [("bad", BadReturn(("ok", "state")))]


def test_c24_event_remove_own_handler(rt: Runtime, rec: Recorder) -> None:
    m = rt.start()
    m.add_handler(H, spec(rec, event=lambda h, e: Remove() if e == "go" else None))
    m.sync_notify("stay")
    m.sync_notify("go")
    assert m.which_handlers() == []
    assert rec.terminations() == [("h", RemovedItself())]


def test_c25_event_swap_takes_old_position(rt: Runtime, rec: Recorder) -> None:
    m = rt.start()
    m.add_handler((H, "first"), spec(rec, "first"))
    m.add_handler(H, spec(rec, event=returns(Swap("a1", H2, spec(rec, "new")))))
    m.add_handler((H, "last"), spec(rec, "last"))
    m.sync_notify("e")
    assert m.which_handlers() == [(H, "last"), H2, (H, "first")]
    assert rec.of("new", "event") == []  # the new one does not see the swapping event
    assert rec.of("first", "event") == ["e"]  # dispatch went on after the swap
    assert rec.of("new", "init") == [("terminated", "h")]
    m.sync_notify("f")
    assert rec.of("new", "event") == ["f"]


def test_swap_by_return_to_installed_id_is_bad_return(rt: Runtime, rec: Recorder) -> None:
    m = rt.start()
    m.add_handler(H2, spec(rec, "other"))
    swap: Swap[Any] = Swap("a1", H2, spec(rec, "new"))
    m.add_handler(H, spec(rec, event=returns(swap)))
    m.sync_notify("e")
    assert m.which_handlers() == [H2]
    assert rec.terminations() == [("h", BadReturn(swap))]


# -- infos ------------------------------------------------------------------------------------


def test_c26_info_reaches_every_handler(rt: Runtime, rec: Recorder) -> None:
    m = rt.start()
    m.add_handler((H, 1), spec(rec, 1))
    m.add_handler((H, 2), spec(rec, 2))
    m.send({"tick": 1})
    m.sync_notify("barrier")
    assert [(i[0], i[2]) for i in rec.kinds("info")] == [(2, {"tick": 1}), (1, {"tick": 1})]


def test_c27_info_raising_removes_handler(rt: Runtime, rec: Recorder) -> None:
    m = rt.start()
    boom = OSError("info")
    m.add_handler((H, 1), spec(rec, 1))
    m.add_handler((H, 2), spec(rec, 2, info=raise_(boom)))
    m.send("i")
    m.sync_notify("barrier")
    assert m.which_handlers() == [(H, 1)]
    assert rec.of(1, "info") == ["i"]
    assert rec.terminations() == [(2, Crashed(boom))]


def test_info_can_remove_and_swap(rt: Runtime, rec: Recorder) -> None:
    m = rt.start()
    m.add_handler((H, 1), spec(rec, 1, info=returns(Remove())))
    m.add_handler((H, 2), spec(rec, 2, info=returns(Swap(None, H2, spec(rec, 3)))))
    m.send("i")
    assert m.which_handlers() == [H2]


def test_c28_missing_handle_info_warns_and_keeps(rt: Runtime, rec: Recorder, reports: Any) -> None:
    m = rt.start()
    m.add_handler(NoInfo, spec(rec))
    m.send("lost")
    m.sync_notify("e")
    assert m.which_handlers() == [NoInfo]
    assert rec.of("h", "event") == ["e"]
    warnings = [r for r in reports.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "Undefined handle_info" in warnings[0].getMessage()
    assert "lost" in warnings[0].getMessage()


# -- delete and swap through the API ------------------------------------------------------------


def test_c29_delete_returns_terminate_result(rt: Runtime, rec: Recorder) -> None:
    m = rt.start()
    m.add_handler(H, spec(rec, terminate=lambda h, r: ("result", r)))
    assert m.delete_handler(H, "del-args") == ("result", Deleted("del-args"))
    assert m.which_handlers() == []


def test_c30_delete_unknown(rt: Runtime, rec: Recorder) -> None:
    m = rt.start()
    with pytest.raises(HandlerNotFound):
        m.delete_handler(H, None)


def test_c31_c32_swap_hands_off_and_goes_first(rt: Runtime, rec: Recorder) -> None:
    m = rt.start()
    m.add_handler(H, spec(rec, "old", terminate=lambda h, r: ("old-state", h.state)))
    m.add_handler((H, "other"), spec(rec, "other"))
    m.notify("seen")
    m.swap_handler(H, "a1", H2, spec(rec, "new"))
    assert rec.of("old", "terminate") == [Swapped("a1", H2, None)]
    assert rec.of("new", "init") == [("old-state", ["seen"])]
    assert m.which_handlers() == [H2, (H, "other")]


def test_c33_swap_of_missing_handler_installs_new(rt: Runtime, rec: Recorder) -> None:
    m = rt.start()
    m.swap_handler(H, "a1", H2, spec(rec, "new"))
    assert rec.of("new", "init") == [NO_HANDOFF]
    assert m.which_handlers() == [H2]


def test_c34_swap_whose_init_fails(rt: Runtime, rec: Recorder) -> None:
    m = rt.start()
    m.add_handler(H, spec(rec, "old"))
    with pytest.raises(HandlerInitFailed):
        m.swap_handler(H, "a1", H2, spec(rec, "new", init=raise_(KeyError("k"))))
    assert rec.of("old", "terminate") == [Swapped("a1", H2, None)]
    assert m.which_handlers() == []


def test_swap_to_installed_id_refused_and_loses_nothing(rt: Runtime, rec: Recorder) -> None:
    m = rt.start()
    m.add_handler(H, spec(rec, "old"))
    m.add_handler(H2, spec(rec, "other"))
    with pytest.raises(HandlerExists):
        m.swap_handler(H, "a1", H2, spec(rec, "new"))
    assert m.which_handlers() == [H2, H]
    assert rec.terminations() == []


# -- terminate --------------------------------------------------------------------------------


def test_c35_terminate_reasons_distinguishable(rt: Runtime, rec: Recorder) -> None:
    m = rt.start()
    boom = ValueError("boom")
    m.add_handler((H, "del"), spec(rec, "del"))
    m.add_handler((H, "rem"), spec(rec, "rem", event=lambda h, e: Remove() if e == 1 else None))
    m.add_handler((H, "swp"), spec(rec, "swp"))
    m.add_handler((H, "crash"), spec(rec, "crash", event=lambda h, e: 1 / 0 if e == 2 else None))
    m.add_handler((H, "bad"), spec(rec, "bad", event=lambda h, e: "bad" if e == 3 else None))
    m.add_handler((H, "boom"), spec(rec, "boom", info=raise_(boom)))
    m.add_handler((H, "stop"), spec(rec, "stop"))
    m.delete_handler((H, "del"), "d")
    m.sync_notify(1)
    m.swap_handler((H, "swp"), "s", (H2, "x"), spec(rec, "x"))
    m.sync_notify(2)
    m.sync_notify(3)
    m.send("i")
    m.delete_handler((H2, "x"))
    m.stop()
    reasons = dict(rec.terminations())
    assert reasons["del"] == Deleted("d")
    assert reasons["rem"] == RemovedItself()
    assert reasons["swp"] == Swapped("s", (H2, "x"), None)
    assert isinstance(reasons["crash"], Crashed)
    assert isinstance(reasons["crash"].exception, ZeroDivisionError)
    assert reasons["bad"] == BadReturn("bad")
    assert reasons["boom"] == Crashed(boom)
    assert reasons["stop"] == Stopped()
    assert len({type(r) for r in reasons.values()}) == 6  # Crashed twice


def test_c37_terminate_raising_does_not_crash_manager(
    rt: Runtime, rec: Recorder, reports: Any
) -> None:
    m = rt.start()
    boom = RuntimeError("in terminate")
    m.add_handler(H, spec(rec, terminate=raise_(boom)))
    m.add_handler(H2, spec(rec, "h2", terminate=raise_(boom)))
    with pytest.raises(TerminateFailed) as info:
        m.delete_handler(H)
    assert info.value.cause is boom
    m.swap_handler(H2, None, (H, 2), spec(rec, "new"))
    assert rec.of("new", "init") == [boom]  # the hand-off is the exception terminate raised
    assert m.which_handlers() == [(H, 2)]
    assert m.call((H, 2), "alive?")[0] == "new"
    assert any("terminate raised" in r.getMessage() for r in reports.records)


# -- reports ----------------------------------------------------------------------------------


def test_c38_crash_report(rt: Runtime, rec: Recorder, reports: Any) -> None:
    m = rt.start("c38-mgr")
    m.add_handler((H, 7), spec(rec, event=raise_(ValueError("kaput"))))
    m.sync_notify(("the", "event"))
    errors = [r for r in reports.records if r.levelno == logging.ERROR]
    assert len(errors) == 1
    text = errors[0].getMessage()
    for part in ("(H, 7)", "c38-mgr", "('the', 'event')", "state", "kaput"):
        assert part in text, (part, text)
    report = errors[0].genevent
    assert report["handler"] == (H, 7)
    assert report["message"] == ("the", "event")
    assert "spec" in report["state"]
    assert errors[0].exc_info is not None


def test_c39_normal_removals_are_not_logged(rt: Runtime, rec: Recorder, reports: Any) -> None:
    m = rt.start()
    m.add_handler((H, 1), spec(rec, 1))
    m.add_handler((H, 2), spec(rec, 2, event=returns(Remove())))
    m.add_handler((H, 3), spec(rec, 3, event=returns(Swap(None, H2, spec(rec, 4)))))
    m.sync_notify("e")
    m.delete_handler((H, 1))
    m.swap_handler(H2, None, (H2, 5), spec(rec, 5))
    m.stop()
    assert [r for r in reports.records if r.levelno >= logging.WARNING] == []


class Secretive(H):
    def format_status(self) -> str:
        return "<redacted>"


class BrokenStatus(H):
    def format_status(self) -> str:
        raise RuntimeError("no status")


def test_c40_format_status_redacts(rt: Runtime, rec: Recorder, reports: Any) -> None:
    m = rt.start()
    m.add_handler(
        Secretive, spec(rec, "s", extra={"password": "hunter2"}, event=raise_(KeyError()))
    )
    m.add_handler(
        BrokenStatus, spec(rec, "b", extra={"password": "hunter2"}, event=raise_(KeyError()))
    )
    m.sync_notify("e")
    errors = [r.getMessage() for r in reports.records if r.levelno == logging.ERROR]
    assert len(errors) == 2
    assert all("hunter2" not in e for e in errors)
    assert any("<redacted>" in e for e in errors)
    assert any("format_status raised" in e for e in errors)


# -- supervised handlers ----------------------------------------------------------------------


def test_c41_owner_told_on_delete(rt: Runtime, rec: Recorder) -> None:
    m = rt.start()
    m.add_sup_handler(H, spec(rec), on_exit=rec.notice)
    m.delete_handler(H, "args")
    assert rec.notices() == [(H, Deleted("args"))]


def test_c42_owner_told_on_self_removal(rt: Runtime, rec: Recorder) -> None:
    m = rt.start()
    m.add_sup_handler(H, spec(rec, event=returns(Remove())), on_exit=rec.notice)
    m.sync_notify("e")
    assert rec.notices() == [(H, RemovedItself())]


def test_c43_owner_told_on_crash(rt: Runtime, rec: Recorder) -> None:
    m = rt.start()
    boom = ValueError("x")
    m.add_sup_handler(H, spec(rec, event=raise_(boom)), on_exit=rec.notice)
    m.sync_notify("e")
    assert rec.notices() == [(H, Crashed(boom))]


def test_c44_owner_told_on_bad_return(rt: Runtime, rec: Recorder) -> None:
    m = rt.start()
    m.add_sup_handler(H, spec(rec, event=returns(42)), on_exit=rec.notice)
    m.sync_notify("e")
    assert rec.notices() == [(H, BadReturn(42))]


def test_c45_c49_owner_told_on_swap(rt: Runtime, rec: Recorder) -> None:
    m = rt.start()
    other = rt.worker()
    m.add_sup_handler(H, spec(rec), on_exit=rec.notice)
    # swap_handler keeps the owner
    m.swap_handler(H, "a1", H2, spec(rec, "h2"))
    assert rec.notices() == [(H, Swapped("a1", H2, rt.main.owner))]
    # swap_sup_handler makes the caller the owner
    seen: list[Any] = []
    m.via(other).swap_sup_handler(H2, "a2", (H, 3), spec(rec, 3), on_exit=seen.append)
    assert rec.notices()[-1] == (H2, Swapped("a2", (H, 3), other.owner))
    m.delete_handler((H, 3))
    assert [n.reason for n in seen] == [Deleted(None)]
    other.end()


def test_c46_owner_told_on_stop(rt: Runtime, rec: Recorder) -> None:
    m = rt.start()
    m.add_sup_handler(H, spec(rec), on_exit=rec.notice)
    m.stop()
    assert rec.notices() == [(H, Stopped())]


def test_c47_notice_after_terminate(rt: Runtime, rec: Recorder) -> None:
    m = rt.start()
    m.add_sup_handler(H, spec(rec), on_exit=rec.notice)
    m.delete_handler(H)
    kinds = [item[1] for item in rec.log]
    assert kinds == ["init", "terminate", "notice"]


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
@pytest.mark.parametrize("how", ["normal", "exception"])
def test_c48_owner_end_terminates_its_handlers(rt: Runtime, rec: Recorder, how: str) -> None:
    m = rt.start()
    owner = rt.worker()
    m.add_handler((H, "free"), spec(rec, "free"))
    m.via(owner).add_sup_handler((H, 1), spec(rec, 1), on_exit=rec.notice)
    m.via(owner).add_sup_handler((H, 2), spec(rec, 2), on_exit=rec.notice)
    m.add_sup_handler((H, "mine"), spec(rec, "mine"), on_exit=rec.notice)
    exc = LookupError("owner died") if how == "exception" else None
    owner.end(exc)
    rec.wait(1, "terminate")
    m.sync_notify("barrier")
    assert m.which_handlers() == [(H, "mine"), (H, "free")]
    reasons = dict(rec.terminations())
    assert reasons == {2: OwnerExited(exc), 1: OwnerExited(exc)}
    assert [t[0] for t in rec.terminations()] == [2, 1]  # newest first
    assert rec.notices() == []  # the owner is gone: nobody to tell


def test_c50_swap_by_return_keeps_owner(rt: Runtime, rec: Recorder) -> None:
    m = rt.start()
    m.add_sup_handler(H, spec(rec, event=returns(Swap("a", H2, spec(rec, 2)))), on_exit=rec.notice)
    m.sync_notify("e")
    m.delete_handler(H2)
    assert rec.notices() == [(H, Swapped("a", H2, rt.main.owner)), (H2, Deleted(None))]


def test_swap_by_return_whose_target_fails(rt: Runtime, rec: Recorder, reports: Any) -> None:
    """docs/semantics.md A16: swapped, then a distinct notice for the new id."""
    m = rt.start()
    boom = KeyError("no")
    target = spec(rec, 2, init=raise_(boom))
    m.add_sup_handler(
        H, spec(rec, call=returns(Swap("a", H2, target, reply="r"))), on_exit=rec.notice
    )
    assert m.call(H, "q") == "r"
    assert m.which_handlers() == []
    assert rec.notices() == [(H, Swapped("a", H2, rt.main.owner)), (H2, StartFailed(boom))]
    assert len([r for r in reports.records if r.levelno == logging.ERROR]) == 1


# -- stop -------------------------------------------------------------------------------------


def test_c51_stop_terminates_newest_first(rt: Runtime, rec: Recorder) -> None:
    m = rt.start()
    for i in range(4):
        m.add_handler((H, i), spec(rec, i))
    m.stop()
    assert rec.terminations() == [(i, Stopped()) for i in (3, 2, 1, 0)]
    assert not m.is_running


def test_c52_after_stop_calls_fail(rt: Runtime, rec: Recorder) -> None:
    m = rt.start()
    m.add_handler(H, spec(rec))
    m.stop()
    for op in (
        lambda: m.call(H, "q"),
        lambda: m.sync_notify("e"),
        lambda: m.notify("e"),
        lambda: m.send("i"),
        lambda: m.add_handler(H2, spec(rec)),
        lambda: m.delete_handler(H),
        lambda: m.swap_handler(H, None, H2, None),
        m.which_handlers,
        m.stop,
    ):
        with pytest.raises(ManagerNotRunning):
            op()


def test_c53_name_free_after_stop(rt: Runtime) -> None:
    m = rt.start("c53")
    m.stop()
    assert genevent.whereis("c53") is None
    m2 = rt.start("c53")
    assert genevent.whereis("c53") is m2.mgr


def test_c61_queued_requests_answered_on_stop(rt: Runtime, rec: Recorder) -> None:
    m = rt.start()
    m.add_handler(H, spec(rec))
    exc = rt.stop_then_call(m, H, "q")
    assert isinstance(exc, ManagerNotRunning)
    assert rec.of("h", "call") == []


# -- concurrency ------------------------------------------------------------------------------


def test_c54_callbacks_never_concurrent(rt: Runtime, rec: Recorder) -> None:
    m = rt.start()
    inside = [0]
    overlaps: list[int] = []

    def enter(h: Any, v: Any) -> Any:
        inside[0] += 1
        if inside[0] != 1:
            overlaps.append(inside[0])
        inside[0] -= 1
        return None

    m.add_handler(H, spec(rec, event=enter, call=lambda h, r: enter(h, r) or r))
    workers = [rt.worker() for _ in range(3)]

    def hammer(worker: Any) -> None:
        for i in range(50):
            m.via(worker).call(H, i)
            m.via(worker).notify(i)

    threads = [threading.Thread(target=hammer, args=(w,)) for w in workers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(WAIT)
    m.sync_notify("end")
    assert overlaps == []
    assert len(rec.of("h", "call")) == 150
    for w in workers:
        w.end()


def test_c55_self_call_fails_clearly(rt: Runtime, rec: Recorder) -> None:
    m = rt.start()
    cls = rt.self_call_handler()
    m.add_handler(cls, spec(rec, extra={"mgr": m.mgr}))
    m.sync_notify("e")
    assert isinstance(rec.of("h", "self_call")[0], CallingSelf)
    assert m.which_handlers() == []  # removed as a crash


def test_c56_crash_during_sync_notify_returns_normally(rt: Runtime, rec: Recorder) -> None:
    m = rt.start()
    m.add_handler(H, spec(rec, event=raise_(RuntimeError())))
    m.sync_notify("e")  # no exception
    assert m.which_handlers() == []


def test_c57_many_managers_independent(rt: Runtime, rec: Recorder) -> None:
    managers = [rt.start() for _ in range(5)]
    for i, m in enumerate(managers):
        m.add_handler(H, spec(rec, i, event=raise_(ValueError()) if i == 2 else None))
    for m in managers:
        m.sync_notify("e")
    assert [m.which_handlers() for m in managers] == [[H], [H], [], [H], [H]]
    assert all(m.is_running for m in managers)


def test_notify_to_own_manager_from_handler_works(rt: Runtime, rec: Recorder) -> None:
    m = rt.start()
    mgr = m.mgr
    done = threading.Event()

    def chain(h: Any, e: Any) -> None:
        if e < 3:
            mgr.notify(e + 1)
        else:
            done.set()

    m.add_handler(H, spec(rec, event=chain))
    m.notify(0)
    assert done.wait(WAIT)
    assert rec.of("h", "event") == [0, 1, 2, 3]


def test_handler_added_after_notify_does_not_see_it(rt: Runtime, rec: Recorder) -> None:
    m = rt.start()
    m.add_handler(H, spec(rec, "old"))
    m.notify("e1")
    m.add_handler(H2, spec(rec, "new"))
    m.sync_notify("e2")
    assert rec.of("new", "event") == ["e2"]
    assert rec.of("old", "event") == ["e1", "e2"]


# -- the seed ---------------------------------------------------------------------------------


def test_c59_seed_session(rt: Runtime) -> None:
    m = rt.start()
    m.add_handler(BroadcastEventHandler)
    m.notify(("broadcast", "I dare you!"))
    m.notify(("broadcast", "Meetup at 10 o'clock"))
    assert m.call(BroadcastEventHandler, "broadcasts") == ["Meetup at 10 o'clock", "I dare you!"]
    assert m.call(BroadcastEventHandler, "broadcasts") == []
    m.notify(("broadcast", "Assemble in class"))
    assert m.call(BroadcastEventHandler, "broadcasts") == ["Assemble in class"]


def test_delete_handler_without_terminate_returns_none(rt: Runtime, rec: Recorder) -> None:
    """docs/semantics.md P14: a missing terminate is a no-op whose result is None."""
    m = rt.start()
    m.add_handler(NoInfo, spec(rec))
    assert m.delete_handler(NoInfo, "args") is None
    assert m.which_handlers() == []


def test_cancelled_error_from_a_plain_callback_is_a_crash(rt: Runtime, rec: Recorder) -> None:
    """asyncio.CancelledError is a BaseException, but a plain callback raising it crashed: it
    is removed like any other, on every path, and the manager goes on (docs/semantics.md P4)."""
    m = rt.start()
    m.add_handler((H, "after"), spec(rec, "after"))
    m.add_handler((H, "ev"), spec(rec, "ev", event=raise_(asyncio.CancelledError())))
    m.add_handler((H, "call"), spec(rec, "call", call=raise_(asyncio.CancelledError())))
    m.notify("via notify")
    m.sync_notify("barrier")
    with pytest.raises(HandlerCrashed):
        m.call((H, "call"), "q")
    assert m.which_handlers() == [(H, "after")]
    assert rec.of("after", "event") == ["via notify", "barrier"]
    assert {name for name, reason in rec.terminations() if isinstance(reason, Crashed)} == {
        "ev",
        "call",
    }
    assert m.is_running


def test_handlers_sharing_one_handle_event_object(rt: Runtime, rec: Recorder) -> None:
    """Two handlers whose handle_event is the same object (a staticmethod): the one that
    raised is the one removed (review finding)."""
    seen: list[Any] = []

    def handle(event: Any) -> None:
        seen.append(event)
        if len(seen) == 2:  # the second visited, i.e. the older handler, fails
            raise RuntimeError("boom")

    class Shared(H):
        handle_event = staticmethod(handle)

    m = rt.start()
    m.add_handler((Shared, "old"), spec(rec, "old"))
    m.add_handler((Shared, "new"), spec(rec, "new"))
    m.sync_notify("e")
    assert m.which_handlers() == [(Shared, "new")]
    assert [name for name, _ in rec.terminations()] == ["old"]


def test_get_state_snapshots_and_redacts(rt: Runtime, rec: Recorder) -> None:
    """docs/semantics.md P15: sys:get_state, with format_status redaction."""
    m = rt.start()
    m.add_handler(H, spec(rec))
    m.add_handler(Secretive, spec(rec, "s"))
    m.add_handler(BrokenStatus, spec(rec, "b"))
    m.sync_notify("e")
    states = m.get_state()
    assert [ref for ref, _ in states] == [BrokenStatus, Secretive, H]
    assert "format_status raised RuntimeError" in states[0][1]
    assert states[1][1] == "<redacted>"
    plain = states[2][1]
    assert plain["state"] == ["e"]
    assert plain["handoff"] is NO_HANDOFF


def test_addenda_15_16_swap_owners_when_old_missing_or_new_fails(
    rt: Runtime, rec: Recorder
) -> None:
    """docs/semantics.md A15: swapping in for a missing handler installs the new one
    unsupervised (swap_handler) or owned by the caller (swap_sup_handler). A16: through the API, a
    swap whose new init fails raises, and the old owner still hears ``Swapped``."""
    m = rt.start()
    m.swap_handler(H, None, (H, "unsupervised"), spec(rec, 1))
    m.swap_sup_handler(H, None, (H, "owned"), spec(rec, 2), on_exit=rec.notice)
    m.delete_handler((H, "unsupervised"))
    m.delete_handler((H, "owned"))
    assert rec.notices() == [((H, "owned"), Deleted(None))]

    m.add_sup_handler(H2, spec(rec, "old"), on_exit=rec.notice)
    with pytest.raises(HandlerInitFailed):
        m.swap_handler(H2, "a1", (H2, 2), spec(rec, "new", init=raise_(ValueError())))
    assert rec.notices()[-1] == (H2, Swapped("a1", (H2, 2), rt.main.owner))
    assert m.which_handlers() == []


class AsyncStatus(H):
    async def format_status(self) -> str:
        return "never awaited"


def test_get_state_refuses_a_coroutine_format_status(rt: Runtime, rec: Recorder) -> None:
    m = rt.start()
    m.add_handler(AsyncStatus, spec(rec))
    assert m.get_state() == [(AsyncStatus, "<format_status must be a plain method; state hidden>")]
