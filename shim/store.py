"""Session storage: the contract a store implements, and the in-memory store.

Division of labour
==================

The session manager (``UserSessionManager``) keeps the *live* context objects of
its own process and guarantees single-flight creation within the process. A
store owns the *session record* (:class:`SessionRecord`: the ids, run_id,
timestamps, ``conversation_state``) and its expiry, and is the authority on
whether a session exists. With the in-memory store both live in one process;
with a shared store (Redis, several workers), every process builds its own
context object from the shared record, so "the same session" across processes
means the same record and ``run_id``, not the same object.

Implementing a store (for example on Redis)
===========================================

Implement the five ``async`` methods of :class:`SessionStore` plus ``aclose``.
Each is one atomic operation on one key, chosen so that Redis can do it in one
command or one Lua script:

==================  ==========================================  ====================================
method              meaning                                     Redis sketch
==================  ==========================================  ====================================
``get_or_create``   return the live record, or store the        Lua: expiry/cap bookkeeping, then
                    candidate (making room per the policy)      ``SET key value NX GET EX ttl``
``touch``           refresh activity and expiry, return the     ``GETEX key EX ttl`` (+ rewrite
                    record, or ``None``; never creates          ``last_activity``)
``save_state``      compare-and-set of ``conversation_state``   Lua: check ``version``, ``SET ... XX
                    by ``version``; never re-creates            EX ttl``
``delete``          end the session                             ``DEL key`` (+ per-user index)
``sweep_expired``   remove what has expired, say which keys     may return ``[]`` (``EX`` expires)
==================  ==========================================  ====================================

Rules every store follows:

* Keys are :class:`SessionKey` pairs. Never join ``user_id`` and ``thread_id``
  with a separator (user ``"a:b"`` + thread ``"c"`` would collide with user
  ``"a"`` + thread ``"b:c"``); encode the pair unambiguously, e.g. as a JSON
  array or with length prefixes, under a key prefix.
* Idle expiry slides: every ``get_or_create`` hit, ``touch`` and ``save_state``
  sets ``last_activity = now`` and restarts the record's time to live
  (``policy.idle_timeout`` seconds). A record whose
  ``now - last_activity >= idle_timeout`` is treated as absent. Never write a
  record without an expiry.
* Nothing but ``get_or_create`` creates a record. ``touch`` is the lookup, and
  a lookup never creates (creating on lookup is a denial-of-service hole);
  ``save_state`` on a missing record returns ``None`` and writes nothing
  (Redis: ``XX``), so an ended session is never resurrected.
* ``conversation_state`` crosses process boundaries as JSON only, never pickle.
  A stored value that does not decode is treated as missing (and logged as a
  security event), never trusted.
* Capacity (``policy.max_sessions``, ``policy.max_sessions_per_user``) is
  enforced inside ``get_or_create`` when it creates: expired records go first,
  then the least recently active record of the same user (per-user cap), then
  the least recently active record overall (total cap). Report each removal in
  ``CreateOutcome.removed`` so the manager drops the matching live objects.
  Across processes this needs a per-user index kept in the same atomic step
  (Redis: a sorted set of thread ids per user, scored by ``last_activity``, and
  one of all keys for the total cap).
* Returned records may be fresh objects on every call (a network store decodes
  a new one each time). The manager writes none of their fields, but the
  context it builds uses the record's ``conversation_state`` dict as its own,
  and the application mutates that dict: return a store-internal dict only if,
  like the in-memory store, the store means to share it with the live context.
* Timestamps are epoch seconds from the manager's clock (``now`` arguments), not
  read from the store's own clock, so tests can inject time.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, NamedTuple, Protocol, runtime_checkable

from ctxmigrate.shim.errors import LeaseLostError, StateConflictError
from ctxmigrate.shim.lease import FifoLeases, LeaseGrant, LeaseTerms


class SessionKey(NamedTuple):
    """The identity of a session: the (user_id, thread_id) pair, never a joined string."""

    user_id: str
    thread_id: str


@dataclass(slots=True)
class SessionRecord:
    """What a store keeps about one session.

    ``version`` counts saves of ``conversation_state`` (compare-and-set in
    :meth:`SessionStore.save_state`). Timestamps are epoch seconds.
    """

    key: SessionKey
    run_id: str
    websocket_connection_id: str | None
    created_at: float
    last_activity: float
    conversation_state: dict[str, Any] = field(default_factory=dict)
    version: int = 0

    @property
    def user_id(self) -> str:
        return self.key.user_id

    @property
    def thread_id(self) -> str:
        return self.key.thread_id


@dataclass(frozen=True, slots=True)
class SessionPolicy:
    """Expiry and capacity, passed by the manager to every store call.

    ``idle_timeout``: seconds without activity after which a session expires.
    ``max_sessions`` / ``max_sessions_per_user``: caps (``None``: unbounded).
    When a cap is reached, creating a session evicts the least recently active
    one (after any expired ones); creation never fails for capacity.
    """

    idle_timeout: float = 1800.0
    max_sessions: int | None = 100_000
    max_sessions_per_user: int | None = 100

    def __post_init__(self) -> None:
        if not self.idle_timeout > 0:
            raise ValueError(f"idle_timeout must be positive, got {self.idle_timeout!r}")
        for name in ("max_sessions", "max_sessions_per_user"):
            cap = getattr(self, name)
            if cap is not None and (isinstance(cap, bool) or not isinstance(cap, int) or cap < 1):
                raise ValueError(f"{name} must be a positive int or None, got {cap!r}")


class RemovalReason(StrEnum):
    """Why a session stopped existing. The values are metric label values."""

    EXPIRED = "expired"
    CAPACITY = "capacity"
    USER_CAPACITY = "user_capacity"
    ENDED = "ended"


class Removal(NamedTuple):
    key: SessionKey
    reason: RemovalReason


@dataclass(frozen=True, slots=True)
class CreateOutcome:
    """Result of :meth:`SessionStore.get_or_create`.

    ``created`` is true when the candidate was stored; otherwise ``record`` is
    the existing (refreshed) record. ``removed`` lists the sessions the call
    removed to make room or because they had expired.
    """

    record: SessionRecord
    created: bool
    removed: tuple[Removal, ...] = ()


class SessionStore(Protocol):
    """The storage contract of the session manager (see the module docstring)."""

    async def get_or_create(
        self, candidate: SessionRecord, *, now: float, policy: SessionPolicy
    ) -> CreateOutcome:
        """Atomically return the live record for ``candidate.key`` (refreshing its
        activity and expiry), or store ``candidate`` after making room per ``policy``."""
        ...

    async def touch(
        self, key: SessionKey, *, now: float, policy: SessionPolicy
    ) -> SessionRecord | None:
        """Return the live record for ``key`` with its activity and expiry refreshed,
        or ``None`` (missing or expired). Never creates."""
        ...

    async def save_state(
        self,
        key: SessionKey,
        state: dict[str, Any],
        *,
        expected_version: int,
        now: float,
        policy: SessionPolicy,
    ) -> SessionRecord | None:
        """Replace ``conversation_state`` if the record's ``version`` equals
        ``expected_version``; bump ``version`` and refresh activity; return the new record.

        Returns ``None`` if the record is missing or expired (nothing is written);
        raises :class:`~ctxmigrate.shim.errors.StateConflictError` on a version mismatch.
        """
        ...

    async def delete(self, key: SessionKey) -> bool:
        """Remove the record; return whether it existed."""
        ...

    async def sweep_expired(self, *, now: float, policy: SessionPolicy) -> list[SessionKey]:
        """Remove expired records and return their keys (a store whose backend
        expires records by itself may return ``[]``)."""
        ...

    async def aclose(self) -> None:
        """Release connections; the store is not used afterwards."""
        ...


@runtime_checkable
class SyncSessionStore(Protocol):
    """A store that can also answer without awaiting (the in-memory store).

    Only such a store lets the deprecated synchronous drop-in
    ``create_user_execution_context`` reuse sessions from sync code. The manager
    also calls ``touch_now`` directly on its hit path, so each ``*_now`` method
    must do exactly what its async counterpart does.
    """

    def get_or_create_now(
        self, candidate: SessionRecord, *, now: float, policy: SessionPolicy
    ) -> CreateOutcome: ...

    def touch_now(
        self, key: SessionKey, *, now: float, policy: SessionPolicy
    ) -> SessionRecord | None: ...

    def delete_now(self, key: SessionKey) -> bool: ...


class InMemorySessionStore:
    """The embedded default store: records in one process, for one worker.

    Records sit in an ``OrderedDict`` in order of last activity (every access
    moves a record to the end). All sessions share one idle timeout, so that
    order is also the expiry order: sweeping pops expired records from the front
    and stops at the first live one, and the least recently active record, the
    first to evict, is at the front too. A per-user index of thread ids bounds
    the per-user cap's search to that user's sessions.

    Every method completes without suspending; the ``async`` methods exist to
    satisfy :class:`SessionStore`, the ``*_now`` methods serve sync callers.
    Not thread-safe: use it from the event loop's thread.
    """

    def __init__(self) -> None:
        self._records: OrderedDict[SessionKey, SessionRecord] = OrderedDict()
        self._threads_by_user: dict[str, set[str]] = {}
        self._leases = FifoLeases()

    def __len__(self) -> int:
        return len(self._records)

    def __contains__(self, key: object) -> bool:
        return key in self._records

    def peek(self, key: SessionKey) -> SessionRecord | None:
        """The stored record, expired or not, without refreshing it (for tests and debugging)."""
        return self._records.get(key)

    # -- synchronous operations -------------------------------------------------

    def touch_now(
        self, key: SessionKey, *, now: float, policy: SessionPolicy
    ) -> SessionRecord | None:
        record = self._records.get(key)
        if record is None:
            return None
        if now - record.last_activity >= policy.idle_timeout:
            self._remove(key)
            return None
        record.last_activity = now
        self._records.move_to_end(key)
        return record

    def get_or_create_now(
        self, candidate: SessionRecord, *, now: float, policy: SessionPolicy
    ) -> CreateOutcome:
        key = candidate.key
        removed: list[Removal] = []
        existing = self._records.get(key)
        if existing is not None:
            if now - existing.last_activity < policy.idle_timeout:
                existing.last_activity = now
                self._records.move_to_end(key)
                return CreateOutcome(existing, created=False)
            self._remove(key)
            removed.append(Removal(key, RemovalReason.EXPIRED))
        # Expired sessions make room first, before anyone live is evicted.
        removed.extend(
            Removal(expired, RemovalReason.EXPIRED)
            for expired in self.sweep_expired_now(now, policy)
        )
        removed.extend(self._evict_for_user(key.user_id, policy))
        if policy.max_sessions is not None:
            while len(self._records) >= policy.max_sessions:
                evicted, _ = self._records.popitem(last=False)
                self._unindex(evicted)
                removed.append(Removal(evicted, RemovalReason.CAPACITY))
        self._records[key] = candidate
        self._threads_by_user.setdefault(key.user_id, set()).add(key.thread_id)
        return CreateOutcome(candidate, created=True, removed=tuple(removed))

    def save_state_now(
        self,
        key: SessionKey,
        state: dict[str, Any],
        *,
        expected_version: int,
        now: float,
        policy: SessionPolicy,
    ) -> SessionRecord | None:
        record = self._records.get(key)
        if record is None:
            return None
        if now - record.last_activity >= policy.idle_timeout:
            self._remove(key)
            return None
        if record.version != expected_version:
            # Checked before anything changes: a rejected save leaves the record
            # (state, version, activity) as it was.
            raise StateConflictError(
                f"conversation_state was saved by another writer "
                f"(version {record.version}, expected {expected_version})"
            )
        record.last_activity = now
        self._records.move_to_end(key)
        record.conversation_state = state
        record.version += 1
        return record

    def delete_now(self, key: SessionKey) -> bool:
        if key not in self._records:
            return False
        self._remove(key)
        return True

    def sweep_expired_now(self, now: float, policy: SessionPolicy) -> list[SessionKey]:
        expired: list[SessionKey] = []
        for key, record in self._records.items():
            # Activity order is expiry order, so the first live record ends the
            # scan. (A clock that steps backwards can leave an expired record
            # behind a live one; access or a later sweep removes it.)
            if now - record.last_activity < policy.idle_timeout:
                break
            expired.append(key)
        for key in expired:
            self._remove(key)
        return expired

    # -- SessionStore ----------------------------------------------------------

    async def get_or_create(
        self, candidate: SessionRecord, *, now: float, policy: SessionPolicy
    ) -> CreateOutcome:
        return self.get_or_create_now(candidate, now=now, policy=policy)

    async def touch(
        self, key: SessionKey, *, now: float, policy: SessionPolicy
    ) -> SessionRecord | None:
        return self.touch_now(key, now=now, policy=policy)

    async def save_state(
        self,
        key: SessionKey,
        state: dict[str, Any],
        *,
        expected_version: int,
        now: float,
        policy: SessionPolicy,
    ) -> SessionRecord | None:
        return self.save_state_now(
            key, state, expected_version=expected_version, now=now, policy=policy
        )

    # -- conversation leases (ConversationStore) -------------------------------

    async def acquire_conversation(
        self,
        candidate: SessionRecord,
        *,
        clock: Callable[[], float],
        policy: SessionPolicy,
        terms: LeaseTerms,
    ) -> LeaseGrant:
        """Wait in arrival order for the conversation, then get or create its record.

        The lease is in-process: it lasts until released (``terms.ttl`` does not
        apply; a holder that stopped running stops its whole process).
        """
        token = await self._leases.acquire(candidate.key, terms.wait)
        outcome = self.get_or_create_now(candidate, now=clock(), policy=policy)
        return LeaseGrant(token, outcome, expires=False)

    async def renew_conversation(self, key: SessionKey, token: str, *, terms: LeaseTerms) -> bool:
        return self._leases.holder(key) == token

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
        if self._leases.holder(key) != token:
            raise LeaseLostError("this conversation's lease is no longer held by this holder")
        try:
            if state is None:
                return None
            return self.save_state_now(
                key, state, expected_version=expected_version, now=now, policy=policy
            )
        finally:
            self._leases.release(key, token)

    async def delete(self, key: SessionKey) -> bool:
        return self.delete_now(key)

    async def sweep_expired(self, *, now: float, policy: SessionPolicy) -> list[SessionKey]:
        return self.sweep_expired_now(now, policy)

    async def aclose(self) -> None:
        self._records.clear()
        self._threads_by_user.clear()

    # -- internals ----------------------------------------------------------------

    def _evict_for_user(self, user_id: str, policy: SessionPolicy) -> list[Removal]:
        cap = policy.max_sessions_per_user
        threads = self._threads_by_user.get(user_id)
        removed: list[Removal] = []
        if cap is None or threads is None:
            return removed
        while len(threads) >= cap:
            victim = min(
                threads, key=lambda thread: self._records[SessionKey(user_id, thread)].last_activity
            )
            victim_key = SessionKey(user_id, victim)
            self._remove(victim_key)
            removed.append(Removal(victim_key, RemovalReason.USER_CAPACITY))
        return removed

    def _remove(self, key: SessionKey) -> None:
        del self._records[key]
        self._unindex(key)

    def _unindex(self, key: SessionKey) -> None:
        threads = self._threads_by_user[key.user_id]
        threads.discard(key.thread_id)
        if not threads:
            del self._threads_by_user[key.user_id]
