"""An asyncio service with domain events: orders are placed, payments fail now and then.

What it shows, with genevent's guarantees:
- plain functions subscribed by event type (``subscribe``, ``@mgr.on``);
- a handler class with one method per event type (``@handles``) whose state one can query:
  a ``call`` made after a ``notify`` sees that event (one mailbox, in order);
- a handler that crashes on some events is removed and reported, the others go on;
- a supervised handler tied to a short-lived task: while the task lives it is told if the
  handler goes; when the task ends, the handler goes too.

Run it: ``python examples/orders_service.py``
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from genevent import EventHandler, HandlerExit, aio, handles


@dataclass(frozen=True)
class OrderPlaced:
    order: int
    amount: float


@dataclass(frozen=True)
class PaymentFailed:
    order: int
    reason: str


Event = OrderPlaced | PaymentFailed


class Revenue(EventHandler[Event, str, float]):
    """Adds up placed orders, takes failed payments off; ``call(Revenue, "total")``."""

    def init(self, args: None = None) -> None:
        self.total = 0.0
        self.amounts: dict[int, float] = {}

    @handles(OrderPlaced)
    def placed(self, event: OrderPlaced) -> None:
        self.amounts[event.order] = event.amount
        self.total += event.amount

    @handles(PaymentFailed)
    def failed(self, event: PaymentFailed) -> None:
        self.total -= self.amounts.pop(event.order, 0.0)

    def handle_call(self, request: str) -> float:
        return round(self.total, 2)


class FraudCheck(EventHandler[Event, None, None]):
    """A flaky handler: it crashes on an order above 1000 (a bug nobody saw coming)."""

    @handles(OrderPlaced)
    def placed(self, event: OrderPlaced) -> None:
        if event.amount > 1000:
            raise ValueError(f"cannot score order {event.order}")


async def watch_for_a_while(
    mgr: aio.EventManager[Event], log: list[str], gone: asyncio.Event
) -> None:
    """A short-lived task that owns a handler: the handler leaves when the task ends."""

    class Watcher(EventHandler[Event, None, None]):
        def handle_event(self, event: Event) -> None:
            log.append(f"watcher saw {event}")

        def terminate(self, reason: object) -> None:
            gone.set()  # OwnerExited: its task ended

    def told(notice: HandlerExit) -> None:  # not called here: the handler outlives its work
        log.append(f"watcher left: {type(notice.reason).__name__}")

    await mgr.add_sup_handler(Watcher, on_exit=told)
    await mgr.sync_notify(OrderPlaced(99, 1.0))
    # the task ends here: the manager removes Watcher (terminate gets OwnerExited)


async def main() -> None:
    log: list[str] = []
    async with aio.start("orders") as mgr:
        await mgr.add_handler(Revenue)
        await mgr.add_handler(FraudCheck)
        failed = await mgr.subscribe(lambda e: log.append(f"alert: {e}"), PaymentFailed)

        @mgr.on(OrderPlaced)
        def audit(event: OrderPlaced) -> None:
            log.append(f"audit: order {event.order} for {event.amount}")

        mgr.notify(OrderPlaced(1, 20.0))
        mgr.notify(OrderPlaced(2, 1500.0))  # FraudCheck crashes here and is removed
        mgr.notify(PaymentFailed(1, "card declined"))
        mgr.notify(OrderPlaced(3, 5.5))
        print("revenue:", await mgr.call(Revenue, "total"))  # sees all four events
        print("handlers:", [getattr(h, "__name__", h) for h in await mgr.which_handlers()])

        gone = asyncio.Event()
        await asyncio.create_task(watch_for_a_while(mgr, log, gone))
        await gone.wait()  # the task's end reached the manager: Watcher was terminated
        print("after the watcher's task:", len(await mgr.which_handlers()), "handlers")
        await mgr.delete_handler(failed)
        mgr.notify(PaymentFailed(3, "timeout"))
        print("revenue:", await mgr.call(Revenue, "total"))
    print("\n".join(log))


if __name__ == "__main__":
    asyncio.run(main())
