"""Stopping loses nothing, and any exception from a callback is that handler's crash, on every
runtime (asyncio; threads, default and inline)."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from typing import Any

import pytest

from genevent import (
    Crashed,
    EventHandler,
    ExitReason,
    HandlerCrashed,
    HandlerExit,
    HandlerInitFailed,
    ManagerNotRunning,
    Stopped,
    TerminateFailed,
)
from tests.handlers import WAIT, H, Recorder, Spec, raise_
from tests.runtimes import Runtime


class Boom(BaseException):
    """A user's own BaseException subclass."""


def _raiser(exc: BaseException) -> Any:
    def init(handler: Any) -> None:
        raise exc

    return init


def _exceptions() -> list[BaseException]:
    return [Boom("b"), GeneratorExit(), asyncio.CancelledError()]


# -- nothing accepted is lost at stop -------------------------------------------------------


class _Box:
    def __init__(self) -> None:
        self.events: list[Any] = []
        self.infos: list[Any] = []
        self.at_terminate: tuple[int, int] | None = None
        self.started = threading.Event()


class Counter(EventHandler[Any, Any, Any]):
    def init(self, box: _Box, /) -> None:
        self.box = box

    def handle_event(self, event: Any, /) -> None:
        self.box.events.append(event)
        if not self.box.started.is_set():
            self.box.started.set()

    def handle_info(self, message: Any, /) -> None:
        self.box.infos.append(message)

    def terminate(self, reason: ExitReason, /) -> None:
        self.box.at_terminate = (len(self.box.events), len(self.box.infos))


PRODUCERS = 4
LIMIT = 20_000  # per producer: each stops at its first refusal, usually long before this
TRIALS = 30


def test_stop_racing_producers_loses_nothing_accepted(rt: Runtime) -> None:
    """Producers in several threads notify (and send) until they are refused while stop is
    requested: every message is either refused with ManagerNotRunning or handled, and handled
    before terminate (handled + refused = sent, exactly)."""
    for _ in range(TRIALS):
        m = rt.start()
        box = _Box()
        m.add_handler(Counter, box)
        mgr = m.mgr
        counts: list[list[int]] = [[0, 0] for _ in range(PRODUCERS)]

        def produce(i: int, mgr: Any = mgr, counts: list[list[int]] = counts) -> None:
            post = mgr.notify if i % 2 == 0 else mgr.send
            tally = counts[i]
            for k in range(LIMIT):
                try:
                    post((i, k))
                except ManagerNotRunning:
                    tally[1] += 1
                    return
                tally[0] += 1
                if k % 64 == 0:
                    time.sleep(0)  # let the manager catch up (and the stop be requested)

        producers = [threading.Thread(target=produce, args=(i,)) for i in range(PRODUCERS)]
        for p in producers:
            p.start()
        assert box.started.wait(WAIT)
        m.stop()
        for p in producers:
            p.join(WAIT)
        assert not any(p.is_alive() for p in producers)
        accepted_events = sum(c[0] for i, c in enumerate(counts) if i % 2 == 0)
        accepted_infos = sum(c[0] for i, c in enumerate(counts) if i % 2 == 1)
        assert (len(box.events), len(box.infos)) == (accepted_events, accepted_infos)
        assert box.at_terminate == (accepted_events, accepted_infos)
        assert not m.is_running


# -- any exception from a callback is a crash -----------------------------------------------


@pytest.mark.parametrize("exc", _exceptions(), ids=lambda e: type(e).__name__)
def test_base_exceptions_from_callbacks_are_crashes(
    rt: Runtime, rec: Recorder, exc: BaseException
) -> None:
    m = rt.start()
    m.add_handler((H, "other"), Spec(rec, "other"))
    # init
    with pytest.raises(HandlerInitFailed) as init_failed:
        m.add_handler((H, "init"), Spec(rec, "init", init=_raiser(exc)))
    assert init_failed.value.cause is exc
    # handle_event, on the notify path and the sync_notify path
    m.add_handler((H, "ev"), Spec(rec, "ev", event=raise_(exc)))
    m.notify("e1")
    m.add_handler((H, "ev2"), Spec(rec, "ev2", event=raise_(exc)))
    m.sync_notify("e2")
    # handle_call
    m.add_handler((H, "call"), Spec(rec, "call", call=raise_(exc)))
    with pytest.raises(HandlerCrashed) as crashed:
        m.call((H, "call"), "r")
    assert crashed.value.cause is exc
    # handle_info
    m.add_handler((H, "info"), Spec(rec, "info", info=raise_(exc)))
    m.send("i")
    # terminate
    m.add_handler((H, "term"), Spec(rec, "term", terminate=raise_(exc)))
    with pytest.raises(TerminateFailed):
        m.delete_handler((H, "term"))
    assert m.which_handlers() == [(H, "other")]
    assert m.is_running
    for name in ("ev", "ev2", "call", "info"):
        assert rec.of(name, "terminate") == [Crashed(exc)], name
    assert rec.of("other", "event") == ["e1", "e2"]
    assert rec.of("other", "info") == ["i"]
    assert m.call((H, "other"), "still") == ("other", "still", ["e1", "e2"])


@pytest.mark.parametrize("exc", _exceptions(), ids=lambda e: type(e).__name__)
def test_failing_format_status_still_gives_a_report(
    rt: Runtime, rec: Recorder, reports: pytest.LogCaptureFixture, exc: BaseException
) -> None:
    class Opaque(H):
        def format_status(self) -> Any:
            raise exc

    m = rt.start()
    m.add_handler(Opaque, Spec(rec, event=raise_(KeyError("k"))))
    m.sync_notify("e")
    assert m.which_handlers() == []
    assert m.is_running
    crash = [r for r in reports.records if "crashed" in r.getMessage()]
    assert len(crash) == 1
    assert "state could not be formatted" in crash[0].getMessage()


@pytest.mark.parametrize("exc", _exceptions(), ids=lambda e: type(e).__name__)
def test_failing_on_exit_is_logged_and_the_manager_goes_on(
    rt: Runtime, rec: Recorder, reports: pytest.LogCaptureFixture, exc: BaseException
) -> None:
    def on_exit(notice: HandlerExit) -> None:
        rec.notice(notice)
        raise exc

    m = rt.start()
    m.add_sup_handler((H, 1), Spec(rec, 1), on_exit=on_exit)
    m.add_sup_handler((H, 2), Spec(rec, 2), on_exit=on_exit)
    m.delete_handler((H, 2))
    assert m.is_running
    assert m.which_handlers() == [(H, 1)]
    m.stop()
    assert rec.notices() == [((H, 2), rec.of(2, "terminate")[0]), ((H, 1), Stopped())]
    assert sum("owner callback" in r.getMessage() for r in reports.records) == 2
    assert all(r.levelno == logging.ERROR for r in reports.records if "owner" in r.getMessage())
