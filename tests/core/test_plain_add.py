"""The core's plain add (``plain_add``) against its general procedure
(``ManagerCore.add_handler``): on random sequences of adds and deletes, both leave the same
table, give the same replies and errors, run the same callbacks and terminate with the same
reasons."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from genevent._core import NO_ARGS, Args, ManagerCore, plain_add

from .driver import drive

LOG: list[tuple[Any, ...]] = []


class Ok:
    def init(self, x: Any = None) -> None:
        LOG.append(("init", type(self).__name__, x))

    def handle_event(self, event: Any) -> None:
        pass

    def terminate(self, reason: Any) -> Any:
        LOG.append(("terminate", type(self).__name__, type(reason).__name__))
        return "bye"


class Needs(Ok):
    def init(self, x: Any, y: Any = 0) -> None:  # type: ignore[override]
        LOG.append(("init", "Needs", x, y))


class InitRaises(Ok):
    def init(self, x: Any = None) -> None:
        raise ValueError("no")


class InitReturns(Ok):
    def init(self, x: Any = None) -> Any:
        return "something"


class NewRaises(Ok):
    def __init__(self) -> None:
        raise RuntimeError("cannot")


class NoInit:
    def handle_event(self, event: Any) -> None:
        pass


class AsyncInit(Ok):
    async def init(self, x: Any = None) -> None:  # type: ignore[override]
        LOG.append(("async init", x))


class TerminateRaises(Ok):
    def terminate(self, reason: Any) -> Any:
        raise ValueError("in terminate")


CLASSES = (Ok, Needs, InitRaises, InitReturns, NewRaises, NoInit, AsyncInit, TerminateRaises)
ARGS = (NO_ARGS, None, 1, Args(2, y=3), Args(4))

refs = st.tuples(st.sampled_from(CLASSES), st.sampled_from((None, 1, 2))).map(
    lambda t: t[0] if t[1] is None else t
)
ops = st.lists(
    st.one_of(
        st.tuples(st.just("add"), refs, st.sampled_from(ARGS)),
        st.tuples(st.just("delete"), refs, st.sampled_from((None, "why"))),
        st.tuples(st.just("add"), st.sampled_from((42, (Ok, [1]), (1, 2))), st.just(NO_ARGS)),
    ),
    max_size=25,
)


def _answer(run: Any) -> tuple[Any, ...]:
    err = run.error
    if err is None:
        return ("reply", run.reply)
    cause = err.__cause__
    return ("error", type(err), str(err), type(cause), str(cause) if cause else None)


def _play(sequence: list[tuple[Any, ...]], *, plain: bool) -> list[Any]:
    LOG.clear()
    core = ManagerCore("m")
    seen: list[Any] = []
    for op, ref, arg in sequence:
        if op == "delete":
            run = drive(core, core.delete_handler(ref, arg))
        elif not plain:
            run = drive(core, core.add_handler(ref, arg))
        else:
            try:
                rest = plain_add(core, ref, arg)
            except Exception as exc:
                seen.append(("error", type(exc), str(exc), type(exc.__cause__), _s(exc)))
                seen.append((core.which_handlers(), list(LOG)))
                continue
            if rest is None:
                seen.append(("reply", None))
                seen.append((core.which_handlers(), list(LOG)))
                continue
            run = drive(core, rest)
        seen.append(_answer(run))
        seen.append((core.which_handlers(), list(LOG)))
    seen.append(drive(core, core.stop()).error)
    seen.append(list(LOG))
    return seen


def _s(exc: BaseException) -> str | None:
    return str(exc.__cause__) if exc.__cause__ else None


@settings(deadline=None, max_examples=300)
@given(ops)
def test_plain_add_does_what_the_general_procedure_does(sequence: list[Any]) -> None:
    assert _play(sequence, plain=True) == _play(sequence, plain=False)


def test_a_keyboard_interrupt_in_init_is_left_to_the_driver_as_its_own() -> None:
    class Interrupted(Ok):
        def init(self, x: Any = None) -> None:
            raise KeyboardInterrupt

    core = ManagerCore("m")
    rest = plain_add(core, Interrupted, NO_ARGS)
    assert rest is not None  # the rest of the procedure: its first effect raises it again
    run = drive(core, rest)
    general = ManagerCore("m")
    expected = drive(general, general.add_handler(Interrupted, NO_ARGS))
    assert _answer(run) == _answer(expected)
    assert core.which_handlers() == general.which_handlers() == []
