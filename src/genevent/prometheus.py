"""Export managers' metrics to Prometheus (the ``metrics`` extra: ``pip install -e
'/path/to/genevent[metrics]'`` from a checkout).

::

    from prometheus_client import REGISTRY, start_http_server
    from genevent.prometheus import GenEventCollector

    REGISTRY.register(GenEventCollector())   # every running manager of this process
    start_http_server(8000)

The collector reads each manager's :meth:`stats` when Prometheus scrapes (nothing is pushed,
nothing runs in between), and labels every series with the manager (its name, or its ``id``)
and, for handler series, the handler. It depends only on :class:`~genevent.ManagerStats`, so an
OpenTelemetry exporter can be written the same way over the same data.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

try:
    from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
    from prometheus_client.registry import Collector
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        "genevent.prometheus needs prometheus-client: install genevent's 'metrics' extra "
        "from your checkout, pip install -e '/path/to/genevent[metrics]'"
    ) from exc

from ._inventory import running_managers
from ._metrics import ManagerStats

__all__ = ("GenEventCollector",)

_MANAGER_COUNTERS = (
    ("events", "Events handled by the manager"),
    ("infos", "Info messages handled by the manager"),
    ("requests", "Control requests handled by the manager"),
    ("dropped", "Events and infos the manager's own mailbox dropped"),
    ("refused", "Events and infos refused to producers"),
    ("lane_dropped", "Events and infos isolated handlers' mailboxes dropped (manager handled)"),
    ("crashes", "Handlers that crashed or returned a bad value"),
    ("restarts", "Handlers restarted by their restart policy"),
)


class GenEventCollector(Collector):
    """A Prometheus collector over genevent managers: ``managers`` is an iterable of managers
    or a function returning one (default: every running manager of this process)."""

    def __init__(self, managers: Iterable[Any] | Callable[[], Iterable[Any]] | None = None):
        self._managers = managers

    def _stats(self) -> list[ManagerStats]:
        source = self._managers
        managers = running_managers() if source is None else source
        if callable(managers):
            managers = managers()
        return [m.stats() for m in managers]

    def collect(self) -> Iterator[Any]:
        """The metric families, read from each manager's ``stats()`` now."""
        stats = self._stats()
        labels = ["manager"]
        for field, doc in _MANAGER_COUNTERS:
            fam = CounterMetricFamily(f"genevent_{field}", doc, labels=labels)
            for s in stats:
                fam.add_metric([_label(s)], getattr(s, field))
            yield fam
        for field, doc in (
            ("queued", "Messages waiting in the manager's mailbox"),
            ("high_water", "Most messages found waiting when the manager took a batch"),
        ):
            gauge = GaugeMetricFamily(f"genevent_mailbox_{field}", doc, labels=labels)
            for s in stats:
                gauge.add_metric([_label(s)], getattr(s, field))
            yield gauge
        hlabels = ["manager", "handler"]
        events = CounterMetricFamily(
            "genevent_handler_events", "Events delivered to the handler", labels=hlabels
        )
        crashes = CounterMetricFamily(
            "genevent_handler_crashes", "Crashes of the handler", labels=hlabels
        )
        restarts = CounterMetricFamily(
            "genevent_handler_restarts", "Restarts of the handler", labels=hlabels
        )
        dropped = CounterMetricFamily(
            "genevent_handler_dropped",
            "Events and infos the isolated handler's own mailbox dropped",
            labels=hlabels,
        )
        latency = GaugeMetricFamily(
            "genevent_handler_seconds",
            "handle_event duration quantiles (when the manager times callbacks)",
            labels=[*hlabels, "quantile"],
        )
        for s in stats:
            for h in s.handlers:
                key = [_label(s), _handler_label(h.handler)]
                events.add_metric(key, h.events)
                crashes.add_metric(key, h.crashes)
                restarts.add_metric(key, h.restarts)
                dropped.add_metric(key, h.dropped)
                for q, label in (("p50", "0.5"), ("p90", "0.9"), ("p99", "0.99")):
                    value = (h.timing or {}).get(q)
                    if value is not None:
                        latency.add_metric([*key, label], float(value))
        yield events
        yield crashes
        yield restarts
        yield dropped
        yield latency


def _label(s: ManagerStats) -> str:
    return s.name or f"id{s.id}"


def _handler_label(ref: Any) -> str:
    if isinstance(ref, tuple) and len(ref) == 2 and isinstance(ref[0], type):
        key = ref[1]
        name = getattr(key, "__qualname__", None) or repr(key)
        return f"{ref[0].__qualname__}:{name}"
    return getattr(ref, "__qualname__", repr(ref))
