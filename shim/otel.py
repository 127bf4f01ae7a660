"""OpenTelemetry metrics of the session layer: ``pip install 'ctxmigrate[otel]'``.

::

    from ctxmigrate.shim.otel import instrument_sessions

    instrument_sessions(manager)                     # the global MeterProvider
    instrument_sessions(manager, meter_provider=provider)

The same numbers as :mod:`ctxmigrate.shim.prometheus`, as asynchronous
(observable) instruments read at each collection; the leak check runs at each
collection too. Only ``opentelemetry-api`` is needed; the application chooses the
SDK and exporter. No attribute carries a user or thread id.

==============================================  ====================  =============
instrument                                      kind                  attributes
==============================================  ====================  =============
``ctxmigrate.sessions.active``                  gauge
``ctxmigrate.sessions.in_flight``               gauge
``ctxmigrate.sessions.created``                 counter
``ctxmigrate.sessions.reused``                  counter
``ctxmigrate.sessions.removed``                 counter               ``reason``
``ctxmigrate.session.creations_failed``         counter
``ctxmigrate.websocket_managers``               gauge
``ctxmigrate.websocket_managers.unbound``       counter
``ctxmigrate.legacy.calls``                     counter               ``api``
``ctxmigrate.legacy.rebuilt``                   counter               ``api``
``ctxmigrate.legacy.live_objects``              gauge                 ``api``
``ctxmigrate.contexts.live``                    gauge
``ctxmigrate.contexts.outside_sessions``        gauge
``ctxmigrate.context_leak``                     gauge (0 or 1)
``ctxmigrate.store.operations``                 counter               ``operation``
``ctxmigrate.store.operation.duration``         counter (seconds)     ``operation``
``ctxmigrate.store.operation.errors``           counter               ``operation``
``ctxmigrate.store.operation.conflicts``        counter               ``operation``
==============================================  ====================  =============

OpenTelemetry has no asynchronous histogram, so store latency is a pair of
counters (calls and total seconds, per operation): their rates give the mean
latency. The bucketed distribution is in the Prometheus collector.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable
from typing import Any

from opentelemetry import metrics
from opentelemetry.metrics import CallbackOptions, Meter, MeterProvider, Observation

from ctxmigrate import __version__
from ctxmigrate.shim.lifecycle_metrics import (
    DEFAULT_LEAK_THRESHOLD,
    LeakMonitor,
    LifecycleSnapshot,
    lifecycle_snapshot,
)
from ctxmigrate.shim.manager import UserSessionManager
from ctxmigrate.shim.observe import LegacyObserver

__all__ = ["SessionInstruments", "instrument_sessions"]

Reader = Callable[[LifecycleSnapshot], Iterable[tuple[float, dict[str, str]]]]


class SessionInstruments:
    """The registered instruments (keep a reference for as long as they should report)."""

    def __init__(self, monitor: LeakMonitor, meter: Meter) -> None:
        self.monitor = monitor
        self.meter = meter
        self.instruments: list[Any] = []

    def callback(self, read: Reader) -> Callable[[CallbackOptions], Iterable[Observation]]:
        # Each callback reads its own snapshot (a few counters: cheap); the leak
        # check it runs logs only when the state changes.
        def observe(options: CallbackOptions) -> Iterable[Observation]:
            snapshot = lifecycle_snapshot(self.monitor)
            return [Observation(value, attributes) for value, attributes in read(snapshot)]

        return observe


def _one(value: Callable[[LifecycleSnapshot], float]) -> Reader:
    return lambda snapshot: [(value(snapshot), {})]


def _removed(snapshot: LifecycleSnapshot) -> list[tuple[float, dict[str, str]]]:
    stats = snapshot.stats
    return [
        (stats.expired, {"reason": "expired"}),
        (stats.ended, {"reason": "ended"}),
        (stats.evicted.get("capacity", 0), {"reason": "capacity"}),
        (stats.evicted.get("user_capacity", 0), {"reason": "user_capacity"}),
    ]


def _by_api(key: str) -> Reader:
    return lambda snapshot: [
        (totals[key], {"api": api}) for api, totals in sorted(snapshot.legacy.items())
    ]


def _store(field: str) -> Reader:
    def read(snapshot: LifecycleSnapshot) -> list[tuple[float, dict[str, str]]]:
        if snapshot.store is None:
            return []
        return [
            (getattr(numbers, field), {"operation": operation})
            for operation, numbers in snapshot.store.items()
            if field != "conflicts" or operation == "save_state"
        ]

    return read


def instrument_sessions(
    manager: UserSessionManager[Any],
    *,
    meter_provider: MeterProvider | None = None,
    leak_threshold: int = DEFAULT_LEAK_THRESHOLD,
    leak_apis: Collection[str] | None = None,
    observer: LegacyObserver | None = None,
) -> SessionInstruments:
    """Register the session layer's instruments for ``manager`` on a meter named ``ctxmigrate``."""
    meter = metrics.get_meter("ctxmigrate", __version__, meter_provider=meter_provider)
    monitor = LeakMonitor(manager, threshold=leak_threshold, observer=observer, apis=leak_apis)
    registered = SessionInstruments(monitor, meter)
    gauge, counter = meter.create_observable_gauge, meter.create_observable_counter
    table: list[tuple[Callable[..., Any], str, str, str, Reader]] = [
        (gauge, "ctxmigrate.sessions.active", "{session}", "Live sessions held by this process.",
         _one(lambda s: s.stats.active)),
        (gauge, "ctxmigrate.sessions.in_flight", "{session}", "Session creations running now.",
         _one(lambda s: s.stats.in_flight)),
        (counter, "ctxmigrate.sessions.created", "{session}", "Sessions created.",
         _one(lambda s: s.stats.created)),
        (counter, "ctxmigrate.sessions.reused", "{call}",
         "Calls served an existing session instead of a new context.",
         _one(lambda s: s.stats.reused)),
        (counter, "ctxmigrate.sessions.removed", "{session}", "Sessions removed, by reason.",
         _removed),
        (counter, "ctxmigrate.session.creations_failed", "{session}",
         "Session creations whose factory raised (or that were abandoned).",
         _one(lambda s: s.stats.failed_creations)),
        (gauge, "ctxmigrate.websocket_managers", "{manager}",
         "Websocket managers held for live sessions.",
         _one(lambda s: s.stats.websocket_managers)),
        (counter, "ctxmigrate.websocket_managers.unbound", "{manager}",
         "get_manager_for_context calls with a context that is not a live session.",
         _one(lambda s: s.unbound_websocket_managers)),
        (counter, "ctxmigrate.legacy.calls", "{call}",
         "Calls of observed legacy factories from outside the session layer.",
         _by_api("calls")),
        (counter, "ctxmigrate.legacy.rebuilt", "{call}",
         "Legacy calls for a conversation that already had a result of the same API.",
         _by_api("rebuilt")),
        (gauge, "ctxmigrate.legacy.live_objects", "{object}",
         "Results of legacy factories built outside the session layer and still alive.",
         lambda s: [(count, {"api": api}) for api, count in sorted(s.live_by_api.items())]),
        (gauge, "ctxmigrate.contexts.live", "{context}",
         "Live contexts: one per live session plus those built outside the session layer.",
         _one(lambda s: s.leak.live_contexts)),
        (gauge, "ctxmigrate.contexts.outside_sessions", "{context}",
         "Live contexts beyond the live sessions.", _one(lambda s: s.leak.excess)),
        (gauge, "ctxmigrate.context_leak", "1",
         "1 while live contexts exceed live sessions by more than the threshold.",
         _one(lambda s: 1 if s.leak.leaking else 0)),
        (counter, "ctxmigrate.store.operations", "{call}", "Session store calls, by operation.",
         _store("count")),
        (counter, "ctxmigrate.store.operation.duration", "s",
         "Total seconds spent in session store calls, by operation.", _store("seconds")),
        (counter, "ctxmigrate.store.operation.errors", "{call}",
         "Session store calls that raised, by operation.", _store("errors")),
        (counter, "ctxmigrate.store.operation.conflicts", "{call}",
         "Conversation state saves refused because another writer saved first.",
         _store("conflicts")),
    ]  # fmt: skip
    for create, name, unit, description, read in table:
        registered.instruments.append(
            create(name, callbacks=[registered.callback(read)], unit=unit, description=description)
        )
    return registered
