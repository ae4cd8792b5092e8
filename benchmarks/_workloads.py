"""Pieces shared by every implementation's rows: the trivial handler, and the producer loops.

All implementations are driven by the same producer code so that only the event path differs.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable

CHUNK = 256
"""Producer tasks yield to the event loop after this many notifies (4-producer scenarios)."""


class Tally:
    """The trivial handler of the baselines and peers: counts events, answers with the count."""

    def __init__(self) -> None:
        self.n = 0

    def handle(self, event: object) -> None:
        """Count one event."""
        self.n += 1

    def answer(self, request: object) -> int:
        """Reply to a request with the count."""
        return self.n


def produce(notify: Callable[[int], object], n: int) -> None:
    """Call ``notify`` ``n`` times, back to back (one producer, any thread)."""
    for i in range(n):
        notify(i)


async def produce_tasks(notify: Callable[[int], object], per_producer: int, producers: int) -> None:
    """``producers`` tasks each notify ``per_producer`` events, yielding every :data:`CHUNK`."""

    async def one() -> None:
        for start in range(0, per_producer, CHUNK):
            for i in range(start, min(start + CHUNK, per_producer)):
                notify(i)
            await asyncio.sleep(0)

    await asyncio.gather(*(one() for _ in range(producers)))


def produce_batches(notify_many: Callable[[range], object], n: int, batch: int) -> None:
    """Send ``n`` events through ``notify_many``, ``batch`` at a time, in order."""
    for first in range(0, n, batch):
        notify_many(range(first, min(first + batch, n)))


def produce_threads(notify: Callable[[int], object], per_producer: int, producers: int) -> None:
    """``producers`` threads each notify ``per_producer`` events; returns when all are done."""
    threads = [
        threading.Thread(target=produce, args=(notify, per_producer)) for _ in range(producers)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
