"""``python -m benchmarks.tracing_cost [--pairs N] [--events N] [--baseline SRC]``: what
tracing costs a notify burst.

Each run is a fresh interpreter that notifies N events to a manager with one plain handler
and waits until the last one was handled (``sync_notify``), on both runtimes. Modes:

* ``off``: tracing not configured (the default): the untraced face;
* ``noop``: ``tracing=True`` with OpenTelemetry's API only (no SDK: its no-op tracer), the
  cost of the envelope and the wrapped callbacks;
* ``sdk``: ``tracing=True`` with the SDK's ``TracerProvider`` (spans made and ended; no
  exporter, so what an exporter costs is not counted).

With ``--baseline SRC`` (another checkout's ``src``), ``off`` is compared with that checkout
in pairs, interleaved (which side runs first alternates), and the median of the per-pair
ratios is printed. On a busy machine single pairs differ by tens of percent: use many pairs.
Timing figures are printed, never asserted on.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

_SRC = str(Path(__file__).resolve().parent.parent / "src")

_CHILD = r"""
import asyncio, json, sys, time
mode, runtime, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
provider = None
if mode == "sdk":
    from opentelemetry.sdk.trace import TracerProvider
    provider = TracerProvider()
kw = {}
if mode != "off":
    from genevent import tracing
    tracing.enable(tracer_provider=provider)
from genevent import EventHandler, aio, threads

class Count(EventHandler):
    def init(self, args=None):
        self.n = 0
    def handle_event(self, event):
        self.n += 1

events = list(range(n))
if runtime == "threads":
    with threads.start() as mgr:
        mgr.add_handler(Count)
        mgr.sync_notify(-1)
        t0 = time.perf_counter()
        notify = mgr.notify
        for e in events:
            notify(e)
        mgr.sync_notify(-1)
        dt = time.perf_counter() - t0
else:
    async def main():
        async with aio.start() as mgr:
            await mgr.add_handler(Count)
            await mgr.sync_notify(-1)
            t0 = time.perf_counter()
            notify = mgr.notify
            for e in events:
                notify(e)
            await mgr.sync_notify(-1)
            return time.perf_counter() - t0
    dt = asyncio.run(main())
print(json.dumps(n / dt))
"""


def _run(src: str, mode: str, runtime: str, events: int) -> float:
    env = {**os.environ, "PYTHONPATH": src}
    out = subprocess.run(
        [sys.executable, "-c", _CHILD, mode, runtime, str(events)],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    rate: Any = json.loads(out.stdout)
    return float(rate)


def main(argv: list[str] | None = None) -> None:
    """Run the comparison and print it."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pairs", type=int, default=10)
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--baseline", help="another checkout's src directory")
    parser.add_argument(
        "--traced-events", type=int, default=20_000, help="events per run of the traced modes"
    )
    args = parser.parse_args(argv)
    for runtime in ("aio", "threads"):
        if args.baseline:
            ratios, base, this = [], [], []
            for i in range(args.pairs):
                if i % 2:  # which runs first alternates: no pair favours one side
                    t = _run(_SRC, "off", runtime, args.events)
                    b = _run(args.baseline, "off", runtime, args.events)
                else:
                    b = _run(args.baseline, "off", runtime, args.events)
                    t = _run(_SRC, "off", runtime, args.events)
                base.append(b)
                this.append(t)
                ratios.append(t / b)
            print(
                f"{runtime}: off vs baseline: median {statistics.median(this):,.0f} vs "
                f"{statistics.median(base):,.0f} events/s; median ratio of pairs "
                f"{statistics.median(ratios):.3f} (min {min(ratios):.3f}, max {max(ratios):.3f})"
            )
        started = time.perf_counter()
        rows = {m: [] for m in ("off", "noop", "sdk")}  # type: dict[str, list[float]]
        for _ in range(max(3, args.pairs // 2)):
            for mode, rates in rows.items():
                n = args.events if mode == "off" else args.traced_events
                rates.append(_run(_SRC, mode, runtime, n))
        off = statistics.median(rows["off"])
        for mode, rates in rows.items():
            med = statistics.median(rates)
            print(f"{runtime}: {mode:4}: median {med:,.0f} events/s ({med / off:.2f}x off)")
        print(f"  ({time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
