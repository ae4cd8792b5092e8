"""A thread pool reporting progress through a thread-runtime manager.

Workers run in a ``ThreadPoolExecutor`` and ``notify`` progress events from their threads
(``notify`` is safe from any thread and never waits); a ``Progress`` handler keeps the state,
and the main thread asks it with ``call``. Run: ``python examples/worker_pool.py``
"""

from __future__ import annotations

import hashlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from genevent import EventHandler, handles, threads


@dataclass(frozen=True)
class Started:
    job: int


@dataclass(frozen=True)
class Done:
    job: int
    digest: str


Event = Started | Done


class Progress(EventHandler[Event, str, tuple[int, int]]):
    """Counts started and finished jobs; ``call(Progress, "counts")``."""

    def init(self, total: int) -> None:
        self.total = total
        self.started = 0
        self.done: dict[int, str] = {}

    @handles(Started)
    def started_(self, event: Started) -> None:
        self.started += 1

    @handles(Done)
    def done_(self, event: Done) -> None:
        self.done[event.job] = event.digest

    def handle_call(self, request: str) -> tuple[int, int]:
        return self.started, len(self.done)


def work(mgr: threads.EventManager[Event], job: int) -> None:
    mgr.notify(Started(job))
    digest = hashlib.sha256(str(job).encode() * 10_000).hexdigest()[:8]
    mgr.notify(Done(job, digest))


def main() -> None:
    jobs = 40
    with threads.start("progress") as mgr:
        mgr.add_handler(Progress, jobs)
        with ThreadPoolExecutor(max_workers=4) as pool:
            for job in range(jobs):
                pool.submit(work, mgr, job)
        # the pool has joined its workers: every event they notified is in the mailbox ahead
        # of this call, so the answer counts them all
        started, done = mgr.call(Progress, "counts")
        print(f"started {started} jobs, finished {done} of {jobs}")


if __name__ == "__main__":
    main()
