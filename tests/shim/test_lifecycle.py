"""Idle expiry (sliding), cleanup, background sweeping, caps and eviction order."""

from __future__ import annotations

import asyncio

from ctxmigrate.shim import LeakCheck, SessionKey, UserSessionManager
from ctxmigrate.shim.testing import ManualClock

from .support import yield_until


def test_session_expires_after_idle_timeout_and_is_recreated() -> None:
    async def scenario() -> None:
        clock = ManualClock()
        manager = UserSessionManager(idle_timeout=60, clock=clock)
        first = await manager.get_or_create_user_session("u", "t")
        clock.advance(60)
        second = await manager.get_or_create_user_session("u", "t")
        assert second is not first
        stats = manager.stats()
        assert (stats.created, stats.expired, stats.active) == (2, 1, 1)

    asyncio.run(scenario())


def test_idle_timeout_slides_with_every_access() -> None:
    async def scenario() -> None:
        clock = ManualClock()
        manager = UserSessionManager(idle_timeout=60, clock=clock)
        first = await manager.get_or_create_user_session("u", "t")
        for _ in range(5):
            clock.advance(59)
            assert await manager.get_or_create_user_session("u", "t") is first
        assert manager.stats().expired == 0

    asyncio.run(scenario())


def test_lookup_counts_as_activity() -> None:
    async def scenario() -> None:
        clock = ManualClock()
        manager = UserSessionManager(idle_timeout=60, clock=clock)
        first = await manager.get_or_create_user_session("u", "t")
        clock.advance(50)
        assert await manager.get_session("u", "t") is first
        clock.advance(50)
        assert await manager.get_session("u", "t") is first

    asyncio.run(scenario())


def test_lookup_of_expired_session_returns_none_and_does_not_recreate() -> None:
    async def scenario() -> None:
        clock = ManualClock()
        manager = UserSessionManager(idle_timeout=60, clock=clock)
        await manager.get_or_create_user_session("u", "t")
        clock.advance(61)
        assert await manager.get_session("u", "t") is None
        assert manager.stats().active == 0
        assert len(manager.store) == 0  # type: ignore[arg-type]

    asyncio.run(scenario())


def test_cleanup_inactive_sessions_returns_what_it_removed() -> None:
    async def scenario() -> None:
        clock = ManualClock()
        manager = UserSessionManager(idle_timeout=60, clock=clock)
        await manager.get_or_create_user_session("u", "old-1")
        await manager.get_or_create_user_session("u", "old-2")
        clock.advance(40)
        kept = await manager.get_or_create_user_session("u", "recent")
        clock.advance(30)
        removed = await manager.cleanup_inactive_sessions()
        assert sorted(removed) == [SessionKey("u", "old-1"), SessionKey("u", "old-2")]
        assert await manager.get_session("u", "recent") is kept
        stats = manager.stats()
        assert (stats.active, stats.expired) == (1, 2)

    asyncio.run(scenario())


def test_background_cleanup_runs_while_manager_is_entered() -> None:
    async def scenario() -> None:
        clock = ManualClock()
        manager = UserSessionManager(
            idle_timeout=60, cleanup_interval=10, clock=clock, sleep=clock.sleep
        )
        async with manager:
            await manager.get_or_create_user_session("u", "t")
            await yield_until(lambda: clock.sleep_calls == 1)
            clock.advance(10)
            await yield_until(lambda: clock.sleep_calls == 2)
            assert manager.stats().active == 1  # not idle long enough yet
            clock.advance(60)
            # Woken once more (deadline passed), swept, and asleep again.
            await yield_until(lambda: clock.sleep_calls == 3)
            assert manager.stats().active == 0
            assert manager.stats().expired == 1

    asyncio.run(scenario())


def test_exiting_the_manager_stops_the_background_task_and_drops_sessions() -> None:
    async def scenario() -> None:
        clock = ManualClock()
        manager = UserSessionManager(cleanup_interval=10, clock=clock, sleep=clock.sleep)
        async with manager:
            await manager.get_or_create_user_session("u", "t")
            await yield_until(lambda: clock.sleep_calls == 1)
        clock.advance(100)
        await asyncio.sleep(0)
        assert clock.sleep_calls == 1
        assert manager.stats().active == 0
        assert [task for task in asyncio.all_tasks() if task is not asyncio.current_task()] == []

    asyncio.run(scenario())


def test_manager_can_be_entered_again_in_another_event_loop() -> None:
    manager = UserSessionManager()

    async def lifespan() -> None:
        async with manager:
            assert (await manager.get_or_create_user_session("u", "t")).user_id == "u"

    asyncio.run(lifespan())
    asyncio.run(lifespan())


def test_ten_thousand_inserts_into_a_cap_of_one_hundred_leave_one_hundred() -> None:
    async def scenario() -> None:
        clock = ManualClock()
        manager = UserSessionManager(max_sessions=100, max_sessions_per_user=None, clock=clock)
        for index in range(10_000):
            await manager.get_or_create_user_session(f"user-{index}", "t")
            clock.advance(0.001)
        stats = manager.stats()
        assert stats.active == 100
        assert len(manager.store) == 100  # type: ignore[arg-type]
        assert stats.evicted == {"capacity": 9_900, "user_capacity": 0}
        # The survivors are the 100 most recently active.
        assert await manager.get_session("user-9900", "t") is not None
        assert await manager.get_session("user-9899", "t") is None

    asyncio.run(scenario())


def test_at_capacity_expired_sessions_go_before_live_ones() -> None:
    async def scenario() -> None:
        clock = ManualClock()
        manager = UserSessionManager(
            idle_timeout=60, max_sessions=3, max_sessions_per_user=None, clock=clock
        )
        await manager.get_or_create_user_session("a", "t")
        await manager.get_or_create_user_session("b", "t")
        clock.advance(30)
        await manager.get_or_create_user_session("c", "t")
        clock.advance(31)  # a and b are expired now, c is not
        await manager.get_or_create_user_session("d", "t")
        stats = manager.stats()
        assert stats.expired == 2
        assert stats.evicted_total == 0
        assert await manager.get_session("c", "t") is not None

    asyncio.run(scenario())


def test_at_capacity_least_recently_active_is_evicted() -> None:
    async def scenario() -> None:
        clock = ManualClock()
        manager = UserSessionManager(max_sessions=2, max_sessions_per_user=None, clock=clock)
        await manager.get_or_create_user_session("a", "t")
        clock.advance(1)
        await manager.get_or_create_user_session("b", "t")
        clock.advance(1)
        await manager.get_or_create_user_session("a", "t")  # a is now the most recent
        clock.advance(1)
        await manager.get_or_create_user_session("c", "t")
        assert await manager.get_session("b", "t") is None
        assert await manager.get_session("a", "t") is not None
        assert manager.stats().evicted["capacity"] == 1

    asyncio.run(scenario())


def test_per_user_cap_evicts_that_users_least_recently_active_session() -> None:
    async def scenario() -> None:
        clock = ManualClock()
        manager = UserSessionManager(max_sessions_per_user=2, clock=clock)
        other = await manager.get_or_create_user_session("other", "t")
        clock.advance(1)
        await manager.get_or_create_user_session("u", "t1")
        clock.advance(1)
        await manager.get_or_create_user_session("u", "t2")
        clock.advance(1)
        await manager.get_or_create_user_session("u", "t1")
        clock.advance(1)
        await manager.get_or_create_user_session("u", "t3")
        assert await manager.get_session("u", "t2") is None
        assert await manager.get_session("u", "t1") is not None
        assert await manager.get_session("other", "t") is other
        assert manager.stats().evicted == {"capacity": 0, "user_capacity": 1}

    asyncio.run(scenario())


def test_end_session_drops_context_and_record() -> None:
    async def scenario() -> None:
        manager = UserSessionManager()
        first = await manager.get_or_create_user_session("u", "t")
        assert await manager.end_session("u", "t") is True
        assert await manager.end_session("u", "t") is False
        assert await manager.get_session("u", "t") is None
        assert await manager.get_or_create_user_session("u", "t") is not first
        assert manager.stats().ended == 1

    asyncio.run(scenario())


def test_contexts_of_removed_sessions_are_garbage_collected() -> None:
    leak_check = LeakCheck()

    async def scenario() -> None:
        clock = ManualClock()
        manager = UserSessionManager(
            idle_timeout=60,
            max_sessions=2,
            max_sessions_per_user=None,
            clock=clock,
            leak_check=leak_check,
        )
        await manager.get_or_create_user_session("ended", "t")
        await manager.end_session("ended", "t")
        await manager.get_or_create_user_session("expired", "t")
        clock.advance(61)
        await manager.cleanup_inactive_sessions()
        await manager.get_or_create_user_session("a", "t")
        await manager.get_or_create_user_session("b", "t")
        await manager.get_or_create_user_session("c", "t")  # evicts a

    asyncio.run(scenario())
    assert leak_check.survivors() == []


def test_leak_check_reports_a_context_still_referenced() -> None:
    leak_check = LeakCheck()
    kept = []

    async def scenario() -> None:
        manager = UserSessionManager(leak_check=leak_check)
        kept.append(await manager.get_or_create_user_session("u", "t"))
        await manager.end_session("u", "t")

    asyncio.run(scenario())
    assert leak_check.survivors() == ["context of SessionKey(user_id='u', thread_id='t')"]
