"""A bridge from :mod:`logging` to an event manager, and ready handlers for log events.

OTP's own logger was an event manager; genevent can be that for Python. Attach a
:class:`ManagerLogHandler` to any logger and every record becomes a structured
:class:`LogEvent` notified to a manager (asyncio or thread runtime), where handlers do with it
what handlers do: write it to a rotating file (:class:`RotatingFileLog`), raise an alarm when
errors come too fast (:class:`ErrorRateAlarm`), keep the last hundred in memory, forward them.
A slow or crashing log handler is removed and reported without touching the program that logs.
Like any handler in a shared manager, the ready handlers ignore events that are not
:class:`LogEvent` (the other handlers' events, a ``sync_notify(None)`` used as a barrier).

::

    mgr = threads.start("logs")
    mgr.add_handler(RotatingFileLog, Args("app.log", max_bytes=1_000_000, backup_count=3))
    mgr.add_handler(ErrorRateAlarm, Args(page_someone, threshold=5, window=60.0))
    logging.getLogger().addHandler(ManagerLogHandler(mgr))

genevent's own crash reports (the ``genevent`` logger) flow through the bridge like any record:
``notify`` only queues, so a report about a log handler never re-enters the manager, and a
record logged while the bridge is already emitting on the same thread is dropped and counted
(:attr:`ManagerLogHandler.dropped`) instead of recursing.
"""

from __future__ import annotations

import logging
import logging.handlers
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from ._errors import GenEventError
from ._handler import EventHandler

__all__ = (
    "Alarm",
    "ErrorRateAlarm",
    "LogEvent",
    "ManagerLogHandler",
    "RotatingFileLog",
)

# the attributes every LogRecord has; anything else on a record came from ``extra=``
_STANDARD = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}


@dataclass(frozen=True, slots=True)
class LogEvent:
    """One log record as a structured event (never only a pre-formatted string)."""

    logger: str
    """The logger's name (``record.name``)."""
    level: int
    """The numeric level (``logging.ERROR`` ...)."""
    levelname: str
    message: str
    """The message with its arguments merged (``record.getMessage()``)."""
    created: float
    """When the record was made (``time.time()`` seconds)."""
    pathname: str
    lineno: int
    func: str | None
    thread: str | None
    exc_text: str | None = None
    """The formatted traceback, when the record carried one."""
    extra: dict[str, Any] = field(default_factory=dict)
    """What the caller passed in ``extra=`` (genevent's crash reports put theirs under
    ``"genevent"``)."""

    @classmethod
    def from_record(cls, record: logging.LogRecord, formatter: logging.Formatter) -> LogEvent:
        """Build the event from a record (the traceback formatted once, here)."""
        exc_text = record.exc_text
        if record.exc_info and not exc_text:
            exc_text = formatter.formatException(record.exc_info)
        extra = {k: v for k, v in record.__dict__.items() if k not in _STANDARD}
        return cls(
            logger=record.name,
            level=record.levelno,
            levelname=record.levelname,
            message=record.getMessage(),
            created=record.created,
            pathname=record.pathname,
            lineno=record.lineno,
            func=record.funcName,
            thread=record.threadName,
            exc_text=exc_text,
            extra=extra,
        )

    def to_record(self) -> logging.LogRecord:
        """A :class:`logging.LogRecord` again, for the standard library's handlers."""
        return logging.makeLogRecord(
            {
                "name": self.logger,
                "levelno": self.level,
                "levelname": self.levelname,
                "msg": self.message,
                "args": None,
                "created": self.created,
                "msecs": (self.created - int(self.created)) * 1000,
                "pathname": self.pathname,
                "lineno": self.lineno,
                "funcName": self.func,
                "threadName": self.thread,
                "exc_text": self.exc_text,
                **self.extra,
            }
        )


class _Notifier(Protocol):
    def notify(self, event: Any, /) -> None: ...


class ManagerLogHandler(logging.Handler):
    """A :class:`logging.Handler` that notifies ``manager`` with a :class:`LogEvent` per
    record. ``manager`` is any genevent manager (``notify`` is safe from every thread and never
    waits). Records logged while this handler is already emitting on the same thread, and
    records arriving once the manager stopped, are counted in :attr:`dropped`."""

    def __init__(self, manager: _Notifier, level: int = logging.NOTSET) -> None:
        super().__init__(level)
        self.manager = manager
        #: records not delivered (re-entered on one thread, or the manager stopped)
        self.dropped = 0
        self._local = threading.local()
        self._formatter = logging.Formatter()

    def emit(self, record: logging.LogRecord) -> None:
        """Notify the manager with the record as a :class:`LogEvent`."""
        local = self._local
        if getattr(local, "emitting", False):
            self.dropped += 1
            return
        local.emitting = True
        try:
            self.manager.notify(LogEvent.from_record(record, self.formatter or self._formatter))
        except GenEventError:
            self.dropped += 1
        except Exception:
            self.handleError(record)
        finally:
            local.emitting = False


class RotatingFileLog(EventHandler[LogEvent, None, None]):
    """Writes log events to a file that rotates by size, through the standard library's
    :class:`logging.handlers.RotatingFileHandler` (added with
    ``Args(path, max_bytes=..., backup_count=..., fmt=...)``); closes it on terminate. Events
    that are not :class:`LogEvent` are ignored."""

    def init(
        self,
        path: str,
        *,
        max_bytes: int = 10_000_000,
        backup_count: int = 5,
        fmt: str = "%(asctime)s %(levelname)s %(name)s: %(message)s",
        level: int = logging.NOTSET,
    ) -> None:
        """Open the file."""
        self.file = logging.handlers.RotatingFileHandler(
            path, maxBytes=max_bytes, backupCount=backup_count, encoding="utf-8", delay=True
        )
        self.file.setFormatter(logging.Formatter(fmt))
        self.level = level

    def handle_event(self, event: LogEvent, /) -> None:
        """Write one event (at or above the handler's level); ignore any other event."""
        if isinstance(event, LogEvent) and event.level >= self.level:
            self.file.emit(event.to_record())

    def terminate(self, reason: Any, /) -> None:
        """Close the file."""
        self.file.close()

    def format_status(self) -> dict[str, Any]:
        """Crash reports show the file's path, not the open stream."""
        return {"path": self.file.baseFilename}


@dataclass(frozen=True, slots=True)
class Alarm:
    """What :class:`ErrorRateAlarm` hands its callback: ``count`` events at or above ``level``
    within ``window`` seconds, the last of them ``last``."""

    count: int
    window: float
    level: int
    last: LogEvent


class ErrorRateAlarm(EventHandler[LogEvent, str, int]):
    """Calls ``alarm(Alarm(...))`` when ``threshold`` events at or above ``level`` arrive
    within ``window`` seconds (added with ``Args(alarm, threshold=..., window=..., level=...,
    clock=...)``). It fires once, then again only after the rate fell below the threshold.
    ``call(ErrorRateAlarm, "count")`` returns the number of such events in the window; a
    raising ``alarm`` crashes this handler like any callback. Events that are not
    :class:`LogEvent` are ignored."""

    def init(
        self,
        alarm: Callable[[Alarm], object],
        *,
        threshold: int = 10,
        window: float = 60.0,
        level: int = logging.ERROR,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """Keep the settings; no events yet."""
        if threshold < 1 or window <= 0:
            raise ValueError("threshold must be >= 1 and window > 0")
        self.alarm = alarm
        self.threshold = threshold
        self.window = window
        self.level = level
        self.clock = clock
        self.times: deque[float] = deque()
        self.firing = False

    def _expire(self, now: float) -> None:
        times = self.times
        while times and times[0] <= now - self.window:
            times.popleft()

    def handle_event(self, event: LogEvent, /) -> None:
        """Count an event at or above the level; fire when the rate crosses the threshold.
        Any other event (not a :class:`LogEvent`) is ignored."""
        if not isinstance(event, LogEvent) or event.level < self.level:
            return
        now = self.clock()
        self._expire(now)
        self.times.append(now)
        if len(self.times) >= self.threshold:
            if not self.firing:
                self.firing = True
                self.alarm(Alarm(len(self.times), self.window, self.level, event))
        else:
            self.firing = False

    def handle_call(self, request: str, /) -> int:
        """``"count"``: events at or above the level within the window now."""
        self._expire(self.clock())
        if len(self.times) < self.threshold:
            self.firing = False
        return len(self.times)
