"""measured_store around the real Redis store: latency and errors by operation."""

from __future__ import annotations

import asyncio

import pytest

from ctxmigrate.shim import UserSessionManager
from ctxmigrate.shim.redis_store import RedisSessionStore, SessionStoreUnavailableError
from ctxmigrate.shim.store_metrics import measured_store

from .conftest import RedisServer

pytestmark = pytest.mark.redis


def test_calls_are_timed_and_a_dead_server_counts_as_errors(
    restartable_redis: RedisServer, key_prefix: str
) -> None:
    async def scenario() -> None:
        store = measured_store(RedisSessionStore(restartable_redis.url, key_prefix=key_prefix))
        manager = UserSessionManager(store=store)
        try:
            first = await manager.get_or_create_user_session("u", "t")
            assert await manager.get_or_create_user_session("u", "t") is first
            numbers = store.metrics.snapshot()
            assert numbers["get_or_create"].count == 1
            assert numbers["touch"].count == 1
            assert numbers["get_or_create"].seconds > 0
            assert numbers["get_or_create"].errors == 0
            restartable_redis.kill()
            with pytest.raises(SessionStoreUnavailableError):
                await manager.get_or_create_user_session("u", "other-thread")
            numbers = store.metrics.snapshot()
            assert numbers["get_or_create"].errors == 1
            assert numbers["get_or_create"].count == 2
        finally:
            await store.aclose()

    asyncio.run(scenario())
