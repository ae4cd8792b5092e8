"""Restart policies (permanent, transient, temporary) and the intensity limit, on every
runtime. A handler's Spec makes it crash on the event ``"boom"``, return a bad value on
``"bad"`` and remove itself on ``"leave"``."""

from __future__ import annotations

import logging
import threading
from typing import Any

import pytest

from genevent import BadReturn, Crashed, Deleted, OwnerExited, Remove, RemovedItself, Stopped
from tests.handlers import WAIT, H, Recorder, Spec
from tests.runtimes import Runtime


def behave(handler: Any, event: Any) -> Any:
    if event == "boom":
        raise ValueError("boom")
    if event == "bad":
        return "not an instruction"
    if event == "leave":
        return Remove()
    return None


def spec(rec: Recorder, name: str = "r") -> Spec:
    return Spec(rec, name, event=behave)


def inits(rec: Recorder, name: str = "r") -> int:
    return len(rec.of(name, "init"))


@pytest.mark.parametrize("policy", ["permanent", "transient"])
def test_crash_and_bad_return_restart(rt: Runtime, rec: Recorder, policy: str) -> None:
    mgr = rt.start()
    mgr.add_handler(H, spec(rec), restart=policy)
    mgr.add_handler((H, "other"), Spec(rec, "other"))
    mgr.notify("boom")
    mgr.notify("after crash")
    mgr.notify("bad")
    mgr.sync_notify("after bad")
    assert inits(rec) == 3  # the first init and two restarts
    terminations = [reason for name, reason in rec.terminations() if name == "r"]
    assert [type(r) for r in terminations] == [Crashed, BadReturn]
    # restarted at the front, with a fresh state that saw only what came after
    assert mgr.which_handlers() == [H, (H, "other")]
    assert mgr.call(H, "state") == ("r", "state", ["after bad"])
    mgr.stop()


def test_permanent_restarts_after_remove_transient_does_not(rt: Runtime, rec: Recorder) -> None:
    mgr = rt.start()
    mgr.add_handler((H, "p"), spec(rec, "p"), restart="permanent")
    mgr.add_handler((H, "t"), spec(rec, "t"), restart="transient")
    mgr.sync_notify("leave")
    assert mgr.which_handlers() == [(H, "p")]
    assert inits(rec, "p") == 2
    assert inits(rec, "t") == 1
    assert [type(r) for _, r in rec.terminations()] == [RemovedItself, RemovedItself]
    mgr.stop()


def test_temporary_is_the_default(rt: Runtime, rec: Recorder) -> None:
    mgr = rt.start()
    mgr.add_handler(H, spec(rec))
    mgr.sync_notify("boom")
    assert mgr.which_handlers() == []
    assert inits(rec) == 1
    mgr.stop()


def test_intensity_limit_ends_it_and_tells_the_owner(rt: Runtime, rec: Recorder) -> None:
    mgr = rt.start()
    mgr.add_sup_handler(
        H, spec(rec), on_exit=rec.notice, restart="permanent", max_restarts=2, restart_period=3600
    )
    for _ in range(3):
        mgr.notify("boom")
    mgr.sync_notify("after")
    assert mgr.which_handlers() == []
    assert inits(rec) == 3  # two restarts, then the limit
    notices = rec.notices()
    assert len(notices) == 1  # restarts are not notices; giving up is
    assert notices[0][0] is H
    assert isinstance(notices[0][1], Crashed)
    mgr.stop()


def test_restart_keeps_the_owner(rt: Runtime, rec: Recorder) -> None:
    owner_gone = threading.Event()

    def terminate(handler: Any, reason: Any) -> None:
        if isinstance(reason, OwnerExited):
            owner_gone.set()

    mgr = rt.start()
    worker = rt.worker()
    mgr.via(worker).add_sup_handler(
        H,
        Spec(rec, "r", event=behave, terminate=terminate),
        on_exit=rec.notice,
        restart="transient",
    )
    mgr.sync_notify("boom")
    assert mgr.which_handlers() == [H]
    worker.end()  # the owner ends: the restarted handler goes with it, not restarted
    assert owner_gone.wait(WAIT)
    assert mgr.which_handlers() == []
    reasons = [type(r) for name, r in rec.terminations() if name == "r"]
    assert reasons == [Crashed, OwnerExited]
    assert inits(rec) == 2
    assert rec.notices() == []  # the owner is gone: nobody to tell
    mgr.stop()


def test_no_restart_after_delete_or_stop(rt: Runtime, rec: Recorder) -> None:
    mgr = rt.start()
    mgr.add_handler((H, 1), spec(rec, "d"), restart="permanent")
    mgr.add_handler((H, 2), spec(rec, "s"), restart="permanent")
    mgr.delete_handler((H, 1))
    assert mgr.which_handlers() == [(H, 2)]
    mgr.stop()
    assert inits(rec, "d") == 1
    assert inits(rec, "s") == 1
    assert [type(r) for _, r in rec.terminations()] == [Deleted, Stopped]


def test_a_restart_whose_init_fails_counts_and_gives_up(rt: Runtime, rec: Recorder) -> None:
    mgr = rt.start()
    calls = []

    def init_once(handler: Any) -> None:
        calls.append(1)
        if len(calls) > 1:
            raise RuntimeError("cannot start again")

    mgr.add_sup_handler(
        H,
        Spec(rec, "r", init=init_once, event=behave),
        on_exit=rec.notice,
        restart="permanent",
        max_restarts=3,
    )
    mgr.sync_notify("boom")
    # the first attempt comes at once; the next ones on the manager's clock (0.1 s, 0.2 s)
    rec.wait(H, "notice")
    assert mgr.which_handlers() == []
    assert len(calls) == 4  # the first init, then three failed restarts
    (notice,) = rec.notices()
    assert type(notice[1]).__name__ == "StartFailed"
    stats = mgr.stats()  # a remote manager's stats are plain data
    restarts = stats["restarts"] if isinstance(stats, dict) else stats.restarts
    assert restarts == 3  # each failed attempt counts
    mgr.stop()


def test_the_manager_serves_others_while_a_restart_waits(rt: Runtime, rec: Recorder) -> None:
    """A restart whose ``init`` failed is retried later, as a message of the mailbox: the
    manager answers other requests meanwhile, and a stop ends the wait (the owner is told
    the reason the handler last left for)."""

    def init(handler: Any) -> None:
        if len(rec.of("r", "init")) > 1:
            raise RuntimeError("cannot start again")

    mgr = rt.start()
    mgr.add_handler(H, Spec(rec, "other"))
    mgr.add_sup_handler(
        (H, "r"),
        Spec(rec, "r", init=init, event=behave),
        on_exit=rec.notice,
        restart="permanent",
        max_restarts=50,
        restart_period=1000.0,  # retries up to 1000 / 51 s apart: still waiting at the stop
    )
    mgr.sync_notify("boom")
    assert mgr.which_handlers() == [H]
    assert mgr.call(H, "x") == ("other", "x", ["boom"])
    mgr.stop()
    ((ref, reason),) = rec.notices()
    assert ref == (H, "r")
    assert type(reason).__name__ == "StartFailed"


def test_call_crash_restarts_before_the_caller_hears(rt: Runtime, rec: Recorder) -> None:
    from genevent import HandlerCrashed  # noqa: PLC0415 - beside its only use

    def call(handler: Any, request: Any) -> Any:
        if request == "crash":
            raise ValueError("in call")
        return "ok"

    mgr = rt.start()
    mgr.add_handler(H, Spec(rec, "r", call=call), restart="transient")
    with pytest.raises(HandlerCrashed):
        mgr.call(H, "crash")
    assert mgr.which_handlers() == [H]  # already back when the caller got the error
    assert mgr.call(H, "again") == "ok"
    mgr.stop()


def test_restarts_are_logged(rt: Runtime, rec: Recorder, reports: Any) -> None:
    mgr = rt.start()
    mgr.add_handler(H, spec(rec), restart="transient", max_restarts=1, restart_period=3600)
    mgr.notify("boom")
    mgr.sync_notify("boom")
    mgr.stop()
    text = [r.getMessage() for r in reports.records]
    assert any("restarted" in t for t in text)
    assert any(
        "restart limit" in t and r.levelno == logging.ERROR
        for t, r in zip(text, reports.records, strict=True)
    )


@pytest.mark.parametrize(
    ("kw", "error"),
    [
        ({"restart": "sometimes"}, ValueError),
        ({"restart": "permanent", "max_restarts": -1}, ValueError),
        ({"restart": "permanent", "max_restarts": 1.5}, TypeError),
        ({"restart": "permanent", "restart_period": 0}, ValueError),
        ({"restart": "permanent", "restart_period": "5"}, TypeError),
        # the default policy is checked as fully as the others
        ({"max_restarts": -1}, ValueError),
        ({"max_restarts": True}, TypeError),
        ({"restart_period": 0.0}, ValueError),
        ({"restart_period": -1.0}, ValueError),
        ({"restart_period": float("nan")}, ValueError),
        ({"restart": "temporary", "restart_period": "5"}, TypeError),
    ],
)
def test_bad_restart_options_refused_before_anything_runs(
    rt: Runtime, rec: Recorder, kw: dict[str, Any], error: type[Exception]
) -> None:
    mgr = rt.start()
    with pytest.raises(error):
        mgr.add_handler(H, spec(rec), **kw)
    assert mgr.which_handlers() == []
    assert inits(rec) == 0
    mgr.stop()
