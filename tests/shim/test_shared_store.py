"""The manager against a store that suspends and is shared, as a Redis store would be.

Two managers over one store stand for two worker processes: "the same session"
then means the same record and run_id, not the same object.
"""

from __future__ import annotations

import asyncio
import copy
from typing import Any

import pytest

from ctxmigrate.shim import (
    CreateOutcome,
    InMemorySessionStore,
    SessionKey,
    SessionPolicy,
    SessionRecord,
    SyncAccessError,
    UserExecutionContext,
    UserSessionManager,
)


def snapshot(record: SessionRecord | None) -> SessionRecord | None:
    """What a network store returns: a copy decoded from the wire, never the stored object."""
    return copy.deepcopy(record)


class SuspendingStore:
    """Delegates to an in-memory store, yielding to the event loop first (like network I/O)."""

    def __init__(self, backing: InMemorySessionStore | None = None) -> None:
        self.backing = InMemorySessionStore() if backing is None else backing
        self.creates = 0

    async def get_or_create(
        self, candidate: SessionRecord, *, now: float, policy: SessionPolicy
    ) -> CreateOutcome:
        await asyncio.sleep(0)
        self.creates += 1
        outcome = self.backing.get_or_create_now(copy.deepcopy(candidate), now=now, policy=policy)
        return CreateOutcome(copy.deepcopy(outcome.record), outcome.created, outcome.removed)

    async def touch(
        self, key: SessionKey, *, now: float, policy: SessionPolicy
    ) -> SessionRecord | None:
        await asyncio.sleep(0)
        return snapshot(self.backing.touch_now(key, now=now, policy=policy))

    async def save_state(
        self,
        key: SessionKey,
        state: dict[str, Any],
        *,
        expected_version: int,
        now: float,
        policy: SessionPolicy,
    ) -> SessionRecord | None:
        await asyncio.sleep(0)
        return snapshot(
            self.backing.save_state_now(
                key, copy.deepcopy(state), expected_version=expected_version, now=now, policy=policy
            )
        )

    async def delete(self, key: SessionKey) -> bool:
        await asyncio.sleep(0)
        return self.backing.delete_now(key)

    async def sweep_expired(self, *, now: float, policy: SessionPolicy) -> list[SessionKey]:
        await asyncio.sleep(0)
        return self.backing.sweep_expired_now(now, policy)

    async def aclose(self) -> None:
        await asyncio.sleep(0)


def two_workers(
    shared: InMemorySessionStore,
) -> tuple[UserSessionManager[UserExecutionContext], UserSessionManager[UserExecutionContext]]:
    """Two managers over one store: two worker processes sharing one Redis."""
    return (
        UserSessionManager(store=SuspendingStore(shared)),
        UserSessionManager(store=SuspendingStore(shared)),
    )


def test_concurrent_first_calls_make_one_record_with_a_suspending_store() -> None:
    async def scenario() -> None:
        store = SuspendingStore()
        manager = UserSessionManager(store=store)
        contexts = await asyncio.gather(
            *(manager.get_or_create_user_session("u", "t") for _ in range(200))
        )
        assert all(context is contexts[0] for context in contexts)
        assert store.creates == 1
        assert len(store.backing) == 1

    asyncio.run(scenario())


def test_second_process_adopts_the_record_and_its_run_id() -> None:
    async def scenario() -> None:
        shared = InMemorySessionStore()
        worker_a, worker_b = two_workers(shared)
        on_a = await worker_a.get_or_create_user_session("u", "t", run_id="run-a")
        on_b = await worker_b.get_or_create_user_session("u", "t", run_id="run-b")
        assert on_b is not on_a
        assert on_b.run_id == on_a.run_id == "run-a"
        assert len(shared) == 1
        assert (worker_b.stats().created, worker_b.stats().reused) == (0, 1)

    asyncio.run(scenario())


def test_state_saved_by_one_process_is_loaded_by_another() -> None:
    async def scenario() -> None:
        shared = InMemorySessionStore()
        worker_a, worker_b = two_workers(shared)
        on_a = await worker_a.get_or_create_user_session("u", "t")
        on_a.conversation_state["step"] = 3
        await worker_a.save_conversation_state(on_a)
        on_b = await worker_b.get_or_create_user_session("u", "t")
        assert on_b.conversation_state == {"step": 3}

    asyncio.run(scenario())


def test_lookup_builds_a_local_context_for_a_stored_record_but_never_creates() -> None:
    async def scenario() -> None:
        shared = InMemorySessionStore()
        worker_a, worker_b = two_workers(shared)
        assert await worker_b.get_session("u", "t") is None
        assert len(shared) == 0
        on_a = await worker_a.get_or_create_user_session("u", "t")
        found = await worker_b.get_session("u", "t")
        assert found is not None and found.run_id == on_a.run_id

    asyncio.run(scenario())


def test_session_ended_by_another_process_is_not_served_from_the_local_cache() -> None:
    async def scenario() -> None:
        shared = InMemorySessionStore()
        worker_a, worker_b = two_workers(shared)
        stale = await worker_b.get_or_create_user_session("u", "t")
        await worker_a.end_session("u", "t")
        assert await worker_b.get_session("u", "t") is None
        fresh = await worker_b.get_or_create_user_session("u", "t")
        assert fresh is not stale and fresh.run_id != stale.run_id

    asyncio.run(scenario())


def test_cleanup_drops_local_contexts_idle_here_even_if_the_store_reports_nothing() -> None:
    async def scenario() -> None:
        now = [0.0]
        shared = InMemorySessionStore()
        worker = UserSessionManager(
            store=SuspendingStore(shared), idle_timeout=60, clock=lambda: now[0]
        )
        await worker.get_or_create_user_session("u", "t")
        shared.touch_now(SessionKey("u", "t"), now=50, policy=worker.policy)  # another worker
        now[0] = 70
        assert await worker.cleanup_inactive_sessions() == [SessionKey("u", "t")]
        assert worker.stats().active == 0
        assert len(shared) == 1  # the record is alive for the other worker

    asyncio.run(scenario())


def test_sync_get_or_create_refuses_an_async_only_store() -> None:
    manager = UserSessionManager(store=SuspendingStore())
    with pytest.raises(SyncAccessError, match="await get_or_create_user_session"):
        manager.get_or_create_user_session_sync("u", "t")


def test_manager_does_not_close_a_store_it_was_given() -> None:
    async def scenario() -> None:
        shared = InMemorySessionStore()
        async with UserSessionManager(store=shared) as manager:
            await manager.get_or_create_user_session("u", "t")
        assert len(shared) == 1

    asyncio.run(scenario())


def test_live_context_continues_from_state_saved_by_another_process() -> None:
    async def scenario() -> None:
        shared = InMemorySessionStore()
        worker_a, worker_b = two_workers(shared)
        on_a = await worker_a.get_or_create_user_session("u", "t")
        on_b = await worker_b.get_or_create_user_session("u", "t")
        on_b.conversation_state["from_b"] = True
        await worker_b.save_conversation_state(on_b)
        again = await worker_a.get_or_create_user_session("u", "t")
        assert again is on_a
        assert on_a.conversation_state == {"from_b": True}
        on_a.conversation_state["from_a"] = True
        await worker_a.save_conversation_state(on_a)  # no StateConflictError
        assert shared.peek(SessionKey("u", "t")).conversation_state == {  # type: ignore[union-attr]
            "from_b": True,
            "from_a": True,
        }

    asyncio.run(scenario())


def test_lookup_finds_a_session_recreated_by_another_process() -> None:
    async def scenario() -> None:
        shared = InMemorySessionStore()
        worker_a, worker_b = two_workers(shared)
        stale = await worker_b.get_or_create_user_session("u", "t")
        await worker_a.end_session("u", "t")
        recreated = await worker_a.get_or_create_user_session("u", "t")
        found = await worker_b.get_session("u", "t")
        assert found is not None and found is not stale
        assert found.run_id == recreated.run_id

    asyncio.run(scenario())
