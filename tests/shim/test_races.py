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
        # alice's old record was counted once, by her touch that found it gone
        # (before bob's reply reported the eviction); bob's by his creation.
        assert (stats.created, stats.ended, stats.evicted["capacity"]) == (3, 1, 1)
        assert stats.created - stats.evicted_total - stats.expired - stats.ended == stats.active

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


# -- 6. a removal reaches the manager, and is counted, exactly once ------------------------


def balance(manager: UserSessionManager) -> int:
    stats = manager.stats()
    return stats.created - stats.expired - stats.evicted_total - stats.ended - stats.active


def test_creation_cancelled_during_its_store_call_applies_the_stores_removals() -> None:
    async def scenario() -> None:
        clock, store = ManualClock(), GatedStore()
        manager = manager_on(store, clock, max_sessions=1, max_sessions_per_user=None)
        alice = await manager.get_or_create_user_session("alice", "t1")
        store.hold("get_or_create")
        bob = asyncio.create_task(manager.get_or_create_user_session("bob", "t1"))
        # The store evicted alice's record and created bob's; its reply is held.
        await yield_until(lambda: store.calls.get("get_or_create") == 2)
        bob.cancel()  # the client went away during its first message
        store.release("get_or_create")
        with pytest.raises(asyncio.CancelledError):
            await bob
        assert not manager.owns(alice)  # the eviction was applied
        assert len(store.inner) == 0  # bob's abandoned record was deleted
        stats = manager.stats()
        assert (stats.active, stats.created, stats.evicted["capacity"]) == (0, 1, 1)
        assert (stats.failed_creations, stats.in_flight) == (1, 0)
        assert balance(manager) == 0
        carol = await manager.get_or_create_user_session("carol", "t1")
        assert manager.owns(carol) and manager.stats().active == 1 and len(store.inner) == 1

    asyncio.run(scenario())


def test_repeatedly_cancelled_creations_keep_live_contexts_within_the_cap() -> None:
    async def scenario() -> None:
        clock, store = ManualClock(), GatedStore()
        manager = manager_on(store, clock, max_sessions=1, max_sessions_per_user=None)
        for i in range(20):
            await manager.get_or_create_user_session(f"u{i}", "t")
            calls = store.calls.get("get_or_create", 0)
            store.hold("get_or_create")
            caller = asyncio.create_task(manager.get_or_create_user_session(f"x{i}", "t"))
            await yield_until(lambda n=calls + 1: store.calls.get("get_or_create") == n)
            caller.cancel()
            store.release("get_or_create")
            await asyncio.gather(caller, return_exceptions=True)
            assert manager.stats().active <= 1 and len(store.inner) <= 1
        assert balance(manager) == 0

    asyncio.run(scenario())


def test_removal_seen_before_end_sessions_reply_is_counted_once() -> None:
    async def scenario() -> None:
        clock, store = ManualClock(), GatedStore()
        manager = manager_on(store, clock)
        first = await manager.get_or_create_user_session("alice", "t1")
        store.hold("delete")
        ending = asyncio.create_task(manager.end_session("alice", "t1"))
        await yield_until(lambda: store.calls.get("delete") == 1)  # deleted; reply held
        # The next message finds the record gone, drops the context and re-creates.
        second = await manager.get_or_create_user_session("alice", "t1")
        store.release("delete")
        assert await ending
        assert second is not first and manager.owns(second)
        stats = manager.stats()
        assert (stats.active, stats.created, stats.ended) == (1, 2, 1)
        assert balance(manager) == 0

    asyncio.run(scenario())


def test_eviction_seen_before_the_evicting_reply_is_counted_once() -> None:
    async def scenario() -> None:
        clock, store = ManualClock(), GatedStore()
        manager = manager_on(store, clock, max_sessions=1, max_sessions_per_user=None)
        await manager.get_or_create_user_session("alice", "t1")
        store.hold("get_or_create")
        bob = asyncio.create_task(manager.get_or_create_user_session("bob", "t1"))
        await yield_until(lambda: store.calls.get("get_or_create") == 2)  # alice evicted
        assert await manager.get_session("alice", "t1") is None  # drops and counts her
        store.release("get_or_create")
        assert manager.owns(await bob)
        stats = manager.stats()
        assert (stats.active, stats.created, stats.ended, stats.evicted_total) == (1, 2, 1, 0)
        assert balance(manager) == 0

    asyncio.run(scenario())


def test_lookup_joining_a_creation_whose_record_was_ended_returns_none() -> None:
    async def scenario() -> None:
        factory = GatedAsyncFactory()
        manager = UserSessionManager(factory=factory)
        creating = asyncio.create_task(manager.get_or_create_user_session("alice", "t1"))
        await yield_until(lambda: factory.calls == 1)
        lookup = asyncio.create_task(manager.get_session("alice", "t1"))  # joins the creation
        await asyncio.sleep(0)
        assert await manager.end_session("alice", "t1")
        factory.open()
        context = await creating
        assert context is not None and not manager.owns(context)  # the creator gets it
        assert await lookup is None  # a lookup returns live sessions only
        assert balance(manager) == 0

    asyncio.run(scenario())


class ReorderingStore(GatedStore):
    """A delete that waits for a pool connection: later calls may overtake it."""

    def __init__(self) -> None:
        super().__init__()
        self.connected = asyncio.Event()

    async def delete(self, key: Any) -> bool:
        await self.connected.wait()
        return await super().delete(key)


def test_lookup_served_before_an_earlier_end_sessions_delete_is_rechecked() -> None:
    async def scenario() -> None:
        clock, store = ManualClock(), ReorderingStore()
        other_worker = manager_on(store, clock)
        await other_worker.get_or_create_user_session("alice", "t1")
        manager = manager_on(store, clock)
        ending = asyncio.create_task(manager.end_session("alice", "t1"))
        await asyncio.sleep(0)
        # Issued after end_session, served before its delete: finds the record.
        found = await manager.get_session("alice", "t1")
        assert found is not None and manager.owns(found)
        store.connected.set()
        assert await ending
        assert not manager.owns(found)  # rechecked after the delete's reply
        assert manager.stats().active == 0 and len(store.inner) == 0
        again = await manager.get_or_create_user_session("alice", "t1")
        assert again is not found and manager.owns(again)

    asyncio.run(scenario())


def test_creation_built_across_an_out_of_order_delete_is_rechecked() -> None:
    async def scenario() -> None:
        clock, store = ManualClock(), ReorderingStore()
        factory = GatedAsyncFactory()
        other_worker = manager_on(store, clock)
        await other_worker.get_or_create_user_session("alice", "t1")
        manager = UserSessionManager(store=store, clock=clock, idle_timeout=60, factory=factory)
        ending = asyncio.create_task(manager.end_session("alice", "t1"))
        await asyncio.sleep(0)
        # Issued after end_session, served before the delete: adopts the record,
        # and its factory is still running when the delete's reply arrives.
        creating = asyncio.create_task(manager.get_or_create_user_session("alice", "t1"))
        await yield_until(lambda: factory.calls == 1)
        store.connected.set()
        assert await ending
        factory.open()
        context = await creating
        assert not manager.owns(context)
        assert manager.stats().active == 0 and len(store.inner) == 0

    asyncio.run(scenario())


def test_manager_closed_with_a_creation_not_yet_started_serves_the_key_again() -> None:
    async def scenario() -> None:
        manager = UserSessionManager()
        caller = asyncio.create_task(manager.get_or_create_user_session("alice", "t1"))
        await asyncio.sleep(0)  # the flight exists; its task has not run its first step
        await manager.aclose()
        with pytest.raises(asyncio.CancelledError):
            await caller
        assert manager.stats().in_flight == 0
        context = await manager.get_or_create_user_session("alice", "t1")
        assert await manager.get_session("alice", "t1") is context

    asyncio.run(scenario())
