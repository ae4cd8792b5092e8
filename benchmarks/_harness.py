"""Timing helpers, the Row record, the scenario list, and table / JSON output.

Every measurement is a :class:`Row`: one implementation's figure in one scenario. Each scenario
names its baseline implementation; rows print their ratio to the baseline row of the same run,
oriented so that a ratio above 1 always means "better than the baseline" (faster, or smaller).

Every system is summarised the same way, never by its best run: a throughput row is the median
of its runs with their range (min-max), a latency row the median of its pooled samples with
their interquartile range.
"""

from __future__ import annotations

import asyncio
import gc
import json
import math
import statistics
import sys
import time
from collections.abc import Callable, Coroutine, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal, TypeVar

T = TypeVar("T")

Better = Literal["higher", "lower"]

# Implementation names shared by several modules (rows are matched by these strings).
PLAIN_LOOP = "plain loop"
DEQUE = "deque mailbox + wake-up future"
DEQUE_4 = "deque mailbox, 4 producer tasks"
AQUEUE = "asyncio.Queue"
SIMPLEQ = "queue.SimpleQueue + consumer thread"
AQ_FUTURE = "asyncio.Queue + Future"
SQ_ROUNDTRIP = "queue.SimpleQueue round trip"
DEQUE_RT = "deque server + Future, one event ahead"
SQ_RT_BUSY = "two SimpleQueues + long-lived thread, one event ahead"
DIRECT = "caller runs the handler itself"
XT_DEQUE = "deque + call_soon_threadsafe wake-up"
GE_AIO = "genevent asyncio"
GE_UVLOOP = "genevent asyncio on uvloop"
DEQUE_UVLOOP = "deque mailbox on uvloop"
DEQUE_RT_UVLOOP = "deque server + Future on uvloop, one event ahead"
NO_UVLOOP = "skipped (uvloop not installed: pip install -e '.[uvloop]' in the checkout)"
GE_THREADS = "genevent threads"
GE_THREADS_INLINE = "genevent threads, inline=True"
PYKKA_TELL = "pykka tell"
PYKKA_ASK = "pykka ask"
PYEE = "pyee emit"
BLINKER = "blinker send"
OTP = "OTP gen_event"
PLAIN_OBJECT = "plain object + bound method in a list + (class, id) dict entry"
BARE_TASK = "bare task: create, one round trip, stop"
BARE_ADD = "bare queued round trip + handler made and init() called"
BARE_DELETE = "bare queued round trip + terminate() called"


@dataclass(frozen=True)
class Scenario:
    """A scenario: what is measured, in which unit, and which implementation is the baseline."""

    name: str
    unit: str
    better: Better
    baseline: str | None
    #: what the rows are compared with when each names its own baseline (``Row.base``)
    against: str = ""


NOTIFY_1 = Scenario("notify, 1 handler, one producer", "events/s", "higher", DEQUE)
NOTIFY_10 = Scenario("notify fan-out, 10 handlers", "invocations/s", "higher", PLAIN_LOOP)
NOTIFY_100 = Scenario("notify fan-out, 100 handlers", "invocations/s", "higher", PLAIN_LOOP)
NOTIFY_4P = Scenario("notify, 1 handler, 4 producers", "events/s", "higher", DEQUE_4)
XTHREAD = Scenario("cross-thread notify into asyncio", "events/s", "higher", XT_DEQUE)
NOTIFY_YIELD = Scenario(
    "notify, 1 handler, producer yields after every event", "events/s", "higher", DEQUE
)
# Many managers, each sent one event in turn (the producer yields after every round): the
# per-event cost over 10,000 managers against the same implementation over 1,000 (each row
# names its own baseline row), i.e. what a working set ten times larger costs per event.
RR_MANAGERS = (1_000, 10_000)
SAME_OVER_1000 = "the same implementation over 1,000 managers"
ROUND_ROBIN = Scenario(
    "notify round-robin over 10,000 managers vs 1,000", "events/s", "higher", None, SAME_OVER_1000
)


def rr_impl(impl: str, managers: int) -> str:
    """The name of ``impl``'s round-robin row over ``managers`` managers."""
    return f"{impl}, {managers:,} managers"


# Request/reply scenarios come in two kinds (compared like with like, never across):
# - queued: one event is queued ahead of every request, so the request takes the path a busy
#   manager takes (a real round trip through the mailbox); the baseline is a bare server task
#   draining a deque mailbox, sent one event and then one (request, future) pair;
# - inline: back to back on an idle manager, where genevent runs the request in the caller;
#   the baseline is the caller calling the handler's method itself.
# Targets are judged on the queued scenarios; the inline ones are reported beside them.
SYNC = Scenario("sync_notify, queued (one event ahead of each)", "ops/s", "higher", DEQUE_RT)
SYNC_INLINE = Scenario("sync_notify, idle manager (inline fast path)", "ops/s", "higher", DIRECT)
CALL_MED = Scenario("call round trip, queued (one event ahead), median", "µs", "lower", DEQUE_RT)
CALL_P99 = Scenario("call round trip, queued (one event ahead), p99", "µs", "lower", DEQUE_RT)
FLOOD_AHEAD = 100
CALL_FLOODED = Scenario(
    f"call round trip, flooded ({FLOOD_AHEAD} events ahead), median", "µs", "lower", DEQUE_RT
)
CALL_TPUT = Scenario("call throughput, queued (one event ahead)", "calls/s", "higher", DEQUE_RT)
CALL_INLINE_MED = Scenario("call, idle manager (inline fast path), median", "µs", "lower", DIRECT)
CALL_INLINE_P99 = Scenario("call, idle manager (inline fast path), p99", "µs", "lower", DIRECT)
CALL_TPUT_INLINE = Scenario(
    "call throughput, idle manager (inline fast path)", "calls/s", "higher", DIRECT
)
# Control operations (asyncio): a manager's life, and handler installation on a busy manager
# (one event queued ahead); the floors do the same work with a bare server task.
LIFE = Scenario("start + first add_handler + stop, median", "µs", "lower", BARE_TASK)
ADD_BUSY = Scenario("add_handler, queued (one event ahead), median", "µs", "lower", BARE_ADD)
DELETE_BUSY = Scenario(
    "delete_handler, queued (one event ahead), median", "µs", "lower", BARE_DELETE
)
MEM_MANAGER = Scenario("memory per idle manager with 1 handler", "bytes", "lower", DEQUE)
MEM_HANDLER = Scenario("memory per handler", "bytes", "lower", PLAIN_OBJECT)
FIT_1GB = Scenario("managers that fit in 1 GB", "managers", "higher", DEQUE)
MANY = Scenario("100,000 asyncio managers", "bytes", "lower", None)
FLOOD = Scenario(
    "cross-thread flood, burst with a 1 ms ticker in the loop", "events/s", "higher", None
)
FLOOD_LATE = Scenario("cross-thread flood, ticker lateness p99", "ms", "lower", None)
# Bounded mailboxes: each runtime's bounded manager against the same runtime unbounded
UNBOUNDED = "unbounded mailbox"
BOUNDED_AIO = Scenario(
    "notify burst, asyncio: bounded mailbox vs unbounded", "events/s", "higher", UNBOUNDED
)
BOUNDED_THREADS = Scenario(
    "notify burst, threads: bounded mailbox vs unbounded", "events/s", "higher", UNBOUNDED
)
# Batches: the same burst of events to the same handler, sent by notify_many against notify
# called once per event (the baseline row), on one runtime
ONE_BY_ONE = "notify, one call per event"
BATCH_AIO = Scenario(
    "notify burst, asyncio: notify_many vs one notify per event", "events/s", "higher", ONE_BY_ONE
)
BATCH_THREADS = Scenario(
    "notify burst, threads: notify_many vs one notify per event", "events/s", "higher", ONE_BY_ONE
)
#: the overflow rows of the two bounded scenarios: a burst into a ``drop_oldest`` mailbox that
#: holds a 30th of it, so that most events are dropped
OVERFLOW_SHARE = 30
OVERFLOWING = f"drop_oldest, overflowing (maxsize: 1/{OVERFLOW_SHARE} of the burst)"
FLOOD_PEAK = Scenario(
    "peak memory under a flood (tracemalloc): bounded vs unbounded", "bytes", "lower", UNBOUNDED
)

# Isolated handlers: the same burst (notifies, then one sync_notify, which returns once the
# handler handled every event) to one handler, isolated or not, in one runtime: the ratio is
# what isolation costs (or saves) on the notify path.
AIO_NOT_ISOLATED = "genevent asyncio, not isolated"
THREADS_NOT_ISOLATED = "genevent threads, not isolated"
ISO_AIO = Scenario(
    "notify burst to one isolated handler vs not isolated, asyncio",
    "events/s",
    "higher",
    AIO_NOT_ISOLATED,
)
ISO_THREADS = Scenario(
    "notify burst to one isolated handler vs not isolated, threads",
    "events/s",
    "higher",
    THREADS_NOT_ISOLATED,
)

# Isolated handlers at scale: one manager with N handlers, all isolated or none; each row is
# compared with the same operation on the same runtime with N handlers not isolated (its own
# baseline row), so the ratio is what isolation costs per operation as N grows.
SCALE_COUNTS = (10, 100, 1_000)
SCALE_QUICK_COUNTS = (10, 100)
SAME_NOT_ISOLATED = "the same runtime and handler count, not isolated"
SCALE_ADD = Scenario(
    "isolated handlers at scale: add_handler, per add", "µs", "lower", None, SAME_NOT_ISOLATED
)
SCALE_SYNC = Scenario(
    "isolated handlers at scale: sync_notify, per call", "µs", "lower", None, SAME_NOT_ISOLATED
)
SCALE_WHICH = Scenario(
    "isolated handlers at scale: which_handlers, per call", "µs", "lower", None, SAME_NOT_ISOLATED
)
SCALE_DELETE = Scenario(
    "isolated handlers at scale: delete_handler, per delete", "µs", "lower", None, SAME_NOT_ISOLATED
)

SCENARIOS: tuple[Scenario, ...] = (
    NOTIFY_1,
    NOTIFY_10,
    NOTIFY_100,
    NOTIFY_4P,
    XTHREAD,
    NOTIFY_YIELD,
    ROUND_ROBIN,
    SYNC,
    SYNC_INLINE,
    CALL_MED,
    CALL_P99,
    CALL_FLOODED,
    CALL_TPUT,
    CALL_INLINE_MED,
    CALL_INLINE_P99,
    CALL_TPUT_INLINE,
    LIFE,
    ADD_BUSY,
    DELETE_BUSY,
    MEM_MANAGER,
    MEM_HANDLER,
    FIT_1GB,
    MANY,
    FLOOD,
    FLOOD_LATE,
    BOUNDED_AIO,
    BOUNDED_THREADS,
    BATCH_AIO,
    BATCH_THREADS,
    FLOOD_PEAK,
    ISO_AIO,
    ISO_THREADS,
    SCALE_ADD,
    SCALE_SYNC,
    SCALE_WHICH,
    SCALE_DELETE,
)


@dataclass
class Row:
    """One implementation's figure in one scenario (``value`` is None when not measured)."""

    scenario: str
    impl: str
    value: float | None
    unit: str
    note: str = ""
    error: bool = False
    #: the impl of this row's own baseline row (else the scenario's baseline)
    base: str | None = None
    #: how much the figure moved: (low, high) in the row's unit, see ``spread_of``
    spread: tuple[float, float] | None = None
    #: what ``spread`` is: "min-max of N runs", or "IQR" of the pooled samples
    spread_of: str = ""


@dataclass
class Config:
    """Counts for one run; ``--quick`` uses tiny ones so the smoke run takes seconds."""

    quick: bool = False
    only: str | None = None
    notify_events: int = 300_000
    yield_events: int = 100_000
    rr_events: int = 200_000
    fanout_invocations: int = 2_000_000
    roundtrips: int = 40_000
    latency_samples: int = 20_000
    latency_rounds: int = 4
    control_samples: int = 5_000
    reps: int = 5
    rt_reps: int = 3
    mem_managers: int = 2_000
    mem_handlers: int = 5_000
    many_managers: int = 100_000
    flood_events: int = 2_000_000
    flood_reps: int = 3
    meta: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def make(cls, *, quick: bool, only: str | None) -> Config:
        """The full-run counts, or the smoke-run ones when ``quick``."""
        if not quick:
            return cls(quick=False, only=only)
        return cls(
            quick=True,
            only=only,
            notify_events=2_000,
            yield_events=500,
            rr_events=20_000,
            fanout_invocations=20_000,
            roundtrips=500,
            latency_samples=500,
            latency_rounds=1,
            control_samples=100,
            reps=1,
            rt_reps=1,
            mem_managers=50,
            mem_handlers=100,
            many_managers=1_000,
            flood_events=20_000,
            flood_reps=1,
        )

    def wants(self, scenario: Scenario) -> bool:
        """Whether ``--only`` selects this scenario (case-insensitive substring)."""
        return self.only is None or self.only.lower() in scenario.name.lower()

    def wants_latency(self, inline: bool = False) -> bool:
        """Whether ``--only`` selects the queued (or ``inline``) call-latency scenarios."""
        med, p99 = (CALL_INLINE_MED, CALL_INLINE_P99) if inline else (CALL_MED, CALL_P99)
        return self.wants(med) or self.wants(p99)

    def events_for(self, handlers: int) -> int:
        """Events to send in a fan-out scenario with ``handlers`` handlers."""
        if handlers == 1:
            return self.notify_events
        return max(self.fanout_invocations // handlers, 10)


def row(
    scenario: Scenario,
    impl: str,
    value: float | None,
    note: str = "",
    base: str | None = None,
    *,
    spread: tuple[float, float] | None = None,
    spread_of: str = "",
) -> Row:
    """A row in ``scenario``'s unit (``base``: the impl of its own baseline row, if not the
    scenario's; ``spread``: the figure's (low, high), described by ``spread_of``)."""
    return Row(
        scenario.name,
        impl,
        value,
        scenario.unit,
        note,
        base=base,
        spread=spread,
        spread_of=spread_of,
    )


def runs_row(
    scenario: Scenario, impl: str, values: Sequence[float], note: str = "", base: str | None = None
) -> Row:
    """A row of several runs' figures: their median, with their min-max as its spread."""
    if not values:
        return row(scenario, impl, None, note, base)
    return row(
        scenario,
        impl,
        statistics.median(values),
        note,
        base,
        spread=(min(values), max(values)),
        spread_of=runs_label(len(values)),
    )


def runs_label(n: int) -> str:
    """How a min-max spread over ``n`` runs is described."""
    return "1 run" if n == 1 else f"min-max of {n} runs"


IQR = "IQR"
"""How the spread of a median over pooled per-operation samples is described."""


def skipped(scenario: Scenario, impl: str, why: str) -> Row:
    """A row that was not measured, with the reason (not an error)."""
    return Row(scenario.name, impl, None, scenario.unit, why)


def failed(scenario: Scenario, impl: str, exc: BaseException) -> Row:
    """A row whose measurement raised: printed, and the run exits non-zero."""
    return Row(
        scenario.name, impl, None, scenario.unit, f"error: {type(exc).__name__}: {exc}", True
    )


def guarded(scenario: Scenario, impl: str, measure: Callable[[], float]) -> Row:
    """Run ``measure`` and wrap its figure in a row; an exception becomes an error row."""
    try:
        return row(scenario, impl, measure())
    except Exception as exc:
        return failed(scenario, impl, exc)


def progress(text: str) -> None:
    """A progress line on stderr (the table goes to stdout)."""
    print(f"  .. {text}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------- timing

now = time.perf_counter_ns


@dataclass(eq=False)
class Bench:
    """One implementation in one scenario, measured by :func:`run`.

    ``rate`` returns the elapsed ns of one repetition of ``count`` operations (the row is the
    median rate of ``reps`` repetitions, with their min-max); ``latency`` returns per-operation
    ns of one round (all rounds pooled, then median with its interquartile range, and p99 rows:
    ``scenario`` and ``p99``). ``skip`` gives a row that says why it was not measured."""

    scenario: Scenario
    impl: str
    count: int = 0
    rate: Callable[[], int] | None = None
    latency: Callable[[], list[int]] | None = None
    reps: int = 1
    note: str = ""
    skip: str = ""
    p99: Scenario | None = None
    #: the impl of this bench's own baseline row (else the scenario's baseline)
    base: str | None = None


def rate(
    scenario: Scenario,
    impl: str,
    count: int,
    once: Callable[[], int],
    reps: int,
    note: str = "",
    base: str | None = None,
) -> Bench:
    """A throughput bench: ``once()`` does ``count`` operations and returns the elapsed ns
    (``base``: the impl of its own baseline row, if not the scenario's)."""
    return Bench(scenario, impl, count=count, rate=once, reps=reps, note=note, base=base)


def latency(
    impl: str,
    round_: Callable[[], list[int]],
    rounds: int,
    note: str = "",
    *,
    inline: bool = False,
) -> Bench:
    """A call-latency bench: ``round_()`` returns per-call ns; rounds are pooled. The first
    round is a warm-up and is not counted. ``inline``: the idle-manager scenarios."""
    med, p99 = (CALL_INLINE_MED, CALL_INLINE_P99) if inline else (CALL_MED, CALL_P99)
    return Bench(med, impl, latency=round_, reps=rounds + 1, note=note, p99=p99)


def median(
    scenario: Scenario, impl: str, round_: Callable[[], list[int]], rounds: int, note: str = ""
) -> Bench:
    """A per-operation bench reported as its median only (``round_()`` returns per-op ns;
    the first round warms up)."""
    return Bench(scenario, impl, latency=round_, reps=rounds + 1, note=note)


def skip(scenario: Scenario, impl: str, why: str) -> Bench:
    """A bench that is not run: its row says why."""
    return Bench(scenario, impl, skip=why)


def in_loop(make: Callable[[], Coroutine[Any, Any, T]]) -> Callable[[], T]:
    """A plain callable that runs the coroutine ``make()`` in a fresh event loop."""

    def run_it() -> T:
        return asyncio.run(make())

    return run_it


def uvloop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's ``new_event_loop`` when uvloop is installed (the ``uvloop`` extra), else None."""
    try:
        import uvloop  # noqa: PLC0415 - optional
    except ImportError:
        return None
    return uvloop.new_event_loop


def in_uvloop(make: Callable[[], Coroutine[Any, Any, T]]) -> Callable[[], T]:
    """Like :func:`in_loop`, on a fresh uvloop event loop (check :func:`uvloop_factory`)."""

    def run_it() -> T:
        factory = uvloop_factory()
        assert factory is not None
        with asyncio.Runner(loop_factory=factory) as runner:
            return runner.run(make())

    return run_it


def per_second(count: int, ns: float) -> float:
    """``count`` operations in ``ns`` nanoseconds, as operations per second."""
    return count * 1e9 / max(ns, 1)


def percentile(samples: Sequence[int], q: float) -> float:
    """The ``q``-quantile (0..1) of ``samples`` (nearest rank), in the samples' unit."""
    ordered = sorted(samples)
    if not ordered:
        return math.nan
    rank = min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))
    return float(ordered[rank])


def run(benches: Sequence[Bench]) -> list[Row]:
    """Measure the benches scenario by scenario. Within a scenario, repetitions are interleaved
    (rep 1 of every implementation, then rep 2, ...) so that a noisy machine's slow spells hit
    every implementation alike and the ratios stay meaningful."""
    out: list[Row] = []
    for sc in SCENARIOS:
        group = [b for b in benches if b.scenario is sc]
        if not group:
            continue
        progress(sc.name)
        elapsed: dict[Bench, list[int]] = {b: [] for b in group}
        pooled: dict[Bench, list[int]] = {b: [] for b in group}
        errors: dict[Bench, BaseException] = {}
        for rep in range(max(b.reps for b in group)):
            shift = rep % len(group)
            for b in group[shift:] + group[:shift]:
                if b.skip or b in errors or rep >= b.reps:
                    continue
                gc.collect()
                try:
                    if b.rate is not None:
                        elapsed[b].append(b.rate())
                    elif b.latency is not None:
                        samples = b.latency()
                        if rep > 0:  # the first round warms up
                            pooled[b] += samples
                except Exception as exc:
                    errors[b] = exc
        for b in group:
            out += _rows_of(b, elapsed[b], pooled[b], errors.get(b))
    return out


def _rows_of(b: Bench, ns: list[int], samples: list[int], exc: BaseException | None) -> list[Row]:
    p99 = b.p99
    scenarios = [b.scenario, p99] if b.latency is not None and p99 else [b.scenario]
    if b.skip:
        return [skipped(sc, b.impl, b.skip) for sc in scenarios]
    if exc is not None:
        return [failed(sc, b.impl, exc) for sc in scenarios]
    if b.latency is not None:
        iqr = (percentile(samples, 0.25) / 1000, percentile(samples, 0.75) / 1000)
        value = percentile(samples, 0.5) / 1000
        med = row(b.scenario, b.impl, value, b.note, spread=iqr, spread_of=IQR)
        if p99 is None:
            return [med]
        return [med, row(p99, b.impl, percentile(samples, 0.99) / 1000, b.note)]
    rates = [per_second(b.count, x) for x in ns]
    return [runs_row(b.scenario, b.impl, rates, b.note, b.base)]


# ---------------------------------------------------------------- output


def fmt_value(value: float | None, unit: str) -> str:
    """A figure with its unit: M/s or k/s for rates, µs, bytes, plain counts."""
    if value is None or math.isnan(value):
        return "-"
    if unit.endswith("/s"):
        if value >= 100_000:
            return f"{value / 1e6:.2f} M/s"
        return f"{value / 1e3:.1f} k/s"
    if unit == "µs":
        return f"{value:.2f} µs"
    if unit == "ms":
        return f"{value:.2f} ms"
    if unit == "bytes":
        return f"{value:,.0f} bytes"
    return f"{value:,.0f}"


def fmt_spread(r: Row) -> str:
    """A row's spread, e.g. "3.90-4.41 M/s, min-max of 5 runs" (empty when it has none; just
    "1 run" for a single run)."""
    if r.spread is None or r.value is None:
        return ""
    if r.spread_of == runs_label(1):
        return r.spread_of
    lo, hi = (fmt_value(x, r.unit) for x in r.spread)
    lo_num, _, lo_unit = lo.partition(" ")
    span = f"{lo_num}-{hi}" if lo_unit == hi.partition(" ")[2] else f"{lo}-{hi}"
    return f"{span}, {r.spread_of}" if r.spread_of else span


def ratio(scenario: Scenario, value: float | None, base: float | None) -> float | None:
    """How many times better than the baseline (above 1: faster, or smaller)."""
    if value is None or base is None or value <= 0 or base <= 0:
        return None
    return value / base if scenario.better == "higher" else base / value


def find(rows: Iterable[Row], scenario: Scenario, impl: str) -> Row | None:
    """The measured row of ``impl`` in ``scenario``, if any."""
    for r in rows:
        if r.scenario == scenario.name and r.impl == impl and r.value is not None:
            return r
    return None


def print_table(rows: Sequence[Row]) -> None:
    """Print the rows grouped by scenario, baseline first, each with its ratio."""
    width = max([len(r.impl) for r in rows] + [20]) + 2
    for sc in SCENARIOS:
        mine = [r for r in rows if r.scenario == sc.name]
        if not mine:
            continue
        direction = "higher is better" if sc.better == "higher" else "lower is better"
        against = f"ratio = x better than {sc.baseline or sc.against}"
        if not (sc.baseline or sc.against):
            against = "no baseline"
        print(f"\n{sc.name}  [{sc.unit}, {direction}; {against}]")
        bases = {r.base for r in mine if r.base} | {sc.baseline}
        if sc.baseline:
            mine.sort(key=lambda r: r.impl != sc.baseline)
        for r in mine:
            base_name = r.base or sc.baseline
            base_row = find(mine, sc, base_name) if base_name else None
            rt = ratio(sc, r.value, base_row.value if base_row else None)
            if r.impl in bases and r.value is not None:
                rtxt = "baseline"
            else:
                rtxt = f"{rt:.2f}x" if rt is not None else "-"
            spread = fmt_spread(r)
            spread = f"  [{spread}]" if spread else ""
            note = f"  {r.note}" if r.note else ""
            print(f"  {r.impl:<{width}}{fmt_value(r.value, r.unit):>18}  {rtxt:>9}{spread}{note}")


def write_json(
    path: str, rows: Sequence[Row], targets: Sequence[Any], meta: dict[str, Any]
) -> None:
    """Write the rows (with their ratios), the targets and the run's metadata as JSON."""
    by_name = {sc.name: sc for sc in SCENARIOS}
    out_rows = []
    for r in rows:
        sc = by_name[r.scenario]
        base_name = r.base or sc.baseline
        base_row = find(rows, sc, base_name) if base_name else None
        d = asdict(r)
        d["baseline"] = base_name
        d["better"] = sc.better
        d["ratio"] = ratio(sc, r.value, base_row.value if base_row else None)
        out_rows.append(d)
    doc = {"meta": meta, "rows": out_rows, "targets": [asdict(t) for t in targets]}
    with open(path, "w", encoding="utf-8") as f:
        json.dump(doc, f, indent=2, ensure_ascii=False)
        f.write("\n")
