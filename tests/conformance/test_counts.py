"""Counts that every request path keeps: an event delivered by ``notify`` or ``sync_notify``
counts once in ``stats().events``, whichever path delivered it (inline in the caller, the drain
loop's quick answer, the core's procedures, the thread server's dispatch, an isolated lane)."""

from __future__ import annotations

from typing import Any

from tests.handlers import Recorder, Spec
from tests.runtimes import Runtime


class Counted:
    def init(self, spec: Spec, /) -> None:
        self.spec = spec

    def handle_event(self, event: Any, /) -> None:
        self.spec.rec.add(self.spec.name, "event", event)

    def handle_call(self, request: Any, /) -> Any:
        return request


def test_every_delivered_event_is_counted(rt: Runtime, rec: Recorder) -> None:
    m = rt.start()
    m.add_handler(Counted, Spec(rec, "h"))
    m.notify("n1")
    m.sync_notify("s1")
    m.notify("n2")
    m.sync_notify("s2")
    assert m.call(Counted, "q") == "q"
    assert rec.of("h", "event") == ["n1", "s1", "n2", "s2"]
    stats = m.stats()
    events = stats["events"] if isinstance(stats, dict) else stats.events
    assert events == 4
