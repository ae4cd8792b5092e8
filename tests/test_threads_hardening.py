"""Threads: stop refuses at once, future forms answer through their future, a forked child
sees its copies of running managers stopped, an interrupt in an inline request stops the
manager after finishing the request."""

from __future__ import annotations

import os
import threading
import warnings
from typing import Any

import pytest

import genevent
from genevent import Crashed, ManagerNotRunning, Stopped, threads
from tests.handlers import WAIT, H, Recorder, Spec, raise_


def test_notify_and_send_are_refused_once_stop_is_requested(rec: Recorder) -> None:
    gate = threading.Event()
    mgr = threads.start()
    mgr.add_handler(H, Spec(rec, event=lambda h, e: gate.wait(WAIT) and None))
    mgr.notify("before")  # the manager is now blocked in handle_event
    rec.wait("h", "event")
    stopping = mgr.stop_future()
    assert not mgr.is_running
    with pytest.raises(ManagerNotRunning):
        mgr.notify("after")
    with pytest.raises(ManagerNotRunning):
        mgr.send("after")
    gate.set()
    stopping.result(WAIT)
    assert rec.of("h", "event") == ["before"]
    assert rec.terminations() == [("h", Stopped())]


def test_future_forms_on_a_stopped_manager_answer_through_the_future(rec: Recorder) -> None:
    mgr = threads.start()
    mgr.add_handler(H, Spec(rec))
    mgr.stop()
    futures = [mgr.call_future(H, "r"), mgr.sync_notify_future("e"), mgr.stop_future()]
    for fut in futures:
        assert isinstance(fut.exception(WAIT), ManagerNotRunning)


@pytest.mark.parametrize("what", ["call", "sync_notify"])
def test_interrupt_in_an_inline_request_finishes_it_then_stops_the_manager(
    rec: Recorder, what: str
) -> None:
    mgr = threads.start(inline=True)
    mgr.add_sup_handler((H, 1), Spec(rec, 1), on_exit=rec.notice)
    boom = raise_(KeyboardInterrupt())
    mgr.add_handler((H, 2), Spec(rec, 2, event=boom, call=boom))
    mgr.add_handler((H, 3), Spec(rec, 3))
    request = (lambda: mgr.call((H, 2), "r")) if what == "call" else (lambda: mgr.sync_notify("e"))
    with pytest.raises(KeyboardInterrupt):
        request()
    mgr.wait_stopped(WAIT)
    assert not mgr.is_running
    assert rec.of(2, "terminate")[0].__class__ is Crashed
    if what == "sync_notify":
        assert rec.of(1, "event") == ["e"]  # the handler after it still got the event
    assert rec.of(1, "terminate") == [Stopped()]
    assert rec.of(3, "terminate") == [Stopped()]
    assert rec.notices() == [((H, 1), Stopped())]


def _in_child(mgr: Any, rec: Recorder) -> int:
    if mgr.is_running:
        return 10
    for attempt in (lambda: mgr.notify(1), lambda: mgr.call(H, "r"), mgr.stop):
        try:
            attempt()
        except ManagerNotRunning:
            pass
        else:
            return 11
    if not isinstance(mgr.call_future(H, "r").exception(WAIT), ManagerNotRunning):
        return 12
    mgr.wait_stopped(WAIT)
    if genevent.whereis("forked") is not None:
        return 13
    with threads.start("forked") as fresh:  # the name is free in the child
        fresh.add_handler((H, "child"), Spec(Recorder(), "child"))
    if rec.terminations():
        return 14
    return 0


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_forked_child_sees_running_managers_stopped(rec: Recorder) -> None:
    mgr = threads.start("forked")
    mgr.add_handler(H, Spec(rec))
    mgr.sync_notify("e")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # fork with threads running
        pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        code = 1
        try:
            code = _in_child(mgr, rec)
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert mgr.is_running  # the parent's manager is untouched
    assert mgr.call(H, "r") == ("h", "r", ["e"])
    mgr.stop()
    assert rec.terminations() == [("h", Stopped())]
