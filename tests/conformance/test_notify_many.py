"""``notify_many``: a batch of events means one ``notify`` per event, in order, on every
runtime: the same order among the caller's other notifies, the same counts, the same refusal
by a stopped manager and the same treatment by a bounded mailbox, where a refusal mid-batch
leaves the events before it queued and says how many they were."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from genevent import MailboxFull, ManagerNotRunning, aio, threads
from tests.handlers import WAIT, H, Recorder, Spec
from tests.runtimes import AioRuntime, Facade, InlineThreadsRuntime, Runtime


def _stat(m: Facade, field: str) -> int:
    stats = m.stats()
    return int(stats[field] if isinstance(stats, dict) else getattr(stats, field))


def test_notify_many_keeps_the_order_of_notify(rt: Runtime, rec: Recorder) -> None:
    m = rt.start()
    m.add_handler(H, Spec(rec, "a"))
    m.add_handler((H, 2), Spec(rec, "b"))
    m.notify(0)
    m.notify_many([1, 2, 3])
    m.notify_many([])  # nothing: no message, no count
    m.notify(4)
    m.notify_many(iter([5, 6]))  # any iterable, read once
    m.notify_many(range(7, 307))
    m.notify(307)
    m.sync_notify("end")
    expected = [*range(308), "end"]
    assert rec.of("a", "event") == expected
    assert rec.of("b", "event") == expected
    assert _stat(m, "events") == 309
    assert _stat(m, "events_in") == 309
    assert (_stat(m, "dropped"), _stat(m, "refused")) == (0, 0)


def test_notify_many_from_a_handler_queues_behind_the_current_event(
    rt: Runtime, rec: Recorder
) -> None:
    m = rt.start()

    def fan_out(handler: Any, event: Any) -> None:
        if event == "fan":
            handler.spec.extra["mgr"].notify_many(["x", "y"])
        elif event == "y":
            handler.spec.rec.add("h", "last", event)

    m.add_handler(H, Spec(rec, event=fan_out, extra={"mgr": m.mgr}))
    m.notify_many(["fan", "after"])
    rec.wait("h", "last")
    assert rec.of("h", "event") == ["fan", "after", "x", "y"]


def test_notify_many_on_a_stopped_manager_refuses_the_whole_batch(
    rt: Runtime, rec: Recorder
) -> None:
    m = rt.start()
    m.add_handler(H, Spec(rec))
    m.notify_many([1, 2])
    m.stop()
    refused = _stat(m, "refused")
    with pytest.raises(ManagerNotRunning) as info:
        m.notify_many(x for x in (3, 4, 5))
    assert info.value.accepted == 0
    assert _stat(m, "refused") == refused + 3
    assert rec.of("h", "event") == [1, 2]


def _bounded(rt: Runtime, maxsize: int, overflow: str) -> Facade:
    """A manager of ``rt``'s runtime with a bounded mailbox."""
    if isinstance(rt, AioRuntime):
        mgr = rt.main.run(lambda: aio.start(maxsize=maxsize, overflow=overflow))  # type: ignore[arg-type]
    else:
        inline = isinstance(rt, InlineThreadsRuntime)
        mgr = threads.start(inline=inline, maxsize=maxsize, overflow=overflow)  # type: ignore[arg-type]
    rt.managers.append(mgr)
    return Facade(rt, mgr, rt.main)


def _held(rt: Runtime, m: Facade, rec: Recorder) -> threading.Event:
    """Add a handler that holds the manager on its first event (not isolated, whatever the
    variant: the manager itself must not take anything off its mailbox), notify that event and
    wait until the handler holds it: the mailbox is then empty and stays as the test fills it.
    Returns the gate that lets it go on."""
    gate = threading.Event()
    here = None if isinstance(rt, AioRuntime) else False
    m.add_handler(rt.gated_handler(), Spec(rec, extra={"gate": gate}), isolation=here)
    m.notify("first")
    rec.wait("h", "waiting")
    return gate


@pytest.mark.parametrize(
    ("overflow", "handled", "dropped", "refused"),
    [
        ("drop_oldest", [3, 4, 5], 2, 0),
        ("drop_newest", [1, 2, 3], 2, 0),
        ("raise", [1, 2, 3], 0, 2),
    ],
)
def test_notify_many_meets_a_full_mailbox_as_each_notify_would(
    rt: Runtime,
    rec: Recorder,
    overflow: str,
    handled: list[int],
    dropped: int,
    refused: int,
) -> None:
    m = _bounded(rt, 3, overflow)
    gate = _held(rt, m, rec)
    if refused:
        with pytest.raises(MailboxFull) as info:
            m.notify_many([1, 2, 3, 4, 5])
        assert info.value.accepted == 3  # the first three were queued; 4 and 5 refused
    else:
        m.notify_many([1, 2, 3, 4, 5])
    gate.set()
    m.sync_notify("end")
    assert rec.of("h", "event") == ["first", *handled, "end"]
    assert (_stat(m, "dropped"), _stat(m, "refused")) == (dropped, refused)
    assert _stat(m, "events") == 2 + len(handled)
    assert _stat(m, "events_in") == 2 + len(handled) + dropped


def test_notify_many_under_block_waits_for_room_where_notify_does(
    rt: Runtime, rec: Recorder
) -> None:
    m = _bounded(rt, 3, "block")
    gate = _held(rt, m, rec)
    if isinstance(rt, AioRuntime):  # an asyncio notify cannot wait: refused, counted
        with pytest.raises(MailboxFull) as info:
            m.notify_many([1, 2, 3, 4, 5])
        assert info.value.accepted == 3
        gate.set()
        m.sync_notify("end")
        assert rec.of("h", "event") == ["first", 1, 2, 3, "end"]
        assert _stat(m, "refused") == 2
        return
    # a thread's notify waits for room: the batch goes in as the manager makes room
    failed: list[BaseException] = []

    def produce() -> None:
        try:
            m.mgr.notify_many(range(1, 11))
        except BaseException as exc:  # pragma: no cover - reported below
            failed.append(exc)

    producer = threading.Thread(target=produce)
    producer.start()
    gate.set()
    producer.join(WAIT)
    assert not producer.is_alive()
    assert failed == []
    m.sync_notify("end")
    assert rec.of("h", "event") == ["first", *range(1, 11), "end"]
    assert (_stat(m, "dropped"), _stat(m, "refused")) == (0, 0)


@pytest.mark.parametrize("events", ["abc", b"abc"])
def test_notify_many_refuses_a_string_as_a_batch(rt: Runtime, rec: Recorder, events: Any) -> None:
    m = rt.start()
    m.add_handler(H, Spec(rec, "a"))
    with pytest.raises(TypeError, match="use notify"):
        m.notify_many(events)
    m.sync_notify("after")
    assert rec.of("a", "event") == ["after"]
