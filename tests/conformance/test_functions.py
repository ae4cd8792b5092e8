"""Plain functions as handlers (``subscribe`` / ``on``), routing by event type, and
several ``init`` arguments (``Args``), on every runtime."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import pytest

from genevent import (
    Args,
    FunctionHandler,
    HandlerExists,
    InvalidHandler,
    Remove,
    Swap,
)
from tests.handlers import H, Recorder, Spec
from tests.runtimes import Runtime


@dataclass
class Placed:
    order: int


@dataclass
class Failed:
    order: int


class Special(Placed):
    pass


def test_subscribe_plain_function_sees_every_event(rt: Runtime) -> None:
    mgr = rt.start()
    seen: list[Any] = []
    ref = mgr.subscribe(seen.append)
    assert ref == (FunctionHandler, seen.append)
    assert mgr.which_handlers() == [ref]
    mgr.notify(1)
    mgr.sync_notify(("broadcast", "hi"))
    assert seen == [1, ("broadcast", "hi")]
    mgr.delete_handler(ref)
    mgr.sync_notify(2)
    assert seen == [1, ("broadcast", "hi")]
    assert mgr.which_handlers() == []
    mgr.stop()


def test_subscribe_by_event_type_is_isinstance(rt: Runtime) -> None:
    mgr = rt.start()
    placed: list[Any] = []
    failed: list[Any] = []
    mgr.subscribe(placed.append, Placed)
    mgr.subscribe(failed.append, Failed)
    for e in (Placed(1), Failed(2), Special(3), ("broadcast", "x"), 4):
        mgr.notify(e)
    mgr.sync_notify(None)
    assert placed == [Placed(1), Special(3)]  # a subclass is of the type
    assert failed == [Failed(2)]
    mgr.stop()


def test_subscribe_where_predicate_tells_tuples_apart(rt: Runtime) -> None:
    mgr = rt.start()
    texts: list[Any] = []
    mgr.subscribe(lambda e: texts.append(e[1]), tuple, where=lambda e: e[0] == "broadcast")
    for e in (("broadcast", "a"), ("other", "b"), "c", ("broadcast", "d")):
        mgr.notify(e)
    mgr.sync_notify(None)
    assert texts == ["a", "d"]
    mgr.stop()


def test_same_function_twice_needs_an_id(rt: Runtime) -> None:
    mgr = rt.start()
    seen: list[Any] = []
    mgr.subscribe(seen.append)
    with pytest.raises(HandlerExists):
        mgr.subscribe(seen.append)
    second = mgr.subscribe(seen.append, id="again")
    assert second == (FunctionHandler, "again")
    mgr.sync_notify("e")
    assert seen == ["e", "e"]
    mgr.stop()


def test_crashing_function_is_removed_and_reported(rt: Runtime, reports: Any) -> None:
    mgr = rt.start()
    seen: list[Any] = []

    def boom(event: Any) -> None:
        if event == "bad":
            raise ValueError("no")
        seen.append(event)

    ref = mgr.subscribe(boom)
    other: list[Any] = []
    mgr.subscribe(other.append)
    mgr.notify("ok")
    mgr.notify("bad")
    mgr.sync_notify("after")
    assert seen == ["ok"]
    assert other == ["ok", "bad", "after"]
    assert ref not in mgr.which_handlers()
    crash = [r for r in reports.records if r.levelno == logging.ERROR]
    assert crash
    assert "boom" in crash[0].getMessage()
    mgr.stop()


def test_function_returning_remove_unsubscribes_and_other_values_are_ignored(
    rt: Runtime,
) -> None:
    mgr = rt.start()
    seen: list[Any] = []

    def until_stop(event: Any) -> Any:
        seen.append(event)
        return Remove() if event == "stop" else "ignored"

    mgr.subscribe(until_stop)
    for e in ("a", "stop", "b"):
        mgr.notify(e)
    mgr.sync_notify("c")
    assert seen == ["a", "stop"]
    assert mgr.which_handlers() == []
    mgr.stop()


def test_subscribe_refuses_what_is_not_a_function(rt: Runtime) -> None:
    mgr = rt.start()
    with pytest.raises(InvalidHandler):
        mgr.subscribe("not callable")
    with pytest.raises(InvalidHandler):
        mgr.subscribe(H)  # a class: use add_handler
    with pytest.raises(InvalidHandler):
        mgr.subscribe(print, "not a type")
    with pytest.raises(InvalidHandler):
        mgr.subscribe(print, where="not callable")
    assert mgr.which_handlers() == []
    mgr.stop()


def test_on_decorator_subscribes(rt: Runtime) -> None:
    mgr = rt.start()
    seen: list[Any] = []
    decorator = mgr.on(Placed)

    def audit(event: Placed) -> None:
        seen.append(event.order)

    assert rt.worker().run(lambda: decorator(audit)) is audit
    mgr.notify(Placed(7))
    mgr.sync_notify(Failed(8))
    assert seen == [7]
    assert mgr.which_handlers() == [(FunctionHandler, audit)]
    mgr.stop()


class Multi(H):
    """A handler whose init takes several arguments."""

    def init(self, rec: Recorder, name: str, *, extra: int = 0) -> None:  # type: ignore[override]
        self.rec = rec
        self.got = (name, extra)
        rec.log.append((name, "init", extra))

    def handle_call(self, request: Any, /) -> Any:
        return self.got


def test_args_spreads_into_init(rt: Runtime, rec: Recorder) -> None:
    mgr = rt.start()
    mgr.add_handler(Multi, Args(rec, "m", extra=3))
    assert mgr.call(Multi, "get") == ("m", 3)
    assert ("m", "init", 3) in rec.log
    mgr.stop()


class Takes(H):
    """init(a, b, *, handoff): several arguments and a hand-off in a swap."""

    def init(self, a: Any, b: Any = None, *, handoff: Any = None) -> None:
        self.got = (a, b, handoff)

    def handle_call(self, request: Any, /) -> Any:
        if request == "swap":
            return Swap("bye", (Takes, 2), Args("x", "y"), reply="swapped")
        return self.got

    def terminate(self, reason: Any, /) -> Any:
        return "state"


def test_args_in_a_swap_and_a_plain_tuple_is_one_argument(rt: Runtime) -> None:
    mgr = rt.start()
    mgr.add_handler(Takes, (1, 2))  # OTP style: the tuple is the one argument
    assert mgr.call(Takes, "get") == ((1, 2), None, None)
    assert mgr.call(Takes, "swap") == "swapped"
    assert mgr.call((Takes, 2), "get") == ("x", "y", "state")
    mgr.stop()


def test_args_with_one_value_is_add_handler_with_that_value(rt: Runtime, rec: Recorder) -> None:
    mgr = rt.start()
    mgr.add_handler(H, Args(Spec(rec, "s")))
    mgr.sync_notify("e")
    assert rec.of("s", "event") == ["e"]
    mgr.stop()
