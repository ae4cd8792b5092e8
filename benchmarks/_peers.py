"""Python peers with an equivalent of a scenario (the optional ``bench`` extra).

- pykka: a ThreadingActor; ``tell`` for notify, ``ask`` for call (one producer and 4 threads);
- pyee: ``EventEmitter.emit`` with 1/10/100 listeners (synchronous, in the caller);
- blinker: ``Signal.send`` with 1/10/100 receivers (synchronous, in the caller).

A peer that is not installed gives rows that say "skipped (not installed)".
"""

from __future__ import annotations

import importlib
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
    """``n`` back-to-back asks: per-op ns when ``latency``, else [total ns]."""
    ref = _pykka_actor(pykka)
    ask, now = ref.ask, h.now
    samples: list[int] = []
    try:
        t0 = now()
        if latency:
            for i in range(n):
                s = now()
                ask(i)
                samples.append(now() - s)
        else:
            for i in range(n):
                ask(i)
        elapsed = now() - t0
    finally:
        ref.stop()
    return samples if latency else [elapsed]


def _pykka_rows(cfg: h.Config) -> list[h.Row]:
    pykka = _module("pykka")
    wanted = [
        sc
        for sc in (h.NOTIFY_1, h.NOTIFY_4P, h.CALL_MED, h.CALL_P99, h.CALL_TPUT)
        if cfg.wants(sc)
    ]
    if pykka is None:
        return [h.skipped(sc, h.PYKKA_ASK if "call" in sc.name else h.PYKKA_TELL, NOT_INSTALLED) for sc in wanted]
    h.progress("peers: pykka")
    # pykka is ~10x slower than the rest: a quarter of the count keeps the run short.
    n, reps = max(cfg.notify_events // 4 // 4 * 4, 4), cfg.rt_reps
    rt = max(cfg.roundtrips // 4, 10)
    lat = max(cfg.latency_samples // 4, 10)
    out: list[h.Row] = []
    if h.NOTIFY_1 in wanted:
        out.append(
            h.guarded(h.NOTIFY_1, h.PYKKA_TELL, lambda: h.per_second(n, h.best_ns(reps, lambda: pykka_tell(pykka, n, 1))))
        )
    if h.NOTIFY_4P in wanted:
        out.append(
            h.guarded(
                h.NOTIFY_4P,
                "pykka tell, 4 producer threads",
                lambda: h.per_second(n, h.best_ns(reps, lambda: pykka_tell(pykka, n, 4))),
            )
        )
    if h.CALL_MED in wanted or h.CALL_P99 in wanted:
        try:
            out += h.latency_rows(h.PYKKA_ASK, pykka_ask(pykka, lat, latency=True))
        except Exception as exc:
            out += [h.failed(h.CALL_MED, h.PYKKA_ASK, exc), h.failed(h.CALL_P99, h.PYKKA_ASK, exc)]
    if h.CALL_TPUT in wanted:
        out.append(
            h.guarded(
                h.CALL_TPUT,
                h.PYKKA_ASK,
                lambda: h.per_second(rt, h.best_ns(reps, lambda: pykka_ask(pykka, rt, latency=False)[0])),
            )
        )
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


def _emitter_rows(cfg: h.Config) -> list[h.Row]:
    pyee, blinker = _module("pyee"), _module("blinker")
    out: list[h.Row] = []
    for sc, k in ((h.NOTIFY_1, 1), (h.NOTIFY_10, 10), (h.NOTIFY_100, 100)):
        if not cfg.wants(sc):
            continue
        h.progress(f"peers: pyee, blinker: {sc.name}")
        out.append(_emitter_row(cfg, sc, k, h.PYEE, pyee, pyee_emit))
        out.append(_emitter_row(cfg, sc, k, h.BLINKER, blinker, blinker_send))
    return out


def _emitter_row(
    cfg: h.Config, sc: h.Scenario, k: int, impl: str, mod: ModuleType | None, fn: Any
) -> h.Row:
    if mod is None:
        return h.skipped(sc, impl, NOT_INSTALLED)
    n = cfg.events_for(k)
    return h.guarded(sc, impl, lambda: h.per_second(n * k, h.best_ns(cfg.reps, lambda: fn(mod, k, n))))


def rows(cfg: h.Config) -> list[h.Row]:
    """Measure the peers (or say they are skipped) in the scenarios that ``cfg`` selects."""
    return _emitter_rows(cfg) + _pykka_rows(cfg)
