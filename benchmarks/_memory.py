"""Memory: bytes per idle manager with one handler and per handler (tracemalloc), managers per GB.

Figures are tracemalloc's count of Python allocations around creating K objects, divided by K,
after the objects had a chance to settle (their tasks parked). Thread-based managers also map a
thread stack that tracemalloc does not see: their rows say so.
"""

from __future__ import annotations

import asyncio
import gc
import importlib
import os
import tracemalloc
from collections.abc import Awaitable, Callable, Sequence

from . import _harness as h
from ._baselines import DequeMailbox
from ._workloads import Tally

GB = 1 << 30
THREAD_NOTE = "Python heap only: each thread also maps a stack"


async def settle() -> None:
    """Let freshly started tasks run up to their first suspension point."""
    for _ in range(5):
        await asyncio.sleep(0)


async def traced_per_item(
    k: int, make: Callable[[], Awaitable[object]]
) -> tuple[float, list[object]]:
    """Bytes traced per object when ``k`` objects are made by ``make`` (in a running loop).

    Returns the figure and the objects, plus one made before to warm up (still alive: the
    caller disposes of them)."""
    items: list[object] = [None] * (k + 1)
    items[k] = await make()  # warm up: first-use caches are not per-object cost
    gc.collect()
    tracemalloc.start()
    try:
        await settle()
        before = tracemalloc.get_traced_memory()[0]
        for i in range(k):
            items[i] = await make()
        await settle()
        gc.collect()
        after = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    return (after - before) / k, items


def traced_per_item_sync(k: int, make: Callable[[], object]) -> tuple[float, list[object]]:
    """Like :func:`traced_per_item` for plain (blocking) constructors."""
    items: list[object] = [None] * (k + 1)
    items[k] = make()
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for i in range(k):
            items[i] = make()
        gc.collect()
        after = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    return (after - before) / k, items


def rss_bytes() -> int:
    """The process's resident set size, from /proc (0 where there is no /proc)."""
    try:
        with open("/proc/self/statm", encoding="ascii") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


# ---------------------------------------------------------------- baseline and peers


async def _deque_per_manager(k: int) -> float:
    async def make() -> object:
        return DequeMailbox([Tally().handle])

    per, items = await traced_per_item(k, make)
    for mb in items:
        assert isinstance(mb, DequeMailbox)
        await mb.stop()
    return per


def _plain_per_handler(k: int) -> float:
    """The floor of a handler in a registry: the object, its bound method in the list the
    events go through, and the ``(class, id)`` key a registry finds it by, in a dict."""
    handlers: list[object] = []
    registry: dict[tuple[type, int], object] = {}
    ids = iter(range(k + 1))

    def make() -> object:
        tally = Tally()
        handlers.append(tally.handle)
        registry[(Tally, next(ids))] = tally
        return None

    return traced_per_item_sync(k, make)[0]


def _emitter_per_handler(module: str, k: int) -> float:
    mod = importlib.import_module(module)
    if module == "pyee":
        ee = mod.EventEmitter()

        def make() -> object:
            return ee.on("event", Tally().handle)

    else:
        sig = mod.Signal()

        def make() -> object:
            return sig.connect(Tally().handle, weak=False)

    return traced_per_item_sync(k, make)[0]


def _emitter_row(cfg: h.Config, module: str, impl: str) -> h.Row:
    try:
        importlib.import_module(module)
    except ImportError:
        return h.skipped(h.MEM_HANDLER, impl, "skipped (not installed)")
    return h.guarded(h.MEM_HANDLER, impl, lambda: _emitter_per_handler(module, cfg.mem_handlers))


def rows(cfg: h.Config) -> list[h.Row]:
    """Memory rows of the baselines and of pyee / blinker."""
    out: list[h.Row] = []
    if cfg.wants(h.MEM_MANAGER) or cfg.wants(h.FIT_1GB):
        h.progress(f"memory: {h.MEM_MANAGER.name}")
        out.append(
            h.guarded(
                h.MEM_MANAGER, h.DEQUE, lambda: asyncio.run(_deque_per_manager(cfg.mem_managers))
            )
        )
    if cfg.wants(h.MEM_HANDLER):
        h.progress(f"memory: {h.MEM_HANDLER.name}")
        out.append(
            h.guarded(h.MEM_HANDLER, h.PLAIN_OBJECT, lambda: _plain_per_handler(cfg.mem_handlers))
        )
        out.append(_emitter_row(cfg, "pyee", "pyee listener"))
        out.append(_emitter_row(cfg, "blinker", "blinker receiver"))
    return out


def _read_int(path: str) -> int | None:
    try:
        with open(path, encoding="ascii") as f:
            return int(f.read().strip())
    except (OSError, ValueError):  # missing, or "max"
        return None


def thread_limit() -> int | None:
    """How many threads this machine lets one process have, at most: the smallest of the
    kernel's thread and pid limits, the cgroup's pids limit and RLIMIT_NPROC (None if unknown)."""
    limits = [
        _read_int("/proc/sys/kernel/threads-max"),
        _read_int("/proc/sys/kernel/pid_max"),
        _read_int("/sys/fs/cgroup/pids.max"),
    ]
    try:
        import resource  # noqa: PLC0415 - POSIX only

        soft, _hard = resource.getrlimit(resource.RLIMIT_NPROC)
        if soft != resource.RLIM_INFINITY:
            limits.append(soft)
    except (ImportError, OSError, AttributeError):
        pass
    known = [x for x in limits if x]
    return min(known) if known else None


def fit_rows(cfg: h.Config, measured: Sequence[h.Row]) -> list[h.Row]:
    """Managers per GB, derived from each "memory per idle manager" row. A thread-backed
    manager is a thread: its row is capped by the machine's thread limit (what is reachable)."""
    if not cfg.wants(h.FIT_1GB):
        return []
    out: list[h.Row] = []
    for r in measured:
        if r.scenario == h.MEM_MANAGER.name and r.value is not None and r.value > 0:
            fit = GB / r.value
            note = "1 GiB / bytes per manager" + ("; " + r.note if r.note else "")
            if r.note == THREAD_NOTE:
                limit = thread_limit()
                if limit is not None and limit < fit:
                    note = (
                        f"capped by this machine's thread limit ({limit:,}); the heap alone "
                        f"would fit {fit:,.0f}"
                    )
                    fit = float(limit)
            out.append(h.row(h.FIT_1GB, r.impl, fit, note))
    return out
