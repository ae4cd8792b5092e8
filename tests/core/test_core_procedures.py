"""Every core procedure driven to its end: the exact effects, the table after, the answer."""

from __future__ import annotations

from typing import Any

import pytest

from genevent import (
    CallNotSupported,
    HandlerBadReturn,
    HandlerCrashed,
    HandlerExists,
    HandlerInitFailed,
    HandlerNotFound,
    InvalidHandler,
    TerminateFailed,
)
from genevent._core import (
    NO_ARGS,
    NO_HANDOFF,
    Args,
    BadReturn,
    Crashed,
    Deleted,
    HandlerExit,
    ManagerCore,
    OwnerExited,
    Raised,
    Remove,
    RemovedItself,
    Returned,
    StartFailed,
    Stopped,
    Swap,
    Swapped,
    restart_spec,
)
from tests.core.driver import (
    Async,
    Bare,
    G,
    H,
    Needs,
    NoHandoff,
    Status,
    drive,
    entry_of,
    swap_to,
)

A, B = "owner-a", "owner-b"


def added(core: ManagerCore, ref: Any, args: Any = None, owner: Any = None, **kw: Any) -> Any:
    """Install ``ref`` (the driver's checks included); return its instance."""
    notices: list[HandlerExit] = kw.pop("notices", [])
    on_exit = notices.append if owner is not None else None
    run = drive(core, core.add_handler(ref, args, owner, on_exit, **kw))
    assert run.error is None, run.error
    return entry_of(core, ref).instance


def owners(core: ManagerCore) -> dict[Any, int]:
    return dict(core._owners)


# -- add_handler -----------------------------------------------------------------------------


def test_add_creates_inits_installs_first_and_watches_a_new_owner() -> None:
    core = ManagerCore("m")
    notices: list[HandlerExit] = []
    run = drive(core, core.add_handler(H, 1, A, notices.append))
    assert run.effects == [("new", "H"), ("call", "H.init", (1,), {}), ("watch", A)]
    assert (run.reply, run.error) == (None, None)
    run = drive(core, core.add_handler((H, 2), 2, A, notices.append))
    assert run.effects == [("new", "H"), ("call", "H.init", (2,), {})]  # A watched already
    run = drive(core, core.add_handler(G))
    assert run.effects == [("new", "G"), ("call", "G.init", (), {})]  # NO_ARGS: init()
    assert core.which_handlers() == [G, (H, 2), H]
    assert list(core.by_ref) == [H, (H, 2), G]
    assert owners(core) == {A: 2}
    assert notices == []


def test_add_args_forms() -> None:
    core = ManagerCore()
    run = drive(core, core.add_handler(H, Args(1, handoff=2)))
    assert run.effects[1] == ("call", "H.init", (1,), {"handoff": 2})  # a plain add: as given
    assert entry_of(core, H).instance.handoff == 2
    run = drive(core, core.add_handler(G, Args(7)))
    assert run.effects[1] == ("call", "G.init", (7,), {})
    run = drive(core, core.add_handler((G, 1), Args(x=1)))
    assert run.effects[1] == ("call", "G.init", (), {"x": 1})
    assert run.error is not None  # init(x=1): G.init takes no x
    run = drive(core, core.add_handler((G, 2), None))
    assert run.effects[1] == ("call", "G.init", (None,), {})  # None is passed
    run = drive(core, core.add_handler((G, 3), (1, 2)))
    assert run.effects[1] == ("call", "G.init", ((1, 2),), {})  # a tuple is one argument


def test_add_without_init_or_with_a_missing_argument() -> None:
    core = ManagerCore()
    assert drive(core, core.add_handler(Bare)).effects == [("new", "Bare")]
    run = drive(core, core.add_handler(Needs))
    assert run.effects == []  # refused before anything is created
    assert isinstance(run.error, HandlerInitFailed)
    assert run.error.missing == ("value",)
    assert drive(core, core.add_handler(Needs, 3)).error is None
    assert core.which_handlers() == [Needs, Bare]


@pytest.mark.parametrize(
    ("answers", "effects"),
    [
        ({"H": Raised(TypeError("ctor"))}, [("new", "H")]),
        ({"H.init": Raised(ValueError("no"))}, [("new", "H"), ("call", "H.init", (1,), {})]),
        ({"H.init": Returned("oops")}, [("new", "H"), ("call", "H.init", (1,), {})]),
    ],
)
def test_add_whose_start_fails_installs_nothing_terminates_nothing(
    answers: Any, effects: list[Any]
) -> None:
    core = ManagerCore()
    notices: list[HandlerExit] = []
    run = drive(core, core.add_handler(H, 1, A, notices.append), answers)
    assert run.effects == effects  # no terminate, no watch
    assert isinstance(run.error, HandlerInitFailed)
    assert core.entries == []
    assert owners(core) == {}
    assert notices == []


def test_add_refusals_run_no_user_code() -> None:
    core = ManagerCore()
    added(core, H)
    for proc, error in [
        (core.add_handler(H), HandlerExists),
        (core.add_handler(object), InvalidHandler),
        (core.add_handler((H, [])), InvalidHandler),
        (core.add_handler("H"), InvalidHandler),
        (ManagerCore(allow_async=False).add_handler(Async), InvalidHandler),
    ]:
        run = drive(core, proc)
        assert run.effects == []
        assert isinstance(run.error, error)
    run = drive(core, core.add_handler(G, restart=restart_spec("permanent", None)))
    assert isinstance(run.error, ValueError)  # no clock: no restart policy
    assert core.which_handlers() == [H]


def test_add_async_handler_counts_and_awaits() -> None:
    core = ManagerCore()
    added(core, Async)
    assert core.async_count == 1
    run = drive(core, core.delete_handler(Async, "x"))
    assert run.reply == ("async bye", Deleted("x"))
    assert core.async_count == 0


def test_add_when_init_installs_the_same_id_reentrantly() -> None:
    """A re-entrant add of the same id during init: the first add is refused afterwards
    (and the handler whose init succeeded is dropped without terminate)."""
    core = ManagerCore()

    def reenter(effect: Any) -> Any:
        assert drive(core, core.add_handler(H, "inner"), check=False).error is None
        return Returned(None)

    run = drive(core, core.add_handler(H, "outer"), {"H.init": [reenter]})
    assert isinstance(run.error, HandlerExists)
    assert entry_of(core, H).instance.args == "inner"
    assert run.terminated() == []


# -- delete_handler --------------------------------------------------------------------------


def test_delete_terminates_then_tells_then_unwatches_and_returns_terminate() -> None:
    core = ManagerCore("m")
    notices: list[HandlerExit] = []
    added(core, H, owner=A, notices=notices)
    added(core, G, owner=A, notices=notices)
    run = drive(core, core.delete_handler(H, "why"))
    assert run.effects == [
        ("call", "H.terminate", (Deleted("why"),), {}),
        ("tell", HandlerExit(H, Deleted("why"), "m")),
    ]
    assert run.reply == ("bye", Deleted("why"))
    assert core.which_handlers() == [G]
    assert owners(core) == {A: 1}
    run = drive(core, core.delete_handler(G))
    assert run.effects == [
        ("call", "G.terminate", (Deleted(None),), {}),
        ("tell", HandlerExit(G, Deleted(None), "m")),
        ("unwatch", A),
    ]
    assert core.entries == []
    assert core.by_ref == {}
    assert owners(core) == {}
    assert notices == [HandlerExit(H, Deleted("why"), "m"), HandlerExit(G, Deleted(None), "m")]


def test_delete_whose_terminate_raises_still_removes_and_tells() -> None:
    core = ManagerCore("m")
    notices: list[HandlerExit] = []
    added(core, H, owner=A, notices=notices)
    boom = RuntimeError("t")
    run = drive(core, core.delete_handler(H, 1), {"H.terminate": Raised(boom)})
    assert run.effects == [
        ("call", "H.terminate", (Deleted(1),), {}),
        ("report", "terminate_raised", H),
        ("tell", HandlerExit(H, Deleted(1), "m")),
        ("unwatch", A),
    ]
    assert isinstance(run.error, TerminateFailed)
    assert run.error.cause is boom
    assert core.entries == []


def test_delete_without_terminate_and_refusals() -> None:
    core = ManagerCore()
    added(core, Bare)
    run = drive(core, core.delete_handler(Bare))
    assert (run.effects, run.reply) == ([], None)
    run = drive(core, core.delete_handler(Bare))
    assert isinstance(run.error, HandlerNotFound)
    assert run.effects == []
    run = drive(core, core.delete_handler(42))
    assert isinstance(run.error, InvalidHandler)


# -- swap_handler ----------------------------------------------------------------------------


def test_api_swap_hands_off_puts_the_new_first_and_keeps_the_owner() -> None:
    core = ManagerCore("m")
    notices: list[HandlerExit] = []
    added(core, H, owner=A, notices=notices)
    added(core, (H, 2))
    run = drive(core, core.swap_handler(H, "a1", G, "a2"))
    reason = Swapped("a1", G, A)
    assert run.effects == [
        ("call", "H.terminate", (reason,), {}),
        ("tell", HandlerExit(H, reason, "m")),
        ("new", "G"),
        ("call", "G.init", ("a2",), {"handoff": ("bye", reason)}),
    ]  # the owner stays: neither unwatched nor watched again
    assert run.reply is None
    assert core.which_handlers() == [G, (H, 2)]
    assert entry_of(core, G).owner == A
    assert entry_of(core, G).instance.handoff == ("bye", reason)
    assert owners(core) == {A: 1}
    # the new owner's notice goes through the old on_exit
    drive(core, core.delete_handler(G))
    assert notices[-1] == HandlerExit(G, Deleted(None), "m")


def test_sup_swap_gives_the_new_handler_the_callers_owner() -> None:
    core = ManagerCore("m")
    old_notices: list[HandlerExit] = []
    new_notices: list[HandlerExit] = []
    added(core, H, owner=A, notices=old_notices)
    run = drive(core, core.swap_handler(H, 1, G, 2, sup=True, owner=B, on_exit=new_notices.append))
    reason = Swapped(1, G, B)
    assert run.effects == [
        ("call", "H.terminate", (reason,), {}),
        ("tell", HandlerExit(H, reason, "m")),
        ("new", "G"),
        ("call", "G.init", (2,), {"handoff": ("bye", reason)}),
        ("watch", B),
        ("unwatch", A),
    ]
    assert owners(core) == {B: 1}
    assert old_notices == [HandlerExit(H, reason, "m")]
    drive(core, core.stop())
    assert new_notices == [HandlerExit(G, Stopped(), "m")]


def test_sup_swap_to_the_same_owner_neither_unwatches_nor_watches() -> None:
    core = ManagerCore("m")
    notices: list[HandlerExit] = []
    added(core, H, owner=A, notices=notices)
    run = drive(core, core.swap_handler(H, 1, G, 2, sup=True, owner=A, on_exit=notices.append))
    assert [k for k in run.kinds() if k in ("watch", "unwatch")] == []
    assert owners(core) == {A: 1}


def test_swap_from_a_missing_handler_installs_the_new_with_no_handoff() -> None:
    core = ManagerCore()
    added(core, G)
    run = drive(core, core.swap_handler(H, 1, (H, 9), 2))
    assert run.effects == [("new", "H"), ("call", "H.init", (2,), {"handoff": NO_HANDOFF})]
    assert core.which_handlers() == [(H, 9), G]


def test_swap_to_an_init_without_handoff_passes_none() -> None:
    core = ManagerCore()
    added(core, H)
    run = drive(core, core.swap_handler(H, 1, NoHandoff))
    assert run.effects[-1] == ("call", "NoHandoff.init", (), {})  # no args: init()


def test_swap_whose_new_init_fails_leaves_the_old_gone() -> None:
    core = ManagerCore("m")
    notices: list[HandlerExit] = []
    added(core, H, owner=A, notices=notices)
    run = drive(core, core.swap_handler(H, 1, G, 2), {"G.init": Raised(ValueError("no"))})
    reason = Swapped(1, G, A)
    assert run.effects == [
        ("call", "H.terminate", (reason,), {}),
        ("tell", HandlerExit(H, reason, "m")),
        ("new", "G"),
        ("call", "G.init", (2,), {"handoff": ("bye", reason)}),
        ("unwatch", A),
    ]
    assert isinstance(run.error, HandlerInitFailed)
    assert core.entries == []
    assert owners(core) == {}
    assert len(run.terminated()) == 1  # the old one's only: G never started


def test_swap_into_an_installed_other_id_is_refused_before_anything() -> None:
    core = ManagerCore()
    added(core, H)
    added(core, G)
    run = drive(core, core.swap_handler(H, 1, G, 2))
    assert (run.effects, type(run.error)) == ([], HandlerExists)
    assert core.which_handlers() == [G, H]
    run = drive(core, core.swap_handler(H, 1, "nope", 2))
    assert (run.effects, type(run.error)) == ([], InvalidHandler)


def test_swap_into_its_own_id_replaces_it() -> None:
    core = ManagerCore()
    added(core, G)
    added(core, H, "first")
    run = drive(core, core.swap_handler(H, 1, H, "second"))
    assert run.kinds() == ["call", "new", "call"]
    assert entry_of(core, H).instance.args == "second"


# -- call / call_result ----------------------------------------------------------------------


@pytest.fixture
def called() -> tuple[ManagerCore, list[HandlerExit]]:
    core = ManagerCore("m")
    notices: list[HandlerExit] = []
    added(core, H, owner=A, notices=notices)
    added(core, G)
    return core, notices


def test_call_plain_reply_changes_nothing(called: Any) -> None:
    core, notices = called
    run = drive(core, core.call(H, "q"))
    assert run.effects == [("call", "H.handle_call", ("q",), {})]
    assert run.reply == ("reply", "q")
    assert core.which_handlers() == [G, H]
    assert notices == []


def test_call_that_raises_removes_reports_tells_and_raises(called: Any) -> None:
    core, notices = called
    boom = KeyError("k")
    run = drive(core, core.call(H, "q"), {"H.handle_call": Raised(boom)})
    assert run.effects == [
        ("call", "H.handle_call", ("q",), {}),
        ("call", "H.terminate", (Crashed(boom),), {}),
        ("report", "crash", H),
        ("tell", HandlerExit(H, Crashed(boom), "m")),
        ("unwatch", A),
    ]
    assert isinstance(run.error, HandlerCrashed)
    assert run.error.cause is boom
    assert run.raw[2].callback == "handle_call"
    assert run.raw[2].message == "q"
    assert core.which_handlers() == [G]
    assert core.crashes == 1
    assert notices == [HandlerExit(H, Crashed(boom), "m")]


def test_call_remove_replies_after_the_removal(called: Any) -> None:
    core, _ = called
    run = drive(core, core.call(H, "q"), {"H.handle_call": Returned(Remove("done"))})
    assert run.effects == [
        ("call", "H.handle_call", ("q",), {}),
        ("call", "H.terminate", (RemovedItself(),), {}),
        ("tell", HandlerExit(H, RemovedItself(), "m")),
        ("unwatch", A),
    ]
    assert run.reply == "done"
    assert core.crashes == 0


def test_call_swap_keeps_the_place_and_the_owner(called: Any) -> None:
    core, _ = called
    added(core, (H, 3))
    assert core.which_handlers() == [(H, 3), G, H]
    swap = Swap("a1", (G, 7), "a2", reply="swapped")
    run = drive(core, core.call(G, "q"), {"G.handle_call": Returned(swap)})
    reason = Swapped("a1", (G, 7), None)
    assert run.effects == [
        ("call", "G.handle_call", ("q",), {}),
        ("call", "G.terminate", (reason,), {}),
        ("new", "G"),
        ("call", "G.init", ("a2",), {"handoff": ("bye", reason)}),
    ]
    assert run.reply == "swapped"
    assert core.which_handlers() == [(H, 3), (G, 7), H]
    # with an owner: kept, not watched again
    run = drive(core, core.call(H, "q"), {"H.handle_call": Returned(Swap(1, (H, 8)))})
    assert run.kinds() == ["call", "call", "tell", "new", "call"]
    assert entry_of(core, (H, 8)).owner == A
    assert core.which_handlers() == [(H, 3), (G, 7), (H, 8)]


@pytest.mark.parametrize(
    "value",
    [
        Remove,
        Swap,
        swap_to("not a handler"),
        swap_to(object),
        swap_to((H, [])),
        Swap(1, G),  # installed: another id
        42,
    ],
    ids=["Remove", "Swap", "str", "no-handle_event", "unhashable-id", "installed", "int"],
)
def test_call_bad_returns(called: Any, value: Any) -> None:
    core, _ = called
    if value == 42:  # an int is a reply from handle_call, not a bad return
        assert drive(core, core.call(H, "q"), {"H.handle_call": Returned(42)}).reply == 42
        return
    run = drive(core, core.call(H, "q"), {"H.handle_call": Returned(value)})
    assert run.effects == [
        ("call", "H.handle_call", ("q",), {}),
        ("call", "H.terminate", (BadReturn(value),), {}),
        ("report", "crash", H),
        ("tell", HandlerExit(H, BadReturn(value), "m")),
        ("unwatch", A),
    ]
    assert isinstance(run.error, HandlerBadReturn)
    assert run.error.value is value
    assert core.which_handlers() == [G]


def test_call_refusals(called: Any) -> None:
    core, _ = called
    added(core, Bare)
    for ref, error in [(Bare, CallNotSupported), ((H, 5), HandlerNotFound), (1, InvalidHandler)]:
        run = drive(core, core.call(ref, "q"))
        assert (run.effects, type(run.error)) == ([], error)
    assert core.which_handlers() == [Bare, G, H]


@pytest.mark.parametrize(
    ("out", "answer"),
    [
        (Returned("r"), "r"),
        (Returned(Remove("r")), "r"),
        (Returned(Swap(1, G, reply="s")), "s"),
        (Raised(KeyError("k")), HandlerCrashed),
        (Returned(Remove), HandlerBadReturn),
        (Returned(Swap), HandlerBadReturn),
    ],
)
def test_a_late_call_result_only_answers(called: Any, out: Any, answer: Any) -> None:
    """The outcome of a handler that left meanwhile: the caller's answer, nothing else."""
    core, _ = called
    entry = entry_of(core, H)
    drive(core, core.delete_handler(H))
    run = drive(core, core.call_result(entry, out, "q"))
    assert run.effects == []
    if isinstance(answer, type):
        assert isinstance(run.error, answer)
    else:
        assert run.reply == answer
    assert core.which_handlers() == [G]


# -- notify / event_result -------------------------------------------------------------------


def test_notify_visits_newest_first_and_a_crash_does_not_stop_the_rest() -> None:
    core = ManagerCore("m")
    for ref in (H, G, (H, 2)):
        added(core, ref)
    boom = ValueError("e")
    run = drive(core, core.notify("ev"), {"G.handle_event": Raised(boom)})
    assert run.effects == [
        ("call", "H.handle_event", ("ev",), {}),
        ("call", "G.handle_event", ("ev",), {}),
        ("call", "G.terminate", (Crashed(boom),), {}),
        ("report", "crash", G),
        ("call", "H.handle_event", ("ev",), {}),
    ]
    assert [e.args for e in run.raw[:2]] == [("ev",), ("ev",)]
    assert core.which_handlers() == [(H, 2), H]
    assert core.crashes_by_ref is not None


def test_a_handler_swapped_in_during_an_event_does_not_see_it() -> None:
    core = ManagerCore()
    added(core, H)
    added(core, G)
    run = drive(core, core.notify("ev"), {"G.handle_event": [Returned(Swap(1, (G, 2)))]})
    assert [e[1] for e in run.effects if e[0] == "call"] == [
        "G.handle_event",
        "G.terminate",
        "G.init",
        "H.handle_event",
    ]
    assert core.which_handlers() == [(G, 2), H]


@pytest.mark.parametrize(
    ("out", "effects", "left"),
    [
        (Returned(None), [], False),
        (Raised(ValueError("x")), ["terminate", "crash", "tell", "unwatch"], True),
        (Returned(42), ["terminate", "crash", "tell", "unwatch"], True),
        (Returned(Remove()), ["terminate", "tell", "unwatch"], True),
        (Returned(Remove), ["terminate", "crash", "tell", "unwatch"], True),
        (Returned(Swap), ["terminate", "crash", "tell", "unwatch"], True),
        (Returned(swap_to(2)), ["terminate", "crash", "tell", "unwatch"], True),
        (Returned(Swap(1, G)), ["terminate", "crash", "tell", "unwatch"], True),
        (Returned(Swap(1, Bare)), ["terminate", "tell", "new"], True),
    ],
)
def test_event_result(out: Any, effects: list[str], left: bool) -> None:
    core = ManagerCore("m")
    added(core, G)
    added(core, H, owner=A)
    entry = entry_of(core, H)
    run = drive(core, core.event_result(entry, out, "ev"))
    short = [
        e[1].split(".")[-1] if e[0] == "call" else e[1] if e[0] == "report" else e[0]
        for e in run.effects
    ]
    assert short == effects
    assert run.reply is None
    assert run.error is None
    assert (core.find(H) is None) == left
    if isinstance(out, Returned) and out.value == Swap(1, Bare):
        assert core.which_handlers() == [Bare, G]  # its place, its owner
        assert owners(core) == {A: 1}


def test_event_result_of_a_handler_that_left_does_nothing() -> None:
    core = ManagerCore()
    added(core, H)
    entry = entry_of(core, H)
    drive(core, core.delete_handler(H))
    assert drive(core, core.event_result(entry, Raised(ValueError()), "ev")).effects == []


def test_swap_by_return_whose_new_init_fails() -> None:
    core = ManagerCore("m")
    added(core, H, owner=A)
    added(core, G)
    boom = ValueError("init")
    run = drive(
        core,
        core.event_result(entry_of(core, H), Returned(Swap(1, (G, 2), 3)), "ev"),
        {"G.init": Raised(boom)},
    )
    reason = Swapped(1, (G, 2), A)
    assert run.effects == [
        ("call", "H.terminate", (reason,), {}),
        ("tell", HandlerExit(H, reason, "m")),
        ("new", "G"),
        ("call", "G.init", (3,), {"handoff": ("bye", reason)}),
        ("report", "crash", (G, 2)),
        ("tell", HandlerExit((G, 2), StartFailed(boom), "m")),
        ("unwatch", A),
    ]
    assert run.raw[4].reason == StartFailed(boom)
    assert core.which_handlers() == [G]
    # a bad value from init
    added(core, H, owner=A)
    run = drive(
        core,
        core.event_result(entry_of(core, H), Returned(Swap(1, (G, 2), 3)), "ev"),
        {"G.init": Returned("no")},
    )
    assert run.notices()[-1] == HandlerExit((G, 2), StartFailed(BadReturn("no")), "m")


# -- info ------------------------------------------------------------------------------------


def test_info_visits_newest_first_and_warns_for_a_handler_without_handle_info() -> None:
    core = ManagerCore()
    added(core, H)
    added(core, Bare)
    added(core, G)
    run = drive(core, core.info("i"), {"G.handle_info": Returned(5)})
    assert run.effects == [
        ("call", "G.handle_info", ("i",), {}),
        ("call", "G.terminate", (BadReturn(5),), {}),
        ("report", "crash", G),
        ("report", "no_handle_info", Bare),
        ("call", "H.handle_info", ("i",), {}),
    ]
    assert run.raw[2].callback == "handle_info"
    assert core.which_handlers() == [Bare, H]
    assert core.infos == 1


# -- owner_down ------------------------------------------------------------------------------


def test_owner_down_terminates_its_handlers_newest_first_and_tells_nobody() -> None:
    core = ManagerCore("m")
    notices: list[HandlerExit] = []
    added(core, H, owner=A, notices=notices)
    added(core, G, owner=B, notices=notices)
    added(core, (H, 2), owner=A, notices=notices)
    exc = RuntimeError("gone")
    run = drive(core, core.owner_down(A, exc))
    assert run.effects == [
        ("call", "H.terminate", (OwnerExited(exc),), {}),
        ("call", "H.terminate", (OwnerExited(exc),), {}),
        ("unwatch", A),
    ]
    assert [i.args for i in run.terminated()] == [None, None]
    assert core.which_handlers() == [G]
    assert owners(core) == {B: 1}
    assert notices == []
    assert drive(core, core.owner_down(A, None)).effects == []  # not an owner any more
    assert drive(core, core.owner_down("stranger", None)).effects == []


# -- get_state -------------------------------------------------------------------------------


def test_get_state_snapshots_newest_first() -> None:
    core = ManagerCore()
    added(core, H, 1)
    added(core, Status)
    added(core, G, 2)
    run = drive(core, core.get_state(), {"_snapshot": [Returned({"x": 1})]})
    assert [e[:2] for e in run.effects] == [("call", "_snapshot")] * 3
    assert run.reply == [
        (G, {"x": 1}),
        (Status, "redacted"),
        (H, {"args": 1, "handoff": NO_HANDOFF}),
    ]
    run = drive(core, core.get_state(), {"_snapshot": [Raised(ValueError())]})
    assert run.reply[0] == (G, "<format_status raised ValueError; state hidden>")
    assert drive(ManagerCore(), ManagerCore().get_state()).reply == []


# -- stop ------------------------------------------------------------------------------------


def test_stop_terminates_everyone_newest_first_then_tells_each_owner() -> None:
    core = ManagerCore("m")
    notices: list[HandlerExit] = []
    added(core, H, owner=A, notices=notices)
    added(core, Bare)
    added(core, G, owner=A, notices=notices)
    run = drive(core, core.stop())
    assert run.effects == [
        ("call", "G.terminate", (Stopped(),), {}),
        ("tell", HandlerExit(G, Stopped(), "m")),
        ("call", "H.terminate", (Stopped(),), {}),
        ("tell", HandlerExit(H, Stopped(), "m")),
        ("unwatch", A),
    ]
    assert run.reply is None
    assert core.entries == []
    assert (core.stopped, core.stopping, core.restarts_off) == (True, True, True)
    assert drive(core, core.stop()).effects == []


def test_no_args_default_is_not_none() -> None:
    core = ManagerCore()
    run = drive(core, core.add_handler(H, NO_ARGS))
    assert run.effects[1] == ("call", "H.init", (), {})
    assert entry_of(core, H).instance.args is None  # init's default
