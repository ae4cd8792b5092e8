"""The sans-I/O core driven by hand: effects out, outcomes in, no runtime at all."""

from __future__ import annotations

import ast
import pathlib
from typing import Any

import pytest

import genevent._core as core_pkg
from genevent import HandlerExists, HandlerNotFound, InvalidHandler
from genevent._core import (
    NO_HANDOFF,
    BadReturn,
    Crashed,
    HandlerExit,
    Invoke,
    ManagerCore,
    Procedure,
    Raised,
    Report,
    Returned,
    Stopped,
    TellOwner,
    Unwatch,
    Watch,
)
from genevent._driver import drive_sync


class Plain:
    def init(self, args: Any = None) -> None:
        self.args = args

    def handle_event(self, event: Any) -> None:
        return None

    def terminate(self, reason: Any) -> Any:
        return ("t", reason)


class Async:
    async def handle_event(self, event: Any) -> None:
        return None


def run(proc: Procedure, outcomes: dict[str, Any] | None = None) -> tuple[list[Any], Any]:
    """Drive ``proc``; Invoke effects get ``outcomes[fn name]`` (default: really call it)."""
    outcomes = outcomes or {}
    effects: list[Any] = []
    send: Any = None
    while True:
        try:
            eff = proc.send(send)
        except StopIteration as stop:
            return effects, stop.value
        effects.append(eff)
        send = None
        if isinstance(eff, Invoke):
            name = getattr(eff.fn, "__name__", "")
            if name in outcomes:
                send = outcomes[name]
            else:
                send = Returned(eff.fn(*eff.args, **(eff.kwargs or {})))


def test_core_imports_no_runtime() -> None:
    """Rule 1 of _manager.py: the core imports no runtime, transport, clock or logging."""
    banned = {"asyncio", "threading", "concurrent", "socket", "selectors", "queue", "time"}
    banned |= {"logging", "nats"}
    for path in pathlib.Path(core_pkg.__file__).parent.glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module or ""]
            else:
                continue
            assert not {n.split(".")[0] for n in names} & banned, (path.name, names)


def test_add_yields_instantiate_then_init_then_watch() -> None:
    core = ManagerCore("m")
    owner: object = object()
    notices: list[HandlerExit] = []
    effects, reply = run(core.add_handler(Plain, 1, owner, notices.append))
    assert reply is None
    assert [type(e) for e in effects] == [Invoke, Invoke, Watch]
    assert effects[0].fn is Plain
    assert effects[1].args == (1,)
    assert effects[1].kwargs is None  # a plain add passes no hand-off
    assert core.which_handlers() == [Plain]
    # a second handler of the same owner does not watch it again
    effects, _ = run(core.add_handler((Plain, 2), 2, owner, notices.append))
    assert [type(e) for e in effects] == [Invoke, Invoke]
    assert core.owners() == [owner]


def test_crash_outcome_unlinks_before_terminate_then_reports_then_tells() -> None:
    core = ManagerCore("m")
    owner: object = object()
    notices: list[HandlerExit] = []
    run(core.add_handler(Plain, None, owner, notices.append))
    ((entry, _fn),) = core.event_targets
    boom = ValueError("x")
    proc = core.event_result(entry, Raised(boom), "ev")
    first = next(proc)
    assert isinstance(first, Invoke)  # terminate
    assert first.args == (Crashed(boom),)
    assert core.which_handlers() == []  # already unlinked when terminate runs
    rest, _ = run_rest(proc, Returned("ignored"))
    assert [type(e) for e in rest] == [Report, TellOwner, Unwatch]
    assert rest[0].kind == "crash"
    assert rest[0].message == "ev"
    assert rest[1].notice == HandlerExit(Plain, Crashed(boom), "m")


def run_rest(proc: Procedure, send: Any) -> tuple[list[Any], Any]:
    effects: list[Any] = []
    while True:
        try:
            eff = proc.send(send)
        except StopIteration as stop:
            return effects, stop.value
        effects.append(eff)
        send = None


def test_bad_return_from_event() -> None:
    core = ManagerCore()
    run(core.add_handler(Plain))
    ((entry, _fn),) = core.event_targets
    effects, _ = run(core.event_result(entry, Returned(42), "ev"), {})
    assert effects[0].args == (BadReturn(42),)
    assert core.which_handlers() == []


def test_event_targets_cached_until_table_changes() -> None:
    core = ManagerCore()
    run(core.add_handler(Plain))
    first = core.event_targets
    assert core.event_targets is first
    run(core.add_handler((Plain, 1)))
    assert core.event_targets is not first
    assert [e.ref for e, _ in core.event_targets] == [(Plain, 1), Plain]


def test_refusals_need_no_user_code() -> None:
    core = ManagerCore()
    run(core.add_handler(Plain))
    with pytest.raises(HandlerExists):
        next(core.add_handler(Plain))
    with pytest.raises(HandlerNotFound):
        next(core.delete_handler((Plain, 9)))
    with pytest.raises(InvalidHandler):
        next(core.add_handler(object))  # no handle_event


def test_async_handlers_refused_when_not_allowed() -> None:
    with pytest.raises(InvalidHandler, match="coroutine"):
        run(ManagerCore(allow_async=False).add_handler(Async))
    core = ManagerCore()
    run(core.add_handler(Async))
    assert core.async_count == 1


def test_swap_hands_off_and_stop_tells_owners() -> None:
    core = ManagerCore("m")
    owner: object = object()
    notices: list[HandlerExit] = []
    run(core.add_handler(Plain, None, owner, notices.append))
    run(core.swap_handler(Plain, "a1", (Plain, 2), "a2"))

    class Handoff(Plain):
        def init(self, args: Any = None, *, handoff: Any = NO_HANDOFF) -> None:
            self.handoff = handoff

    run(core.swap_handler((Plain, 2), "b1", Handoff, "b2"))
    (entry,) = core.entries
    assert entry.instance.handoff[0] == "t"
    assert entry.owner is owner  # swap_handler keeps the owner
    effects, _ = run(core.stop())
    tells = [e for e in effects if isinstance(e, TellOwner)]
    assert [t.notice.reason for t in tells] == [Stopped()]
    assert isinstance(effects[-1], Unwatch)
    assert core.stopped


def test_drive_sync_finishes_the_procedure_before_an_interrupt() -> None:
    """Review finding: a KeyboardInterrupt from user code (inline thread requests run in the
    caller's thread) must not leave a procedure half done."""

    class Interrupted(Plain):
        def init(self, args: Any = None, *, handoff: Any = NO_HANDOFF) -> None:
            raise KeyboardInterrupt

    core = ManagerCore("m")
    owner: object = object()
    notices: list[HandlerExit] = []
    run(core.add_handler(Plain, None, owner, notices.append))
    watched: list[Any] = []
    with pytest.raises(KeyboardInterrupt):
        drive_sync(core.swap_handler(Plain, "a1", Interrupted, "a2"), "m", watched.append)
    assert core.which_handlers() == []
    assert core.owners() == []
    assert [type(w).__name__ for w in watched] == ["Unwatch"]
