"""Notify burst to one isolated handler against the same handler not isolated, as a ratio.

Run: ``.venv/bin/python -m benchmarks.isolation [--events N] [--reps R]``. Each figure is the
best of ``reps`` bursts of ``N`` notifies followed by one ``sync_notify`` (which returns once
the handler handled every event, isolated or not), in one run, side by side; the ratio is
isolated throughput / plain throughput (above 1: isolation is faster).
"""

from __future__ import annotations

import argparse
import asyncio
import time
from typing import Any

from genevent import aio

from ._genevent_rows import Counter


async def burst(n: int, isolation: Any) -> int:
    """Elapsed ns for ``n`` notifies and one sync_notify to one Counter handler."""
    mgr = aio.start()
    try:
        await mgr.add_handler(Counter, None, isolation=isolation)
        notify = mgr.notify
        t0 = time.perf_counter_ns()
        for _ in range(n):
            notify(None)
        await mgr.sync_notify(None)
        elapsed = time.perf_counter_ns() - t0
        count = await mgr.call(Counter, "get")
    finally:
        await mgr.stop()
    if count != n + 1:
        raise AssertionError(f"handled {count} events, expected {n + 1}")
    return elapsed


def main(argv: list[str] | None = None) -> None:
    """Print events/s for each mode and its ratio to the plain handler."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=300_000)
    parser.add_argument("--reps", type=int, default=5)
    args = parser.parse_args(argv)
    best: dict[str, int] = {}
    for _ in range(args.reps):  # interleaved, so that drift hits every mode alike
        for label, isolation in (("plain", None), ("task", "task"), ("thread", "thread")):
            ns = asyncio.run(burst(args.events, isolation))
            best[label] = min(best.get(label, ns), ns)
    plain = args.events / best["plain"] * 1e9
    print(f"notify burst, one handler, {args.events} events, best of {args.reps}")
    for label in ("plain", "task", "thread"):
        rate = args.events / best[label] * 1e9
        name = "not isolated" if label == "plain" else f'isolation="{label}"'
        print(f"  {name:22} {rate:14,.0f} events/s  {rate / plain:5.2f}x")


if __name__ == "__main__":
    main()
