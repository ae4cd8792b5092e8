"""``genevent top`` over a NATS cluster: every manager of every node, read remotely."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from typing import Any

import pytest

from genevent import EventHandler
from genevent.nats import connect

pytest.importorskip("rich")


class Count(EventHandler[Any, str, int]):
    def init(self, args: object = None) -> None:
        self.n = 0

    def handle_event(self, event: Any, /) -> None:
        self.n += 1


def test_remote_stats_and_the_cluster_view(url: str, ns: str) -> None:
    from genevent.top import cluster_snapshot, render  # noqa: PLC0415

    async def scenario() -> tuple[dict[str, Any], dict[str, Any], str]:
        async with await connect(url, ns=ns) as a, await connect(url, ns=ns) as b:
            a.register_handler(Count)
            orders = await a.start_manager("orders")
            await orders.add_handler(Count)
            payments = await b.start_manager("payments")
            for i in range(3):
                orders.notify(i)
            await orders.sync_notify(3)
            remote = await b.manager("orders").stats()
            snap = await cluster_snapshot(b)
            await payments.stop()
            return remote, snap, a.id

    remote, snap, a_id = asyncio.run(scenario())
    assert remote["events"] == 4
    assert remote["handlers"][0]["handler"] == "Count"
    names = sorted(m["name"] for m in snap["managers"])
    assert names == sorted([f"orders@{a_id}", names[1]])
    assert any(n.startswith("payments@") for n in names)
    from rich.console import Console  # noqa: PLC0415

    console = Console(record=True, width=160, color_system=None)
    console.print(render(snap))
    text = console.export_text()
    assert f"orders@{a_id}" in text
    assert "Count" in text


def test_genevent_top_once_over_nats(url: str, ns: str) -> None:
    async def host(ready: asyncio.Event, done: asyncio.Event) -> None:
        async with await connect(url, ns=ns) as node:
            mgr = await node.start_manager("watched")
            await mgr.add_handler(Count)
            await mgr.sync_notify(1)
            ready.set()
            await done.wait()

    async def scenario() -> subprocess.CompletedProcess[str]:
        ready, done = asyncio.Event(), asyncio.Event()
        task = asyncio.create_task(host(ready, done))
        await ready.wait()
        try:
            return await asyncio.to_thread(
                subprocess.run,
                [
                    sys.executable,
                    "-m",
                    "genevent",
                    "top",
                    "--once",
                    "--nats",
                    url,
                    "--ns",
                    ns,
                    "--interval",
                    "0.01",
                ],
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
                env={**os.environ, "COLUMNS": "160"},
            )
        finally:
            done.set()
            await task

    done = asyncio.run(scenario())
    assert done.returncode == 0, done.stdout + done.stderr
    assert "watched@" in done.stdout
    assert "Count" in done.stdout
