"""The WebSocketContext view and adapter, and one websocket manager per session."""

from __future__ import annotations

import asyncio
import enum
import gc
import weakref
from typing import Any

import pytest

from ctxmigrate.shim import (
    ConfigurationError,
    UserExecutionContext,
    UserSessionManager,
    WebSocketContextView,
    configure,
    get_manager_for_context,
    get_or_create_user_session,
    session_websocket_context,
    to_user_execution_context,
    unbound_websocket_manager_count,
)
from ctxmigrate.shim.testing import ManualClock


class WebSocketState(enum.Enum):
    """Starlette's enum, reproduced so the tests need no web framework."""

    CONNECTING = 0
    CONNECTED = 1
    DISCONNECTED = 2


class FakeWebSocket:
    def __init__(self, state: WebSocketState = WebSocketState.CONNECTED) -> None:
        self.client_state = state


class LegacyWebSocketContext:
    """The attributes of the legacy websocket_core WebSocketContext."""

    def __init__(self, user_id: str, thread_id: str, run_id: str, connection_id: str) -> None:
        self.websocket = FakeWebSocket()
        self.user_id = user_id
        self.thread_id = thread_id
        self.run_id = run_id
        self.connection_id = connection_id


class WebSocketManager:
    def __init__(self, context: Any) -> None:
        self.context = context


def test_session_websocket_context_is_a_view_of_the_session() -> None:
    async def scenario() -> None:
        websocket = FakeWebSocket()
        view = await session_websocket_context(
            websocket=websocket, user_id="u", thread_id="t", run_id="r", connection_id="ws-1"
        )
        assert isinstance(view, WebSocketContextView)
        session = await get_or_create_user_session("u", "t")
        assert view.context is session
        assert (view.user_id, view.thread_id, view.run_id) == ("u", "t", "r")
        assert view.websocket is websocket and view.connection_id == "ws-1"

    asyncio.run(scenario())


def test_two_messages_get_views_over_one_context() -> None:
    async def scenario() -> None:
        first = await session_websocket_context(FakeWebSocket(), "u", "t", connection_id="a")
        second = await session_websocket_context(FakeWebSocket(), "u", "t", connection_id="b")
        assert first.context is second.context
        assert second.run_id == first.run_id
        assert (first.connection_id, second.connection_id) == ("a", "b")

    asyncio.run(scenario())


def test_view_generates_a_connection_id_when_none_is_given() -> None:
    async def scenario() -> None:
        view = await session_websocket_context(FakeWebSocket(), "u", "t")
        assert view.connection_id.startswith("ws_")

    asyncio.run(scenario())


def test_to_user_execution_context_returns_the_session_of_a_legacy_context() -> None:
    async def scenario() -> None:
        session = await get_or_create_user_session("u", "t", run_id="run-1")
        legacy = LegacyWebSocketContext("u", "t", "run-other", "ws-1")
        assert await to_user_execution_context(legacy) is session

    asyncio.run(scenario())


def test_to_user_execution_context_of_a_view_is_its_context() -> None:
    async def scenario() -> None:
        view = await session_websocket_context(FakeWebSocket(), "u", "t")
        assert await to_user_execution_context(view) is view.context

    asyncio.run(scenario())


def test_view_uses_the_given_manager() -> None:
    async def scenario() -> None:
        manager = UserSessionManager()
        view = await session_websocket_context(FakeWebSocket(), "u", "t", manager=manager)
        assert await manager.get_session("u", "t") is view.context

    asyncio.run(scenario())


def test_view_is_active_only_while_the_websocket_is_connected() -> None:
    context = UserExecutionContext("u", "t", "r")
    assert WebSocketContextView(FakeWebSocket(), "c", context).is_active
    closed = WebSocketContextView(FakeWebSocket(WebSocketState.DISCONNECTED), "c", context)
    assert not closed.is_active
    assert not WebSocketContextView(object(), "c", context).is_active


def test_validate_for_message_processing() -> None:
    context = UserExecutionContext("u", "t", "r")
    assert WebSocketContextView(FakeWebSocket(), "c", context).validate_for_message_processing()
    closed = WebSocketContextView(FakeWebSocket(WebSocketState.DISCONNECTED), "c", context)
    with pytest.raises(ValueError, match="not active"):
        closed.validate_for_message_processing()


def test_view_update_activity_updates_the_session_context() -> None:
    context = UserExecutionContext("u", "t", "r", created_at=1_000.0)
    view = WebSocketContextView(FakeWebSocket(), "c", context)
    view.update_activity()
    assert context.last_activity_timestamp > 1_000.0
    assert view.last_activity == context.last_activity


def test_connection_info_has_the_legacy_keys() -> None:
    view = WebSocketContextView(FakeWebSocket(), "c", UserExecutionContext("u", "t", "r"))
    info = view.get_connection_info()
    assert set(info) == {
        "connection_id",
        "user_id",
        "thread_id",
        "run_id",
        "connected_at",
        "last_activity",
        "is_active",
        "client_state",
    }
    assert info["client_state"] == "CONNECTED" and info["is_active"] is True


def test_isolation_keys_do_not_collide_on_separators() -> None:
    def key(user_id: str, thread_id: str, run_id: str) -> str:
        context = UserExecutionContext(user_id, thread_id, run_id)
        return WebSocketContextView(FakeWebSocket(), "c", context).to_isolation_key()

    assert key("a_b", "c", "r") != key("a", "b_c", "r")
    assert key("a", "b", "c_d") != key("a", "b_c", "d")
    assert key("a", "b", "r") == key("a", "b", "r")


def test_one_websocket_manager_per_session() -> None:
    created: list[WebSocketManager] = []

    def create_websocket_manager(context: Any) -> WebSocketManager:
        created.append(WebSocketManager(context))
        return created[-1]

    async def scenario() -> None:
        first = await get_or_create_user_session("u", "t")
        other = await get_or_create_user_session("u", "other-thread")
        managers = [
            get_manager_for_context(first, factory=create_websocket_manager) for _ in range(3)
        ]
        assert all(manager is managers[0] for manager in managers)
        assert get_manager_for_context(other, factory=create_websocket_manager) is not managers[0]
        assert len(created) == 2

    asyncio.run(scenario())


def test_websocket_manager_factory_from_configure() -> None:
    configure(manager_factory=WebSocketManager)

    async def scenario() -> None:
        context = await get_or_create_user_session("u", "t")
        assert get_manager_for_context(context) is get_manager_for_context(context)

    asyncio.run(scenario())


def test_missing_websocket_manager_factory_is_a_clear_error() -> None:
    async def scenario() -> None:
        context = await get_or_create_user_session("u", "t")
        with pytest.raises(ConfigurationError, match="manager_factory"):
            get_manager_for_context(context)

    asyncio.run(scenario())


def test_websocket_manager_is_dropped_when_the_session_ends() -> None:
    async def scenario() -> weakref.ref[WebSocketManager]:
        manager = UserSessionManager()
        configure(manager)
        context = await get_or_create_user_session("u", "t")
        websocket_manager = get_manager_for_context(context, factory=WebSocketManager)
        assert manager.stats().websocket_managers == 1
        await manager.end_session("u", "t")
        assert manager.stats().websocket_managers == 0
        return weakref.ref(websocket_manager)

    dropped = asyncio.run(scenario())
    gc.collect()
    assert dropped() is None


def test_websocket_manager_is_dropped_when_the_session_expires() -> None:
    async def scenario() -> weakref.ref[WebSocketManager]:
        clock = ManualClock()
        manager = UserSessionManager(idle_timeout=60, clock=clock)
        configure(manager)
        context = await get_or_create_user_session("u", "t")
        websocket_manager = get_manager_for_context(context, factory=WebSocketManager)
        del context
        clock.advance(60)
        await manager.cleanup_inactive_sessions()
        return weakref.ref(websocket_manager)

    dropped = asyncio.run(scenario())
    gc.collect()
    assert dropped() is None


def test_new_session_after_end_gets_a_new_websocket_manager() -> None:
    async def scenario() -> None:
        manager = UserSessionManager()
        configure(manager)
        old = get_manager_for_context(
            await get_or_create_user_session("u", "t"), factory=WebSocketManager
        )
        await manager.end_session("u", "t")
        new = get_manager_for_context(
            await get_or_create_user_session("u", "t"), factory=WebSocketManager
        )
        assert new is not old

    asyncio.run(scenario())


def test_context_outside_any_session_gets_a_fresh_manager_and_is_counted() -> None:
    legacy_context = UserExecutionContext("u", "t", "r")
    first = get_manager_for_context(legacy_context, factory=WebSocketManager)
    second = get_manager_for_context(legacy_context, factory=WebSocketManager)
    assert first is not second
    assert unbound_websocket_manager_count() == 2


def test_session_of_an_unconfigured_manager_is_found_too() -> None:
    async def scenario() -> None:
        own_manager = UserSessionManager()
        context = await own_manager.get_or_create_user_session("u", "t")
        first = get_manager_for_context(context, factory=WebSocketManager)
        assert get_manager_for_context(context, factory=WebSocketManager) is first
        assert unbound_websocket_manager_count() == 0

    asyncio.run(scenario())


def test_async_websocket_manager_factory_is_rejected() -> None:
    async def create_websocket_manager(context: Any) -> WebSocketManager:
        return WebSocketManager(context)

    async def scenario() -> None:
        context = await get_or_create_user_session("u", "t")
        with pytest.raises(TypeError, match="synchronous"):
            get_manager_for_context(context, factory=create_websocket_manager)

    asyncio.run(scenario())


def test_view_update_activity_keeps_the_session_alive() -> None:
    async def scenario() -> None:
        clock = ManualClock()
        manager = UserSessionManager(clock=clock, idle_timeout=60)
        view = await session_websocket_context(
            FakeWebSocket(), "alice", "t1", connection_id="c1", manager=manager
        )
        for _ in range(5):  # heartbeats only, 150 s in all
            clock.advance(30)
            view.update_activity()
        assert await manager.cleanup_inactive_sessions() == []
        assert await manager.get_session("alice", "t1") is view.context
        assert view.context.last_activity_timestamp == clock.now

    asyncio.run(scenario())


def test_view_update_activity_finds_the_owning_manager_and_refresh_reaches_the_store() -> None:
    async def scenario() -> None:
        from .support import GatedStore

        clock, store = ManualClock(), GatedStore()
        manager = UserSessionManager(store=store, clock=clock, idle_timeout=60)
        context = await manager.get_or_create_user_session("alice", "t1")
        view = WebSocketContextView(FakeWebSocket(), "c1", context)  # no manager given
        clock.advance(50)
        view.update_activity()  # async-only store: this process's idle timer only
        assert await manager.cleanup_inactive_sessions() == []
        assert await view.refresh_activity()  # awaited: the stored record too
        clock.advance(50)
        assert await manager.get_session("alice", "t1") is context
        await manager.end_session("alice", "t1")
        assert not await view.refresh_activity()

    asyncio.run(scenario())
