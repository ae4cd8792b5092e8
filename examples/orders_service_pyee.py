"""The same service with pyee, for comparison only (``pip install pyee``).

Shorter, and without what genevent guarantees: a handler that raises is not removed (it fails
again on every later event, and pyee routes its exceptions to an ``error`` event or raises them
into the emitter); nothing tells you a handler went away, nothing ties a handler to the task
that added it, and there is no way to ask a handler for its state in order with the events
before the question: the revenue is a shared global instead.
"""

from __future__ import annotations

from dataclasses import dataclass

from pyee import EventEmitter


@dataclass(frozen=True)
class OrderPlaced:
    order: int
    amount: float


@dataclass(frozen=True)
class PaymentFailed:
    order: int
    reason: str


def main() -> None:
    ee = EventEmitter()
    log: list[str] = []
    amounts: dict[int, float] = {}
    revenue = [0.0]

    @ee.on("placed")
    def placed(event: OrderPlaced) -> None:
        amounts[event.order] = event.amount
        revenue[0] += event.amount
        log.append(f"audit: order {event.order} for {event.amount}")

    @ee.on("failed")
    def failed(event: PaymentFailed) -> None:
        revenue[0] -= amounts.pop(event.order, 0.0)
        log.append(f"alert: {event}")

    @ee.on("placed")
    def fraud(event: OrderPlaced) -> None:
        if event.amount > 1000:
            raise ValueError(f"cannot score order {event.order}")

    @ee.on("error")
    def on_error(exc: Exception) -> None:
        log.append(f"error: {exc}")

    ee.emit("placed", OrderPlaced(1, 20.0))
    try:
        ee.emit("placed", OrderPlaced(2, 1500.0))
    except ValueError as exc:
        log.append(f"raised into the emitter: {exc}")
    ee.emit("failed", PaymentFailed(1, "card declined"))
    ee.emit("placed", OrderPlaced(3, 5.5))
    print("revenue:", round(revenue[0], 2))
    print("\n".join(log))


if __name__ == "__main__":
    main()
