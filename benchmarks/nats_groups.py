"""``python -m benchmarks.nats_groups [--quick] [--only ROW ...] [--pairs N]``: process groups
over NATS, side by side with what they replace, in one run on one nats-server.

Rows (``--only`` picks some):

* ``notify``: ``await group.notify(event)`` to a group of 1, 10 and 100 members (managers on
  another node whose handler counts events) against the same events sent as one
  ``RemoteManager.notify`` per member. Both producers yield to the loop every 100 events and
  stop the clock once every member confirmed the last one (a ``sync_notify`` behind them).
  Throughput is deliveries (events x members) per second; the two sides of a pair run one
  after the other, which one first alternating, and the ratio is taken per pair;
* ``sync``: the latency of ``await group.sync_notify(event)`` (median, p99) to 1, 10 and 100
  members, beside the latency of ``asyncio.gather`` of one ``RemoteManager.sync_notify`` per
  member (the group reads its membership from NATS on every call, the direct side does not);
* ``fanout``: raw nats-py, what a group subject would save: N publishes to N subjects (one
  subscription each, as genevent sends a group notify today) against one publish to one
  subject that a single subscription fans out to N local counters.

Medians with their spread (min-max) over the pairs. Timing figures are printed, never asserted
on.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from collections.abc import Sequence
from typing import Any

import nats

from genevent import EventHandler
from genevent.nats import NatsServer, Node, RemoteManager, connect
from genevent.nats._link import sync

SIZES = (1, 10, 100)
ROWS = ("notify", "sync", "fanout")
_EVERY = 100  # the producers yield to the loop every this many events


class Counter(EventHandler[Any, Any, Any]):
    """Counts events."""

    def init(self, args: Any = None, /) -> None:
        self.count = 0

    def handle_event(self, event: Any, /) -> None:
        self.count += 1


def _spread(values: list[float]) -> str:
    return f"{statistics.median(values):>10,.0f} ({min(values):,.0f}-{max(values):,.0f})"


async def _group_side(caller: Node, group: str, events: int, size: int) -> float:
    g = caller.group(group)
    t0 = time.perf_counter()
    for i in range(events):
        await g.notify(i)
        if i % _EVERY == _EVERY - 1:
            await asyncio.sleep(0)
    await g.sync_notify("end", timeout=120)
    return events * size / (time.perf_counter() - t0)


async def _direct_side(refs: list[RemoteManager], events: int) -> float:
    t0 = time.perf_counter()
    for i in range(events):
        for ref in refs:
            ref.notify(i)
        if i % _EVERY == _EVERY - 1:
            await asyncio.sleep(0)
    await asyncio.gather(*(ref.sync_notify("end", timeout=120) for ref in refs))
    return events * len(refs) / (time.perf_counter() - t0)


async def _notify_rows(caller: Node, pairs: int, deliveries: int) -> None:
    print("group notify vs one RemoteManager.notify per member (deliveries/s, median (min-max))")
    for size in SIZES:
        events = max(deliveries // size, _EVERY)
        refs = [caller.manager(f"m{i}") for i in range(size)]
        group, direct, ratios = [], [], []
        for p in range(pairs):
            if p % 2:
                d = await _direct_side(refs, events)
                g = await _group_side(caller, f"g{size}", events, size)
            else:
                g = await _group_side(caller, f"g{size}", events, size)
                d = await _direct_side(refs, events)
            group.append(g)
            direct.append(d)
            ratios.append(g / d)
        print(
            f"  {size:>3} members: group {_spread(group)}   direct {_spread(direct)}   "
            f"ratio {statistics.median(ratios):.2f}x ({min(ratios):.2f}-{max(ratios):.2f})"
        )


def _pcts(samples: list[float]) -> tuple[float, float]:
    samples.sort()
    return statistics.median(samples), samples[max(int(len(samples) * 0.99) - 1, 0)]


async def _sync_rows(caller: Node, rounds: int) -> None:
    print("group sync_notify vs gather of one RemoteManager.sync_notify per member (us)")
    for size in SIZES:
        g = caller.group(f"g{size}")
        refs = [caller.manager(f"m{i}") for i in range(size)]
        group: list[float] = []
        direct: list[float] = []
        for r in range(rounds):
            t0 = time.perf_counter()
            await g.sync_notify(r)
            group.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            await asyncio.gather(*(ref.sync_notify(r) for ref in refs))
            direct.append(time.perf_counter() - t0)
        (gm, gp), (dm, dp) = _pcts(group), _pcts(direct)
        print(
            f"  {size:>3} members: group median {gm * 1e6:>8,.0f} p99 {gp * 1e6:>8,.0f}   "
            f"direct median {dm * 1e6:>8,.0f} p99 {dp * 1e6:>8,.0f}   "
            f"ratio median {gm / dm:.2f}x"
        )


async def _raw_side(url: str, size: int, events: int, one_subject: bool) -> float:
    pub, sub = await nats.connect(url), await nats.connect(url)
    counts = [0] * size
    done = asyncio.Event()

    def counter(i: int) -> Any:
        async def cb(msg: Any) -> None:
            counts[i] += 1
            if counts[i] == events and all(c == events for c in counts):
                done.set()

        return cb

    async def fan_out(msg: Any) -> None:
        for i in range(size):
            counts[i] += 1
        if counts[0] == events:
            done.set()

    if one_subject:
        await sub.subscribe("bench.grp", cb=fan_out)
    else:
        for i in range(size):
            await sub.subscribe(f"bench.mgr.{i}", cb=counter(i))
    await sync(sub)
    payload = b"x" * 16
    t0 = time.perf_counter()
    for n in range(events):
        if one_subject:
            await pub.publish("bench.grp", payload)
        else:
            for i in range(size):
                await pub.publish(f"bench.mgr.{i}", payload)
        if n % _EVERY == _EVERY - 1:
            await asyncio.sleep(0)
    await done.wait()
    elapsed = time.perf_counter() - t0
    await pub.close()
    await sub.close()
    return events * size / elapsed


async def _fanout_rows(url: str, pairs: int, deliveries: int) -> None:
    print("raw nats-py: one subject per member vs one group subject (deliveries/s)")
    for size in SIZES:
        events = max(deliveries // size, _EVERY)
        each, one, ratios = [], [], []
        for _ in range(pairs):
            e = await _raw_side(url, size, events, False)
            o = await _raw_side(url, size, events, True)
            each.append(e)
            one.append(o)
            ratios.append(o / e)
        print(
            f"  {size:>3} members: per member {_spread(each)}   group subject {_spread(one)}   "
            f"ratio {statistics.median(ratios):.2f}x ({min(ratios):.2f}-{max(ratios):.2f})"
        )


async def run(quick: bool, only: Sequence[str], pairs: int) -> None:
    """Measure the rows in ``only`` and print them."""
    deliveries, rounds = (2_000, 50) if quick else (20_000, 300)
    with NatsServer() as server:
        url = server.url
        host = await connect(url, ns="benchgrp", node_id="host", handlers=[Counter])
        caller = await connect(url, ns="benchgrp", node_id="caller", handlers=[Counter])
        try:
            for i in range(max(SIZES)):
                mgr = await host.start_manager(f"m{i}")
                await mgr.add_handler(Counter)
            for size in SIZES:
                for i in range(size):
                    await host.join(f"g{size}", f"m{i}")
            if "notify" in only:
                await _notify_rows(caller, pairs, deliveries)
            if "sync" in only:
                await _sync_rows(caller, rounds)
            if "fanout" in only:
                await _fanout_rows(url, pairs, deliveries)
        finally:
            await caller.close()
            await host.close()


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the options, run, print."""
    p = argparse.ArgumentParser(prog="python -m benchmarks.nats_groups", description=__doc__)
    p.add_argument("--quick", action="store_true", help="small counts (a smoke run)")
    p.add_argument("--only", nargs="+", choices=ROWS, default=list(ROWS), metavar="ROW")
    p.add_argument("--pairs", type=int, default=5, help="pairs per row (default 5)")
    args = p.parse_args(argv)
    asyncio.run(run(args.quick, args.only, args.pairs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
