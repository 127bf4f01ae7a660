"""Monitoring: counters without ids, and a sweeper that survives a failing store."""

from __future__ import annotations

import asyncio
import logging

import pytest

from ctxmigrate.shim import InMemorySessionStore, SessionKey, SessionPolicy, UserSessionManager
from ctxmigrate.shim.testing import ManualClock

from .support import yield_until


def test_stats_never_carry_user_or_thread_ids() -> None:
    async def scenario() -> None:
        clock = ManualClock()
        manager = UserSessionManager(
            idle_timeout=60, max_sessions=2, max_sessions_per_user=1, clock=clock
        )
        for user_id in ("alice-id", "bob-id", "carol-id"):
            await manager.get_or_create_user_session(user_id, "thread-id")
        await manager.get_or_create_user_session("carol-id", "second-thread-id")
        await manager.end_session("carol-id", "second-thread-id")
        clock.advance(61)
        await manager.cleanup_inactive_sessions()
        exported = manager.stats().as_dict()
        assert set(exported) == {
            "active",
            "created",
            "reused",
            "expired",
            "ended",
            "failed_creations",
            "in_flight",
            "websocket_managers",
            "evicted_capacity",
            "evicted_user_capacity",
        }
        assert not any("id" in str(value) for value in exported.values())
        assert exported["evicted_capacity"] == 1 and exported["evicted_user_capacity"] == 1

    asyncio.run(scenario())


class FlakyStore(InMemorySessionStore):
    def __init__(self) -> None:
        super().__init__()
        self.sweeps = 0

    async def sweep_expired(self, *, now: float, policy: SessionPolicy) -> list[SessionKey]:
        self.sweeps += 1
        if self.sweeps == 1:
            raise ConnectionError("store unreachable")
        return await super().sweep_expired(now=now, policy=policy)


def test_background_cleanup_survives_a_failing_sweep(caplog: pytest.LogCaptureFixture) -> None:
    async def scenario() -> None:
        clock = ManualClock()
        store = FlakyStore()
        manager = UserSessionManager(
            store=store, idle_timeout=60, cleanup_interval=10, clock=clock, sleep=clock.sleep
        )
        async with manager:
            await manager.get_or_create_user_session("u", "t")
            await yield_until(lambda: clock.sleep_calls == 1)
            clock.advance(61)
            await yield_until(lambda: clock.sleep_calls == 2)
            assert manager.stats().active == 1  # the failed sweep removed nothing
            clock.advance(10)
            await yield_until(lambda: clock.sleep_calls == 3)
            assert manager.stats().active == 0

    with caplog.at_level(logging.ERROR, logger="ctxmigrate.shim.manager"):
        asyncio.run(scenario())
    assert "session cleanup failed" in caplog.text
