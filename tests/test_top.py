"""``genevent top``, headless: the stats endpoint, the rendered view (rich's recording
console) and the command itself against a live endpoint."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from typing import Any

import pytest

from genevent import EventHandler, threads
from genevent.top import render, serve, snapshot

rich = pytest.importorskip("rich")


class Count(EventHandler[Any, str, int]):
    def init(self, args: object = None) -> None:
        self.n = 0

    def handle_event(self, event: Any, /) -> None:
        if event == "boom":
            raise ValueError("boom")
        self.n += 1


def view(table: Any) -> str:
    from rich.console import Console  # noqa: PLC0415

    console = Console(record=True, width=160, color_system=None)
    console.print(table)
    return console.export_text()


def test_snapshot_is_plain_json() -> None:
    with threads.start("snap") as mgr:
        mgr.add_handler(Count)
        mgr.sync_notify(1)
        data = snapshot([mgr])
    json.dumps(data)  # JSON-ready
    (m,) = data["managers"]
    assert m["name"] == "snap"
    assert m["events"] == 1
    assert m["handlers"][0]["handler"] == "Count"


def test_render_shows_managers_handlers_and_rates() -> None:
    with threads.start("orders", timing=True) as mgr:
        mgr.add_handler(Count, restart="transient")
        first = snapshot([mgr])
        for e in (1, 2, "boom", 3):
            mgr.notify(e)
        mgr.sync_notify(4)
        second = snapshot([mgr])
    second["time"] = first["time"] + 2.0  # two seconds later: 5 events -> 2.5/s
    text = view(render(second, first))
    header = cells(next(line for line in text.splitlines() if "manager / handler" in line))
    row = dict(
        zip(header, cells(next(ln for ln in text.splitlines() if "orders" in ln)), strict=True)
    )
    assert row["state"] == "running"
    assert row["events/s"] == "2"  # 5 events in 2 s, rounded
    assert row["events"] == "5"
    assert row["crashes"] == "1"
    assert row["restarts"] == "1"
    handler = dict(
        zip(header, cells(next(ln for ln in text.splitlines() if "Count" in ln)), strict=True)
    )
    assert handler["events"] == "2"  # since its restart: 3 and 4
    assert handler["p50 ms"] != "-"  # timed: the manager was started with timing=True


def cells(line: str) -> list[str]:
    return [c.strip() for c in line.strip().strip("│┃").split("│" if "│" in line else "┃")]


def test_genevent_top_once_reads_a_live_endpoint() -> None:
    with threads.start("served") as mgr:
        mgr.add_handler(Count)
        mgr.sync_notify(1)
        server = serve(managers=lambda: [mgr])
        try:
            with urllib.request.urlopen(server.url, timeout=5) as r:
                assert json.loads(r.read())["managers"][0]["name"] == "served"
            done = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "genevent",
                    "top",
                    "--once",
                    "--url",
                    server.url,
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
            server.close()
    assert done.returncode == 0, done.stderr
    assert "served" in done.stdout
    assert "Count" in done.stdout


def test_genevent_top_reports_an_unreachable_url() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "genevent", "top", "--once", "--url", "http://127.0.0.1:9/"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1
    assert "cannot read" in done.stdout
