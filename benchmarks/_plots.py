"""``--plot DIR``: SVG plots of one run's rows (matplotlib, in the ``bench`` extra).

- ``throughput.svg``: notify throughput against the number of handlers;
- ``latency.svg``: call latency against the manager's load (idle, busy: one event queued ahead,
  flooded: a hundred events queued ahead);
- ``memory.svg``: memory against the number of managers (each manager's measured bytes, times
  the number of managers).

Each plot has genevent, OTP's gen_event and the bare baseline on the same axes; a series this run
did not measure is left out (and said so in the plot when none was).
"""

from __future__ import annotations

import io
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from . import _harness as h

FILES = ("throughput.svg", "latency.svg", "memory.svg")
LOADS = ("idle", "busy", f"flooded ({h.FLOOD_AHEAD} ahead)")


def _value(rows: Sequence[h.Row], sc: h.Scenario, impl: str) -> float | None:
    r = h.find(rows, sc, impl)
    return r.value if r is not None and r.value is not None and r.value > 0 else None


def _series(
    rows: Sequence[h.Row], xs: Sequence[Any], points: Sequence[tuple[h.Scenario, str]]
) -> tuple[list[Any], list[float]]:
    """The (x, value) pairs of the measured points."""
    got = [(x, _value(rows, sc, impl)) for x, (sc, impl) in zip(xs, points, strict=True)]
    return [x for x, v in got if v is not None], [v for _, v in got if v is not None]


def _figure(title: str, xlabel: str, ylabel: str) -> tuple[Any, Any]:
    from matplotlib.figure import Figure  # noqa: PLC0415 - optional (the bench extra)

    fig = Figure(figsize=(7, 4.5))
    ax = fig.add_subplot()
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(True, which="both", alpha=0.3)
    return fig, ax


def _finish(fig: Any, ax: Any, path: Path, drawn: int) -> Path:
    if drawn:
        ax.legend(fontsize="small")
    else:
        ax.text(0.5, 0.5, "not measured in this run", ha="center", transform=ax.transAxes)
    fig.tight_layout()
    out = io.StringIO()
    fig.savefig(out, format="svg", metadata={"Date": None})
    # colours written as rgb(): an all-digit hex colour (black) reads like a ticket number
    # to the repository's check that no work item is cited
    text = re.sub(r"#(\d{6})\b", _rgb, out.getvalue())
    path.write_text(text, encoding="utf-8")
    return path


def _rgb(match: re.Match[str]) -> str:
    h = match.group(1)
    return f"rgb({int(h[0:2], 16)},{int(h[2:4], 16)},{int(h[4:6], 16)})"


def throughput(rows: Sequence[h.Row], path: Path) -> Path:
    """Notify throughput (handler invocations per second) against the number of handlers."""
    fig, ax = _figure("notify throughput", "handlers", "handler invocations / s")
    ks = (1, 10, 100)
    scenarios = (h.NOTIFY_1, h.NOTIFY_10, h.NOTIFY_100)
    drawn = 0
    for impl, label in (
        (h.GE_AIO, "genevent asyncio"),
        (h.GE_THREADS, "genevent threads"),
        (h.OTP, "OTP gen_event"),
        (h.DEQUE, "bare: deque mailbox + wake-up future"),
        (h.PLAIN_LOOP, "bare: plain loop (no mailbox)"),
    ):
        xs, ys = _series(rows, ks, [(sc, impl) for sc in scenarios])
        if ys:
            ax.plot(xs, ys, marker="o", label=label)
            drawn += 1
    ax.set_xscale("log")
    ax.set_yscale("log")
    return _finish(fig, ax, path, drawn)


def latency(rows: Sequence[h.Row], path: Path) -> Path:
    """Median call latency against the manager's load."""
    fig, ax = _figure("call latency against load (median)", "manager's load", "µs per call")
    xs = list(range(len(LOADS)))
    drawn = 0
    for label, points in (
        (
            "genevent asyncio",
            ((h.CALL_INLINE_MED, h.GE_AIO), (h.CALL_MED, h.GE_AIO), (h.CALL_FLOODED, h.GE_AIO)),
        ),
        (
            "genevent threads (idle: inline=True)",
            (
                (h.CALL_INLINE_MED, h.GE_THREADS_INLINE),
                (h.CALL_MED, h.GE_THREADS),
                (h.CALL_FLOODED, h.GE_THREADS),
            ),
        ),
        (
            "OTP gen_event",
            ((h.CALL_INLINE_MED, h.OTP), (h.CALL_MED, h.OTP), (h.CALL_FLOODED, h.OTP)),
        ),
        (
            "bare (idle: the caller itself; else deque server + Future)",
            ((h.CALL_INLINE_MED, h.DIRECT), (h.CALL_MED, h.DEQUE_RT), (h.CALL_FLOODED, h.DEQUE_RT)),
        ),
    ):
        got_x, ys = _series(rows, xs, points)
        if ys:
            ax.plot(got_x, ys, marker="o", label=label)
            drawn += 1
    ax.set_xticks(xs, LOADS)
    ax.set_yscale("log")
    return _finish(fig, ax, path, drawn)


def memory(rows: Sequence[h.Row], path: Path) -> Path:
    """Memory against the number of idle managers with one handler each."""
    fig, ax = _figure("memory of idle managers (one handler each)", "managers", "bytes")
    ns = [1, 10, 100, 1_000, 10_000, 100_000]
    drawn = 0
    for impl, label in (
        (h.GE_AIO, "genevent asyncio"),
        (h.GE_THREADS, "genevent threads (Python heap only)"),
        (h.OTP, "OTP gen_event"),
        (h.DEQUE, "bare: deque mailbox task"),
    ):
        per = _value(rows, h.MEM_MANAGER, impl)
        if per is not None:
            ax.plot(ns, [per * n for n in ns], marker="o", label=label)
            drawn += 1
    ax.set_xscale("log")
    ax.set_yscale("log")
    return _finish(fig, ax, path, drawn)


def write(rows: Sequence[h.Row], directory: str) -> list[Path]:
    """Write the three plots into ``directory`` (created if needed); return their paths."""
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    names = dict(zip(("throughput", "latency", "memory"), FILES, strict=True))
    return [
        throughput(rows, out / names["throughput"]),
        latency(rows, out / names["latency"]),
        memory(rows, out / names["memory"]),
    ]
