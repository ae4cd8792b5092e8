"""HandlerNotFound says how an id that was installed left, or names a close installed id."""

from __future__ import annotations

from typing import Any

import pytest

from genevent import Departure, HandlerNotFound, Remove, Swap
from genevent._core import ManagerCore, Raised, Returned, restart_spec
from tests.core.test_core import run


class Counter:
    def init(self, args: Any = None) -> None:
        self.args = args

    def handle_event(self, event: Any) -> Any:
        return None

    def handle_call(self, request: Any) -> Any:
        return request


class Other(Counter):
    pass


def _other_counter() -> type:
    class Counter(Other):  # another class with the same name as the module's Counter
        pass

    return Counter


def missing(core: ManagerCore, ref: Any, how: str = "call") -> HandlerNotFound:
    proc = core.call(ref, "q") if how == "call" else core.delete_handler(ref)
    with pytest.raises(HandlerNotFound) as info:
        run(proc)
    return info.value


def crash(core: ManagerCore, ref: Any, exc: BaseException) -> None:
    entry = core.find(ref)
    assert entry is not None
    run(core.event_result(entry, Raised(exc), "ev"))


def test_a_crashed_handler_says_it_crashed_and_how_many_events_ago() -> None:
    core = ManagerCore(clock=lambda: 0.0)
    run(core.add_handler(Counter))
    core.events = 5
    crash(core, Counter, ValueError("bad input\nsecond line"))
    core.events = 8
    err = missing(core, Counter)
    assert str(err) == (
        "handler Counter is not installed; it crashed in handle_event "
        "(ValueError: bad input), 3 events ago"
    )
    assert err.left == Departure(
        Counter, "crashed", "it crashed in handle_event (ValueError: bad input)", 5
    )
    assert err.events_since == 3
    assert err.suggestion is None
    core.events = 4  # a count set back (never in a runtime): never a negative age
    assert missing(core, Counter, "delete").events_since == 0
    assert "with no event since" in str(missing(core, Counter, "delete"))


@pytest.mark.parametrize(
    ("outcome", "how", "text"),
    [
        (Returned(42), "bad_return", "it returned a bad value from handle_event: 42"),
        (Returned(Remove()), "removed_itself", "it removed itself (returned Remove())"),
        (Returned(Swap(None, Other)), "swapped", "it swapped itself for Other"),
    ],
)
def test_every_way_of_leaving_is_named(outcome: Any, how: str, text: str) -> None:
    core = ManagerCore()
    run(core.add_handler(Counter))
    entry = core.find(Counter)
    assert entry is not None
    run(core.event_result(entry, outcome, "ev"))
    err = missing(core, Counter)
    assert err.left is not None
    assert (err.left.how, err.left.summary) == (how, text)
    assert text in str(err)


def test_deleted_swapped_by_the_api_and_owner_ended() -> None:
    core = ManagerCore()
    run(core.add_handler((Counter, 1)))
    run(core.delete_handler((Counter, 1)))
    assert "it was deleted (delete_handler)" in str(missing(core, (Counter, 1)))
    run(core.add_handler((Counter, 2)))
    run(core.swap_handler((Counter, 2), None, (Other, 2)))
    assert "it was swapped for (Other, 2) (swap_handler)" in str(missing(core, (Counter, 2)))
    run(core.add_handler((Counter, 3), owner="task"))
    run(core.owner_down("task", KeyError("gone")))
    err = missing(core, (Counter, 3))
    assert err.left is not None
    assert err.left.how == "owner_exited"
    assert "its owner ended (KeyError: 'gone')" in str(err)


def test_restart_limit_reached_is_named() -> None:
    core = ManagerCore(clock=lambda: 0.0)
    run(core.add_handler(Counter, restart=restart_spec("transient", None, 1, 5.0)))
    crash(core, Counter, ValueError("once"))  # restarted
    assert core.find(Counter) is not None
    crash(core, Counter, ValueError("twice"))  # over the limit
    err = missing(core, Counter)
    assert err.left is not None
    assert err.left.how == "restart_limit"
    assert str(err) == (
        "handler Counter is not installed; it crashed in handle_event (ValueError: twice); "
        "not restarted: its restart limit was reached (1 restarts in 5 s), with no event since"
    )


def test_a_handler_added_again_forgets_why_it_left() -> None:
    core = ManagerCore()
    run(core.add_handler(Counter))
    run(core.delete_handler(Counter))
    run(core.add_handler(Counter))
    assert core.departed == {}
    run(core.add_handler(Other))
    run(core.delete_handler(Other))
    assert "it was deleted" in str(missing(core, Other))


def test_only_the_last_departures_are_kept() -> None:
    core = ManagerCore()
    kept = ManagerCore.DEPARTURES_KEPT
    for i in range(kept + 5):
        run(core.add_handler((Counter, i)))
        run(core.delete_handler((Counter, i)))
    assert core.departed is not None
    assert len(core.departed) == kept
    assert missing(core, (Counter, 0)).left is None
    assert missing(core, (Counter, kept + 4)).left is not None


def test_a_close_id_is_suggested() -> None:
    core = ManagerCore()
    run(core.add_handler((Counter, "eu")))
    run(core.add_handler((Counter, "something else")))
    err = missing(core, (Counter, "ue"))
    assert err.suggestion == (Counter, "eu")
    assert str(err) == "handler (Counter, 'ue') is not installed; did you mean (Counter, 'eu')?"
    assert missing(core, (Counter, "zzzz")).suggestion is None  # not close: no guess
    # the class alone for a (class, id), and the other way round
    assert "did you mean (Counter, 'something else')?" in str(missing(core, Counter, "delete"))
    run(core.add_handler(Other))
    assert missing(core, (Other, "x")).suggestion is Other


def test_another_class_with_the_same_name_is_suggested_with_its_module() -> None:
    core = ManagerCore()
    twin = _other_counter()
    run(core.add_handler((twin, "eu")))
    err = missing(core, (Counter, "eu"))
    assert err.suggestion == (twin, "eu")
    assert f"did you mean ({__name__}._other_counter.<locals>.Counter, 'eu')" in str(err)
    assert "another class named" in str(err)


def test_not_found_without_suggestion_and_for_unhashable_ids() -> None:
    core = ManagerCore()
    run(core.add_handler((Counter, "eu")))
    assert core.not_found((Counter, "ue"), suggest=False).suggestion is None
    run(core.delete_handler((Counter, "eu")))
    assert core.not_found((Counter, ["eu"])).left is None


def test_another_class_alone_with_the_same_name_is_suggested() -> None:
    core = ManagerCore()
    twin = _other_counter()
    run(core.add_handler(twin))
    assert missing(core, Counter).suggestion is twin
