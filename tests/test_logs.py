"""The logging bridge and its ready handlers, on both runtimes."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from genevent import Args, EventHandler, aio, threads
from genevent.logs import Alarm, ErrorRateAlarm, LogEvent, ManagerLogHandler, RotatingFileLog


@pytest.fixture
def logger() -> Iterator[logging.Logger]:
    log = logging.getLogger("tests.bridge")
    log.setLevel(logging.DEBUG)
    log.propagate = False
    yield log
    for h in list(log.handlers):
        log.removeHandler(h)


class Keep(EventHandler[Any, str, list[LogEvent]]):
    """Keeps every log event; a call returns them."""

    def init(self, args: object = None) -> None:
        self.events: list[LogEvent] = []

    def handle_event(self, event: LogEvent, /) -> None:
        self.events.append(event)

    def handle_call(self, request: str, /) -> list[LogEvent]:
        return self.events


def test_records_become_structured_events(logger: logging.Logger) -> None:
    with threads.start() as mgr:
        mgr.add_handler(Keep)
        logger.addHandler(ManagerLogHandler(mgr))
        logger.info("hello %s", "world", extra={"order": 7})
        try:
            raise ValueError("bad")
        except ValueError:
            logger.exception("failed")
        events = mgr.call(Keep, "get")
    first, second = events
    assert first.message == "hello world"
    assert first.level == logging.INFO
    assert first.logger == "tests.bridge"
    assert first.extra == {"order": 7}
    assert second.levelname == "ERROR"
    assert second.exc_text is not None
    assert "ValueError: bad" in second.exc_text


async def test_bridge_into_an_asyncio_manager(logger: logging.Logger) -> None:
    async with aio.start() as mgr:
        await mgr.add_handler(Keep)
        logger.addHandler(ManagerLogHandler(mgr))
        logger.warning("careful")
        events = await mgr.call(Keep, "get")
    assert [e.message for e in events] == ["careful"]


class CrashOnce(EventHandler[Any, None, None]):
    def handle_event(self, event: object, /) -> None:
        raise RuntimeError("log handler bug")


def test_genevent_crash_reports_flow_through_without_recursion() -> None:
    """The bridge on the ``genevent`` logger itself: a crash of a handler of the very manager
    the bridge feeds becomes one more event there, nothing loops or recurses."""
    genevent_log = logging.getLogger("genevent")
    with threads.start() as mgr:
        mgr.add_handler(Keep)
        mgr.add_handler(CrashOnce)
        bridge = ManagerLogHandler(mgr)
        genevent_log.addHandler(bridge)
        try:
            mgr.sync_notify("anything")  # CrashOnce crashes: its report is logged
            mgr.sync_notify("again")
            events = mgr.call(Keep, "get")
        finally:
            genevent_log.removeHandler(bridge)
    reports = [e for e in events if isinstance(e, LogEvent)]
    assert len(reports) == 1
    assert "CrashOnce" in reports[0].message
    assert reports[0].extra["genevent"]["kind"] == "crash"
    assert bridge.dropped == 0


def test_reentrant_emit_is_dropped_and_counted(logger: logging.Logger) -> None:
    class Loud:
        def notify(self, event: Any) -> None:
            logger.error("logged while emitting")  # would recurse for ever

    bridge = ManagerLogHandler(Loud())
    logger.addHandler(bridge)
    logger.error("first")
    assert bridge.dropped == 1


def test_stopped_manager_drops_and_counts(logger: logging.Logger) -> None:
    mgr = threads.start()
    bridge = ManagerLogHandler(mgr)
    logger.addHandler(bridge)
    mgr.stop()
    logger.error("too late")
    assert bridge.dropped == 1


def test_rotating_file_log(tmp_path: Path, logger: logging.Logger) -> None:
    path = tmp_path / "app.log"
    with threads.start() as mgr:
        mgr.add_handler(
            RotatingFileLog, Args(str(path), max_bytes=200, backup_count=2, fmt="%(message)s")
        )
        logger.addHandler(ManagerLogHandler(mgr))
        for i in range(20):
            logger.info("line %02d %s", i, "x" * 30)
    lines = path.read_text().splitlines()
    assert lines[-1].startswith("line 19")
    assert (tmp_path / "app.log.1").exists()
    assert (tmp_path / "app.log.2").exists()
    assert not (tmp_path / "app.log.3").exists()


def test_error_rate_alarm_fires_once_per_burst() -> None:
    now = [0.0]
    alarms: list[Alarm] = []

    def event(level: int) -> LogEvent:
        return LogEvent("x", level, logging.getLevelName(level), "m", 0.0, "", 0, None, None)

    with threads.start() as mgr:
        mgr.add_handler(
            ErrorRateAlarm, Args(alarms.append, threshold=3, window=10.0, clock=lambda: now[0])
        )
        for t in (0.0, 1.0, 2.0, 3.0):  # the third error within 10 s fires, the fourth not
            now[0] = t
            mgr.notify(event(logging.ERROR))
        mgr.notify(event(logging.INFO))  # below the level: not counted
        assert mgr.call(ErrorRateAlarm, "count") == 4
        now[0] = 30.0  # the window has passed: calm again
        assert mgr.call(ErrorRateAlarm, "count") == 0
        for t in (30.0, 31.0, 32.0):
            now[0] = t
            mgr.notify(event(logging.CRITICAL))
        mgr.sync_notify(event(logging.DEBUG))
    assert [a.count for a in alarms] == [3, 3]
    assert alarms[0].last.level == logging.ERROR


def _alarm_and_file(path: Path, alarms: list[Alarm]) -> list[tuple[type[Any], Args]]:
    return [
        (ErrorRateAlarm, Args(alarms.append, threshold=1, window=60.0)),
        (RotatingFileLog, Args(str(path), fmt="%(message)s")),
    ]


_OTHER_EVENTS: tuple[object, ...] = (None, "text", 42, Alarm)


def test_ready_handlers_ignore_other_events_on_threads(
    tmp_path: Path, logger: logging.Logger
) -> None:
    """In a shared manager the ready handlers see every event: any that is not a LogEvent
    (a ``sync_notify(None)`` barrier, another handler's events) is ignored, not a crash."""
    alarms: list[Alarm] = []
    with threads.start() as mgr:
        for handler, args in _alarm_and_file(tmp_path / "app.log", alarms):
            mgr.add_handler(handler, args)
        logger.addHandler(ManagerLogHandler(mgr))
        for event in _OTHER_EVENTS:
            mgr.notify(event)
        logger.error("kept")
        mgr.sync_notify(None)
        assert mgr.which_handlers() == [RotatingFileLog, ErrorRateAlarm]
        assert mgr.call(ErrorRateAlarm, "count") == 1
        assert mgr.stats().crashes == 0
    assert [a.last.message for a in alarms] == ["kept"]
    assert (tmp_path / "app.log").read_text().splitlines() == ["kept"]


async def test_ready_handlers_ignore_other_events_on_asyncio(
    tmp_path: Path, logger: logging.Logger
) -> None:
    alarms: list[Alarm] = []
    async with aio.start() as mgr:
        for handler, args in _alarm_and_file(tmp_path / "app.log", alarms):
            await mgr.add_handler(handler, args)
        logger.addHandler(ManagerLogHandler(mgr))
        for event in _OTHER_EVENTS:
            mgr.notify(event)
        logger.error("kept")
        await mgr.sync_notify(None)
        assert await mgr.which_handlers() == [RotatingFileLog, ErrorRateAlarm]
        assert await mgr.call(ErrorRateAlarm, "count") == 1
        assert mgr.stats().crashes == 0
    assert [a.last.message for a in alarms] == ["kept"]
    assert (tmp_path / "app.log").read_text().splitlines() == ["kept"]
