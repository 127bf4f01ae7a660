"""get_or_create_user_session: one context per (user_id, thread_id) conversation."""

from __future__ import annotations

import asyncio

import pytest

from ctxmigrate.shim import UserExecutionContext, UserSessionManager
from ctxmigrate.shim.testing import ManualClock

from .support import AppContext


def test_acceptance_same_thread_same_context_other_thread_different() -> None:
    """The user's statement of the bug, as a test."""

    async def scenario() -> None:
        manager = UserSessionManager()
        context1 = await manager.get_or_create_user_session("user-1", "thread-1", run_id="run-a")
        context2 = await manager.get_or_create_user_session("user-1", "thread-1", run_id="run-b")
        assert context1 is context2
        assert context1.run_id == context2.run_id == "run-a"
        context3 = await manager.get_or_create_user_session("user-1", "thread-2")
        assert context3 is not context1
        assert context3.thread_id == "thread-2" != context1.thread_id

    asyncio.run(scenario())


def test_run_id_of_existing_session_is_not_replaced() -> None:
    async def scenario() -> None:
        manager = UserSessionManager()
        first = await manager.get_or_create_user_session("u", "t", run_id="run-1")
        again = await manager.get_or_create_user_session("u", "t", run_id="run-2")
        assert again.run_id == "run-1"
        assert again is first

    asyncio.run(scenario())


def test_run_id_is_generated_when_not_given() -> None:
    async def scenario() -> None:
        manager = UserSessionManager()
        context = await manager.get_or_create_user_session("u", "t")
        assert context.run_id.startswith("run_")

    asyncio.run(scenario())


def test_thread_id_none_starts_a_new_conversation_each_time() -> None:
    async def scenario() -> None:
        manager = UserSessionManager()
        first = await manager.get_or_create_user_session("u")
        second = await manager.get_or_create_user_session("u")
        assert first is not second
        assert first.thread_id != second.thread_id
        assert first.thread_id.startswith("thread_")
        assert await manager.get_or_create_user_session("u", first.thread_id) is first

    asyncio.run(scenario())


def test_default_context_carries_ids_and_timestamps() -> None:
    async def scenario() -> None:
        clock = ManualClock(start=1_000.0)
        manager = UserSessionManager(clock=clock)
        context = await manager.get_or_create_user_session(
            "u", "t", run_id="r", websocket_connection_id="ws-1"
        )
        assert isinstance(context, UserExecutionContext)
        assert (context.user_id, context.thread_id, context.run_id) == ("u", "t", "r")
        assert context.websocket_connection_id == "ws-1"
        assert context.created_at.timestamp() == 1_000.0
        assert context.conversation_state == {}

    asyncio.run(scenario())


def test_every_access_refreshes_the_context_last_activity() -> None:
    async def scenario() -> None:
        clock = ManualClock(start=1_000.0)
        manager = UserSessionManager(clock=clock)
        context = await manager.get_or_create_user_session("u", "t")
        clock.advance(5)
        await manager.get_or_create_user_session("u", "t")
        assert context.last_activity.timestamp() == 1_005.0
        assert context.created_at.timestamp() == 1_000.0

    asyncio.run(scenario())


def test_application_sync_factory_keeps_its_own_context_class() -> None:
    calls: list[dict[str, object]] = []

    def create_app_context(**ids: str) -> AppContext:
        calls.append(ids)
        return AppContext(**ids)

    async def scenario() -> None:
        manager = UserSessionManager(factory=create_app_context)
        context = await manager.get_or_create_user_session(
            "u", "t", run_id="r", websocket_connection_id="ws"
        )
        assert isinstance(context, AppContext)
        assert await manager.get_or_create_user_session("u", "t") is context

    asyncio.run(scenario())
    assert calls == [
        {"user_id": "u", "thread_id": "t", "run_id": "r", "websocket_connection_id": "ws"}
    ]


def test_application_async_factory_is_awaited() -> None:
    async def create_app_context(user_id: str, thread_id: str, run_id: str) -> AppContext:
        await asyncio.sleep(0)
        return AppContext(user_id, thread_id, run_id)

    async def scenario() -> None:
        manager = UserSessionManager(factory=create_app_context)
        context = await manager.get_or_create_user_session("u", "t", run_id="r")
        assert isinstance(context, AppContext)
        assert context.run_id == "r"

    asyncio.run(scenario())


def test_extra_keyword_arguments_reach_the_factory_on_creation() -> None:
    async def scenario() -> None:
        manager = UserSessionManager(factory=AppContext)
        context = await manager.get_or_create_user_session("u", "t", db_session="db-1")
        assert context.db_session == "db-1"

    asyncio.run(scenario())


def test_default_context_rejects_extra_keyword_arguments_clearly() -> None:
    async def scenario() -> None:
        manager = UserSessionManager()
        with pytest.raises(TypeError, match="db_session"):
            await manager.get_or_create_user_session("u", "t", db_session="db-1")
        assert manager.stats().active == 0

    asyncio.run(scenario())


def test_application_context_update_activity_is_called_on_reuse() -> None:
    async def scenario() -> None:
        manager = UserSessionManager(factory=AppContext)
        context = await manager.get_or_create_user_session("u", "t")
        await manager.get_or_create_user_session("u", "t")
        await manager.get_or_create_user_session("u", "t")
        assert context.activity_updates == 2

    asyncio.run(scenario())


def test_manager_works_from_several_event_loops_in_turn() -> None:
    manager = UserSessionManager()

    async def get() -> UserExecutionContext:
        return await manager.get_or_create_user_session("u", "t")

    first = asyncio.run(get())
    assert asyncio.run(get()) is first
    assert asyncio.run(get()) is first


def test_lookup_only_get_session_never_creates() -> None:
    async def scenario() -> None:
        manager = UserSessionManager()
        assert await manager.get_session("u", "t") is None
        assert manager.stats().active == 0
        assert len(manager.store) == 0  # type: ignore[arg-type]
        created = await manager.get_or_create_user_session("u", "t")
        assert await manager.get_session("u", "t") is created

    asyncio.run(scenario())


def test_stats_count_created_and_reused() -> None:
    async def scenario() -> None:
        manager = UserSessionManager()
        await manager.get_or_create_user_session("u", "t1")
        await manager.get_or_create_user_session("u", "t1")
        await manager.get_or_create_user_session("u", "t1")
        await manager.get_or_create_user_session("u", "t2")
        stats = manager.stats()
        assert (stats.active, stats.created, stats.reused) == (2, 2, 2)
        assert stats.in_flight == 0

    asyncio.run(scenario())
