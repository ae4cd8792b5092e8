"""``python -m benchmarks.supervision [--quick]``: supervised handlers across NATS nodes.

One nats-server serves every row of a run:

* owner notice after a crash: a handler supervised by a task of another node raises; the time
  from the raise (in ``handle_event``, on the manager's node) to the owner's ``on_exit`` on its
  node (both nodes in this process: one clock). Printed beside a ``call``'s round trip between
  the same nodes, the least a notice could take;
* manager node SIGKILLed: a node process hosting the manager is killed; the time until the
  owner is told ``ManagerNodeDown``, beside the time until a monitor of the same manager, on
  the same node, fires ``nodedown`` (the node-down detection of the same run; lease 1.5 s).

Timing figures are printed, never asserted on.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import statistics
import sys
import time
from collections.abc import Sequence
from typing import Any

from benchmarks.nats_remote import percentiles, spawned_node
from genevent import EventHandler, HandlerExit
from genevent.nats import ManagerNodeDown, NatsServer, Node, connect

RAISED: list[float] = []
"""When the last :class:`Crashy` raised (``time.perf_counter()``)."""


class Crashy(EventHandler[Any, Any, Any]):
    """Raises on the event ``"crash"``; a call returns ``"ok"``."""

    def handle_event(self, event: Any, /) -> None:
        if event == "crash":
            RAISED.append(time.perf_counter())
            raise RuntimeError("crash")

    def handle_call(self, request: Any, /) -> Any:
        return "ok"


async def setup(node: Node) -> None:
    """The benchmark's child node (``genevent node --module benchmarks.supervision``)."""
    node.register_handler(Crashy)
    await node.start_manager("victim")


async def _crash_notices(host: Node, owner: Node, n: int) -> tuple[float, float]:
    await host.start_manager("bench-sup")
    remote = owner.manager("bench-sup")
    loop = asyncio.get_running_loop()
    samples = []
    for _ in range(n):
        told: asyncio.Future[float] = loop.create_future()

        def on_exit(ex: HandlerExit, told: asyncio.Future[float] = told) -> None:
            if not told.done():
                told.set_result(time.perf_counter())

        await remote.add_sup_handler(Crashy, on_exit=on_exit)
        remote.notify("crash")
        at = await asyncio.wait_for(told, 30)
        samples.append(at - RAISED[-1])
    await remote.stop()
    return percentiles(samples)


async def _calls(host: Node, caller: Node, n: int) -> tuple[float, float]:
    mgr = await host.start_manager("bench-call")
    await mgr.add_handler(Crashy)
    remote = caller.manager("bench-call")
    await remote.call(Crashy, "x")
    samples = []
    for _ in range(n):
        t0 = time.perf_counter()
        await remote.call(Crashy, "x")
        samples.append(time.perf_counter() - t0)
    await remote.stop()
    return percentiles(samples)


async def _kill_once(url: str, owner: Node, k: int) -> tuple[float, float]:
    """(seconds until ManagerNodeDown, seconds until the monitor's nodedown) after SIGKILL."""
    async with spawned_node(url, owner.ns, "benchmarks.supervision", f"victim-{k}") as proc:
        remote = owner.manager("victim")
        told: asyncio.Future[float] = asyncio.get_running_loop().create_future()

        def on_exit(ex: HandlerExit) -> None:
            if isinstance(ex.reason, ManagerNodeDown) and not told.done():
                told.set_result(time.perf_counter())

        await remote.add_sup_handler(Crashy, on_exit=on_exit)
        mon = await owner.monitor("victim")
        t0 = time.perf_counter()
        proc.kill()
        down = await mon.wait(30)
        detected = time.perf_counter() - t0
        assert down.reason == "nodedown", down
        notified = await asyncio.wait_for(told, 30) - t0
        return notified, detected


async def run(quick: bool) -> dict[str, float]:
    """Measure every row; return the figures."""
    n_crash, n_kill = (100, 2) if quick else (2_000, 5)
    out: dict[str, float] = {}
    with NatsServer() as server:
        url = server.url
        host = await connect(url, ns="benchsup", node_id="host", handlers=[Crashy])
        owner = await connect(url, ns="benchsup", node_id="owner", handlers=[Crashy])
        try:
            out["crash_median_us"], out["crash_p99_us"] = (
                x * 1e6 for x in await _crash_notices(host, owner, n_crash)
            )
            out["call_median_us"], out["call_p99_us"] = (
                x * 1e6 for x in await _calls(host, owner, n_crash)
            )
            kills = [await _kill_once(url, owner, k) for k in range(n_kill)]
            told, detected = [t for t, _ in kills], [d for _, d in kills]
            out["kills"] = n_kill
            out["nodedown_told_median_s"] = statistics.median(told)
            out["nodedown_told_max_s"] = max(told)
            out["detection_median_s"] = statistics.median(detected)
            out["detection_max_s"] = max(detected)
        finally:
            await owner.close()
            await host.close()
    return out


def main(argv: Sequence[str] | None = None) -> int:
    """Run and print."""
    p = argparse.ArgumentParser(prog="python -m benchmarks.supervision", description=__doc__)
    p.add_argument("--quick", action="store_true", help="small counts (a smoke run)")
    args = p.parse_args(argv)
    # every crash is on purpose: no crash report for each (errors in genevent itself still show)
    logging.getLogger("genevent").setLevel(logging.CRITICAL)
    r = asyncio.run(run(args.quick))
    print(
        f"owner notice after a crash   median {r['crash_median_us']:>7.0f} us "
        f"p99 {r['crash_p99_us']:>7.0f} us   beside a call's round trip: median "
        f"{r['call_median_us']:>7.0f} us p99 {r['call_p99_us']:>7.0f} us"
    )
    print(
        f"manager node SIGKILLed ({r['kills']:.0f} runs, lease 1.5 s): owner told "
        f"ManagerNodeDown after median {r['nodedown_told_median_s']:.2f} s "
        f"(max {r['nodedown_told_max_s']:.2f} s)   node-down detection (monitor) median "
        f"{r['detection_median_s']:.2f} s (max {r['detection_max_s']:.2f} s)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
