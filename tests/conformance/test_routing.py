"""Routing by event type inside handler classes (``@handles``), on every runtime."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

import pytest

from genevent import EventHandler, Remove, handles
from tests.runtimes import Runtime


@dataclass
class Placed:
    order: int


@dataclass
class Failed:
    order: int


class Urgent(Placed):
    pass


class Point(NamedTuple):
    x: int
    y: int


Event = Placed | Failed | Point | tuple[str, str]


class Orders(EventHandler[Event, str, list[Any]]):
    def init(self, args: object = None) -> None:
        self.seen: list[Any] = []

    @handles(Placed)
    def placed(self, event: Placed) -> None:
        self.seen.append(("placed", event.order))

    @handles(Urgent)
    def urgent(self, event: Urgent) -> None:
        self.seen.append(("urgent", event.order))

    @handles(Failed, Point)
    def failed_or_point(self, event: Failed | Point) -> Remove[None] | None:
        self.seen.append(("failed/point", event))
        return Remove() if isinstance(event, Failed) and event.order < 0 else None

    def handle_call(self, request: str) -> list[Any]:
        return self.seen


class WithOther(Orders):
    def handle_other(self, event: Any) -> None:
        self.seen.append(("other", event))


def test_each_event_goes_to_its_method_most_specific_first(rt: Runtime) -> None:
    mgr = rt.start()
    mgr.add_handler(Orders)
    for e in (Placed(1), Urgent(2), Failed(3), Point(4, 5), ("broadcast", "x"), 6):
        mgr.notify(e)
    assert mgr.call(Orders, "get") == [
        ("placed", 1),
        ("urgent", 2),
        ("failed/point", Failed(3)),
        ("failed/point", Point(4, 5)),
    ]  # the tuple and the int had no method: ignored
    mgr.stop()


def test_handle_other_gets_the_rest_and_routes_are_inherited(rt: Runtime) -> None:
    mgr = rt.start()
    mgr.add_handler(WithOther)
    for e in (("broadcast", "x"), Placed(1)):
        mgr.notify(e)
    assert mgr.call(WithOther, "get") == [("other", ("broadcast", "x")), ("placed", 1)]
    mgr.stop()


def test_a_routed_method_returns_what_handle_event_returns(rt: Runtime) -> None:
    mgr = rt.start()
    mgr.add_handler(Orders)
    mgr.sync_notify(Failed(-1))
    assert mgr.which_handlers() == []
    mgr.stop()


def test_an_explicit_handle_event_wins() -> None:
    class ByHand(EventHandler[Any, Any, Any]):
        @handles(int)
        def number(self, event: int) -> None:
            raise AssertionError("not routed")

        def handle_event(self, event: Any, /) -> None:
            self.last = event

    h = ByHand()
    h.handle_event(1)
    assert h.last == 1


def test_handles_refuses_non_classes() -> None:
    with pytest.raises(TypeError):
        handles()
    with pytest.raises(TypeError):
        handles("Placed")  # type: ignore[call-overload]


def test_typed_methods_are_checked() -> None:
    """mypy --strict checks this file: a method must accept the type it is routed."""

    class Wrong(EventHandler[Placed, None, None]):
        @handles(Failed)  # type: ignore[arg-type]  # the method takes Placed, not Failed
        def wrong(self, event: Placed) -> None: ...

    assert Wrong.__name__ == "Wrong"
