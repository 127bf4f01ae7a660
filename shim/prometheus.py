"""Prometheus metrics of the session layer: ``pip install 'ctxmigrate[prometheus]'``.

::

    from prometheus_client import REGISTRY
    from ctxmigrate.shim.prometheus import SessionCollector

    REGISTRY.register(SessionCollector(manager))

A custom collector: nothing is counted twice, every value is read from the
manager (``stats()``), the legacy observers, ``unbound_websocket_manager_count()``
and, when the manager's store is wrapped with
:func:`~ctxmigrate.shim.store_metrics.measured_store`, the store's latency and
errors, at scrape time. Each scrape also runs the leak check
(:mod:`ctxmigrate.shim.lifecycle_metrics`). No label carries a user or thread id.

====================================================  =========  ========================
metric                                                type       labels
====================================================  =========  ========================
``ctxmigrate_sessions_active``                        gauge
``ctxmigrate_sessions_in_flight``                     gauge
``ctxmigrate_sessions_created_total``                 counter
``ctxmigrate_sessions_reused_total``                  counter
``ctxmigrate_sessions_removed_total``                 counter    ``reason``: expired,
                                                                 ended, capacity,
                                                                 user_capacity
``ctxmigrate_session_creations_failed_total``         counter
``ctxmigrate_websocket_managers``                     gauge
``ctxmigrate_websocket_managers_unbound_total``       counter
``ctxmigrate_legacy_calls_total``                     counter    ``api``
``ctxmigrate_legacy_rebuilt_total``                   counter    ``api``
``ctxmigrate_legacy_live_objects``                    gauge      ``api``
``ctxmigrate_contexts_live``                          gauge
``ctxmigrate_contexts_outside_sessions``              gauge
``ctxmigrate_context_leak_threshold``                 gauge
``ctxmigrate_context_leak``                           gauge
``ctxmigrate_store_operation_duration_seconds``       histogram  ``operation``
``ctxmigrate_store_operation_errors_total``           counter    ``operation``
``ctxmigrate_store_operation_conflicts_total``        counter    ``operation``: save_state
====================================================  =========  ========================
"""

from __future__ import annotations

from collections.abc import Collection, Iterator
from typing import Any

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from ctxmigrate.shim.lifecycle_metrics import (
    DEFAULT_LEAK_THRESHOLD,
    LeakMonitor,
    lifecycle_snapshot,
)
from ctxmigrate.shim.manager import UserSessionManager
from ctxmigrate.shim.observe import LegacyObserver
from ctxmigrate.shim.store_metrics import DURATION_BUCKETS

__all__ = ["SessionCollector"]

REMOVAL_REASONS = ("expired", "ended", "capacity", "user_capacity")


class SessionCollector(Collector):
    """The session layer's metrics for one manager (register it once per process).

    ``leak_threshold`` / ``leak_apis`` configure the leak check (see
    :class:`~ctxmigrate.shim.lifecycle_metrics.LeakMonitor`); ``observer`` is
    the legacy observer to read (default: the process-wide one).
    """

    def __init__(
        self,
        manager: UserSessionManager[Any],
        *,
        leak_threshold: int = DEFAULT_LEAK_THRESHOLD,
        leak_apis: Collection[str] | None = None,
        observer: LegacyObserver | None = None,
    ) -> None:
        self.monitor = LeakMonitor(
            manager, threshold=leak_threshold, observer=observer, apis=leak_apis
        )

    def describe(self) -> list[Metric]:
        # Nothing to check at registration: the names are fixed and prefixed.
        return []

    def collect(self) -> Iterator[Metric]:
        snapshot = lifecycle_snapshot(self.monitor)
        stats = snapshot.stats
        yield GaugeMetricFamily(
            "ctxmigrate_sessions_active", "Live sessions held by this process.", stats.active
        )
        yield GaugeMetricFamily(
            "ctxmigrate_sessions_in_flight", "Session creations running now.", stats.in_flight
        )
        yield CounterMetricFamily("ctxmigrate_sessions_created", "Sessions created.", stats.created)
        yield CounterMetricFamily(
            "ctxmigrate_sessions_reused",
            "Calls served an existing session instead of a new context.",
            stats.reused,
        )
        removed = CounterMetricFamily(
            "ctxmigrate_sessions_removed", "Sessions removed, by reason.", labels=["reason"]
        )
        removed.add_metric(["expired"], stats.expired)
        removed.add_metric(["ended"], stats.ended)
        for reason in REMOVAL_REASONS[2:]:
            removed.add_metric([reason], stats.evicted.get(reason, 0))
        yield removed
        yield CounterMetricFamily(
            "ctxmigrate_session_creations_failed",
            "Session creations whose factory raised (or that were abandoned).",
            stats.failed_creations,
        )
        yield GaugeMetricFamily(
            "ctxmigrate_websocket_managers",
            "Websocket managers held for live sessions.",
            stats.websocket_managers,
        )
        yield CounterMetricFamily(
            "ctxmigrate_websocket_managers_unbound",
            "get_manager_for_context calls with a context that is not a live session "
            "(a fresh manager, as before the migration).",
            snapshot.unbound_websocket_managers,
        )
        calls = CounterMetricFamily(
            "ctxmigrate_legacy_calls",
            "Calls of observed legacy factories from outside the session layer.",
            labels=["api"],
        )
        rebuilt = CounterMetricFamily(
            "ctxmigrate_legacy_rebuilt",
            "Legacy calls for a conversation that already had a result of the same API.",
            labels=["api"],
        )
        for api, totals in sorted(snapshot.legacy.items()):
            calls.add_metric([api], totals["calls"])
            rebuilt.add_metric([api], totals["rebuilt"])
        yield calls
        yield rebuilt
        live = GaugeMetricFamily(
            "ctxmigrate_legacy_live_objects",
            "Results of legacy factories built outside the session layer and still alive.",
            labels=["api"],
        )
        for api, count in sorted(snapshot.live_by_api.items()):
            live.add_metric([api], count)
        yield live
        leak = snapshot.leak
        yield GaugeMetricFamily(
            "ctxmigrate_contexts_live",
            "Live contexts: one per live session plus those built outside the session layer.",
            leak.live_contexts,
        )
        yield GaugeMetricFamily(
            "ctxmigrate_contexts_outside_sessions",
            "Live contexts beyond the live sessions (built outside the session layer).",
            leak.excess,
        )
        yield GaugeMetricFamily(
            "ctxmigrate_context_leak_threshold",
            "Excess of live contexts over live sessions above which a leak is reported.",
            leak.threshold,
        )
        yield GaugeMetricFamily(
            "ctxmigrate_context_leak",
            "1 while live contexts exceed live sessions by more than the threshold.",
            1 if leak.leaking else 0,
        )
        if snapshot.store is not None:
            yield from _store_metrics(snapshot.store)


def _store_metrics(store: dict[str, Any]) -> Iterator[Metric]:
    duration = HistogramMetricFamily(
        "ctxmigrate_store_operation_duration_seconds",
        "Session store call durations, by operation.",
        labels=["operation"],
        unit="seconds",
    )
    errors = CounterMetricFamily(
        "ctxmigrate_store_operation_errors",
        "Session store calls that raised, by operation.",
        labels=["operation"],
    )
    conflicts = CounterMetricFamily(
        "ctxmigrate_store_operation_conflicts",
        "Conversation state saves refused because another writer saved first.",
        labels=["operation"],
    )
    for operation, numbers in store.items():
        buckets = [
            (_bound(bound), count)
            for bound, count in zip(DURATION_BUCKETS, numbers.buckets, strict=True)
        ]
        buckets.append(("+Inf", numbers.count))
        duration.add_metric([operation], buckets, sum_value=numbers.seconds)
        errors.add_metric([operation], numbers.errors)
        if operation == "save_state":  # the only compare-and-set
            conflicts.add_metric([operation], numbers.conflicts)
    yield duration
    yield errors
    yield conflicts


def _bound(value: float) -> str:
    return repr(value)
