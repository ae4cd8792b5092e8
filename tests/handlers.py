"""Configurable handlers and a thread-safe recorder, shared by every test module."""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from genevent import NO_HANDOFF, EventHandler, ExitReason, HandlerExit

WAIT = 10.0  # generous bound on any wait, so a broken test fails instead of hanging


class Recorder:
    """What handlers did, in order, and flags to wait on (set from any thread)."""

    def __init__(self) -> None:
        self.log: list[tuple[Any, ...]] = []
        self._flags: defaultdict[Any, threading.Event] = defaultdict(threading.Event)
        self._lock = threading.Lock()

    def add(self, *item: Any) -> None:
        with self._lock:
            self.log.append(item)
            flag = self._flags[item[:2]]
        flag.set()

    def flag(self, key: Any) -> threading.Event:
        with self._lock:
            return self._flags[key]

    def wait(self, *key: Any) -> None:
        """Wait until an item starting with ``key`` (name, kind) was added."""
        assert self.flag(key).wait(WAIT), f"timed out waiting for {key!r}; log: {self.log!r}"

    def of(self, name: Any, kind: str) -> list[Any]:
        return [item[2] for item in list(self.log) if item[0] == name and item[1] == kind]

    def kinds(self, kind: str) -> list[tuple[Any, ...]]:
        return [item for item in list(self.log) if item[1] == kind]

    def terminations(self) -> list[tuple[Any, ExitReason]]:
        return [(item[0], item[2]) for item in self.kinds("terminate")]

    def notice(self, notice: HandlerExit) -> None:
        """An ``on_exit`` callback: records ``(handler, "notice", reason)``."""
        self.add(notice.handler, "notice", notice.reason)

    def notices(self) -> list[tuple[Any, ExitReason]]:
        return [(item[0], item[2]) for item in self.kinds("notice")]


Behaviour = Callable[[Any, Any], Any]


@dataclass
class Spec:
    """The args of a test handler: where to record and how to behave."""

    rec: Recorder
    name: Any = "h"
    init: Callable[[Any], Any] | None = None
    event: Behaviour | None = None
    call: Behaviour | None = None
    info: Behaviour | None = None
    terminate: Behaviour | None = None
    extra: dict[str, Any] = field(default_factory=dict)


class H(EventHandler[Any, Any, Any]):
    """Records every callback as ``(name, kind, value)``; behaves as its :class:`Spec` says."""

    def init(self, spec: Spec, /, *, handoff: Any = NO_HANDOFF) -> Any:
        self.spec = spec
        self.handoff = handoff
        self.state: list[Any] = []
        spec.rec.add(spec.name, "init", handoff)
        if spec.init is not None:
            return spec.init(self)
        return None

    def handle_event(self, event: Any, /) -> Any:
        self.spec.rec.add(self.spec.name, "event", event)
        self.state.append(event)
        return self.spec.event(self, event) if self.spec.event else None

    def handle_call(self, request: Any, /) -> Any:
        self.spec.rec.add(self.spec.name, "call", request)
        if self.spec.call:
            return self.spec.call(self, request)
        return (self.spec.name, request, list(self.state))

    def handle_info(self, message: Any, /) -> Any:
        self.spec.rec.add(self.spec.name, "info", message)
        return self.spec.info(self, message) if self.spec.info else None

    def terminate(self, reason: ExitReason, /) -> Any:
        self.spec.rec.add(self.spec.name, "terminate", reason)
        if self.spec.terminate:
            return self.spec.terminate(self, reason)
        return ("terminated", self.spec.name)


class H2(H):
    """A second handler class (for swaps)."""


class NoInfo(EventHandler[Any, Any, Any]):
    """A handler without handle_info, handle_call or terminate."""

    def init(self, spec: Spec, /) -> None:
        self.spec = spec

    def handle_event(self, event: Any, /) -> None:
        self.spec.rec.add(self.spec.name, "event", event)


def raise_(exc: BaseException) -> Behaviour:
    """A behaviour that raises ``exc``."""

    def behave(handler: Any, value: Any = None) -> Any:
        raise exc

    return behave


def returns(result: Any) -> Behaviour:
    """A behaviour that returns ``result``."""

    def behave(handler: Any, value: Any = None) -> Any:
        return result

    return behave
