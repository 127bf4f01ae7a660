"""manager.conversation() on the Redis store: leases across managers and processes.

Two managers on two stores (two connection pools) stand for two worker
processes; tests/redis/test_processes.py runs real OS processes.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from ctxmigrate.shim import (
    ConversationBusyError,
    LeaseLostError,
    StateConflictError,
    UserSessionManager,
    get_manager_for_context,
    session_websocket_context,
)
from ctxmigrate.shim.lease import ConversationStore
from ctxmigrate.shim.redis_store import RedisSessionStore, lease_key, waiting_line_key
from ctxmigrate.shim.store import SessionKey

from .conftest import RedisServer
from .round_trips import count_round_trips

pytestmark = pytest.mark.redis

KEY = SessionKey("alice", "t-1")


class AppContext:
    def __init__(self, user_id: str, thread_id: str, run_id: str, **_: Any) -> None:
        self.user_id = user_id
        self.thread_id = thread_id
        self.run_id = run_id
        self.conversation_state: dict[str, Any] = {}


def with_stores(
    server: RedisServer, prefix: str, count: int, body: Callable[..., Awaitable[Any]]
) -> Any:
    async def main() -> Any:
        stores = [RedisSessionStore(server.url, key_prefix=prefix) for _ in range(count)]
        try:
            return await body(*stores)
        finally:
            for store in stores:
                await store.aclose()

    return asyncio.run(main())


def lease_leftovers(server: RedisServer, prefix: str) -> list[bytes]:
    client = server.client()
    return sorted(
        key
        for pattern in (f"{prefix}:l:*", f"{prefix}:q:*", f"{prefix}:w:*")
        for key in client.scan_iter(match=pattern)
    )


async def in_line(client: Any, line: str, count: int) -> None:
    """Wait until ``count`` waiters are in ``line``, polling every millisecond
    for 30 s at most: a deadline rather than a count of polls, which a loaded
    machine can use up before the waiters' tasks have run."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if client.zcard(line) == count:
            return
        await asyncio.sleep(0.001)
    assert client.zcard(line) == count


def test_redis_store_is_a_conversation_store(redis_server: RedisServer, key_prefix: str) -> None:
    async def body(store: RedisSessionStore) -> None:
        assert isinstance(store, ConversationStore)

    with_stores(redis_server, key_prefix, 1, body)


def test_state_saved_by_one_worker_is_loaded_by_the_next(
    redis_server: RedisServer, key_prefix: str
) -> None:
    async def body(first_store: RedisSessionStore, second_store: RedisSessionStore) -> None:
        first = UserSessionManager(store=first_store)
        second = UserSessionManager(store=second_store)
        async with first.conversation("alice", "t-1", run_id="run-1") as context:
            assert context.run_id == "run-1"
            context.conversation_state["notes"] = ["one"]
        async with second.conversation("alice", "t-1", run_id="run-2") as other:
            assert other.run_id == "run-1"
            assert other.conversation_state == {"notes": ["one"]}
            other.conversation_state["notes"].append("two")
        async with first.conversation("alice", "t-1") as again:
            assert again is context
            assert again.conversation_state == {"notes": ["one", "two"]}
        record = await first_store.touch(KEY, now=first._clock(), policy=first.policy)
        assert record is not None
        assert record.version == 2

    with_stores(redis_server, key_prefix, 2, body)
    assert lease_leftovers(redis_server, key_prefix) == []


def test_burst_of_20_messages_across_two_workers_stores_each_exactly_once(
    redis_server: RedisServer, key_prefix: str
) -> None:
    async def body(first_store: RedisSessionStore, second_store: RedisSessionStore) -> list[int]:
        workers = [
            UserSessionManager(store=first_store, factory=AppContext, conversation_wait=60),
            UserSessionManager(store=second_store, factory=AppContext, conversation_wait=60),
        ]

        async def message(number: int) -> None:
            manager = workers[number % 2]
            async with manager.conversation("alice", "t-1") as context:
                seen = list(context.conversation_state.get("messages", []))
                await asyncio.sleep(0.005)  # the agent thinks between read and write
                context.conversation_state["messages"] = [*seen, number]

        await asyncio.gather(*(message(number) for number in range(20)))
        record = await first_store.touch(KEY, now=workers[0]._clock(), policy=workers[0].policy)
        assert record is not None
        assert record.version == 20
        return list(record.conversation_state["messages"])

    messages = with_stores(redis_server, key_prefix, 2, body)
    assert sorted(messages) == list(range(20))
    assert lease_leftovers(redis_server, key_prefix) == []


def test_an_exception_saves_nothing_and_releases_the_lease(
    redis_server: RedisServer, key_prefix: str
) -> None:
    async def body(store: RedisSessionStore) -> None:
        manager = UserSessionManager(store=store, conversation_wait=0)
        async with manager.conversation("alice", "t-1") as context:
            context.conversation_state["kept"] = True
        with pytest.raises(KeyError):
            async with manager.conversation("alice", "t-1") as context:
                context.conversation_state["lost"] = True
                raise KeyError("agent failed")
        assert context.conversation_state == {"kept": True}
        async with manager.conversation("alice", "t-1") as context:
            assert context.conversation_state == {"kept": True}
        record = await store.touch(KEY, now=manager._clock(), policy=manager.policy)
        assert record is not None
        assert record.conversation_state == {"kept": True}
        assert record.version == 1

    with_stores(redis_server, key_prefix, 1, body)
    assert lease_leftovers(redis_server, key_prefix) == []


def test_a_busy_conversation_gives_up_after_the_wait_and_leaves_the_line(
    redis_server: RedisServer, key_prefix: str
) -> None:
    client = redis_server.client()

    async def body(first_store: RedisSessionStore, second_store: RedisSessionStore) -> None:
        holder = UserSessionManager(store=first_store)
        waiter = UserSessionManager(store=second_store, conversation_wait=0.05)
        async with holder.conversation("alice", "t-1") as context:
            context.conversation_state["n"] = 1
            with pytest.raises(ConversationBusyError, match="busy"):
                async with waiter.conversation("alice", "t-1"):
                    raise AssertionError("entered a held conversation")  # pragma: no cover
            assert client.zcard(waiting_line_key(key_prefix, KEY)) == 0
            # Other conversations do not wait for this one.
            async with waiter.conversation("alice", "t-2"):
                pass
            async with waiter.conversation("bob", "t-1"):
                pass
        async with waiter.conversation("alice", "t-1") as seen:
            assert seen.conversation_state == {"n": 1}

    with_stores(redis_server, key_prefix, 2, body)
    assert lease_leftovers(redis_server, key_prefix) == []


def test_waiters_of_several_workers_are_served_in_arrival_order(
    redis_server: RedisServer, key_prefix: str
) -> None:
    client = redis_server.client()
    line = waiting_line_key(key_prefix, KEY)

    async def body(*stores: RedisSessionStore) -> list[str]:
        managers = [UserSessionManager(store=store, conversation_wait=60) for store in stores]
        order: list[str] = []
        release = asyncio.Event()
        inside = asyncio.Event()

        async def message(name: str, manager: UserSessionManager[Any]) -> None:
            async with manager.conversation("alice", "t-1"):
                order.append(name)
                inside.set()
                if name == "holder":
                    await release.wait()

        tasks = [asyncio.create_task(message("holder", managers[0]))]
        await inside.wait()
        for number in range(1, 4):
            tasks.append(asyncio.create_task(message(f"waiter-{number}", managers[number])))
            # Each waiter is in line after its first poll.
            await in_line(client, line, number)
        release.set()
        await asyncio.gather(*tasks)
        return order

    order = with_stores(redis_server, key_prefix, 4, body)
    assert order == ["holder", "waiter-1", "waiter-2", "waiter-3"]
    assert lease_leftovers(redis_server, key_prefix) == []


def test_a_holder_whose_lease_was_lost_cannot_write(
    redis_server: RedisServer, key_prefix: str
) -> None:
    client = redis_server.client()

    async def body(first_store: RedisSessionStore, second_store: RedisSessionStore) -> None:
        stalled = UserSessionManager(store=first_store, factory=AppContext)
        other = UserSessionManager(store=second_store, factory=AppContext)
        with pytest.raises(LeaseLostError, match="not saved"):
            async with stalled.conversation("alice", "t-1") as context:
                context.conversation_state["from"] = "stalled"
                # The lease expires while this holder is stalled (as after a
                # long pause): another holder gets in and saves.
                assert client.delete(lease_key(key_prefix, KEY)) == 1
                async with other.conversation("alice", "t-1") as winner:
                    winner.conversation_state["from"] = "winner"
        assert context.conversation_state == {}
        record = await second_store.touch(KEY, now=other._clock(), policy=other.policy)
        assert record is not None
        assert record.conversation_state == {"from": "winner"}
        # The next block of the stalled worker continues from the stored state.
        async with stalled.conversation("alice", "t-1") as again:
            assert again.conversation_state == {"from": "winner"}

    with_stores(redis_server, key_prefix, 2, body)
    assert lease_leftovers(redis_server, key_prefix) == []


def test_the_lease_is_renewed_while_the_block_runs(
    redis_server: RedisServer, key_prefix: str
) -> None:
    async def body(store: RedisSessionStore) -> None:
        manager = UserSessionManager(store=store, conversation_lease_ttl=0.15)
        async with manager.conversation("alice", "t-1") as context:
            context.conversation_state["long"] = "answer"
            await asyncio.sleep(0.6)  # four lease lifetimes: only renewal keeps it
        async with manager.conversation("alice", "t-1") as again:
            assert again.conversation_state == {"long": "answer"}

    with_stores(redis_server, key_prefix, 1, body)


def test_a_save_conflict_on_exit_raises_and_keeps_the_other_writers_state(
    redis_server: RedisServer, key_prefix: str
) -> None:
    async def body(first_store: RedisSessionStore, second_store: RedisSessionStore) -> None:
        first = UserSessionManager(store=first_store, factory=AppContext)
        second = UserSessionManager(store=second_store, factory=AppContext)
        context = await second.get_or_create_user_session("alice", "t-1")
        with pytest.raises(StateConflictError) as caught:
            async with first.conversation("alice", "t-1") as held:
                held.conversation_state["from"] = "first"
                # A writer that does not take the lease (the old API) saves meanwhile.
                context.conversation_state["from"] = "second"
                await second.save_conversation_state(context)
        assert caught.value.unsaved_state == {"from": "first"}
        assert held.conversation_state == {}
        record = await first_store.touch(KEY, now=first._clock(), policy=first.policy)
        assert record is not None
        assert record.conversation_state == {"from": "second"}
        async with first.conversation("alice", "t-1") as again:
            assert again.conversation_state == {"from": "second"}

    with_stores(redis_server, key_prefix, 2, body)
    assert lease_leftovers(redis_server, key_prefix) == []


def test_a_cancelled_waiter_leaves_the_line(redis_server: RedisServer, key_prefix: str) -> None:
    client = redis_server.client()
    line = waiting_line_key(key_prefix, KEY)

    async def body(first_store: RedisSessionStore, second_store: RedisSessionStore) -> None:
        holder = UserSessionManager(store=first_store)
        waiter = UserSessionManager(store=second_store, conversation_wait=60)

        async def wait_for_it() -> None:
            async with waiter.conversation("alice", "t-1"):
                raise AssertionError("entered a held conversation")  # pragma: no cover

        async with holder.conversation("alice", "t-1"):
            task = asyncio.create_task(wait_for_it())
            await in_line(client, line, 1)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            assert client.zcard(line) == 0

    with_stores(redis_server, key_prefix, 2, body)
    assert lease_leftovers(redis_server, key_prefix) == []


def test_round_trips_per_message_counted_by_the_server(
    redis_server: RedisServer, key_prefix: str
) -> None:
    """<= 2 commands per message through conversation() (here: exactly 2), 1 per
    get_or_create_user_session hit, 0 for the websocket view and manager inside."""

    async def body(store: RedisSessionStore) -> None:
        manager = UserSessionManager(store=store)
        # Warm up: scripts loaded, pool connections open, session created.
        async with manager.conversation("alice", "t-1"):
            pass
        await manager.get_or_create_user_session("alice", "t-1")

        with count_round_trips(str(redis_server.socket_path)) as trips:
            for number in range(10):
                async with manager.conversation("alice", "t-1") as context:
                    view = await session_websocket_context(
                        object(), "alice", "t-1", manager=manager
                    )
                    assert view.context is context
                    assert get_manager_for_context(context, lambda c: object()) is not None
                    context.conversation_state["n"] = number
        assert trips.commands == ["EVALSHA"] * 20

        with count_round_trips(str(redis_server.socket_path)) as trips:
            for _ in range(10):
                await manager.get_or_create_user_session("alice", "t-1")
        assert trips.commands == ["EVALSHA"] * 10

        with count_round_trips(str(redis_server.socket_path)) as trips:
            async with manager.conversation("alice", "t-1"):
                pass  # nothing changed: released without a save, still one call
        assert trips.commands == ["EVALSHA"] * 2

    with_stores(redis_server, key_prefix, 1, body)


def test_entering_with_unsaved_changes_made_outside_is_refused_until_resolved(
    redis_server: RedisServer, key_prefix: str
) -> None:
    async def body(first_store: RedisSessionStore, second_store: RedisSessionStore) -> None:
        worker_a = UserSessionManager(store=first_store)
        worker_b = UserSessionManager(store=second_store)
        context = await worker_a.get_or_create_user_session("alice", "t-1")
        context.conversation_state["draft"] = "unsaved"  # old-API code, not saved yet
        async with worker_b.conversation("alice", "t-1") as other:
            other.conversation_state["from"] = "b"
        with pytest.raises(StateConflictError, match="unsaved changes"):
            async with worker_a.conversation("alice", "t-1"):
                raise AssertionError("entered over unsaved changes")  # pragma: no cover
        # Nothing was overwritten silently, and the lease was released.
        assert context.conversation_state == {"draft": "unsaved"}
        assert lease_leftovers(redis_server, key_prefix) == []
        assert await worker_a.reload_conversation_state(context) is True
        assert context.conversation_state == {"from": "b"}
        async with worker_a.conversation("alice", "t-1") as held:
            assert held is context

    with_stores(redis_server, key_prefix, 2, body)


def test_a_context_class_without_conversation_state_keeps_state_across_workers(
    redis_server: RedisServer, key_prefix: str
) -> None:
    class LegacyContext:  # the application's class: ids only
        def __init__(self, user_id: str, thread_id: str, run_id: str) -> None:
            self.user_id = user_id
            self.thread_id = thread_id
            self.run_id = run_id

    async def body(first_store: RedisSessionStore, second_store: RedisSessionStore) -> None:
        first = UserSessionManager(store=first_store, factory=LegacyContext)
        second = UserSessionManager(store=second_store, factory=LegacyContext)
        async with first.conversation("alice", "t-1") as context:
            assert isinstance(context, LegacyContext)
            context.conversation_state["topic"] = "invoices"  # type: ignore[attr-defined]
        async with second.conversation("alice", "t-1") as other:
            assert isinstance(other, LegacyContext)
            assert other.conversation_state == {"topic": "invoices"}  # type: ignore[attr-defined]
        # The old API too (this failed with AttributeError before).
        legacy = await second.get_or_create_user_session("alice", "t-1")
        legacy.conversation_state["n"] = 1  # type: ignore[attr-defined]
        await second.save_conversation_state(legacy)

    with_stores(redis_server, key_prefix, 2, body)


def test_a_state_that_is_not_json_is_refused_on_exit_and_the_lease_released(
    redis_server: RedisServer, key_prefix: str
) -> None:
    from ctxmigrate.shim.redis_store import RecordEncodingError

    async def body(store: RedisSessionStore) -> None:
        manager = UserSessionManager(store=store)
        with pytest.raises(RecordEncodingError):
            async with manager.conversation("alice", "t-1") as context:
                context.conversation_state["when"] = object()
        assert context.conversation_state == {}
        assert lease_leftovers(redis_server, key_prefix) == []

    with_stores(redis_server, key_prefix, 1, body)


def test_busy_error_is_a_timeout_and_a_session_error() -> None:
    from ctxmigrate.shim import SessionError

    assert issubclass(ConversationBusyError, TimeoutError)
    assert issubclass(ConversationBusyError, SessionError)
    assert issubclass(LeaseLostError, SessionError)


def test_a_session_re_created_elsewhere_replaces_the_stale_live_context(
    redis_server: RedisServer, key_prefix: str
) -> None:
    async def body(first_store: RedisSessionStore, second_store: RedisSessionStore) -> None:
        worker_a = UserSessionManager(store=first_store)
        worker_b = UserSessionManager(store=second_store)
        async with worker_a.conversation("alice", "t-1", run_id="run-old") as old:
            old.conversation_state["n"] = 1
        # Worker B ends the session and starts the conversation again.
        assert await worker_b.end_session("alice", "t-1") is True
        async with worker_b.conversation("alice", "t-1", run_id="run-new") as fresh:
            fresh.conversation_state["m"] = 2
        async with worker_a.conversation("alice", "t-1") as context:
            assert context is not old
            assert context.run_id == "run-new"
            assert context.conversation_state == {"m": 2}
        stats = worker_a.stats()
        assert (stats.active, stats.created, stats.ended) == (1, 1, 1)

    with_stores(redis_server, key_prefix, 2, body)
