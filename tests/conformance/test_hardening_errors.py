"""Error texts, argument checks and diagnostics, on every runtime.

* Error messages and crash reports stay small whatever the user data (a million-element list,
  an error passed up through many managers, an object whose ``__repr__`` raises):
  docs/semantics.md P17.
* Arguments are checked at the call, before anything runs, the same way on every path:
  docs/semantics.md P10 and P11.
* A timed-out call says what the manager was doing; a bad return says what was allowed:
  docs/semantics.md P2 and P19.
"""

from __future__ import annotations

import asyncio
import logging
import math
import threading
from typing import Any

import pytest

import genevent
from genevent import (
    BadReturn,
    CallTimeout,
    GenEventError,
    HandlerBadReturn,
    HandlerCrashed,
    HandlerExists,
    HandlerInitFailed,
    InvalidHandler,
    InvalidName,
    InvalidOwner,
    Remove,
    StartFailed,
    Swap,
    Swapped,
    threads,
)
from genevent.threads import _exit, _state
from tests.handlers import H2, WAIT, H, Recorder, Spec, raise_, returns
from tests.runtimes import Facade, Runtime, ThreadsRuntime

BOUND = 2000  # no message or report line about user data may be longer than this
HUGE = list(range(1_000_000))


def spec(rec: Recorder, name: Any = "h", **kw: Any) -> Spec:
    return Spec(rec, name, **kw)


def error_reports(reports: Any) -> list[logging.LogRecord]:
    return [r for r in reports.records if r.levelno == logging.ERROR]


class Unreprable:
    """An object whose ``__repr__`` raises."""

    def __repr__(self) -> str:
        raise RuntimeError("no repr for you")


class UnreprableError(Exception):
    def __repr__(self) -> str:
        raise RuntimeError("no repr for you")

    def __str__(self) -> str:
        raise RuntimeError("no str either")


class _UnhashableMeta(type):
    def __eq__(cls, other: object) -> bool:
        return cls is other

    __hash__ = None  # type: ignore[assignment]  # its classes cannot be hashed


class Unhashable(H, metaclass=_UnhashableMeta):
    """A handler class that cannot be hashed (its metaclass has __eq__ without __hash__)."""


# -- bounded error texts and reports --------------------------------------------------------


def test_nested_errors_stay_small() -> None:
    err: BaseException = ValueError("x" * 100_000)
    for _ in range(22):
        nxt = HandlerCrashed(H, err)
        nxt.__cause__ = err
        err = nxt
    assert len(str(err)) < BOUND
    assert len(repr(err)) < BOUND
    assert isinstance(err, HandlerCrashed)
    assert isinstance(err.cause, HandlerCrashed)


def _chain_link(rt: Runtime) -> type:
    """A handler whose handle_call calls the same handler on the next manager (the last one
    raises), so that a call crashes through the whole chain."""
    if rt.name.startswith("aio"):

        class AsyncLink(H):
            async def handle_call(self, request: Any, /) -> Any:
                nxt = self.spec.extra.get("next")
                if nxt is None:
                    raise ValueError("deep " * 20_000)
                return await nxt.call(AsyncLink, request, timeout=WAIT)

        return AsyncLink

    class Link(H):
        def handle_call(self, request: Any, /) -> Any:
            nxt = self.spec.extra.get("next")
            if nxt is None:
                raise ValueError("deep " * 20_000)
            return nxt.call(Link, request, timeout=WAIT)

    return Link


def test_crash_through_a_chain_of_managers_stays_small(rt: Runtime, rec: Recorder) -> None:
    link = _chain_link(rt)
    managers = [rt.start() for _ in range(22)]
    nxt = None
    for i, m in reversed(list(enumerate(managers))):
        m.add_handler(link, spec(rec, i, extra={"next": nxt}))
        nxt = m.mgr
    with pytest.raises(HandlerCrashed) as info:
        managers[0].call(link, "q", timeout=WAIT)
    assert len(str(info.value)) < BOUND
    depth = 0
    cause: BaseException = info.value
    while isinstance(cause, HandlerCrashed):
        assert cause.__cause__ is cause.cause  # chained, not embedded
        depth, cause = depth + 1, cause.cause
    assert depth == 22
    assert isinstance(cause, ValueError)


def test_bad_return_report_is_bounded(rt: Runtime, rec: Recorder, reports: Any) -> None:
    m = rt.start()
    m.add_handler(H, spec(rec, event=returns(HUGE)))
    m.sync_notify(HUGE)
    (report,) = error_reports(reports)
    text = report.getMessage()
    assert len(text) < 4 * BOUND
    assert "Reason == BadReturn(value=[0, 1, 2" in text
    assert rec.terminations() == [("h", BadReturn(HUGE))]


def test_bad_return_error_is_bounded(rt: Runtime, rec: Recorder) -> None:
    m = rt.start()
    m.add_handler(H, spec(rec, call=returns(Swap(HUGE, object))))
    with pytest.raises(HandlerBadReturn) as info:
        m.call(H, "q")
    assert len(str(info.value)) < BOUND
    assert "handle_call may return" in str(info.value)


@pytest.mark.parametrize("how", ["returns", "raises"])
def test_init_failure_is_bounded(rt: Runtime, rec: Recorder, how: str) -> None:
    m = rt.start()
    init = returns(HUGE) if how == "returns" else raise_(ValueError(HUGE))
    with pytest.raises(HandlerInitFailed) as info:
        m.add_handler(H, spec(rec, init=init))
    assert len(str(info.value)) < BOUND
    assert len(repr(info.value)) < BOUND


def test_unreprable_data_still_reported(rt: Runtime, rec: Recorder, reports: Any) -> None:
    m = rt.start()
    m.add_handler(H, spec(rec, event=returns(Unreprable())))
    m.sync_notify(Unreprable())
    (report,) = error_reports(reports)
    text = report.getMessage()  # formatting the report must not raise
    assert "Unreprable" in text
    assert "BadReturn" in text


def test_unreprable_errors_still_have_messages(rt: Runtime, rec: Recorder) -> None:
    m = rt.start()
    m.add_handler(H, spec(rec, call=raise_(UnreprableError())))
    with pytest.raises(HandlerCrashed) as info:
        m.call(H, "q")
    assert "UnreprableError" in str(info.value)
    ref = (H, Unreprable())
    m.add_handler(ref, spec(rec, "u"))
    with pytest.raises(HandlerExists) as exists:
        m.add_handler(ref, spec(rec, "u2"))
    assert "Unreprable" in str(exists.value)


def test_swap_target_init_failure_report_has_its_traceback(
    rt: Runtime, rec: Recorder, reports: Any
) -> None:
    m = rt.start()
    boom = KeyError("no start")
    new = spec(rec, "new", init=raise_(boom))
    m.add_handler(H, spec(rec, "old", event=returns(Swap("a1", H2, new))))
    m.sync_notify("go")
    assert rec.terminations() == [("old", Swapped("a1", H2, None))]
    (report,) = error_reports(reports)
    assert report.exc_info is not None
    assert report.exc_info[1] is boom
    assert isinstance(report.genevent["reason"], StartFailed)  # type: ignore[attr-defined]
    assert "init" in report.getMessage()


# -- arguments checked before anything runs ---------------------------------------------------

BAD_TIMEOUTS = [
    pytest.param("5", TypeError, id="str"),
    pytest.param(True, TypeError, id="bool"),
    pytest.param([1], TypeError, id="list"),
    pytest.param(math.nan, ValueError, id="nan"),
    pytest.param(-1, ValueError, id="negative"),
    pytest.param(-math.inf, ValueError, id="minus-inf"),
]


@pytest.mark.parametrize(("bad", "error"), BAD_TIMEOUTS)
def test_bad_timeout_refused_before_anything_runs(
    rt: Runtime, rec: Recorder, bad: Any, error: type[Exception]
) -> None:
    m = rt.start()
    with pytest.raises(error):
        m.add_handler(H, spec(rec), timeout=bad)
    assert m.which_handlers() == []
    assert rec.of("h", "init") == []
    m.add_handler(H, spec(rec))
    with pytest.raises(error):
        m.call(H, "q", timeout=bad)
    with pytest.raises(error):
        m.sync_notify("e", timeout=bad)
    with pytest.raises(error):
        m.swap_handler(H, None, H2, spec(rec, "new"), timeout=bad)
    with pytest.raises(error):
        m.delete_handler(H, timeout=bad)
    with pytest.raises(error):
        m.which_handlers(timeout=bad)
    with pytest.raises(error):
        m.get_state(timeout=bad)
    with pytest.raises(error):
        m.stop(timeout=bad)
    assert rec.of("h", "call") == []
    assert rec.of("h", "event") == []
    assert rec.terminations() == []
    assert m.which_handlers() == [H]
    assert m.is_running


def test_infinite_timeout_means_no_timeout(rt: Runtime, rec: Recorder) -> None:
    m = rt.start()
    m.add_handler(H, spec(rec), timeout=math.inf)
    m.sync_notify("e", timeout=math.inf)
    assert m.call(H, "q", timeout=math.inf) == ("h", "q", ["e"])
    assert m.call(H, "q", timeout=1e300) == ("h", "q", ["e"])
    assert m.which_handlers(timeout=math.inf) == [H]
    m.swap_handler(H, None, H2, spec(rec, "new"), timeout=math.inf)
    assert m.delete_handler(H2, timeout=math.inf) == ("terminated", "new")
    m.stop(timeout=math.inf)
    assert not m.is_running


def _wait_stopped(rt: Runtime, m: Facade) -> None:
    rt.main.run(m.mgr.wait_stopped)


def test_zero_timeout_always_times_out_and_delivers(rt: Runtime, rec: Recorder) -> None:
    m = rt.start()
    m.add_handler(H, spec(rec))
    # idle manager: the request could run at once in the caller, but it is only delivered
    with pytest.raises(CallTimeout) as info:
        m.call(H, "q0", timeout=0)
    assert info.value.timeout == 0
    with pytest.raises(CallTimeout):
        m.sync_notify("e0", timeout=0)
    with pytest.raises(CallTimeout):
        m.which_handlers(timeout=0)
    with pytest.raises(CallTimeout):
        m.add_handler(H2, spec(rec, "two"), timeout=0)
    # everything was delivered and is handled in its turn
    assert m.call(H, "q1") == ("h", "q1", ["e0"])
    assert rec.of("h", "call") == ["q0", "q1"]
    assert m.which_handlers() == [H2, H]
    with pytest.raises(CallTimeout):
        m.stop(timeout=0)
    _wait_stopped(rt, m)
    assert not m.is_running
    assert sorted(name for name, _ in rec.terminations()) == ["h", "two"]


@pytest.mark.parametrize(
    "ref",
    [
        pytest.param("not a handler", id="str"),
        pytest.param((H, []), id="unhashable-id"),
        pytest.param(42, id="int"),
        pytest.param(object, id="no-handle-event"),
    ],
)
def test_not_a_handler_reference_is_invalid_handler(rt: Runtime, rec: Recorder, ref: Any) -> None:
    m = rt.start()
    m.add_handler(H, spec(rec))
    with pytest.raises(InvalidHandler):
        m.call(ref, "q")
    with pytest.raises(InvalidHandler):
        m.delete_handler(ref)
    with pytest.raises(InvalidHandler):
        m.swap_handler(ref, None, H2, spec(rec, "new"))
    with pytest.raises(InvalidHandler):
        m.swap_handler(H, None, ref, None)
    assert m.which_handlers() == [H]
    assert rec.terminations() == []


def test_on_exit_must_be_callable(rt: Runtime, rec: Recorder) -> None:
    m = rt.start()
    with pytest.raises(InvalidOwner) as info:
        m.add_sup_handler(H, spec(rec), on_exit="not callable")
    assert isinstance(info.value, TypeError)
    assert m.which_handlers() == []
    m.add_handler(H, spec(rec))
    with pytest.raises(InvalidOwner):
        m.swap_sup_handler(H, None, H2, spec(rec, "new"), on_exit=42)
    assert m.which_handlers() == [H]
    assert rec.of("h", "init") == [genevent.NO_HANDOFF]


def test_unhashable_handler_class_is_invalid_handler(rt: Runtime, rec: Recorder) -> None:
    m = rt.start()
    with pytest.raises(InvalidHandler):
        m.add_handler(Unhashable, spec(rec))
    with pytest.raises(InvalidHandler):
        m.call(Unhashable, "q")
    assert m.which_handlers() == []


@pytest.mark.parametrize("name", [[1], {"a": 1}, 5, b"bytes", ""])
def test_whereis_with_a_bad_name_is_a_typed_error(name: Any) -> None:
    with pytest.raises(InvalidName) as info:
        genevent.whereis(name)
    assert isinstance(info.value, GenEventError)
    assert isinstance(info.value, TypeError)


def test_aio_zero_timeout_with_coroutine_handlers(rec: Recorder) -> None:
    """The queued asyncio path (a coroutine handler keeps requests off the inline path)."""

    class AsyncH(H):
        async def handle_call(self, request: Any, /) -> Any:
            return H.handle_call(self, request)

    async def main() -> None:
        async with genevent.aio.start() as mgr:
            await mgr.add_handler(AsyncH, spec(rec))
            with pytest.raises(CallTimeout):
                await mgr.call(AsyncH, "q0", timeout=0)
            with pytest.raises(TypeError):
                await mgr.call(AsyncH, "bad", timeout="1")  # type: ignore[arg-type]
            assert await mgr.call(AsyncH, "q1") == ("h", "q1", [])

    asyncio.run(main())
    assert rec.of("h", "call") == ["q0", "q1"]


def test_thread_awaiting_forms_check_timeouts(rec: Recorder) -> None:
    with threads.start() as mgr:
        mgr.add_handler(H, spec(rec))

        async def main() -> None:
            with pytest.raises(TypeError):
                await mgr.acall(H, "bad", timeout="5")  # type: ignore[arg-type]
            with pytest.raises(ValueError, match="negative"):
                await mgr.async_sync_notify("bad", timeout=-1)
            with pytest.raises(CallTimeout):
                await mgr.acall(H, "q0", timeout=0)
            with pytest.raises(CallTimeout):
                await mgr.async_sync_notify("e0", timeout=0)
            assert await mgr.acall(H, "q1", timeout=math.inf) == ("h", "q1", ["e0"])

        asyncio.run(main())
        assert isinstance(mgr.call_future("nope", 1).exception(WAIT), InvalidHandler)  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="NaN"):
            mgr.wait_stopped(timeout=math.nan)
    assert rec.of("h", "call") == ["q0", "q1"]
    assert rec.of("h", "event") == ["e0"]


# -- diagnostics --------------------------------------------------------------------------------


def test_call_timeout_text() -> None:
    err = CallTimeout("call to Slow", 0.5, queued_ahead=3, running="Slow.handle_event")
    assert str(err) == (
        "call to Slow timed out after 0.5 s; 3 messages were queued ahead of it; "
        "Slow.handle_event was running"
    )
    assert (err.what, err.timeout, err.queued_ahead, err.running) == (
        "call to Slow",
        0.5,
        3,
        "Slow.handle_event",
    )
    assert "1 message was queued" in str(CallTimeout("stop", 1, queued_ahead=1))


def test_call_timeout_says_what_the_manager_was_doing(rt: Runtime, rec: Recorder) -> None:
    m = rt.start()
    gate = threading.Event()
    gated = rt.gated_handler()
    m.add_handler(gated, spec(rec, extra={"gate": gate}))
    try:
        assert m.mgr.queued == 0
        m.notify("first")
        rec.wait("h", "waiting")  # the manager is now inside Gated.handle_event
        for i in range(3):
            m.notify(i)
        assert m.mgr.queued == 3
        with pytest.raises(CallTimeout) as info:
            m.call(gated, "late", timeout=0.05)
    finally:
        gate.set()
    err = info.value
    assert err.queued_ahead == 3
    assert err.running == "Gated.handle_event"
    assert str(err).startswith("call to ")
    assert "3 messages were queued ahead of it; Gated.handle_event was running" in str(err)
    m.sync_notify("sync")
    assert m.mgr.queued == 0


@pytest.mark.parametrize("cls", [Remove, Swap], ids=["Remove", "Swap"])
def test_forgotten_parentheses_are_a_bad_return_from_handle_call(
    rt: Runtime, rec: Recorder, cls: type
) -> None:
    m = rt.start()
    m.add_handler(H, spec(rec, call=returns(cls)))
    with pytest.raises(HandlerBadReturn) as info:
        m.call(H, "q")
    assert info.value.value is cls
    assert info.value.callback == "handle_call"
    text = str(info.value)
    assert f"did you mean {cls.__name__}(" in text
    assert "handle_call may return the reply itself" in text
    assert m.which_handlers() == []
    assert rec.terminations() == [("h", BadReturn(cls))]


def test_a_class_is_still_a_valid_reply(rt: Runtime, rec: Recorder) -> None:
    m = rt.start()
    m.add_handler(H, spec(rec, call=returns(int)))
    assert m.call(H, "q") is int
    assert m.which_handlers() == [H]


@pytest.mark.parametrize(
    ("callback", "cls"),
    [("handle_event", Remove), ("handle_info", Swap)],
)
def test_bad_return_report_names_the_callback_and_what_it_may_return(
    rt: Runtime, rec: Recorder, reports: Any, callback: str, cls: type
) -> None:
    m = rt.start()
    if callback == "handle_event":
        m.add_handler(H, spec(rec, event=returns(cls)))
        m.sync_notify("e")
    else:
        m.add_handler(H, spec(rec, info=returns(cls)))
        m.send("i")
        m.sync_notify("e")  # the info was handled before this
    (report,) = error_reports(reports)
    text = report.getMessage()
    assert f"returned a bad value from {callback}" in text
    assert f"{callback} may return None, Remove() or Swap(args1, Handler, args2)" in text
    assert f"did you mean {cls.__name__}(" in text
    assert report.genevent["callback"] == callback  # type: ignore[attr-defined]


def test_exit_hook_logs_what_it_drops(request: pytest.FixtureRequest, reports: Any) -> None:
    rec = Recorder()
    gate = threading.Event()
    gated = ThreadsRuntime().gated_handler()
    mgr = threads.start()
    mgr.add_handler(gated, Spec(rec, extra={"gate": gate}))
    mgr.add_handler((H, "b"), Spec(rec, "b"))
    mgr.notify("first")
    rec.wait("h", "waiting")
    for i in range(3):
        mgr.notify(i)
    request.addfinalizer(lambda: _state.set_exiting(False))  # a rehearsal: the hook on mgr only
    try:
        _exit.stop_at_exit([mgr._srv], 0.0)
    finally:
        gate.set()
    mgr.wait_stopped(WAIT)
    (record,) = [r for r in error_reports(reports) if "at exit" in r.getMessage()]
    text = record.getMessage()
    assert "3 queued events dropped" in text
    assert "handlers not terminated: (H, 'b'), " in text
    assert "Gated" in text
    assert "Gated.handle_event was running" in text


def test_queued_is_a_documented_read_only_property() -> None:
    for cls in (genevent.aio.EventManager, threads.EventManager):
        prop = cls.__dict__["queued"]
        assert isinstance(prop, property)
        assert prop.fset is None
        assert prop.__doc__

    async def idle() -> int:
        async with genevent.aio.start() as mgr:
            return mgr.queued

    assert asyncio.run(idle()) == 0
