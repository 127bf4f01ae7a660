"""Monitoring: session counters, and a leak check built on weak references.

Counters carry no user or thread ids: a metric label per id would grow without
bound (one time series per conversation). Reasons are a closed set
(:class:`~ctxmigrate.shim.store.RemovalReason`).
"""

from __future__ import annotations

import gc
import weakref
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class SessionStats:
    """A snapshot of one manager's counters, for this process.

    ``active``: live sessions held by this process (gauge).
    ``created``: sessions created; ``reused``: calls served an existing session.
    ``expired``: sessions removed for idleness; ``ended``: removed by ``end_session``.
    ``evicted``: sessions removed for capacity, by reason (``capacity``: the total
    cap, ``user_capacity``: the per-user cap).
    ``failed_creations``: creations whose factory raised (or that were abandoned).
    ``in_flight``: creations running right now (gauge; 0 when idle).
    ``websocket_managers``: websocket managers held for live sessions (gauge).
    """

    active: int
    created: int
    reused: int
    expired: int
    ended: int
    evicted: dict[str, int] = field(default_factory=dict)
    failed_creations: int = 0
    in_flight: int = 0
    websocket_managers: int = 0

    @property
    def evicted_total(self) -> int:
        return sum(self.evicted.values())

    def as_dict(self) -> dict[str, Any]:
        """Flat ``name -> number`` pairs, ready for a metrics exporter."""
        flat: dict[str, Any] = {
            "active": self.active,
            "created": self.created,
            "reused": self.reused,
            "expired": self.expired,
            "ended": self.ended,
            "failed_creations": self.failed_creations,
            "in_flight": self.in_flight,
            "websocket_managers": self.websocket_managers,
        }
        for reason, count in self.evicted.items():
            flat[f"evicted_{reason}"] = count
        return flat


class LeakCheck:
    """Remembers objects that should be garbage once released, and reports survivors.

    Give one to ``UserSessionManager(leak_check=...)`` and every context (and
    websocket manager) of a session that ends, expires or is evicted is watched.
    In a test, after dropping your own references::

        assert leak_check.survivors() == []
    """

    def __init__(self) -> None:
        self._watched: list[tuple[str, weakref.ref[Any]]] = []

    def watch(self, obj: object, label: str) -> None:
        """Watch ``obj`` (it must support weak references); ``label`` names it in reports."""
        self._watched.append((label, weakref.ref(obj)))

    def survivors(self) -> list[str]:
        """Labels of watched objects still alive after a full garbage collection."""
        gc.collect()
        self._watched = [(label, ref) for label, ref in self._watched if ref() is not None]
        return [label for label, _ in self._watched]
