"""Races between a manager call that awaits the store or the factory and another call.

Each test holds a store reply or a factory at an ``asyncio.Event`` the test
controls, runs the other call, then releases: deterministic, no sleeping.
"""

from __future__ import annotations

import asyncio
import enum
from typing import Any

import pytest

from ctxmigrate.shim import (
    SessionEndedError,
    SessionKey,
    UserExecutionContext,
    UserSessionManager,
)
from ctxmigrate.shim.testing import ManualClock

from .support import GatedAsyncFactory, GatedStore, yield_until

KEY = SessionKey("alice", "t1")


def manager_on(store: GatedStore, clock: ManualClock, **options: Any) -> UserSessionManager:
    return UserSessionManager(store=store, clock=clock, idle_timeout=60, **options)


# -- 1. after an await, only the entry that was checked is removed ------------------------


def test_hit_path_reply_does_not_drop_a_session_created_meanwhile() -> None:
    async def scenario() -> None:
        clock, store = ManualClock(), GatedStore()
        manager = manager_on(store, clock)
        await manager.get_or_create_user_session("alice", "t1")
        clock.advance(61)  # idle: the store will answer "gone"
        store.hold("touch")
        slow = asyncio.create_task(manager.get_or_create_user_session("alice", "t1"))
        await yield_until(lambda: store.calls.get("touch") == 1)
        store.release("touch")
        fresh = await manager.get_or_create_user_session("alice", "t1")  # a second socket
        # The first message's touch reply ("gone") arrives after the new session exists.
        assert await slow is fresh
        assert await manager.get_or_create_user_session("alice", "t1") is fresh
        stats = manager.stats()
        assert (stats.active, stats.created, stats.expired, stats.ended) == (1, 2, 1, 0)

    asyncio.run(scenario())


def test_hit_path_reply_for_a_replaced_entry_is_not_served() -> None:
    async def scenario() -> None:
        clock, store = ManualClock(), GatedStore()
        manager = manager_on(store, clock)
        old = await manager.get_or_create_user_session("alice", "t1")
        store.hold("touch")
        slow = asyncio.create_task(manager.get_or_create_user_session("alice", "t1"))
        await yield_until(lambda: store.calls.get("touch") == 1)
        # The session is ended and re-created while the touch reply is in flight.
        store.release("touch")
        assert await manager.end_session("alice", "t1")
        fresh = await manager.get_or_create_user_session("alice", "t1")
        assert fresh is not old
        assert await slow is fresh

    asyncio.run(scenario())


def test_failed_save_of_an_old_context_does_not_drop_the_new_session() -> None:
    async def scenario() -> None:
        clock, store = ManualClock(), GatedStore()
        manager = manager_on(store, clock)
        old = await manager.get_or_create_user_session("alice", "t1")
        clock.advance(61)
        store.hold("save_state")
        old.conversation_state["x"] = 1
        save = asyncio.create_task(manager.save_conversation_state(old))
        await yield_until(lambda: store.calls.get("save_state") == 1)
        fresh = await manager.get_or_create_user_session("alice", "t1")
        store.release("save_state")
        with pytest.raises(SessionEndedError):
            await save
        assert manager.owns(fresh)
        assert await manager.get_or_create_user_session("alice", "t1") is fresh
        stats = manager.stats()
        assert (stats.active, stats.expired, stats.ended) == (1, 1, 0)

    asyncio.run(scenario())


def test_sweep_reply_does_not_drop_a_session_recreated_meanwhile() -> None:
    async def scenario() -> None:
        clock, store = ManualClock(), GatedStore()
        manager = manager_on(store, clock)
        await manager.get_or_create_user_session("alice", "t1")
        clock.advance(61)
        store.hold("sweep_expired")
        sweep = asyncio.create_task(manager.cleanup_inactive_sessions())
        await yield_until(lambda: store.calls.get("sweep_expired") == 1)
        fresh = await manager.get_or_create_user_session("alice", "t1")  # alice is back
        store.release("sweep_expired")
        await sweep
        assert manager.owns(fresh)
        assert KEY in store.inner
        assert await manager.get_or_create_user_session("alice", "t1") is fresh
        stats = manager.stats()
        assert (stats.active, stats.created, stats.expired) == (1, 2, 1)  # counted once

    asyncio.run(scenario())


def test_sweep_does_not_drop_a_local_session_used_during_the_sweep() -> None:
    async def scenario() -> None:
        clock, store = ManualClock(), GatedStore()
        manager = manager_on(store, clock)
        first = await manager.get_or_create_user_session("alice", "t1")
        clock.advance(50)
        # Another worker keeps the record alive; this process has not seen the user.
        store.inner.touch_now(KEY, now=clock.now, policy=manager.policy)
        clock.advance(20)  # idle here (70 s), not in the store (20 s)
        store.hold("sweep_expired")
        sweep = asyncio.create_task(manager.cleanup_inactive_sessions())
        await yield_until(lambda: store.calls.get("sweep_expired") == 1)
        assert await manager.get_or_create_user_session("alice", "t1") is first
        store.release("sweep_expired")
        assert await sweep == []
        assert manager.owns(first)

    asyncio.run(scenario())


def test_eviction_reply_does_not_drop_a_session_recreated_meanwhile() -> None:
    async def scenario() -> None:
        clock, store = ManualClock(), GatedStore()
        manager = manager_on(store, clock, max_sessions=1, max_sessions_per_user=None)
        await manager.get_or_create_user_session("alice", "t1")
        bob_reply = store.hold("get_or_create")
        # bob's creation evicts alice's record; its reply is held.
        bob = asyncio.create_task(manager.get_or_create_user_session("bob", "t1"))
        await yield_until(lambda: store.calls.get("get_or_create") == 2)
        # alice comes back: her touch says "gone", she re-creates (evicting bob).
        alice_reply = store.hold("get_or_create")
        alice = asyncio.create_task(manager.get_or_create_user_session("alice", "t1"))
        await yield_until(lambda: store.calls.get("get_or_create") == 3)
        alice_reply.set()
        fresh = await alice
        assert manager.owns(fresh)
        bob_reply.set()  # bob's late reply reports alice's *old* record as evicted
        bob_context = await bob
        assert manager.owns(fresh)
        assert not manager.owns(bob_context)  # bob's record was evicted by alice's creation
        assert await manager.get_or_create_user_session("alice", "t1") is fresh
        stats = manager.stats()
        assert stats.active == 1
        assert stats.evicted["capacity"] == 2  # alice's old record, then bob's

    asyncio.run(scenario())


# -- 2. a caller never sees a cancellation it did not ask for ------------------------------


def test_caller_arriving_while_an_abandoned_creation_unwinds_gets_a_context() -> None:
    async def scenario() -> None:
        factory = GatedAsyncFactory()
        manager = UserSessionManager(factory=factory)
        first = asyncio.create_task(manager.get_or_create_user_session("alice", "t1"))
        await yield_until(lambda: factory.calls == 1)
        first.cancel()
        # Scheduled in the same loop turn as the cancellation.
        second = asyncio.create_task(manager.get_or_create_user_session("alice", "t1"))
        await yield_until(lambda: factory.calls == 2)
        factory.open()
        context = await second
        assert context.user_id == "alice"
        assert first.cancelled()
        stats = manager.stats()
        assert (stats.active, stats.created, stats.failed_creations, stats.in_flight) == (
            1,
            1,
            1,
            0,
        )

    asyncio.run(scenario())


def test_caller_arriving_during_a_slow_unwind_waits_for_it_and_starts_afresh() -> None:
    async def scenario() -> None:
        unwind = asyncio.Event()
        started = 0

        async def factory(**ids: str) -> UserExecutionContext:
            nonlocal started
            started += 1
            if started == 1:
                try:
                    await asyncio.Event().wait()  # until cancelled
                except asyncio.CancelledError:
                    await unwind.wait()  # cleanup that takes a while
                    raise
            return UserExecutionContext(ids["user_id"], ids["thread_id"], ids["run_id"])

        manager = UserSessionManager(factory=factory)
        first = asyncio.create_task(manager.get_or_create_user_session("alice", "t1"))
        await yield_until(lambda: started == 1)
        first.cancel()
        await asyncio.sleep(0)  # the cancellation reaches the creation, which starts unwinding
        second = asyncio.create_task(manager.get_or_create_user_session("alice", "t1"))
        for _ in range(5):
            await asyncio.sleep(0)
        assert started == 1 and not second.done()  # waiting for the unwind, not joined
        unwind.set()
        context = await second
        assert context.user_id == "alice" and started == 2
        assert first.cancelled()
        assert manager.stats().in_flight == 0

    asyncio.run(scenario())


# -- 3. caps bound the live contexts, also under concurrent creation ----------------------


def test_concurrent_creations_leave_no_more_live_contexts_than_the_cap() -> None:
    async def scenario() -> None:
        factory = GatedAsyncFactory()
        manager = UserSessionManager(factory=factory, max_sessions=100, max_sessions_per_user=None)
        callers = [
            asyncio.create_task(manager.get_or_create_user_session(f"user{i}", "t"))
            for i in range(10_000)
        ]
        await yield_until(lambda: factory.calls == 10_000, max_iterations=10)
        factory.open()
        contexts = await asyncio.gather(*callers)
        assert len({id(context) for context in contexts}) == 10_000  # every caller served
        stats = manager.stats()
        assert len(manager.store) == 100  # type: ignore[arg-type]
        assert stats.active == 100
        assert stats.created == 10_000 and stats.evicted["capacity"] == 9_900
        assert stats.created - stats.evicted_total - stats.expired - stats.ended == stats.active
        assert stats.in_flight == 0
        # The survivors are the 100 most recent; an evicted one is not live.
        assert all(manager.owns(context) for context in contexts[-100:])
        assert await manager.get_session("user0", "t") is None

    asyncio.run(scenario())


def test_concurrent_creations_respect_the_per_user_cap() -> None:
    async def scenario() -> None:
        factory = GatedAsyncFactory()
        manager = UserSessionManager(factory=factory, max_sessions_per_user=3)
        callers = [
            asyncio.create_task(manager.get_or_create_user_session("bob", f"t{i}"))
            for i in range(50)
        ]
        await yield_until(lambda: factory.calls == 50)
        factory.open()
        await asyncio.gather(*callers)
        stats = manager.stats()
        assert (len(manager.store), stats.active) == (3, 3)  # type: ignore[arg-type]
        assert stats.evicted["user_capacity"] == 47

    asyncio.run(scenario())


def test_end_session_during_creation_leaves_no_live_context() -> None:
    async def scenario() -> None:
        factory = GatedAsyncFactory()
        manager = UserSessionManager(factory=factory)
        creating = asyncio.create_task(manager.get_or_create_user_session("alice", "t1"))
        await yield_until(lambda: factory.calls == 1)
        assert await manager.end_session("alice", "t1")
        factory.open()
        context = await creating
        assert not manager.owns(context)
        assert manager.stats().active == 0 and len(manager.store) == 0  # type: ignore[arg-type]
        factory.gate = None
        again = asyncio.create_task(manager.get_or_create_user_session("alice", "t1"))
        await yield_until(lambda: factory.calls == 2)
        factory.open()
        assert await again is not context
        stats = manager.stats()
        assert (stats.active, stats.created, stats.ended) == (1, 2, 1)

    asyncio.run(scenario())


def test_lookup_of_a_record_removed_while_building_returns_none() -> None:
    async def scenario() -> None:
        store = GatedStore()
        factory = GatedAsyncFactory()
        other = UserSessionManager(store=store)  # another worker created the record
        await other.get_or_create_user_session("alice", "t1")
        manager = UserSessionManager(factory=factory, store=store)
        lookup = asyncio.create_task(manager.get_session("alice", "t1"))
        await yield_until(lambda: factory.calls == 1)
        assert await manager.end_session("alice", "t1")
        factory.open()
        assert await lookup is None
        assert manager.stats().active == 0

    asyncio.run(scenario())


# -- 5. ids that are str subclasses behave like the equal plain str -----------------------


class UserId(str):
    pass


class Thread(enum.StrEnum):
    MAIN = "t1"


def test_str_subclass_ids_refresh_the_session_and_count_reuse() -> None:
    async def scenario() -> None:
        clock = ManualClock()
        manager = UserSessionManager(clock=clock, idle_timeout=60)
        context = await manager.get_or_create_user_session(UserId("alice"), Thread.MAIN)
        for _ in range(5):
            clock.advance(20)
            assert await manager.get_or_create_user_session(UserId("alice"), Thread.MAIN) is context
        assert await manager.cleanup_inactive_sessions() == []
        assert await manager.get_or_create_user_session("alice", "t1") is context
        stats = manager.stats()
        assert (stats.created, stats.reused, stats.expired) == (1, 6, 0)
        assert context.last_activity_timestamp == clock.now

    asyncio.run(scenario())


def test_str_subclass_ids_with_an_async_store_refresh_the_session() -> None:
    async def scenario() -> None:
        clock, store = ManualClock(), GatedStore()
        manager = manager_on(store, clock)
        context = await manager.get_or_create_user_session(UserId("alice"), "t1")
        for _ in range(5):
            clock.advance(20)
            assert await manager.get_or_create_user_session(UserId("alice"), "t1") is context
        assert await manager.cleanup_inactive_sessions() == []
        assert manager.stats().reused == 5

    asyncio.run(scenario())
