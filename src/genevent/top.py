"""``genevent top``: a live terminal view of a process's managers (the ``top`` extra, from a
checkout: ``pip install -e '/path/to/genevent[top]'``).

The process to watch opts in by serving its managers' figures, read-only, as JSON over HTTP on
the loopback interface (standard library only, nothing is ever unpickled)::

    from genevent.top import serve
    server = serve(port=9464)              # every running manager of this process

and ``genevent top --url http://127.0.0.1:9464/`` shows, refreshed every second: each manager,
whether it runs, its backlog and high-water mark, its event rate, drops, refusals, crashes and
restarts, and under it each handler with its events, crashes, restarts and (when the manager
times callbacks, ``start(timing=True)``) its p50/p99 ``handle_event`` latency.
``genevent top --once`` prints one snapshot and exits (for scripts). The view is drawn with
``rich``; :func:`render` builds it from the JSON alone, so it is tested headless.

With the NATS transport, ``genevent top --nats nats://HOST:4222`` shows every manager of every
node of the cluster instead (``name@node``), read with each manager's ``stats`` operation.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterable, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from ._inventory import running_managers
from ._metrics import ManagerStats, plain_stats

__all__ = ("StatsServer", "cluster_snapshot", "main", "render", "serve", "snapshot")


def snapshot(managers: Iterable[Any] | None = None) -> dict[str, Any]:
    """The figures of ``managers`` (default: every running manager of this process) as plain
    JSON-ready data: ``{"time": ..., "managers": [ManagerStats as a dict, ...]}``; handler
    references become text."""
    found = running_managers() if managers is None else list(managers)
    stats: list[ManagerStats] = [m.stats() for m in found]
    return {"time": time.time(), "managers": [plain_stats(s) for s in stats]}


class StatsServer:
    """A running stats endpoint (see :func:`serve`): ``url`` to give ``genevent top``,
    ``close()`` to stop it."""

    def __init__(self, httpd: ThreadingHTTPServer, thread: threading.Thread) -> None:
        self._httpd = httpd
        self._thread = thread
        host, port = httpd.server_address[:2]
        #: where ``genevent top --url`` finds it
        self.url = f"http://{host!s}:{port}/"

    def close(self) -> None:
        """Stop serving and free the port."""
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join()


def serve(
    host: str = "127.0.0.1",
    port: int = 0,
    managers: Callable[[], Iterable[Any]] | None = None,
) -> StatsServer:
    """Serve :func:`snapshot` as JSON at ``http://host:port/`` from a daemon thread (``port``
    0 picks a free one: read ``server.url``). ``managers`` returns the managers to show
    (default: every running manager of this process). Bind to the loopback interface unless
    you mean to publish the figures."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = json.dumps(snapshot(managers() if managers else None)).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass  # a scrape per second is not news

    httpd = ThreadingHTTPServer((host, port), Handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, name="genevent-top", daemon=True)
    thread.start()
    return StatsServer(httpd, thread)


def _fetch(url: str, timeout: float) -> dict[str, Any]:
    if not url.startswith(("http://", "https://")):
        raise ValueError(f"not an http(s) URL: {url!r}")
    with urllib.request.urlopen(url, timeout=timeout) as response:
        data = json.loads(response.read())
    if not isinstance(data, dict) or not isinstance(data.get("managers"), list):
        raise ValueError(f"{url} did not answer with genevent figures")
    return data


def _ms(seconds: Any) -> str:
    return "-" if seconds is None else f"{seconds * 1000:.3f}"


COLUMNS = (
    ("manager / handler", "name"),
    ("state", "state"),
    ("queued", "queue"),
    ("high", "high"),
    ("events/s", "ev/s"),
    ("events", "events"),
    ("dropped", "drop"),
    ("refused", "refus"),
    ("crashes", "crash"),
    ("restarts", "rest"),
    ("p50 ms", "p50ms"),
    ("p99 ms", "p99ms"),
)
"""The view's columns: ``(header, the header when fewer than 120 columns are free)``."""


def _handler_text(handler: Any) -> str:
    """A handler reference as the snapshot gives it (text, or ``[class, id]``) for the view: a
    function subscribed with ``subscribe``/``on`` by its function's name, ``name()``."""
    if isinstance(handler, list) and len(handler) == 2:
        if handler[0] in ("FunctionHandler", "AsyncFunctionHandler"):
            return f"{str(handler[1]).rsplit('.', 1)[-1]}()"  # its __name__
        return f"({handler[0]}, {handler[1]})"
    return str(handler)


def render(
    current: dict[str, Any], previous: dict[str, Any] | None = None, width: int | None = None
) -> Any:
    """The view of one snapshot as a ``rich`` table (rates need the ``previous`` one). Under
    120 columns of ``width`` the headers are abbreviated (``queue``, ``ev/s``, ``crash``...)."""
    from rich import box  # noqa: PLC0415 - the top extra
    from rich.table import Table  # noqa: PLC0415

    dt = current["time"] - previous["time"] if previous else 0.0
    before = {m["id"]: m for m in previous["managers"]} if previous else {}
    count = len(current["managers"])
    narrow = width is not None and width < 120
    table = Table(
        title=f"genevent: {count} manager{'' if count == 1 else 's'}",
        expand=True,
        box=box.SIMPLE_HEAD if narrow else box.HEAVY_HEAD,
        padding=(0, 0) if narrow else (0, 1),
        pad_edge=not narrow,
    )
    groups = current.get("groups")
    if groups:  # a cluster's process groups
        table.caption = "groups: " + "; ".join(f"{g}: {' '.join(m)}" for g, m in groups.items())
    for i, (wide_header, short_header) in enumerate(COLUMNS):
        header = short_header if narrow else wide_header
        table.add_column(
            header,
            justify="left" if i == 0 else "right",
            no_wrap=True,
            min_width=(14 if narrow else None) if i == 0 else len(header),
            ratio=1 if i == 0 else None,
            overflow="ellipsis",
        )
    for m in sorted(current["managers"], key=lambda m: (m["name"] is None, m["name"] or "")):
        old = before.get(m["id"])
        rate = (m["events"] - old["events"]) / dt if old is not None and dt > 0 else None
        table.add_row(
            f"[bold]{m['name'] or hex(m['id'])}[/bold]",
            "running" if m["running"] else "stopped",
            str(m["queued"]),
            str(m["high_water"]),
            "-" if rate is None else f"{rate:,.0f}",
            f"{m['events']:,}",
            str(m["dropped"]),
            str(m["refused"]),
            str(m["crashes"]),
            str(m["restarts"]),
            "",
            "",
        )
        durable = m.get("durable")  # a NATS manager serving durable notifies
        if isinstance(durable, dict):
            table.add_row(
                f"  durable: {durable.get('dead_letters', 0)} dead letters, "
                f"{durable.get('redelivered', 0)} redelivered",
                "",
                "",
                "",
                "",
                f"{durable.get('handled', 0):,}",
                "",
                str(durable.get("undecodable", 0)),
                "",
                "",
                "",
                "",
            )
        for h in m["handlers"]:
            timing = h.get("timing") or {}
            table.add_row(
                f"  {_handler_text(h['handler'])}",
                "",
                "",
                "",
                "",
                f"{h['events']:,}",
                str(h.get("dropped", 0)),  # its own mailbox's (isolated handlers)
                "",
                str(h["crashes"]),
                str(h["restarts"]),
                _ms(timing.get("p50")),
                _ms(timing.get("p99")),
            )
    return table


def main(argv: Sequence[str] | None = None) -> int:
    """``genevent top``: show a process's managers, refreshed every ``--interval`` seconds."""
    parser = argparse.ArgumentParser(
        prog="genevent top", description=(main.__doc__ or "").replace("``", "")
    )
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--url", help="a process's stats URL (genevent.top.serve)")
    where.add_argument("--nats", metavar="SERVER", help="a NATS server: the whole cluster")
    parser.add_argument("--ns", default="default", help="the cluster namespace (with --nats)")
    parser.add_argument("--interval", type=float, default=1.0, help="seconds between refreshes")
    parser.add_argument("--once", action="store_true", help="print one snapshot and exit")
    try:  # --nats logs in as the other NATS commands do
        from .nats._cli import add_connect_arguments  # noqa: PLC0415 - the nats extra
    except ImportError:
        pass
    else:
        add_connect_arguments(parser, server=False)
    args = parser.parse_args(argv)
    try:
        from rich.console import Console  # noqa: PLC0415 - the top extra
        from rich.live import Live  # noqa: PLC0415
    except ImportError:
        print(
            "genevent top needs rich: install genevent's 'top' extra from your checkout, "
            "pip install -e '/path/to/genevent[top]'"
        )
        return 2
    console = Console()
    if args.nats:
        return _run_cluster(args, console, Live)
    try:
        previous = _fetch(args.url, timeout=5.0)
        if args.once:
            time.sleep(min(args.interval, 1.0))  # two snapshots give the rates
            console.print(render(_fetch(args.url, timeout=5.0), previous, console.width))
            return 0
        with Live(
            render(previous, None, console.width), console=console, refresh_per_second=4
        ) as live:
            while True:
                time.sleep(args.interval)
                current = _fetch(args.url, timeout=5.0)
                live.update(render(current, previous, console.width))
                previous = current
    except KeyboardInterrupt:
        return 0
    except (OSError, ValueError) as exc:
        console.print(f"genevent top: cannot read {args.url}: {exc}")
        return 1


async def cluster_snapshot(node: Any) -> dict[str, Any]:
    """Every manager of ``node``'s cluster namespace (a :class:`genevent.nats.Node`), read
    with each one's ``stats`` operation; names become ``name@node``. A manager that went away
    meanwhile is left out. ``groups`` holds the process groups and their members."""
    rows: list[dict[str, Any]] = []
    for name, where in (await node.managers()).items():
        try:
            stats = await node.manager(name).stats(timeout=5.0)
        except Exception:
            continue
        stats["name"] = f"{name}@{where}"
        rows.append(stats)
    try:  # process groups: shown under the table (none for a user who may not read them)
        groups = await asyncio.wait_for(node.groups(), 2.0)
    except Exception:
        groups = {}
    return {"time": time.time(), "managers": rows, "groups": groups}


def _run_cluster(args: argparse.Namespace, console: Any, live_class: Any) -> int:
    try:
        from .nats._cli import connect_options, run_command  # noqa: PLC0415 - the nats extra
    except ImportError as exc:
        print(f"genevent top: {exc}", file=sys.stderr)
        return 2
    try:
        options = connect_options(args)
    except (OSError, ValueError) as exc:
        print(f"genevent top: {exc}", file=sys.stderr)
        return 2
    return run_command("genevent top", _cluster(args, options, console, live_class))


async def _cluster(
    args: argparse.Namespace, options: dict[str, Any], console: Any, live_class: Any
) -> int:
    from .nats import connect  # noqa: PLC0415 - the nats extra

    async with await connect(args.nats, ns=args.ns, max_reconnect_attempts=0, **options) as node:
        previous = await cluster_snapshot(node)
        if args.once:
            await asyncio.sleep(min(args.interval, 1.0))
            console.print(render(await cluster_snapshot(node), previous, console.width))
            return 0
        with live_class(
            render(previous, None, console.width), console=console, refresh_per_second=4
        ) as live:
            while True:
                await asyncio.sleep(args.interval)
                current = await cluster_snapshot(node)
                live.update(render(current, previous, console.width))
                previous = current
