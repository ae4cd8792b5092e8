"""A test driver for the sans-I/O core: runs one procedure to its end and records every effect.

``drive(core, proc)`` sends each :class:`Invoke` the outcome of really calling its function (a
coroutine function's coroutine is stepped to its end: the handlers here never wait on anything),
or a scripted outcome; it records each effect as a plain tuple, in order, so that a test asserts
the exact sequence::

    ("new", "H")                        the class is instantiated (Invoke(cls))
    ("call", "H.init", args, kwargs)    a callback (kwargs {} when none)
    ("call", "_snapshot", (instance,), {})
    ("tell", HandlerExit(...))          TellOwner (the owner's ``on_exit`` is called too)
    ("watch", owner) / ("unwatch", owner)
    ("report", kind, handler)
    ("retry", handler, delay)
    ("settle",)

and it checks the table's consistency before every effect (rule 2 of ``_manager.py``) and once
the procedure answered. The procedure's answer is ``Run.reply`` or ``Run.error`` (never both):
the driver asserts that it answered exactly once, by returning or raising.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from genevent._core import (
    NO_HANDOFF,
    Effect,
    Entry,
    HandlerExit,
    Invoke,
    ManagerCore,
    Outcome,
    Procedure,
    Raised,
    Report,
    Retry,
    Returned,
    Settle,
    Swap,
    TellOwner,
    Unwatch,
    Watch,
)

__all__ = (
    "Answer",
    "FakeClock",
    "FakeLane",
    "Run",
    "check_table",
    "drive",
    "label",
    "swap_to",
)

Answer = Outcome | Callable[[Invoke], Outcome] | Sequence[Outcome | Callable[[Invoke], Outcome]]
"""A scripted answer to an Invoke: an outcome, a function of the effect giving one, or a list
of those consumed one per Invoke of that label (the function is really called once the list
is used up)."""


class FakeClock:
    """The runtime's monotonic clock, moved by hand."""

    def __init__(self, now: float = 0.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class FakeLane:
    """An isolated handler's lane as the core sees it: it only queues."""

    def __init__(self, name: str = "lane") -> None:
        self.name = name
        self.posted: list[Any] = []
        self.infos: list[Any] = []

    def post(self, event: Any) -> None:
        self.posted.append(event)

    def post_info(self, message: Any) -> None:
        self.infos.append(message)

    def __repr__(self) -> str:
        return f"FakeLane({self.name!r})"


def label(fn: Any) -> str:
    """How an Invoke's function is named in a record: ``"H"`` for the class itself,
    ``"H.init"`` for a bound method (the instance's class, not where it was defined)."""
    if isinstance(fn, type):
        return fn.__name__
    owner = getattr(fn, "__self__", None)
    if owner is not None and not isinstance(owner, type):
        return f"{type(owner).__name__}.{fn.__name__}"
    return str(getattr(fn, "__name__", fn))


def record(effect: Effect) -> tuple[Any, ...]:
    """The plain tuple a test compares for ``effect``."""
    if isinstance(effect, Invoke):
        if isinstance(effect.fn, type):
            return ("new", label(effect.fn))
        return ("call", label(effect.fn), effect.args, dict(effect.kwargs or {}))
    if isinstance(effect, TellOwner):
        return ("tell", effect.notice)
    if isinstance(effect, Watch):
        return ("watch", effect.owner)
    if isinstance(effect, Unwatch):
        return ("unwatch", effect.owner)
    if isinstance(effect, Report):
        return ("report", effect.kind, effect.handler)
    if isinstance(effect, Retry):
        return ("retry", effect.handler, effect.delay)
    if isinstance(effect, Settle):
        return ("settle",)
    raise AssertionError(f"not an effect: {effect!r}")


def call_really(effect: Invoke) -> Outcome:
    """Run an Invoke's function as a runtime would (a coroutine is stepped to its end)."""
    try:
        value = effect.fn(*effect.args, **(effect.kwargs or {}))
        if effect.is_async:
            coro = value
            try:
                while True:
                    coro.send(None)
            except StopIteration as stop:
                value = stop.value
    except BaseException as exc:
        return Raised(exc)
    return Returned(value)


def check_table(core: ManagerCore, *, answered: bool = True) -> None:
    """The table's own consistency: ``entries`` and ``by_ref`` agree, every entry is alive and
    installed once, each owner is counted once per handler it owns (waiting restarts included),
    and the counters match. Before the procedure ``answered``, an owner may be counted once more
    per handler on its way out (released after its ``terminate`` and its notice)."""
    entries = core.entries
    assert len({id(e) for e in entries}) == len(entries)
    assert [e.ref for e in entries] == list(dict.fromkeys(e.ref for e in entries))  # no dup
    assert core.by_ref == {e.ref: e for e in entries}
    assert all(e.alive for e in entries)
    owned: Counter[Any] = Counter(e.owner for e in entries if e.owner is not None)
    for entry, _reason in core.retrying.values():
        assert not entry.alive
        if entry.owner is not None:
            owned[entry.owner] += 1
    counted = core._owners  # the test reads the core's count
    assert all(n > 0 for n in counted.values())
    if answered:
        assert counted == dict(owned)
    else:
        assert all(counted.get(o, 0) >= n for o, n in owned.items())
    assert core.isolated == sum(1 for e in entries if e.lane is not None)
    assert core.async_count == sum(1 for e in entries if e.is_async)
    if core.cached_targets is not None:
        assert [e for e, _ in core.cached_targets] == entries


@dataclass
class Run:
    """What one procedure did."""

    effects: list[tuple[Any, ...]] = field(default_factory=list)
    #: the effects themselves, in the same order (Any: tests read each kind's fields)
    raw: list[Any] = field(default_factory=list)
    reply: Any = None
    error: BaseException | None = None
    #: instances created by ``Invoke(cls)`` during the run, in order
    created: list[Any] = field(default_factory=list)

    def kinds(self) -> list[str]:
        """The effects' first fields: ``["new", "call", "watch"]``."""
        return [e[0] for e in self.effects]

    def calls(self, name: str) -> list[tuple[Any, ...]]:
        """The arguments of every Invoke labelled ``name``."""
        return [e[2] for e in self.effects if e[0] == "call" and e[1] == name]

    def terminated(self) -> list[Any]:
        """The instances whose ``terminate`` ran, in order."""
        return [
            getattr(eff.fn, "__self__", None)
            for eff in self.raw
            if isinstance(eff, Invoke) and getattr(eff.fn, "__name__", "") == "terminate"
        ]

    def notices(self) -> list[HandlerExit]:
        return [e[1] for e in self.effects if e[0] == "tell"]

    def reports(self) -> list[str]:
        return [e[1] for e in self.effects if e[0] == "report"]


def drive(
    core: ManagerCore,
    proc: Procedure,
    answers: Mapping[str, Answer] | None = None,
    *,
    on_settle: Callable[[], None] | None = None,
    check: bool = True,
) -> Run:
    """Run ``proc`` to its end; see the module docstring. ``answers`` scripts the outcome of
    the Invokes by label (``"H.handle_call"``, ``"H"`` for creating an ``H``); ``on_settle``
    runs when the procedure yields :class:`Settle` (a runtime applies the isolated handlers'
    results then)."""
    pending: dict[str, list[Any]] = {}  # consumed in order
    always: dict[str, Any] = {}  # the same answer every time
    for name, answer in (answers or {}).items():
        if isinstance(answer, (list, tuple)):
            pending[name] = list(answer)
        else:
            always[name] = answer
    run = Run()
    send: Outcome | None = None
    answered = 0
    while True:
        try:
            effect = proc.send(send)
        except StopIteration as stop:
            answered += 1
            run.reply = stop.value
            break
        except Exception as exc:
            answered += 1
            run.error = exc
            break
        if check:
            check_table(core, answered=False)
        run.raw.append(effect)
        run.effects.append(record(effect))
        send = None
        if isinstance(effect, Invoke):
            name = label(effect.fn)
            queue = pending.get(name)
            scripted = queue.pop(0) if queue else always.get(name)
            if scripted is None:
                send = call_really(effect)
            else:
                send = scripted(effect) if callable(scripted) else scripted
            if isinstance(effect.fn, type) and isinstance(send, Returned):
                run.created.append(send.value)
        elif isinstance(effect, TellOwner):
            effect.on_exit(effect.notice)
        elif isinstance(effect, Settle) and on_settle is not None:
            on_settle()
    assert answered == 1
    if check:
        check_table(core)
    return run


def swap_to(handler: Any, args1: Any = 1) -> Swap[Any]:
    """A ``Swap`` to anything, a malformed one included (typed Any on purpose)."""
    return Swap(args1, handler)


def entry_of(core: ManagerCore, ref: Any) -> Entry:
    """The installed entry of ``ref`` (the test fails if there is none)."""
    entry = core.find(ref)
    assert entry is not None, f"{ref!r} is not installed"
    return entry


# -- handlers --------------------------------------------------------------------------------


class H:
    """A handler with every callback: replies ``("reply", request)``, terminates with
    ``("bye", reason)``, and keeps what its ``init`` got."""

    def init(self, args: Any = None, *, handoff: Any = NO_HANDOFF) -> None:
        self.args = args
        self.handoff = handoff

    def handle_event(self, event: Any) -> Any:
        return None

    def handle_call(self, request: Any) -> Any:
        return ("reply", request)

    def handle_info(self, message: Any) -> Any:
        return None

    def terminate(self, reason: Any) -> Any:
        return ("bye", reason)


class G(H):
    """Another class with the same callbacks."""


class NoHandoff(H):
    """An ``init`` that takes no ``handoff``."""

    def init(self, args: Any = None) -> None:  # type: ignore[override]
        self.args = args


class Bare:
    """Only ``handle_event``: no init, call, info or terminate."""

    def handle_event(self, event: Any) -> Any:
        return None


class Needs:
    """An ``init`` with a required parameter."""

    def init(self, value: Any) -> None:
        self.value = value

    def handle_event(self, event: Any) -> Any:
        return None


class Async(H):
    """Coroutine callbacks (stepped to their end by the driver)."""

    async def handle_event(self, event: Any) -> Any:
        return None

    async def terminate(self, reason: Any) -> Any:
        return ("async bye", reason)


class Status(H):
    """A ``format_status`` that redacts."""

    def format_status(self) -> Any:
        return "redacted"
