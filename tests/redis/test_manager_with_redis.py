"""UserSessionManager on the Redis store: two managers stand for two worker processes."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from ctxmigrate.shim import UserExecutionContext, UserSessionManager
from ctxmigrate.shim.redis_store import RedisSessionStore
from ctxmigrate.shim.store import SessionKey, SessionPolicy, SessionRecord

from .conftest import RedisServer

pytestmark = pytest.mark.redis

# How long the server may take past a TTL to drop the key (it expires lazily on
# access and actively in a 10 Hz cycle): a bound on a broken server, not a timing.
EXPIRY_GRACE_SECONDS = 10.0


class AppContext:
    """An application's own context type, built by its own factory."""

    def __init__(self, user_id: str, thread_id: str, run_id: str) -> None:
        self.user_id = user_id
        self.thread_id = thread_id
        self.run_id = run_id
        self.conversation_state: dict[str, Any] = {}


def test_idle_session_expires_in_redis_by_the_servers_clock(
    redis_server: RedisServer, key_prefix: str
) -> None:
    """The one test that waits for a real TTL: Redis' clock cannot be injected."""
    policy = SessionPolicy(idle_timeout=1.0, max_sessions=None, max_sessions_per_user=None)
    key = SessionKey("alice", "thread-1")
    now = 1_700_000_000.0  # the manager's clock stands still: only Redis' TTL can expire it
    client = redis_server.client()

    async def create(store: RedisSessionStore) -> None:
        record = SessionRecord(key, "run-old", None, now, now)
        await store.get_or_create(record, now=now, policy=policy)

    async def after_expiry(store: RedisSessionStore) -> tuple[object, str]:
        touched = await store.touch(key, now=now, policy=policy)
        outcome = await store.get_or_create(
            SessionRecord(key, "run-new", None, now, now), now=now, policy=policy
        )
        return touched, outcome.record.run_id

    async def with_store(body: Any) -> Any:
        async with RedisSessionStore(redis_server.url, key_prefix=key_prefix) as store:
            return await body(store)

    asyncio.run(with_store(create))
    assert 0 < client.pttl(f"{key_prefix}:s:alice:thread-1") <= 1000
    deadline = time.monotonic() + 1.0 + EXPIRY_GRACE_SECONDS
    # Every key, indexes included, goes by itself: nothing is left behind.
    while list(client.scan_iter(match=f"{key_prefix}:*")):
        assert time.monotonic() < deadline, "Redis did not expire the session keys"
        time.sleep(0.05)
    assert asyncio.run(with_store(after_expiry)) == (None, "run-new")


def test_second_worker_rebuilds_the_context_from_the_record_with_the_apps_factory(
    redis_server: RedisServer, key_prefix: str
) -> None:
    async def scenario() -> None:
        async with RedisSessionStore(redis_server.url, key_prefix=key_prefix) as store:
            worker_a = UserSessionManager(factory=AppContext, store=store)
            worker_b = UserSessionManager(factory=AppContext, store=store)
            context_a = await worker_a.get_or_create_user_session("alice", "thread-1")
            context_a.conversation_state["topic"] = "invoices"
            await worker_a.save_conversation_state(context_a)

            context_b = await worker_b.get_or_create_user_session("alice", "thread-1")
            assert isinstance(context_b, AppContext)
            assert context_b is not context_a
            assert context_b.run_id == context_a.run_id
            assert context_b.conversation_state == {"topic": "invoices"}
            # Within a worker, the same object every time.
            assert await worker_b.get_or_create_user_session("alice", "thread-1") is context_b
            assert (worker_a.stats().created, worker_b.stats().created) == (1, 0)

    asyncio.run(scenario())


def test_session_ended_by_one_worker_is_gone_for_the_other(
    redis_server: RedisServer, key_prefix: str
) -> None:
    async def scenario() -> None:
        async with RedisSessionStore(redis_server.url, key_prefix=key_prefix) as store:
            worker_a = UserSessionManager(store=store)
            worker_b = UserSessionManager(store=store)
            context_a = await worker_a.get_or_create_user_session("alice", "thread-1")
            context_b = await worker_b.get_or_create_user_session("alice", "thread-1")
            assert await worker_a.end_session("alice", "thread-1")
            assert await worker_b.get_session("alice", "thread-1") is None
            fresh = await worker_b.get_or_create_user_session("alice", "thread-1")
            assert fresh is not context_b and fresh.run_id != context_a.run_id

    asyncio.run(scenario())


def test_default_context_keeps_its_state_and_timestamps_across_workers(
    redis_server: RedisServer, key_prefix: str
) -> None:
    clock = iter([1_700_000_000.0 + step for step in range(100)])

    async def scenario() -> None:
        async with RedisSessionStore(redis_server.url, key_prefix=key_prefix) as store:
            worker_a = UserSessionManager(store=store, clock=lambda: next(clock))
            worker_b = UserSessionManager(store=store, clock=lambda: next(clock))
            context_a = await worker_a.get_or_create_user_session(
                "alice", "thread-1", websocket_connection_id="ws-1"
            )
            context_a.conversation_state["turns"] = [{"role": "user", "text": "hi"}]
            await worker_a.save_conversation_state(context_a)
            context_b = await worker_b.get_or_create_user_session("alice", "thread-1")
            assert isinstance(context_b, UserExecutionContext)
            assert context_b.conversation_state == {"turns": [{"role": "user", "text": "hi"}]}
            assert context_b.websocket_connection_id == "ws-1"
            assert context_b.created_at == context_a.created_at
            assert context_b.last_activity > context_a.created_at

    asyncio.run(scenario())


def test_live_context_sees_state_saved_by_another_worker(
    redis_server: RedisServer, key_prefix: str
) -> None:
    async def scenario() -> None:
        async with RedisSessionStore(redis_server.url, key_prefix=key_prefix) as store:
            worker_a = UserSessionManager(store=store)
            worker_b = UserSessionManager(store=store)
            context_a = await worker_a.get_or_create_user_session("alice", "thread-1")
            context_b = await worker_b.get_or_create_user_session("alice", "thread-1")
            context_b.conversation_state["from_b"] = True
            await worker_b.save_conversation_state(context_b)
            again_a = await worker_a.get_or_create_user_session("alice", "thread-1")
            assert again_a is context_a
            assert again_a.conversation_state == {"from_b": True}

    asyncio.run(scenario())


@pytest.mark.parametrize("shape", ["self-list", "tuple"])
def test_saving_state_json_cannot_keep_raises_and_writes_nothing(
    redis_server: RedisServer, key_prefix: str, shape: str
) -> None:
    from ctxmigrate.shim.redis_store import RecordEncodingError

    async def scenario() -> None:
        async with RedisSessionStore(redis_server.url, key_prefix=key_prefix) as store:
            manager = UserSessionManager(store=store)
            context = await manager.get_or_create_user_session("alice", "thread-1")
            if shape == "self-list":
                history: list[object] = []
                history.append(history)
                context.conversation_state["history"] = history
            else:
                context.conversation_state["pair"] = (1, 2)
            with pytest.raises(RecordEncodingError):
                await manager.save_conversation_state(context)
            other = UserSessionManager(store=store)
            seen = await other.get_or_create_user_session("alice", "thread-1")
            assert seen.conversation_state == {}
            assert manager.owns(context)  # a refused save does not end the session

    asyncio.run(scenario())
