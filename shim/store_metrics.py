"""Store latency and errors by operation: a delegating wrapper around any store.

::

    from ctxmigrate.shim.store_metrics import measured_store

    manager = UserSessionManager(store=measured_store(RedisSessionStore(...)))

Every store call is timed (``time.perf_counter``) into a histogram per
operation (``get_or_create``, ``touch``, ``save_state``, ``delete``,
``sweep_expired``; the in-memory store's synchronous ``*_now`` methods count as
their async operation; with ``manager.conversation()``, ``acquire_conversation``
(its time includes waiting for a busy conversation), ``renew_conversation`` and
``release_conversation``), and a call that raises counts as an error of its
operation. A :class:`~ctxmigrate.shim.errors.StateConflictError` is an answer
(another writer saved first), not a failure: it is counted as ``conflicts``.
The exporters (``ctxmigrate.shim.prometheus``, ``ctxmigrate.shim.otel``) find
these numbers through ``manager.store``. Labels are operation names only.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar, cast

from ctxmigrate.shim.errors import StateConflictError
from ctxmigrate.shim.lease import ConversationStore, LeaseGrant, LeaseTerms
from ctxmigrate.shim.store import (
    CreateOutcome,
    SessionKey,
    SessionPolicy,
    SessionRecord,
    SessionStore,
    SyncSessionStore,
)

__all__ = [
    "DURATION_BUCKETS",
    "OPERATIONS",
    "MeasuredStore",
    "OperationStats",
    "StoreMetrics",
    "measured_store",
]

OPERATIONS = (
    "get_or_create",
    "touch",
    "save_state",
    "delete",
    "sweep_expired",
    "acquire_conversation",
    "renew_conversation",
    "release_conversation",
)
# Seconds: an in-memory call takes microseconds, a Redis round trip about a millisecond.
DURATION_BUCKETS = (
    0.00001,
    0.0001,
    0.00025,
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
)

_T = TypeVar("_T")
_SYNC_METHODS = frozenset({"get_or_create_now", "touch_now", "delete_now"})


@dataclass(frozen=True)
class OperationStats:
    """One operation's numbers: ``buckets`` are cumulative counts per upper bound
    of :data:`DURATION_BUCKETS` (the ``+Inf`` bucket is ``count``)."""

    count: int
    seconds: float
    buckets: tuple[int, ...]
    errors: int
    conflicts: int


class _Operation:
    __slots__ = ("buckets", "conflicts", "count", "errors", "seconds")

    def __init__(self) -> None:
        self.count = 0
        self.seconds = 0.0
        self.buckets = [0] * len(DURATION_BUCKETS)  # not cumulative here
        self.errors = 0
        self.conflicts = 0


class StoreMetrics:
    """Durations and errors of store calls, by operation."""

    def __init__(self) -> None:
        self._operations = {name: _Operation() for name in OPERATIONS}

    def observe(self, operation: str, seconds: float, *, error: bool, conflict: bool) -> None:
        counts = self._operations[operation]
        counts.count += 1
        counts.seconds += seconds
        for index, bound in enumerate(DURATION_BUCKETS):
            if seconds <= bound:
                counts.buckets[index] += 1
                break
        if error:
            counts.errors += 1
        if conflict:
            counts.conflicts += 1

    def snapshot(self) -> dict[str, OperationStats]:
        result: dict[str, OperationStats] = {}
        for name, counts in self._operations.items():
            cumulative: list[int] = []
            running = 0
            for count in counts.buckets:
                running += count
                cumulative.append(running)
            result[name] = OperationStats(
                counts.count, counts.seconds, tuple(cumulative), counts.errors, counts.conflicts
            )
        return result


class MeasuredStore:
    """A :class:`SessionStore` that times and counts every call of the wrapped store.

    Attributes it does not define are the wrapped store's.
    """

    def __init__(self, store: SessionStore, metrics: StoreMetrics | None = None) -> None:
        self.wrapped = store
        self.metrics = metrics if metrics is not None else StoreMetrics()

    def __getattr__(self, name: str) -> Any:
        if name in _SYNC_METHODS:  # only MeasuredSyncStore answers these, measured
            raise AttributeError(name)
        return getattr(self.wrapped, name)

    async def _timed(self, operation: str, call: Callable[[], Awaitable[_T]]) -> _T:
        start = time.perf_counter()
        try:
            result = await call()
        except StateConflictError:
            self.metrics.observe(operation, time.perf_counter() - start, error=False, conflict=True)
            raise
        except Exception:
            self.metrics.observe(operation, time.perf_counter() - start, error=True, conflict=False)
            raise
        self.metrics.observe(operation, time.perf_counter() - start, error=False, conflict=False)
        return result

    def _timed_now(self, operation: str, call: Callable[[], _T]) -> _T:
        start = time.perf_counter()
        try:
            result = call()
        except Exception:
            self.metrics.observe(operation, time.perf_counter() - start, error=True, conflict=False)
            raise
        self.metrics.observe(operation, time.perf_counter() - start, error=False, conflict=False)
        return result

    async def get_or_create(
        self, candidate: SessionRecord, *, now: float, policy: SessionPolicy
    ) -> CreateOutcome:
        return await self._timed(
            "get_or_create", lambda: self.wrapped.get_or_create(candidate, now=now, policy=policy)
        )

    async def touch(
        self, key: SessionKey, *, now: float, policy: SessionPolicy
    ) -> SessionRecord | None:
        return await self._timed("touch", lambda: self.wrapped.touch(key, now=now, policy=policy))

    async def save_state(
        self,
        key: SessionKey,
        state: dict[str, Any],
        *,
        expected_version: int,
        now: float,
        policy: SessionPolicy,
    ) -> SessionRecord | None:
        return await self._timed(
            "save_state",
            lambda: self.wrapped.save_state(
                key, state, expected_version=expected_version, now=now, policy=policy
            ),
        )

    async def delete(self, key: SessionKey) -> bool:
        return await self._timed("delete", lambda: self.wrapped.delete(key))

    async def sweep_expired(self, *, now: float, policy: SessionPolicy) -> list[SessionKey]:
        return await self._timed(
            "sweep_expired", lambda: self.wrapped.sweep_expired(now=now, policy=policy)
        )

    # -- conversation leases: present when the wrapped store has them ----------------

    async def acquire_conversation(
        self,
        candidate: SessionRecord,
        *,
        clock: Callable[[], float],
        policy: SessionPolicy,
        terms: LeaseTerms,
    ) -> LeaseGrant:
        store = cast(ConversationStore, self.wrapped)
        return await self._timed(
            "acquire_conversation",
            lambda: store.acquire_conversation(candidate, clock=clock, policy=policy, terms=terms),
        )

    async def renew_conversation(self, key: SessionKey, token: str, *, terms: LeaseTerms) -> bool:
        store = cast(ConversationStore, self.wrapped)
        return await self._timed(
            "renew_conversation", lambda: store.renew_conversation(key, token, terms=terms)
        )

    async def release_conversation(
        self,
        key: SessionKey,
        token: str,
        state: dict[str, Any] | None,
        *,
        expected_version: int,
        now: float,
        policy: SessionPolicy,
    ) -> SessionRecord | None:
        store = cast(ConversationStore, self.wrapped)
        return await self._timed(
            "release_conversation",
            lambda: store.release_conversation(
                key, token, state, expected_version=expected_version, now=now, policy=policy
            ),
        )

    async def aclose(self) -> None:
        await self.wrapped.aclose()


class MeasuredSyncStore(MeasuredStore):
    """:class:`MeasuredStore` of a store that also answers without awaiting."""

    def __init__(self, store: SessionStore, metrics: StoreMetrics | None = None) -> None:
        if not isinstance(store, SyncSessionStore):
            raise TypeError(f"{type(store).__name__} has no synchronous methods to measure")
        super().__init__(store, metrics)
        self.sync_wrapped: SyncSessionStore = store

    def get_or_create_now(
        self, candidate: SessionRecord, *, now: float, policy: SessionPolicy
    ) -> CreateOutcome:
        return self._timed_now(
            "get_or_create",
            lambda: self.sync_wrapped.get_or_create_now(candidate, now=now, policy=policy),
        )

    def touch_now(
        self, key: SessionKey, *, now: float, policy: SessionPolicy
    ) -> SessionRecord | None:
        return self._timed_now(
            "touch", lambda: self.sync_wrapped.touch_now(key, now=now, policy=policy)
        )

    def delete_now(self, key: SessionKey) -> bool:
        return self._timed_now("delete", lambda: self.sync_wrapped.delete_now(key))


def measured_store(store: SessionStore, metrics: StoreMetrics | None = None) -> MeasuredStore:
    """Wrap ``store``; a synchronous-capable store stays synchronous-capable (so the
    manager's hit path and the drop-in's reuse mode keep working)."""
    if isinstance(store, SyncSessionStore):
        return MeasuredSyncStore(store, metrics)
    return MeasuredStore(store, metrics)
