"""Python peers with an equivalent of a scenario (the optional ``bench`` extra).

- pykka: a ThreadingActor; ``tell`` for notify, ``ask`` for call (one producer and 4 threads);
- pyee: ``EventEmitter.emit`` with 1/10/100 listeners (synchronous, in the caller);
- blinker: ``Signal.send`` with 1/10/100 receivers (synchronous, in the caller).

A peer that is not installed gives rows that say "skipped (not installed)".
"""

from __future__ import annotations

import importlib
from functools import partial
from types import ModuleType
from typing import Any

from . import _harness as h
from ._workloads import Tally, produce, produce_threads

NOT_INSTALLED = "skipped (not installed)"


def _module(name: str) -> ModuleType | None:
    try:
        return importlib.import_module(name)
    except ImportError:
        return None


# ---------------------------------------------------------------- pykka


def _pykka_actor(pykka: ModuleType) -> Any:
    class CounterActor(pykka.ThreadingActor):  # type: ignore[misc,name-defined]
        def __init__(self) -> None:
            super().__init__()
            self.n = 0

        def on_receive(self, message: object) -> int:
            self.n += 1
            return self.n

    return CounterActor.start()


def pykka_tell(pykka: ModuleType, n: int, producers: int) -> int:
    """Elapsed ns for ``n`` tells (then one ask, so that all were handled)."""
    ref = _pykka_actor(pykka)
    try:
        t0 = h.now()
        if producers == 1:
            produce(ref.tell, n)
        else:
            produce_threads(ref.tell, n // producers, producers)
        count = ref.ask("sync")
        elapsed = h.now() - t0
    finally:
        ref.stop()
    if count != n + 1:
        raise AssertionError(f"pykka handled {count - 1} of {n}")
    return int(elapsed)


def pykka_ask(pykka: ModuleType, n: int, *, latency: bool) -> list[int]:
    """``n`` asks, one tell ahead of each (as genevent's queued rows): per-op ns when
    ``latency``, else [total ns]."""
    ref = _pykka_actor(pykka)
    ask, tell, now = ref.ask, ref.tell, h.now
    samples: list[int] = []
    try:
        t0 = now()
        for i in range(n):
            s = now()
            tell(i)
            ask(i)
            if latency:
                samples.append(now() - s)
        elapsed = now() - t0
    finally:
        ref.stop()
    return samples if latency else [elapsed]


ASK_NOTE = "one tell ahead of each ask (included)"


def _pykka(cfg: h.Config) -> list[h.Bench]:
    pykka = _module("pykka")
    out: list[h.Bench] = []
    # pykka is ~10x slower than the rest: a quarter of the counts keeps the run short.
    n, reps = max(cfg.notify_events // 16 * 4, 4), cfg.reps
    rt = max(cfg.roundtrips // 4, 10)
    per, rounds = max(cfg.latency_samples // 4 // cfg.latency_rounds, 10), cfg.latency_rounds
    tell_4 = "pykka tell, 4 producer threads"
    if pykka is None:
        for sc, impl in (
            (h.NOTIFY_1, h.PYKKA_TELL),
            (h.NOTIFY_4P, tell_4),
            (h.CALL_TPUT, h.PYKKA_ASK),
        ):
            if cfg.wants(sc):
                out.append(h.skip(sc, impl, NOT_INSTALLED))
        if cfg.wants_latency():
            out.append(h.Bench(h.CALL_MED, h.PYKKA_ASK, latency=list, skip=NOT_INSTALLED))
        return out

    def ask_once() -> int:
        return pykka_ask(pykka, rt, latency=False)[0]

    if cfg.wants(h.NOTIFY_1):
        out.append(h.rate(h.NOTIFY_1, h.PYKKA_TELL, n, partial(pykka_tell, pykka, n, 1), reps))
    if cfg.wants(h.NOTIFY_4P):
        out.append(h.rate(h.NOTIFY_4P, tell_4, n, partial(pykka_tell, pykka, n, 4), reps))
    if cfg.wants_latency():
        out.append(
            h.latency(h.PYKKA_ASK, partial(pykka_ask, pykka, per, latency=True), rounds, ASK_NOTE)
        )
    if cfg.wants(h.CALL_TPUT):
        out.append(h.rate(h.CALL_TPUT, h.PYKKA_ASK, rt, ask_once, cfg.rt_reps, ASK_NOTE))
    return out


# ---------------------------------------------------------------- pyee, blinker


def pyee_emit(pyee: ModuleType, k: int, n: int) -> int:
    """Elapsed ns for ``n`` emits to ``k`` listeners."""
    ee = pyee.EventEmitter()
    tallies = [Tally() for _ in range(k)]
    for t in tallies:
        ee.on("event", t.handle)
    emit = ee.emit
    t0 = h.now()
    for i in range(n):
        emit("event", i)
    elapsed = h.now() - t0
    if sum(t.n for t in tallies) != n * k:
        raise AssertionError("pyee lost events")
    return int(elapsed)


def blinker_send(blinker: ModuleType, k: int, n: int) -> int:
    """Elapsed ns for ``n`` sends to ``k`` receivers."""
    signal = blinker.Signal()
    tallies = [Tally() for _ in range(k)]
    for t in tallies:
        signal.connect(t.handle, weak=False)
    send = signal.send
    t0 = h.now()
    for i in range(n):
        send(i)
    elapsed = h.now() - t0
    if sum(t.n for t in tallies) != n * k:
        raise AssertionError("blinker lost events")
    return int(elapsed)


def _emitters(cfg: h.Config) -> list[h.Bench]:
    pyee, blinker = _module("pyee"), _module("blinker")
    out: list[h.Bench] = []
    for sc, k in ((h.NOTIFY_1, 1), (h.NOTIFY_10, 10), (h.NOTIFY_100, 100)):
        if not cfg.wants(sc):
            continue
        n = cfg.events_for(k)
        for impl, mod, fn in ((h.PYEE, pyee, pyee_emit), (h.BLINKER, blinker, blinker_send)):
            if mod is None:
                out.append(h.skip(sc, impl, NOT_INSTALLED))
            else:
                out.append(h.rate(sc, impl, n * k, partial(fn, mod, k, n), cfg.reps))
    return out


def benches(cfg: h.Config) -> list[h.Bench]:
    """The peers (or benches saying they are skipped) in the scenarios that ``cfg`` selects."""
    return _emitters(cfg) + _pykka(cfg)
