"""A supervised handler that restarts: a price feed whose parser crashes on bad quotes.

The handler is added with ``restart="transient"``: after a crash it is added again, at the
front, with its original arguments (its state starts afresh), and its owner stays the same. A
burst of bad quotes beyond the intensity limit (3 restarts within 10 s) removes it for good,
and then, only then, its owner is told. Run: ``python examples/supervised_restart.py``
"""

from __future__ import annotations

import asyncio

from genevent import EventHandler, HandlerExit, aio


class Prices(EventHandler[str, str, dict[str, float]]):
    """Parses ``"SYMBOL=price"`` quotes; a malformed one raises (a crash)."""

    def init(self, currency: str) -> None:
        self.currency = currency
        self.last: dict[str, float] = {}

    def handle_event(self, event: str) -> None:
        symbol, price = event.split("=")
        self.last[symbol] = float(price)

    def handle_call(self, request: str) -> dict[str, float]:
        return dict(self.last)


async def owner(mgr: aio.EventManager[str], done: asyncio.Event) -> None:
    """The task that owns the feed: it lives as long as the feed, and hears when it goes."""
    notices: asyncio.Queue[HandlerExit] = asyncio.Queue()
    await mgr.add_sup_handler(
        Prices,
        "EUR",
        on_exit=notices.put_nowait,
        restart="transient",
        max_restarts=3,
        restart_period=10.0,
    )
    done.set()
    notice = await notices.get()  # only when it is gone for good
    print("owner told:", type(notice.reason).__name__)


async def main() -> None:
    async with aio.start("feed") as mgr:
        added = asyncio.Event()
        watcher = asyncio.create_task(owner(mgr, added))
        await added.wait()
        for quote in ("ACME=10.5", "garbage", "ACME=11.0", "INIT=2.0"):
            mgr.notify(quote)
        print("after one bad quote:", await mgr.call(Prices, "last"))  # restarted, fresh
        print("restarts so far:", mgr.stats().restarts)
        for _ in range(4):  # a burst of bad quotes: three restarts, then the limit
            mgr.notify("garbage")
        await watcher
        print("installed now:", await mgr.which_handlers())


if __name__ == "__main__":
    asyncio.run(main())
