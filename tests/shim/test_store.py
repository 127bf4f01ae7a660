"""The in-memory store against the SessionStore contract, and saving conversation state."""

from __future__ import annotations

import asyncio

import pytest

from ctxmigrate.shim import (
    InMemorySessionStore,
    RemovalReason,
    SessionEndedError,
    SessionKey,
    SessionPolicy,
    SessionRecord,
    StateConflictError,
    SyncSessionStore,
    UserSessionManager,
)
from ctxmigrate.shim.testing import ManualClock

POLICY = SessionPolicy(idle_timeout=60, max_sessions=None, max_sessions_per_user=None)
KEY = SessionKey("u", "t")


def record(key: SessionKey = KEY, run_id: str = "run-1", now: float = 0.0) -> SessionRecord:
    return SessionRecord(key, run_id, None, now, now)


def test_in_memory_store_supports_sync_access() -> None:
    assert isinstance(InMemorySessionStore(), SyncSessionStore)


def test_get_or_create_returns_the_existing_record_not_the_candidate() -> None:
    async def scenario() -> None:
        store = InMemorySessionStore()
        first = await store.get_or_create(record(run_id="run-1"), now=0, policy=POLICY)
        second = await store.get_or_create(record(run_id="run-2", now=5), now=5, policy=POLICY)
        assert first.created and not second.created
        assert second.record.run_id == "run-1"
        assert second.record.last_activity == 5

    asyncio.run(scenario())


def test_touch_never_creates() -> None:
    async def scenario() -> None:
        store = InMemorySessionStore()
        assert await store.touch(KEY, now=0, policy=POLICY) is None
        assert len(store) == 0

    asyncio.run(scenario())


def test_touch_of_expired_record_removes_it() -> None:
    async def scenario() -> None:
        store = InMemorySessionStore()
        await store.get_or_create(record(), now=0, policy=POLICY)
        assert await store.touch(KEY, now=60, policy=POLICY) is None
        assert KEY not in store

    asyncio.run(scenario())


def test_save_state_after_delete_does_not_resurrect() -> None:
    async def scenario() -> None:
        store = InMemorySessionStore()
        await store.get_or_create(record(), now=0, policy=POLICY)
        assert await store.delete(KEY) is True
        saved = await store.save_state(KEY, {"n": 1}, expected_version=0, now=1, policy=POLICY)
        assert saved is None
        assert len(store) == 0

    asyncio.run(scenario())


def test_save_state_is_compare_and_set_by_version() -> None:
    async def scenario() -> None:
        store = InMemorySessionStore()
        await store.get_or_create(record(), now=0, policy=POLICY)
        saved = await store.save_state(KEY, {"n": 1}, expected_version=0, now=1, policy=POLICY)
        assert saved is not None
        assert (saved.version, saved.conversation_state) == (1, {"n": 1})
        with pytest.raises(StateConflictError):
            await store.save_state(KEY, {"n": 2}, expected_version=0, now=2, policy=POLICY)
        peeked = store.peek(KEY)
        assert peeked is not None and peeked.conversation_state == {"n": 1}

    asyncio.run(scenario())


def test_sweep_removes_only_expired_records() -> None:
    async def scenario() -> None:
        store = InMemorySessionStore()
        await store.get_or_create(record(SessionKey("u", "old"), now=0), now=0, policy=POLICY)
        await store.get_or_create(record(SessionKey("u", "new"), now=30), now=30, policy=POLICY)
        assert await store.sweep_expired(now=60, policy=POLICY) == [SessionKey("u", "old")]
        assert len(store) == 1

    asyncio.run(scenario())


def test_get_or_create_reports_the_removals_it_made() -> None:
    async def scenario() -> None:
        store = InMemorySessionStore()
        policy = SessionPolicy(idle_timeout=60, max_sessions=2, max_sessions_per_user=1)
        await store.get_or_create(record(SessionKey("a", "1"), now=0), now=0, policy=policy)
        await store.get_or_create(record(SessionKey("b", "1"), now=50), now=50, policy=policy)
        outcome = await store.get_or_create(
            record(SessionKey("b", "2"), now=70), now=70, policy=policy
        )
        assert outcome.created
        assert [(key, reason) for key, reason in outcome.removed] == [
            (SessionKey("a", "1"), RemovalReason.EXPIRED),
            (SessionKey("b", "1"), RemovalReason.USER_CAPACITY),
        ]

    asyncio.run(scenario())


@pytest.mark.parametrize(
    "policy_arguments",
    [
        {"idle_timeout": 0},
        {"max_sessions": 0},
        {"max_sessions_per_user": -1},
        {"max_sessions": 1.5},
    ],
)
def test_policy_rejects_nonsense(policy_arguments: dict[str, float]) -> None:
    with pytest.raises(ValueError, match=next(iter(policy_arguments))):
        SessionPolicy(**policy_arguments)  # type: ignore[arg-type]


def test_manager_saves_conversation_state() -> None:
    async def scenario() -> None:
        manager = UserSessionManager()
        context = await manager.get_or_create_user_session("u", "t")
        context.conversation_state["topic"] = "billing"
        await manager.save_conversation_state(context)
        stored = manager.store.peek(KEY)  # type: ignore[attr-defined]
        assert stored.conversation_state == {"topic": "billing"}
        assert stored.version == 1
        await manager.save_conversation_state(context)
        assert manager.store.peek(KEY).version == 2  # type: ignore[attr-defined]

    asyncio.run(scenario())


def test_end_then_save_raises_and_does_not_resurrect() -> None:
    async def scenario() -> None:
        manager = UserSessionManager()
        context = await manager.get_or_create_user_session("u", "t")
        await manager.end_session("u", "t")
        context.conversation_state["late"] = True
        with pytest.raises(SessionEndedError):
            await manager.save_conversation_state(context)
        assert len(manager.store) == 0  # type: ignore[arg-type]
        assert manager.stats().active == 0
        assert await manager.get_session("u", "t") is None

    asyncio.run(scenario())


def test_saving_an_expired_session_raises_and_does_not_resurrect() -> None:
    async def scenario() -> None:
        clock = ManualClock()
        manager = UserSessionManager(idle_timeout=60, clock=clock)
        context = await manager.get_or_create_user_session("u", "t")
        clock.advance(61)
        with pytest.raises(SessionEndedError):
            await manager.save_conversation_state(context)
        assert len(manager.store) == 0  # type: ignore[arg-type]

    asyncio.run(scenario())


def test_saving_a_stale_context_of_a_recreated_session_is_refused() -> None:
    async def scenario() -> None:
        manager = UserSessionManager()
        old = await manager.get_or_create_user_session("u", "t")
        await manager.end_session("u", "t")
        new = await manager.get_or_create_user_session("u", "t")
        with pytest.raises(SessionEndedError):
            await manager.save_conversation_state(old)
        assert manager.store.peek(KEY).run_id == new.run_id  # type: ignore[attr-defined]

    asyncio.run(scenario())


def test_a_rejected_save_leaves_the_in_memory_record_untouched() -> None:
    store = InMemorySessionStore()
    policy = SessionPolicy(idle_timeout=60)
    record = SessionRecord(KEY, "run-1", None, 100.0, 100.0, {"n": 1}, version=3)
    store.get_or_create_now(record, now=100.0, policy=policy)
    with pytest.raises(StateConflictError, match="version 3, expected 2"):
        store.save_state_now(KEY, {"n": 2}, expected_version=2, now=130.0, policy=policy)
    stored = store.peek(KEY)
    assert stored is not None
    assert (stored.conversation_state, stored.version, stored.last_activity) == ({"n": 1}, 3, 100.0)
