"""The project's performance targets, judged on the ratios of one run (never asserted)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from . import _harness as h
from ._otp import NOT_FOUND

NA_OTP = "n/a (no erl: escript not on PATH)"
NA = "n/a (not measured)"


@dataclass
class Target:
    """One target: what it asks, what this run measured, and met / missed / n/a."""

    name: str
    measured: str
    status: str


def _value(rows: Sequence[h.Row], sc: h.Scenario, impl: str) -> float | None:
    r = h.find(rows, sc, impl)
    return r.value if r else None


def _why_missing(rows: Sequence[h.Row], sc: h.Scenario, impls: Sequence[str]) -> str:
    """ "n/a (...)" with the reason a row was skipped, e.g. "n/a (no erl: escript not on PATH)"."""
    for r in rows:
        if r.scenario == sc.name and r.impl in impls and r.value is None:
            if r.note == NOT_FOUND:
                return NA_OTP
            if r.note.startswith("skipped ("):
                return f"n/a ({r.impl}: {r.note.removeprefix('skipped (')}"
            if r.error:
                return f"missed ({r.impl} failed)"
    return NA


def _ratio_target(
    rows: Sequence[h.Row],
    name: str,
    sc: h.Scenario,
    impl: str,
    other: str,
    ok: Callable[[float], bool],
    words: str,
) -> Target:
    """A target on ``value(impl) / value(other)`` in scenario ``sc``."""
    mine, theirs = _value(rows, sc, impl), _value(rows, sc, other)
    if mine is None or theirs is None or theirs == 0:
        return Target(name, "-", _why_missing(rows, sc, (impl, other)))
    r = mine / theirs
    return Target(name, f"{r:.2f}x {words}", "met" if ok(r) else "missed")


def evaluate(rows: Sequence[h.Row], cfg: h.Config) -> list[Target]:
    """Judge every target on this run's rows."""
    t = [
        _ratio_target(
            rows,
            "asyncio notify, 1 handler >= 1.5x OTP gen_event",
            h.NOTIFY_1,
            h.GE_AIO,
            h.OTP,
            lambda r: r >= 1.5,
            "OTP's events/s",
        ),
        _ratio_target(
            rows,
            "asyncio notify, 1 handler >= 0.5x deque mailbox",
            h.NOTIFY_1,
            h.GE_AIO,
            h.DEQUE,
            lambda r: r >= 0.5,
            "the deque mailbox's events/s",
        ),
        _ratio_target(
            rows,
            "asyncio fan-out to 100 handlers >= 0.5x plain loop",
            h.NOTIFY_100,
            h.GE_AIO,
            h.PLAIN_LOOP,
            lambda r: r >= 0.5,
            "the plain loop's invocations/s",
        ),
        # request targets are judged on the queued path (one event ahead of each request),
        # the path a busy manager takes; the inline rows are reported beside them, not judged
        _ratio_target(
            rows,
            "asyncio sync_notify, queued >= OTP gen_event per second",
            h.SYNC,
            h.GE_AIO,
            h.OTP,
            lambda r: r >= 1.0,
            "OTP's sync_notify/s",
        ),
        _ratio_target(
            rows,
            "asyncio sync_notify, queued >= 0.8x bare deque round trip",
            h.SYNC,
            h.GE_AIO,
            h.DEQUE_RT,
            lambda r: r >= 0.8,
            "the bare round trips/s",
        ),
        _ratio_target(
            rows,
            "asyncio call, queued, median <= 2x OTP",
            h.CALL_MED,
            h.GE_AIO,
            h.OTP,
            lambda r: r <= 2.0,
            "OTP's median",
        ),
        _ratio_target(
            rows,
            "asyncio call, queued, median <= 1.25x bare deque round trip",
            h.CALL_MED,
            h.GE_AIO,
            h.DEQUE_RT,
            lambda r: r <= 1.25,
            "the bare round trip's median",
        ),
        _ratio_target(
            rows,
            "threads (default) call, queued, median <= 1.2x two-queue hand-off",
            h.CALL_MED,
            h.GE_THREADS,
            h.SQ_RT_BUSY,
            lambda r: r <= 1.2,
            "the bare hand-off's median",
        ),
        _ratio_target(
            rows,
            "threads (default) call, queued, median >= 5x faster than pykka ask",
            h.CALL_MED,
            h.PYKKA_ASK,
            h.GE_THREADS,
            lambda r: r >= 5.0,
            "faster than pykka's median",
        ),
        _ratio_target(
            rows,
            "thread runtime notify >= 10x pykka tell",
            h.NOTIFY_1,
            h.GE_THREADS,
            h.PYKKA_TELL,
            lambda r: r >= 10.0,
            "pykka tell's events/s",
        ),
    ]
    t += _load_targets(rows)
    t.append(
        _ratio_target(
            rows,
            'asyncio isolation="task", notify burst >= 0.5x not isolated',
            h.ISO_AIO,
            'genevent asyncio, isolation="task"',
            h.AIO_NOT_ISOLATED,
            lambda r: r >= 0.5,
            "the handler not isolated",
        )
    )
    for sc, what in (
        (h.LIFE, "start + first add_handler + stop"),
        (h.ADD_BUSY, "add_handler, queued,"),
        (h.DELETE_BUSY, "delete_handler, queued,"),
    ):
        t.append(
            _ratio_target(
                rows,
                f"asyncio {what} median <= 1.5x its bare floor",
                sc,
                h.GE_AIO,
                str(sc.baseline),
                lambda r: r <= 1.5,
                "the floor's median",
            )
        )
    t.append(
        _ratio_target(
            rows,
            "asyncio memory per handler <= 2x a plain object + registry entry",
            h.MEM_HANDLER,
            h.GE_AIO,
            h.PLAIN_OBJECT,
            lambda r: r <= 2.0,
            "the plain object's bytes",
        )
    )
    mem = _value(rows, h.MEM_MANAGER, h.GE_AIO)
    name = "idle asyncio manager with one handler <= 4 KB"
    if mem is None:
        t.append(Target(name, "-", NA))
    else:
        t.append(Target(name, f"{mem:,.0f} bytes", "met" if mem <= 4096 else "missed"))
    name = "100,000 asyncio managers in one process work"
    many = next((r for r in rows if r.scenario == h.MANY.name and r.impl == h.GE_AIO), None)
    if cfg.quick:
        t.append(Target(name, "-", "n/a (full run only)"))
    elif many is None:
        t.append(Target(name, "-", NA))
    elif many.error or many.value is None:
        t.append(Target(name, many.note, "missed"))
    else:
        t.append(Target(name, f"{many.value:,.0f} bytes each (RSS)", "met"))
    return t


def _load_targets(rows: Sequence[h.Row]) -> list[Target]:
    """A producer that yields after every event, many managers sent one event each in turn,
    and a bounded mailbox that overflows."""
    few, many = h.RR_MANAGERS
    rr = _ratio_target(
        rows,
        f"asyncio notify round-robin over {many:,} managers >= 0.5x over {few:,}",
        h.ROUND_ROBIN,
        h.rr_impl(h.GE_AIO, many),
        h.rr_impl(h.GE_AIO, few),
        lambda r: r >= 0.5,
        f"its rate over {few:,}",
    )
    bare_many = _value(rows, h.ROUND_ROBIN, h.rr_impl(h.DEQUE, many))
    bare_few = _value(rows, h.ROUND_ROBIN, h.rr_impl(h.DEQUE, few))
    if rr.measured != "-" and bare_many and bare_few:
        rr.measured += f" (deque: {bare_many / bare_few:.2f}x)"
    return [
        _ratio_target(
            rows,
            "asyncio notify, producer yields after every event >= 0.8x deque",
            h.NOTIFY_YIELD,
            h.GE_AIO,
            h.DEQUE,
            lambda r: r >= 0.8,
            "the deque mailbox's events/s",
        ),
        rr,
        _ratio_target(
            rows,
            "asyncio burst overflowing a drop_oldest mailbox >= 0.5x unbounded",
            h.BOUNDED_AIO,
            h.OVERFLOWING,
            h.UNBOUNDED,
            lambda r: r >= 0.5,
            "the unbounded burst's events/s",
        ),
    ]


def print_targets(targets: Sequence[Target]) -> None:
    """Print the targets section."""
    print("\ntargets")
    width = max(len(x.name) for x in targets) + 2
    for x in targets:
        print(f"  {x.name:<{width}}{x.measured:<42}{x.status}")
