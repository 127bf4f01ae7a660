"""The old API (get/save outside conversation()) never loses or duplicates an update.

Two managers on two stores stand for two workers sharing one Redis. These are
the interleavings of issue 9, items 1 and 2, that lost or duplicated messages.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from ctxmigrate.shim import (
    StateConflictError,
    UserSessionManager,
    WebSocketContextView,
)
from ctxmigrate.shim.redis_store import RedisSessionStore
from ctxmigrate.shim.store import SessionKey

from .conftest import RedisServer

pytestmark = pytest.mark.redis

KEY = SessionKey("alice", "t-1")


def two_workers(
    server: RedisServer,
    prefix: str,
    body: Callable[[UserSessionManager[Any], UserSessionManager[Any]], Awaitable[Any]],
) -> Any:
    async def main() -> Any:
        async with (
            RedisSessionStore(server.url, key_prefix=prefix) as first_store,
            RedisSessionStore(server.url, key_prefix=prefix) as second_store,
        ):
            return await body(
                UserSessionManager(store=first_store), UserSessionManager(store=second_store)
            )

    return asyncio.run(main())


async def stored_state(manager: UserSessionManager[Any]) -> tuple[dict[str, Any], int]:
    record = await manager.store.touch(KEY, now=manager._clock(), policy=manager.policy)
    assert record is not None
    return record.conversation_state, record.version


async def access_with(manager: UserSessionManager[Any], context: Any, accessor: str) -> None:
    if accessor == "get_or_create_user_session":
        assert await manager.get_or_create_user_session("alice", "t-1") is context
    elif accessor == "get_session":
        assert await manager.get_session("alice", "t-1") is context
    elif accessor == "touch_session":
        assert await manager.touch_session(context)
    else:
        view = WebSocketContextView(object(), "ws-1", context, manager=manager)
        assert await view.refresh_activity()


@pytest.mark.parametrize(
    "accessor",
    ["get_or_create_user_session", "get_session", "touch_session", "refresh_activity"],
)
def test_a_reload_never_overwrites_unsaved_changes_and_the_stale_save_raises(
    redis_server: RedisServer, key_prefix: str, accessor: str
) -> None:
    async def body(worker_a: UserSessionManager[Any], worker_b: UserSessionManager[Any]) -> None:
        context_a = await worker_a.get_or_create_user_session("alice", "t-1")
        context_b = await worker_b.get_or_create_user_session("alice", "t-1")
        # A appends and has not saved yet (the agent is thinking); B saves.
        context_a.conversation_state["messages"] = ["from A"]
        context_b.conversation_state["messages"] = ["from B"]
        await worker_b.save_conversation_state(context_b)
        # Any access on A's worker must not replace A's unsaved change.
        await access_with(worker_a, context_a, accessor)
        assert context_a.conversation_state == {"messages": ["from A"]}
        # A's save is stale: it raises, and the store keeps B's state.
        with pytest.raises(StateConflictError) as caught:
            await worker_a.save_conversation_state(context_a)
        assert caught.value.unsaved_state == {"messages": ["from A"]}
        assert await stored_state(worker_a) == ({"messages": ["from B"]}, 1)
        # Nothing of the rejected save stays in the live object.
        assert context_a.conversation_state == {}
        # The next access loads B's state; A re-applies its change and saves.
        assert await worker_a.get_or_create_user_session("alice", "t-1") is context_a
        assert context_a.conversation_state == {"messages": ["from B"]}
        context_a.conversation_state["messages"].append("from A")
        await worker_a.save_conversation_state(context_a)
        assert await stored_state(worker_b) == ({"messages": ["from B", "from A"]}, 2)

    two_workers(redis_server, key_prefix, body)


def test_a_clean_live_state_is_reloaded_from_the_other_workers_save(
    redis_server: RedisServer, key_prefix: str
) -> None:
    async def body(worker_a: UserSessionManager[Any], worker_b: UserSessionManager[Any]) -> None:
        context_a = await worker_a.get_or_create_user_session("alice", "t-1")
        context_b = await worker_b.get_or_create_user_session("alice", "t-1")
        context_b.conversation_state["topic"] = "invoices"
        await worker_b.save_conversation_state(context_b)
        assert await worker_a.get_or_create_user_session("alice", "t-1") is context_a
        assert context_a.conversation_state == {"topic": "invoices"}
        context_a.conversation_state["topic"] = "refunds"
        await worker_a.save_conversation_state(context_a)
        assert await stored_state(worker_a) == ({"topic": "refunds"}, 2)

    two_workers(redis_server, key_prefix, body)


def test_retries_after_conflicts_store_each_message_once(
    redis_server: RedisServer, key_prefix: str
) -> None:
    """Issue 9 item 2: a retry after StateConflictError appended again (11 -> 27 entries).

    The two workers race; each handles its messages one after another (handlers
    of one process that share the live object concurrently cannot be told
    apart: they use conversation(), see docs/shim.md).
    """

    async def body(worker_a: UserSessionManager[Any], worker_b: UserSessionManager[Any]) -> int:
        async def handle(manager: UserSessionManager[Any], number: int) -> int:
            conflicts = 0
            for _ in range(200):  # bounded: each retry follows another writer's success
                context = await manager.get_or_create_user_session("alice", "t-1")
                context.conversation_state.setdefault("messages", []).append(number)
                await asyncio.sleep(0.001)  # the agent thinks
                try:
                    await manager.save_conversation_state(context)
                    return conflicts
                except StateConflictError:
                    conflicts += 1
            raise AssertionError("never saved")

        async def worker(manager: UserSessionManager[Any], numbers: range) -> int:
            return sum([await handle(manager, number) for number in numbers])

        await worker_a.get_or_create_user_session("alice", "t-1")
        conflicts = await asyncio.gather(
            worker(worker_a, range(0, 11, 2)), worker(worker_b, range(1, 11, 2))
        )
        state, version = await stored_state(worker_a)
        assert sorted(state["messages"]) == list(range(11))
        assert version == 11
        return sum(conflicts)

    # The workers did interleave: some saves were rejected and retried.
    assert two_workers(redis_server, key_prefix, body) > 0


def test_a_rejected_save_changes_nothing_in_the_store(
    redis_server: RedisServer, key_prefix: str
) -> None:
    client = redis_server.client()

    async def body(worker_a: UserSessionManager[Any], worker_b: UserSessionManager[Any]) -> None:
        context_a = await worker_a.get_or_create_user_session("alice", "t-1")
        context_b = await worker_b.get_or_create_user_session("alice", "t-1")
        context_b.conversation_state["n"] = 1
        await worker_b.save_conversation_state(context_b)
        (session_key,) = client.scan_iter(match=f"{key_prefix}:s:*")
        before = client.get(session_key)
        context_a.conversation_state["n"] = 2
        with pytest.raises(StateConflictError):
            await worker_a.save_conversation_state(context_a)
        assert client.get(session_key) == before

    two_workers(redis_server, key_prefix, body)


def test_a_reload_replaces_the_whole_state_keys_removed_elsewhere_included(
    redis_server: RedisServer, key_prefix: str
) -> None:
    async def body(worker_a: UserSessionManager[Any], worker_b: UserSessionManager[Any]) -> None:
        context_a = await worker_a.get_or_create_user_session("alice", "t-1")
        context_a.conversation_state["draft"] = "x"
        await worker_a.save_conversation_state(context_a)
        context_b = await worker_b.get_or_create_user_session("alice", "t-1")
        del context_b.conversation_state["draft"]
        context_b.conversation_state["sent"] = "x"
        await worker_b.save_conversation_state(context_b)
        assert await worker_a.get_or_create_user_session("alice", "t-1") is context_a
        assert context_a.conversation_state == {"sent": "x"}

    two_workers(redis_server, key_prefix, body)
