"""What the metrics exporters read: one snapshot of the context lifecycle, and leak detection.

Both exporters (``ctxmigrate.shim.prometheus``, ``ctxmigrate.shim.otel``) build
their instruments from :func:`lifecycle_snapshot`, so they always agree. Nothing
here carries a user or thread id: labels are removal reasons, API names (the
code's own, a bounded set) and store operations.

Leak detection
==============

A *live context* is a session's context (one per live session) or a context
built outside the session layer that is still alive: a result of an
``@observe_legacy`` factory or of the deprecated drop-in, counted through weak
references until it is garbage collected. Legacy code builds one per message and
drops it, so a handful are alive at any moment; a steady growth means something
keeps them (a cache, a list of handlers, a closure) and each holds a
conversation's state that nothing will ever reuse.

:class:`LeakMonitor` compares the two: when live contexts exceed live sessions
by more than ``threshold``, it logs a warning (logger ``ctxmigrate.shim.leaks``,
``extra={"event": "ctxmigrate.context_leak", ...}``) once, and an info record
when the excess falls back under the threshold; the exporters show the excess
as a gauge and the state as ``ctxmigrate_context_leak`` (0 or 1). It is checked
whenever the metrics are collected (each scrape), or by calling
:meth:`LeakMonitor.check`.
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from ctxmigrate.shim.configuration import unbound_websocket_manager_count
from ctxmigrate.shim.manager import UserSessionManager
from ctxmigrate.shim.metrics import SessionStats
from ctxmigrate.shim.observe import LegacyObserver, legacy_observer
from ctxmigrate.shim.store_metrics import MeasuredStore, OperationStats

__all__ = ["DEFAULT_LEAK_THRESHOLD", "LeakMonitor", "LeakStatus", "LifecycleSnapshot"]

DEFAULT_LEAK_THRESHOLD = 100

leak_logger = logging.getLogger("ctxmigrate.shim.leaks")


@dataclass(frozen=True)
class LeakStatus:
    live_sessions: int
    live_outside_sessions: int
    threshold: int

    @property
    def live_contexts(self) -> int:
        return self.live_sessions + self.live_outside_sessions

    @property
    def excess(self) -> int:
        """Live contexts beyond the live sessions."""
        return self.live_contexts - self.live_sessions

    @property
    def leaking(self) -> bool:
        return self.excess > self.threshold


class LeakMonitor:
    """Live contexts against live sessions, with a log event when the gap passes ``threshold``.

    ``apis``: the observed APIs whose results are contexts (default: every
    observed API and the drop-in); leave out factories of other objects
    (websocket managers) if they live longer on purpose.
    """

    def __init__(
        self,
        manager: UserSessionManager[Any],
        *,
        threshold: int = DEFAULT_LEAK_THRESHOLD,
        observer: LegacyObserver | None = None,
        apis: Collection[str] | None = None,
    ) -> None:
        if threshold < 0:
            raise ValueError(f"threshold must not be negative, got {threshold!r}")
        self.manager = manager
        self.threshold = threshold
        self._observer = observer
        self._apis = None if apis is None else frozenset(apis)
        self._leaking = False

    @property
    def observer(self) -> LegacyObserver:
        return self._observer if self._observer is not None else legacy_observer()

    def live_outside_sessions(self) -> dict[str, int]:
        live = self.observer.live_objects()
        if self._apis is not None:
            live = {api: count for api, count in live.items() if api in self._apis}
        return live

    def check(self, active_sessions: int | None = None) -> LeakStatus:
        """Measure now; log when the state changes (leaking, or no longer)."""
        by_api = self.live_outside_sessions()
        active = self.manager.stats().active if active_sessions is None else active_sessions
        status = LeakStatus(active, sum(by_api.values()), self.threshold)
        if status.leaking and not self._leaking:
            leak_logger.warning(
                "context leak suspected: %d live contexts for %d live sessions "
                "(%d built outside the session layer and still alive; threshold %d)",
                status.live_contexts,
                status.live_sessions,
                status.excess,
                status.threshold,
                extra={
                    "event": "ctxmigrate.context_leak",
                    "live_contexts": status.live_contexts,
                    "live_sessions": status.live_sessions,
                    "threshold": status.threshold,
                    "live_by_api": dict(by_api),
                },
            )
        elif self._leaking and not status.leaking:
            leak_logger.info(
                "context leak over: %d live contexts for %d live sessions (threshold %d)",
                status.live_contexts,
                status.live_sessions,
                status.threshold,
                extra={"event": "ctxmigrate.context_leak_over"},
            )
        self._leaking = status.leaking
        return status


@dataclass(frozen=True)
class LifecycleSnapshot:
    """Everything the exporters show, read at one moment."""

    stats: SessionStats
    legacy: dict[str, dict[str, int]]  # api -> {"calls", "rebuilt"}
    live_by_api: dict[str, int]
    unbound_websocket_managers: int
    leak: LeakStatus
    store: dict[str, OperationStats] | None


def lifecycle_snapshot(monitor: LeakMonitor) -> LifecycleSnapshot:
    manager = monitor.manager
    stats = manager.stats()
    # The drop-in records into the legacy observer too (api DROP_IN_API).
    legacy = monitor.observer.api_totals()
    store = manager.store
    return LifecycleSnapshot(
        stats=stats,
        legacy=legacy,
        live_by_api=monitor.observer.live_objects(),
        unbound_websocket_managers=unbound_websocket_manager_count(),
        leak=monitor.check(stats.active),
        store=store.metrics.snapshot() if isinstance(store, MeasuredStore) else None,
    )
