"""``notify_many``'s paths that the conformance suite does not reach by itself: batches from
other threads (contiguous on an unbounded mailbox, and waking a parked asyncio manager), a
batch that raced a stop and found the mailbox sealed (taken back whole and refused), and the
mailbox helpers it uses."""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from typing import Any

import pytest

from genevent import ManagerNotRunning, aio, threads
from genevent._driver import take_back_many
from genevent._mailbox import as_batch
from genevent.aio import _many as aio_many
from genevent.threads import _many as threads_many

PRODUCERS = 4
BATCHES = 50
SIZE = 20


def _produce(notify_many: Any) -> None:
    def one(p: int) -> None:
        for b in range(BATCHES):
            notify_many([(p, b, i) for i in range(SIZE)])

    workers = [threading.Thread(target=one, args=(p,)) for p in range(PRODUCERS)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()


def _contiguous(seen: list[tuple[int, int, int]]) -> None:
    assert len(seen) == PRODUCERS * BATCHES * SIZE
    for at in range(0, len(seen), SIZE):  # every batch whole, in order, where it starts
        p, b, _ = seen[at]
        assert seen[at : at + SIZE] == [(p, b, i) for i in range(SIZE)]
    for p in range(PRODUCERS):  # and each producer's batches in the order it sent them
        assert [b for q, b, i in seen if q == p and i == 0] == list(range(BATCHES))


def test_threads_batches_from_several_threads_stay_whole() -> None:
    seen: list[Any] = []
    with threads.start() as mgr:
        mgr.subscribe(seen.append, tuple)
        _produce(mgr.notify_many)
        mgr.sync_notify("end")
    _contiguous(seen)


async def test_aio_batches_from_other_threads_wake_the_manager_and_stay_whole() -> None:
    seen: list[Any] = []
    async with aio.start() as mgr:
        await mgr.subscribe(seen.append, tuple)
        await asyncio.to_thread(_produce, mgr.notify_many)
        await mgr.sync_notify("end")
        assert mgr.stats().events == PRODUCERS * BATCHES * SIZE + 1
    _contiguous(seen)


async def test_aio_a_batch_that_finds_the_mailbox_sealed_is_taken_back_whole() -> None:
    mgr = aio.start()
    await mgr.stop()
    srv = mgr._srv
    assert srv.sealed
    batch = ["a", "b", "a"]
    mgr._mailbox.extend(batch)  # as notify_many does just before it sees the stop
    with pytest.raises(ManagerNotRunning) as info:
        aio_many.late(srv, batch)
    assert info.value.accepted == 0
    assert list(mgr._mailbox) == []
    assert mgr.stats().refused == 3


def test_threads_a_batch_that_finds_the_mailbox_sealed_is_taken_back_whole() -> None:
    mgr = threads.start()
    mgr.stop()
    srv = mgr._srv
    assert srv.sealed
    batch = ["a", "b", "a"]
    srv.mailbox.extend(batch)
    with pytest.raises(ManagerNotRunning):
        threads_many.late(srv, queued=batch, who=mgr)
    assert list(srv.mailbox) == []
    assert mgr.stats().refused == 3


def test_a_batch_already_handled_is_not_refused() -> None:
    mgr = threads.start()
    mgr.stop()
    threads_many.late(mgr._srv, queued=["gone"], who=mgr)  # nothing to take back: no error
    assert mgr.stats().refused == 0


def test_take_back_many_takes_the_newest_of_each_and_counts() -> None:
    x, y = object(), object()
    mailbox: deque[Any] = deque([x, "other", x, y, "later"])
    assert take_back_many(mailbox, [x, y, "missing"]) == 2
    assert list(mailbox) == [x, "other", "later"]


def test_as_batch_reads_an_iterable_once_and_keeps_a_list_or_tuple() -> None:
    events = [1, 2]
    assert as_batch(events) is events
    assert as_batch((1,)) == (1,)
    assert as_batch(iter(range(3))) == [0, 1, 2]
    assert as_batch(x for x in "ab") == ["a", "b"]
