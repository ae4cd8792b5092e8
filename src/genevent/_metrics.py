"""Metrics: what a manager and its handlers did, as plain data (sans-I/O).

Counters are always on and cost next to nothing: the runtimes count events per batch in their
drain loops (one addition per batch, not per event), and everything else (crashes, restarts,
requests, drops) is counted on paths that are slow anyway. A handler's event count is derived:
the manager's count now minus its count when the handler was installed.

Handler processing time is off by default: timing a callback (two clock reads and a bucket)
costs about as much as the hot path itself. ``start(timing=True)`` turns it on, by sampling: a
handler's first ``handle_event`` is timed, then one call in :data:`SAMPLE_EVERY`, into a
:class:`Histogram` of power-of-two nanosecond buckets, from which quantiles are read
(estimates of every call's). The calls in between cost a wrapper call and a countdown. The
benchmark suite measures what it costs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = (
    "SAMPLE_EVERY",
    "HandlerStats",
    "Histogram",
    "ManagerStats",
    "Timings",
    "build_stats",
    "plain_stats",
    "timed",
)

_BUCKETS = 64

SAMPLE_EVERY = 32
"""With timing on, one ``handle_event`` call in this many is timed (a power of two)."""


class Histogram:
    """Durations in nanoseconds, counted in power-of-two buckets (bucket ``k`` holds durations
    with ``k`` significant bits, so each bucket spans a factor of two): constant memory, one
    ``int.bit_length`` per sample. Quantiles are read as the upper bound of their bucket, the
    mean from the buckets' midpoints (both within a factor of two)."""

    __slots__ = ("buckets",)

    def __init__(self) -> None:
        self.buckets = [0] * _BUCKETS

    def add(self, ns: int) -> None:
        """Count one duration."""
        self.buckets[min(ns.bit_length(), _BUCKETS - 1)] += 1

    @property
    def count(self) -> int:
        """How many durations were counted."""
        return sum(self.buckets)

    def quantile(self, q: float) -> float | None:
        """The ``q``-quantile (0..1) in seconds, as its bucket's upper bound; None if empty."""
        buckets = list(self.buckets)
        count = sum(buckets)
        if not count:
            return None
        rank = max(1, round(q * count))
        seen = 0
        for k, n in enumerate(buckets):
            seen += n
            if seen >= rank:
                return ((1 << k) - 1) / 1e9 if k else 0.0
        return None  # pragma: no cover - the counts add up to count

    def snapshot(self) -> dict[str, float | int | None]:
        """Count, mean and the 50th, 90th and 99th percentiles, in seconds."""
        buckets = list(self.buckets)
        count = sum(buckets)
        mean = (
            sum(n * (3 << k) / 4 for k, n in enumerate(buckets) if k) / count / 1e9
            if count
            else None
        )
        return {
            "count": count,
            "mean": mean,
            "p50": self.quantile(0.5),
            "p90": self.quantile(0.9),
            "p99": self.quantile(0.99),
        }


def timed(
    fn: Callable[[Any], Any],
    histogram: Histogram,
    clock: Callable[[], int],
    every: int = 1,
) -> Callable[[Any], Any]:
    """``fn`` wrapped so that the duration (``clock`` in ns) of its first call, then of one
    call in ``every``, goes into ``histogram``; the calls in between only count down (a call
    that raises is not timed: the crash path is rare, and this keeps the wrapper lean). A
    duration needs more than 62 bits only after 146 years, so no bound check is made."""
    buckets = histogram.buckets
    left = 1  # the first call is timed, so a short-lived handler has a sample

    def sample(event: Any) -> Any:
        nonlocal left
        left = every
        t0 = clock()
        result = fn(event)
        buckets[(clock() - t0).bit_length()] += 1
        return result

    def timed_call(event: Any) -> Any:  # the calls not sampled: as few free variables as can be
        nonlocal left
        if left := left - 1:
            return fn(event)
        return sample(event)

    return timed_call


@dataclass(frozen=True, slots=True)
class HandlerStats:
    """One installed handler's figures."""

    handler: Any
    """Its reference: the class, or ``(class, id)``."""
    events: int
    """Events delivered to it since it was installed (or last restarted)."""
    crashes: int
    """Times a handler under this reference crashed or returned a bad value."""
    restarts: int
    """Times it was restarted by its restart policy."""
    timing: dict[str, float | int | None] | None = None
    """``handle_event`` durations when the manager times them (``start(timing=True)``), else
    None: ``count`` is the number of calls timed (the first, then one in
    :data:`SAMPLE_EVERY`), and ``mean``, ``p50``, ``p90`` and ``p99`` (in seconds) are
    estimates of every call's from those samples."""
    dropped: int = 0
    """Events and infos its own mailbox dropped (an isolated handler with ``maxsize``: the
    handler missed them, the others did not); counted since it was isolated, across the swaps
    and restarts that kept its mailbox. 0 for a handler that is not isolated."""


@dataclass(frozen=True, slots=True)
class ManagerStats:
    """A manager's figures, read without stopping it (a snapshot: each number is exact, the
    set of them is taken while the manager may be running)."""

    name: str | None
    """The registered name, or None."""
    id: int
    """``id()`` of the manager object (to tell unnamed managers apart)."""
    running: bool
    events_in: int
    """Events accepted by ``notify``/``sync_notify`` (handled, queued, or dropped later)."""
    events: int
    """Events handled (delivered to every handler installed at the time)."""
    infos: int
    """Info messages handled."""
    requests: int
    """Control requests handled (calls, sync_notify, add/delete/swap, ...)."""
    queued: int
    """Messages waiting in the mailbox now."""
    high_water: int
    """The most messages the manager found waiting when it took a batch."""
    dropped: int
    """Events and infos the manager's own mailbox dropped (a bounded mailbox's policy, or a
    stop that drops a backlog): for that mailbox ``events + infos + dropped + refused`` is
    every event and info sent to the manager. Drops in isolated handlers' mailboxes are not
    here but in :attr:`lane_dropped`."""
    refused: int
    """Events and infos refused to producers (a full mailbox, or a stopped manager)."""
    crashes: int
    """Handlers that crashed or returned a bad value."""
    restarts: int
    """Handlers restarted by their restart policy."""
    handlers: tuple[HandlerStats, ...] = field(default_factory=tuple)
    """The installed handlers, newest first."""
    lane_dropped: int = 0
    """Events and infos that isolated handlers' bounded mailboxes dropped, summed over those
    handlers (installed or gone; see :attr:`HandlerStats.dropped`). The manager handled each
    of them (they are in :attr:`events` or :attr:`infos`, and reached every other handler):
    only the isolated handler missed them. For each isolated handler's own mailbox, what it
    handled + its ``dropped`` = what the manager passed to it."""


class Timings:
    """A manager's ``handle_event`` histograms, one per handler reference, and the wrapper
    the core puts on the hot path when timing is on (``core.wrap_event = timings.wrap``):
    it times a handler's first call, then one call in ``every``."""

    __slots__ = ("clock", "every", "histograms")

    def __init__(self, clock: Callable[[], int], every: int = SAMPLE_EVERY) -> None:
        self.clock = clock
        self.every = every
        self.histograms: dict[Any, Histogram] = {}

    def wrap(self, entry: Any, fn: Callable[[Any], Any]) -> Callable[[Any], Any]:
        """``fn`` (entry's bound ``handle_event``) sampled into the entry's histogram (the
        countdown starts again when the core wraps it again, after the handler table
        changes: the first call after that is timed)."""
        hist = self.histograms.get(entry.ref)
        if hist is None:
            hist = self.histograms[entry.ref] = Histogram()
        return timed(fn, hist, self.clock, self.every)


def build_stats(
    core: Any,
    *,
    name: str | None,
    ident: int,
    running: bool,
    mailbox: Any,
    request_class: type,
    high_water: int,
    dropped: int,
    refused: int,
    bound: Any,
    timings: Timings | None,
    lane_dropped: int = 0,
) -> ManagerStats:
    """A :class:`ManagerStats` from a core's counters and the runtime's own, the same on both
    runtimes (``mailbox``: the manager's, whose messages that are not ``request_class`` are
    events; ``dropped`` and ``refused``: by the manager itself, to which its ``bound``'s
    counts are added when it is bounded; ``lane_dropped``: by the mailboxes of isolated
    handlers that are gone)."""
    queued = len(mailbox)
    queued_events = count_events(mailbox, request_class)
    if bound is not None:
        dropped += bound.counts.dropped
        refused += bound.counts.refused
    entries = list(core.entries)
    histograms = timings.histograms if timings is not None else None
    if histograms is not None and len(histograms) > len(entries):
        installed = {e.ref for e in entries}  # forget handlers that are gone
        for ref in [r for r in histograms if r not in installed]:
            histograms.pop(ref, None)
    events = core.events
    crashes_by_ref = core.crashes_by_ref
    handlers = tuple(
        HandlerStats(
            handler=e.ref,
            events=max(0, events - e.events_at),
            crashes=crashes_by_ref.get(e.ref, 0) if crashes_by_ref else 0,
            restarts=e.restart.restarts if e.restart is not None else 0,
            timing=(
                histograms[e.ref].snapshot()
                if histograms is not None and e.ref in histograms
                else None
            ),
            dropped=e.lane.counts.dropped if e.lane is not None else 0,
        )
        for e in entries
    )
    lanes = {id(e.lane): e.lane for e in entries if e.lane is not None}
    lane_dropped += sum(lane.counts.dropped for lane in lanes.values())
    return ManagerStats(
        name=name,
        id=ident,
        running=running,
        events_in=events + queued_events + dropped,
        events=events,
        infos=core.infos,
        requests=core.requests,
        queued=queued,
        high_water=max(high_water, queued),
        dropped=dropped,
        lane_dropped=lane_dropped,
        refused=refused,
        crashes=core.crashes,
        restarts=core.restarts,
        handlers=handlers,
    )


def count_events(mailbox: Any, request_class: type) -> int:
    """How many messages in ``mailbox`` are events (not ``request_class`` instances): a scan,
    for ``stats()`` only."""
    return sum(1 for m in list(mailbox) if m.__class__ is not request_class)


def _jsonable(value: Any) -> Any:
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, type):
        return value.__qualname__
    return getattr(value, "__qualname__", None) or repr(value)


def plain_stats(stats: ManagerStats) -> dict[str, Any]:
    """``stats`` as plain JSON-ready data (handler references become text): what
    ``genevent top`` shows, read locally or over the NATS transport."""
    result: dict[str, Any] = _jsonable(asdict(stats))
    return result
