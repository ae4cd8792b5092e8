"""OTP's gen_event on the same scenarios: runs ``otp_gen_event.escript`` and parses its lines.

The script prints ``<name> <value> <unit>`` per figure: one line per run of a throughput figure
(every run counts: its row is their median and min-max, as every system's), the median of a
latency figure with its quartiles (``<name>:q1``, ``<name>:q3``). Each memory figure is measured
in an Erlang VM of its own (one ``escript`` process per measurement): a VM that has just run the
timing scenarios gives a different, smaller figure. Without ``escript`` on the PATH the rows say
"skipped: no erl".
"""

from __future__ import annotations

import shutil
import statistics
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from . import _harness as h

SCRIPT = Path(__file__).with_name("otp_gen_event.escript")
NOT_FOUND = "skipped: no erl (escript not on PATH)"
OTP_4P = "OTP gen_event, 4 producer processes"
OTP_OFF_HEAP = "OTP gen_event, off-heap mailbox"
QUEUED_NOTE = "one notify ahead of each request (included)"
FRESH_VM = "measured alone in a fresh Erlang VM, one per run"

# script's name -> (scenario, implementation name, note)
FIGURES: dict[str, tuple[h.Scenario, str, str]] = {
    "notify_1": (h.NOTIFY_1, h.OTP, ""),
    "notify_1_offheap": (h.NOTIFY_1, OTP_OFF_HEAP, "message_queue_data = off_heap"),
    "notify_10": (h.NOTIFY_10, h.OTP, ""),
    "notify_100": (h.NOTIFY_100, h.OTP, ""),
    "notify_4p": (h.NOTIFY_4P, OTP_4P, ""),
    "sync_notify": (h.SYNC, h.OTP, QUEUED_NOTE),
    "call_median": (h.CALL_MED, h.OTP, QUEUED_NOTE),
    "call_p99": (h.CALL_P99, h.OTP, QUEUED_NOTE),
    "call_tput": (h.CALL_TPUT, h.OTP, QUEUED_NOTE),
    "call_flooded": (h.CALL_FLOODED, h.OTP, ""),
    "call_idle": (h.CALL_INLINE_MED, h.OTP, "no inline path: a round trip to an idle manager"),
    "life": (h.LIFE, h.OTP, ""),
    "add_busy": (h.ADD_BUSY, h.OTP, QUEUED_NOTE),
    "delete_busy": (h.DELETE_BUSY, h.OTP, QUEUED_NOTE),
}
# measured one per VM: script argument -> (scenario, implementation name, note)
MEMORY: dict[str, tuple[h.Scenario, str, str]] = {
    "mem_manager": (h.MEM_MANAGER, h.OTP, f"the manager process's memory; {FRESH_VM}"),
    "mem_handler": (h.MEM_HANDLER, h.OTP, f"manager's process_info memory growth; {FRESH_VM}"),
}


@dataclass
class Output:
    """What one run of the script printed: every figure's values (one per run of a throughput
    figure), the quartiles of latency figures, and informational lines."""

    figures: dict[str, list[float]] = field(default_factory=dict)
    quartiles: dict[str, dict[str, float]] = field(default_factory=dict)
    info: dict[str, str] = field(default_factory=dict)


def available() -> str | None:
    """The path of ``escript``, or None when it is not on the PATH."""
    return shutil.which("escript")


def parse(output: str) -> Output:
    """The script's figures by name (``<name>:q1``/``:q3`` lines as quartiles), and its
    informational lines (release, schedulers)."""
    out = Output()
    for line in output.splitlines():
        parts = line.split()
        if len(parts) != 3:
            continue
        name, value, _unit = parts
        base, _, part = name.partition(":")
        if base in FIGURES or base in MEMORY:
            if part:
                out.quartiles.setdefault(base, {})[part] = float(value)
            else:
                out.figures.setdefault(base, []).append(float(value))
        else:
            out.info[name] = value
    return out


def _wanted(cfg: h.Config) -> list[tuple[str, h.Scenario, str, str]]:
    every = {**FIGURES, **MEMORY}
    return [(name, sc, impl, note) for name, (sc, impl, note) in every.items() if cfg.wants(sc)]


Run = Output | Exception
"""One run of the script: what it printed, or what went wrong."""


def _escript(escript: str, args: list[object], timeout: float) -> Run:
    try:
        done = subprocess.run(
            [escript, str(SCRIPT), *map(str, args)],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=True,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        detail = getattr(exc, "stderr", None) or ""
        return RuntimeError(f"{exc} {detail.strip()[-300:]}".strip())
    return parse(done.stdout)


def measure(cfg: h.Config) -> Run | None:
    """Run the timing scenarios once with ``cfg``'s counts (None: nothing to run, or no
    escript).

    The full run calls this twice, before and after the Python benches, and pools both runs:
    the machine's slow spells then hit OTP about as they hit Python."""
    escript = available()
    cfg.meta["otp"] = escript is not None
    if escript is None or not any(name in FIGURES for name, *_ in _wanted(cfg)):
        return None
    h.progress("OTP gen_event (escript)")
    args: list[object] = [
        cfg.notify_events,
        cfg.fanout_invocations,
        cfg.roundtrips,
        cfg.latency_samples,
        cfg.reps,
        cfg.control_samples,
    ]
    run = _escript(escript, args, 600)
    if isinstance(run, Output):
        cfg.meta["otp_release"] = run.info.get("otp_release")
    return run


def measure_memory(cfg: h.Config) -> list[Run]:
    """The memory figures, each measured ``cfg.reps`` times, every time in a fresh VM (one
    ``escript`` process per measurement)."""
    escript = available()
    cfg.meta["otp"] = escript is not None
    wanted = [name for name, *_ in _wanted(cfg) if name in MEMORY]
    if escript is None or not wanted:
        return []
    h.progress("OTP gen_event memory (one escript per measurement)")
    counts = {"mem_manager": cfg.mem_managers, "mem_handler": cfg.mem_handlers}
    return [
        _escript(escript, [name, counts[name]], 120)
        for _ in range(max(cfg.reps, 1))
        for name in wanted
    ]


def _row(sc: h.Scenario, impl: str, note: str, name: str, done: list[Output]) -> h.Row | None:
    """One figure's row over every run: a throughput or memory figure is the median of its
    runs with their min-max; a latency median the median of the runs' medians, from the lowest
    first quartile to the highest third (one run: its median and interquartile range)."""
    values = [v for r in done for v in r.figures.get(name, [])]
    if not values:
        return None
    if sc.unit != "µs":
        return h.runs_row(sc, impl, values, note)
    quartiles = [r.quartiles[name] for r in done if name in r.quartiles]
    value = statistics.median(values)
    if not quartiles:  # the p99: no spread
        return h.row(sc, impl, value, note)
    spread = (min(q["q1"] for q in quartiles), max(q["q3"] for q in quartiles))
    return h.row(sc, impl, value, note, spread=spread, spread_of=h.IQR)


def rows(cfg: h.Config, runs: list[Run | None]) -> list[h.Row]:
    """OTP's rows from one or more runs of the script, or rows saying why there are none."""
    wanted = _wanted(cfg)
    if not wanted:
        return []
    if cfg.meta.get("otp") is False:
        return [h.skipped(sc, impl, NOT_FOUND) for _, sc, impl, _ in wanted]
    done = [r for r in runs if isinstance(r, Output)]
    errors = [r for r in runs if isinstance(r, Exception)]
    out: list[h.Row] = []
    for name, sc, impl, note in wanted:
        r = _row(sc, impl, note, name, done)
        if r is None:
            why = errors[0] if errors else RuntimeError(f"no {name!r} line in the script's output")
            r = h.failed(sc, impl, why)
        out.append(r)
    return out
