"""Behaviours of the manager, single-flight and validation that mutation testing found unpinned.

Each test names the behaviour it pins (issue 9, "Tests that pin the manager down").
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from ctxmigrate.shim import (
    InMemorySessionStore,
    InvalidSessionIdError,
    SessionKey,
    UserSessionManager,
)
from ctxmigrate.shim.single_flight import SingleFlight
from ctxmigrate.shim.validation import validate_id

from .support import AppContext, GatedAsyncFactory, GatedStore, yield_until

KEY = SessionKey("alice", "t-1")
NOW = 1_700_000_000.0


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> float:
        return self.now


class SweepReportingStore(InMemorySessionStore):
    """An in-memory store whose sweep also reports (and removes) chosen keys, as a
    shared store reports records that expired by its own clock or another process's."""

    def __init__(self) -> None:
        super().__init__()
        self.report: list[SessionKey] = []

    async def sweep_expired(self, *, now: float, policy: Any) -> list[SessionKey]:
        swept = self.sweep_expired_now(now, policy)
        for key in self.report:
            self.delete_now(key)
        return [*swept, *self.report]


@pytest.mark.parametrize("interval", [0, -1, 0.0, float("nan")])
def test_cleanup_interval_must_be_positive(interval: float) -> None:
    with pytest.raises(ValueError, match="cleanup_interval must be positive"):
        UserSessionManager(cleanup_interval=interval)


def test_cleanup_returns_keys_the_store_swept_that_this_process_does_not_hold() -> None:
    async def main() -> None:
        store = SweepReportingStore()
        manager = UserSessionManager(store=store)
        context = await manager.get_or_create_user_session("alice", "t-1")
        elsewhere = SessionKey("bob", "t-9")
        store.report = [elsewhere]
        assert await manager.cleanup_inactive_sessions() == [elsewhere]
        # Not one of this process's sessions: nothing dropped, nothing counted.
        stats = manager.stats()
        assert (stats.active, stats.expired) == (1, 0)
        assert await manager.get_session("alice", "t-1") is context

    asyncio.run(main())


def test_cleanup_drops_a_live_context_whose_record_the_store_swept() -> None:
    async def main() -> None:
        store = SweepReportingStore()
        manager = UserSessionManager(store=store)
        await manager.get_or_create_user_session("alice", "t-1")
        # Recently active by this process's clock, but the store removed its record.
        store.report = [KEY]
        assert await manager.cleanup_inactive_sessions() == [KEY]
        stats = manager.stats()
        assert (stats.active, stats.expired) == (0, 1)

    asyncio.run(main())


def test_cleanup_during_a_build_marks_it_so_the_context_is_not_registered() -> None:
    async def main() -> None:
        store = SweepReportingStore()
        factory = GatedAsyncFactory()
        manager = UserSessionManager(factory=factory, store=store)
        task = asyncio.create_task(manager.get_or_create_user_session("alice", "t-1"))
        await yield_until(lambda: factory.calls == 1)
        store.report = [KEY]
        assert await manager.cleanup_inactive_sessions() == [KEY]
        assert manager.stats().expired == 0  # counted when the build completes
        factory.open()
        context = await task
        assert isinstance(context, AppContext)  # the caller gets what it asked for
        stats = manager.stats()
        assert (stats.active, stats.created, stats.expired) == (0, 1, 1)
        assert manager._building == {}

    asyncio.run(main())


def test_reused_is_counted_on_the_sync_path() -> None:
    manager = UserSessionManager()
    first = manager.get_or_create_user_session_sync("alice", "t-1")
    assert manager.get_or_create_user_session_sync("alice", "t-1") is first
    assert manager.get_or_create_user_session_sync("alice", "t-1") is first
    assert (manager.stats().created, manager.stats().reused) == (1, 2)


def test_reused_is_counted_on_the_async_only_store_path() -> None:
    async def main() -> None:
        manager = UserSessionManager(store=GatedStore())  # type: ignore[arg-type]
        first = await manager.get_or_create_user_session("alice", "t-1")
        assert await manager.get_or_create_user_session("alice", "t-1") is first
        assert (manager.stats().created, manager.stats().reused) == (1, 1)

    asyncio.run(main())


def test_reused_is_counted_on_the_slow_path_of_a_str_subclass_id() -> None:
    class UserId(str):
        pass

    async def main() -> None:
        manager = UserSessionManager()
        first = await manager.get_or_create_user_session("alice", "t-1")
        assert await manager.get_or_create_user_session(UserId("alice"), "t-1") is first
        assert (manager.stats().created, manager.stats().reused) == (1, 1)

    asyncio.run(main())


def test_mark_active_on_a_context_no_longer_live_is_false_and_changes_nothing() -> None:
    async def main() -> None:
        clock = Clock()
        manager = UserSessionManager(clock=clock)
        context = await manager.get_or_create_user_session("alice", "t-1")
        await manager.end_session("alice", "t-1")
        clock.now += 5
        assert manager.mark_active(context) is False
        assert context.last_activity_timestamp == NOW
        assert manager.stats().active == 0
        assert len(manager.store) == 0  # type: ignore[arg-type]

    asyncio.run(main())


def test_mark_active_with_an_async_only_store_refreshes_only_this_process() -> None:
    async def main() -> None:
        clock = Clock()
        store = GatedStore()
        manager = UserSessionManager(store=store, clock=clock)  # type: ignore[arg-type]
        context = await manager.get_or_create_user_session("alice", "t-1")
        clock.now += 5
        assert manager.mark_active(context) is True
        assert context.last_activity_timestamp == NOW + 5
        assert store.calls.get("touch", 0) == 0

    asyncio.run(main())


def test_reuse_rechecks_the_entry_after_awaiting_the_store() -> None:
    """A touch answered with the record as it was before an end_session that ran
    meanwhile must not hand out the dropped context."""

    async def main() -> None:
        store = GatedStore()
        manager = UserSessionManager(store=store)  # type: ignore[arg-type]
        context = await manager.get_or_create_user_session("alice", "t-1")
        store.hold("touch")
        lookup = asyncio.create_task(manager.get_session("alice", "t-1"))
        await yield_until(lambda: store.calls.get("touch", 0) == 1)
        assert await manager.end_session("alice", "t-1") is True
        store.release("touch")
        found = await lookup
        assert found is not context
        assert found is None
        assert manager.stats().active == 0

    asyncio.run(main())


def test_get_session_building_from_a_shared_record_counts_reuse_not_creation() -> None:
    async def main() -> None:
        store = InMemorySessionStore()
        creator = UserSessionManager(store=store, factory=AppContext)
        other = UserSessionManager(store=store, factory=AppContext)
        await creator.get_or_create_user_session("alice", "t-1")
        context = await other.get_session("alice", "t-1")
        assert isinstance(context, AppContext)
        assert (other.stats().created, other.stats().reused) == (0, 1)

    asyncio.run(main())


def test_a_failing_factory_in_get_session_never_deletes_the_shared_record() -> None:
    def failing(**ids: Any) -> Any:
        raise RuntimeError("factory failed")

    async def main() -> None:
        store = InMemorySessionStore()
        creator = UserSessionManager(store=store)
        other = UserSessionManager(store=store, factory=failing)
        await creator.get_or_create_user_session("alice", "t-1")
        with pytest.raises(RuntimeError, match="factory failed"):
            await other.get_session("alice", "t-1")
        with pytest.raises(RuntimeError, match="factory failed"):
            await other.get_or_create_user_session("alice", "t-1")
        assert KEY in store
        assert other.stats().failed_creations == 2
        assert other._building == {}

    asyncio.run(main())


def test_the_building_entry_is_removed_after_success_failure_and_lookup_misses() -> None:
    async def main() -> None:
        factory = GatedAsyncFactory()
        manager = UserSessionManager(factory=factory)
        task = asyncio.create_task(manager.get_or_create_user_session("alice", "t-1"))
        await yield_until(lambda: factory.calls == 1)
        assert list(manager._building) == [KEY]
        factory.open()
        await task
        assert manager._building == {}
        assert await manager.get_session("bob", "t-2") is None
        assert manager._building == {}
        failing = UserSessionManager(factory=GatedAsyncFactory(fail_with=RuntimeError("no")))
        failing._factory.gate = asyncio.Event()  # type: ignore[union-attr]
        failing._factory.open()  # type: ignore[union-attr]
        with pytest.raises(RuntimeError):
            await failing.get_or_create_user_session("alice", "t-1")
        assert failing._building == {}

    asyncio.run(main())


def test_cancel_all_waits_for_flights_to_unwind_and_nobody_joins_them() -> None:
    async def main() -> None:
        flights: SingleFlight[str, str] = SingleFlight()
        unwound: list[str] = []
        started = asyncio.Event()

        async def work() -> str:
            started.set()
            try:
                await asyncio.Event().wait()
            finally:
                # Unwinding takes a few loop turns (an async cleanup).
                for _ in range(3):
                    await asyncio.sleep(0)
                unwound.append("first")
            return "never"  # pragma: no cover

        caller = asyncio.create_task(flights.run("k", work))
        await started.wait()
        cancelling = asyncio.create_task(flights.cancel_all())
        await asyncio.sleep(0)
        # A caller arriving while the cancelled flight unwinds does not join it
        # (it would get a cancellation it did not ask for): it runs fresh work.
        later = asyncio.create_task(flights.run("k", _value("fresh")))
        await cancelling
        assert unwound == ["first"]  # cancel_all returned only after the unwinding
        assert await later == "fresh"
        with pytest.raises(asyncio.CancelledError):
            await caller
        assert len(flights) == 0

    asyncio.run(main())


def _value(value: str) -> Any:
    async def work() -> str:
        return value

    return work


@pytest.mark.parametrize(
    ("value", "position", "category"),
    [("ab\x00", 2, "Cc"), ("\u202eabc", 0, "Cf"), ("a b\u2028c", 3, "Zl"), ("x\x7f", 1, "Cc")],
)
def test_the_id_error_names_the_position_and_category(
    value: str, position: int, category: str
) -> None:
    with pytest.raises(InvalidSessionIdError) as caught:
        validate_id(value, "thread_id")
    message = str(caught.value)
    assert f"at position {position})" in message
    assert f"category {category}" in message
    assert caught.value.field == "thread_id"
    assert message.startswith("thread_id ")


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("", "must not be empty"),
        ("a" * 257, "at most 256 characters, got 257"),
        (7, "must be a str, not int"),
    ],
)
def test_the_id_error_says_what_is_wrong(value: object, problem: str) -> None:
    with pytest.raises(InvalidSessionIdError, match=problem):
        validate_id(value, "user_id")


def test_an_id_of_exactly_the_maximum_length_is_accepted() -> None:
    assert validate_id("a" * 256, "user_id") == "a" * 256


def test_a_str_subclass_id_is_reduced_to_a_plain_str() -> None:
    class Sneaky(str):
        def __eq__(self, other: object) -> bool:
            return True

        __hash__ = str.__hash__

    result = validate_id(Sneaky("alice"), "user_id")
    assert type(result) is str
    assert result == "alice"


def test_the_sync_path_drops_the_live_contexts_its_creation_evicted() -> None:
    manager = UserSessionManager(max_sessions_per_user=1)
    first = manager.get_or_create_user_session_sync("alice", "t-1")
    manager.get_or_create_user_session_sync("alice", "t-2")
    stats = manager.stats()
    assert (stats.active, stats.evicted["user_capacity"]) == (1, 1)
    assert not manager.owns(first)


def test_entering_a_conversation_counts_as_activity_for_cleanup() -> None:
    async def main() -> None:
        clock = Clock()
        manager = UserSessionManager(clock=clock, idle_timeout=60)
        context = await manager.get_or_create_user_session("alice", "t-1")
        clock.now += 50
        async with manager.conversation("alice", "t-1"):
            pass  # nothing changed: nothing saved, but the session was used
        clock.now += 20  # 70 s after creation, 20 s after the conversation
        assert await manager.cleanup_inactive_sessions() == []
        assert manager.owns(context)

    asyncio.run(main())


class NoSweepStore(GatedStore):
    """Like Redis: expiry is the server's business, the sweep reports nothing."""

    async def sweep_expired(self, *, now: float, policy: Any) -> Any:
        return []


def test_mark_active_with_an_async_only_store_keeps_the_session_from_local_cleanup() -> None:
    async def main() -> None:
        clock = Clock()
        manager = UserSessionManager(store=NoSweepStore(), clock=clock, idle_timeout=60)  # type: ignore[arg-type]
        context = await manager.get_or_create_user_session("alice", "t-1")
        clock.now += 50
        assert manager.mark_active(context) is True
        clock.now += 20
        assert await manager.cleanup_inactive_sessions() == []
        assert manager.owns(context)
        clock.now += 60
        assert await manager.cleanup_inactive_sessions() == [KEY]

    asyncio.run(main())


def test_a_save_that_finds_the_session_gone_drops_the_live_context() -> None:
    from ctxmigrate.shim import SessionEndedError

    async def main() -> None:
        store = InMemorySessionStore()
        worker_a = UserSessionManager(store=store, factory=AppContext)
        worker_b = UserSessionManager(store=store, factory=AppContext)
        context = await worker_a.get_or_create_user_session("alice", "t-1")
        await worker_b.get_or_create_user_session("alice", "t-1")
        assert await worker_b.end_session("alice", "t-1") is True  # ended elsewhere
        with pytest.raises(SessionEndedError, match="not saved"):
            await worker_a.save_conversation_state(context)
        assert not worker_a.owns(context)
        stats = worker_a.stats()
        assert (stats.active, stats.ended) == (0, 1)
        assert KEY not in store

    asyncio.run(main())


def test_a_save_counts_as_activity_for_local_cleanup() -> None:
    async def main() -> None:
        clock = Clock()
        manager = UserSessionManager(store=NoSweepStore(), clock=clock, idle_timeout=60)  # type: ignore[arg-type]
        context = await manager.get_or_create_user_session("alice", "t-1")
        clock.now += 50
        context.conversation_state["n"] = 1
        await manager.save_conversation_state(context)
        clock.now += 20
        assert await manager.cleanup_inactive_sessions() == []
        assert manager.owns(context)

    asyncio.run(main())


def test_the_slow_path_creates_again_when_the_live_session_was_ended_elsewhere() -> None:
    class UserId(str):
        pass

    async def main() -> None:
        store = InMemorySessionStore()
        worker_a = UserSessionManager(store=store)
        worker_b = UserSessionManager(store=store)
        old = await worker_a.get_or_create_user_session("alice", "t-1")
        await worker_b.end_session("alice", "t-1")
        fresh = await worker_a.get_or_create_user_session(UserId("alice"), "t-1")
        assert fresh is not None
        assert fresh is not old
        assert worker_a.owns(fresh)
        assert (worker_a.stats().created, worker_a.stats().ended) == (2, 1)

    asyncio.run(main())
