"""The conformance suite's path-forcing variants take the path they name: a request to a plain
handler runs inline in the caller (``aio``, ``threads-inline``), is answered by the drain loop's
quick path (``aio-queued``), or runs through the core's procedures (``aio-queued-core``; the
thread runtime's queued calls take its server's ``call`` fast path). Read from the stack the
handler's callbacks run on."""

from __future__ import annotations

import linecache
import sys
from typing import Any

import pytest

from tests.runtimes import RUNTIMES

# (module, function) pairs that tell the paths apart
INLINE_AIO = ("genevent.aio._manager", "call")
INLINE_AIO_SYNC = ("genevent.aio._manager", "sync_notify")
DRAIN_LOOP = ("genevent.aio._drain", "run")
QUICK = ("genevent.aio._server", "quick")
# the core's procedures yield the callback to run as an effect: the runtime's driver runs it
AIO_CORE = ("genevent.aio._dispatch", "drive")
THREAD_CORE = ("genevent._driver", "drive_sync")
THREAD_LOOP = ("genevent.threads._server", "run")


def _stack() -> set[tuple[str, str]]:
    frame: Any = sys._getframe(2)  # the callback's caller, and its callers
    found = set()
    while frame is not None:
        found.add((frame.f_globals.get("__name__", ""), frame.f_code.co_name))
        frame = frame.f_back
    return found


class Probe:
    """Records the stack its callbacks run on."""

    def init(self, stacks: dict[str, set[tuple[str, str]]]) -> None:
        self.stacks = stacks

    def handle_event(self, event: Any) -> None:
        self.stacks[event] = _stack()

    def handle_call(self, request: Any) -> str:
        self.stacks[request] = _stack()
        return "ok"


# variant: (what the call's stack holds, what it lacks, the same for sync_notify)
EXPECTED: dict[str, tuple[set[Any], set[Any], set[Any], set[Any]]] = {
    "aio": ({INLINE_AIO}, {DRAIN_LOOP}, {INLINE_AIO_SYNC}, {DRAIN_LOOP}),
    "aio-queued": ({DRAIN_LOOP, QUICK}, {INLINE_AIO, AIO_CORE}, {QUICK}, {AIO_CORE}),
    "aio-queued-core": ({DRAIN_LOOP, AIO_CORE}, {QUICK}, {AIO_CORE}, {QUICK}),
    "threads": ({THREAD_LOOP}, {THREAD_CORE}, {THREAD_LOOP}, {THREAD_CORE}),
    "threads-inline": (set(), {THREAD_LOOP, THREAD_CORE}, set(), {THREAD_LOOP, THREAD_CORE}),
}


@pytest.mark.parametrize("variant", sorted(EXPECTED))
def test_a_variant_takes_the_path_it_names(variant: str) -> None:
    rt = RUNTIMES[variant]()
    try:
        m = rt.start()
        stacks: dict[str, set[tuple[str, str]]] = {}
        m.add_handler(Probe, stacks)
        assert m.call(Probe, "call") == "ok"
        m.sync_notify("sync_notify")
        has, lacks, sync_has, sync_lacks = EXPECTED[variant]
        assert has <= stacks["call"], stacks["call"]
        assert not lacks & stacks["call"], stacks["call"]
        assert sync_has <= stacks["sync_notify"], stacks["sync_notify"]
        assert not sync_lacks & stacks["sync_notify"], stacks["sync_notify"]
        m.stop()
    finally:
        rt.close()


class Caller:
    """Records the source line its ``handle_event`` was called from."""

    def init(self, lines: list[str]) -> None:
        self.lines = lines

    def handle_event(self, event: Any) -> None:
        frame: Any = sys._getframe(1)
        self.lines.append(linecache.getline(frame.f_code.co_filename, frame.f_lineno).strip())


@pytest.mark.parametrize(
    ("variant", "line"),
    [
        ("aio", "sole(msg)"),
        ("aio-queued-core", "fn(msg)"),
        ("threads", "sole(msg)"),
        ("threads-inline", "fn(msg)"),
    ],
)
def test_the_drain_loop_calls_a_lone_handler_directly_unless_forced_off(
    variant: str, line: str
) -> None:
    """One handler: the drain loop calls its function with no walk over the snapshot
    (``aio``, ``threads``), or, forced off, walks the snapshot as for several handlers
    (``aio-queued-core``, ``threads-inline``)."""
    rt = RUNTIMES[variant]()
    try:
        m = rt.start()
        lines: list[str] = []
        m.add_handler(Caller, lines)
        m.notify("queued")  # handled by the manager task's drain loop
        m.sync_notify("sync")
        assert lines[0] == f"result = {line}", lines
        m.stop()
    finally:
        rt.close()
