"""manager.conversation(): the unit of work of a message handler, with the in-memory store."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from ctxmigrate.shim import (
    ConversationBusyError,
    InMemorySessionStore,
    SessionKey,
    UserExecutionContext,
    UserSessionManager,
    session_websocket_context,
)
from ctxmigrate.shim.lease import ConversationStore, FifoLeases, LeaseTerms

from .support import AppContext, yield_until

KEY = SessionKey("alice", "t-1")


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def test_in_memory_store_is_a_conversation_store() -> None:
    assert isinstance(InMemorySessionStore(), ConversationStore)


def test_a_changed_state_is_saved_on_normal_exit() -> None:
    async def main() -> None:
        store = InMemorySessionStore()
        manager = UserSessionManager(store=store)
        async with manager.conversation("alice", "t-1") as context:
            assert isinstance(context, UserExecutionContext)
            context.conversation_state["notes"] = ["one"]
        record = store.peek(KEY)
        assert record is not None
        assert record.conversation_state == {"notes": ["one"]}
        assert record.version == 1
        async with manager.conversation("alice", "t-1") as again:
            assert again is context
            assert again.conversation_state == {"notes": ["one"]}
        # Unchanged: nothing saved, the version stays.
        assert store.peek(KEY).version == 1  # type: ignore[union-attr]
        assert manager.stats().created == 1
        assert manager.stats().reused == 1

    run(main())


def test_an_exception_saves_nothing_and_puts_the_stored_state_back() -> None:
    async def main() -> None:
        store = InMemorySessionStore()
        manager = UserSessionManager(store=store)
        async with manager.conversation("alice", "t-1") as context:
            context.conversation_state["notes"] = ["kept"]
        with pytest.raises(ZeroDivisionError):
            async with manager.conversation("alice", "t-1") as context:
                context.conversation_state["notes"].append("lost")
                context.conversation_state["other"] = 1
                raise ZeroDivisionError
        assert context.conversation_state == {"notes": ["kept"]}
        assert store.peek(KEY).conversation_state == {"notes": ["kept"]}  # type: ignore[union-attr]
        assert store.peek(KEY).version == 1  # type: ignore[union-attr]
        # The lease was released: the next message gets in at once.
        manager_wait0 = UserSessionManager(store=store, conversation_wait=0)
        async with manager_wait0.conversation("alice", "t-1"):
            pass

    run(main())


def test_a_busy_conversation_raises_after_the_wait_and_changes_nothing() -> None:
    async def main() -> None:
        store = InMemorySessionStore()
        manager = UserSessionManager(store=store, conversation_wait=0)
        inside, leave = asyncio.Event(), asyncio.Event()

        async def holder() -> None:
            async with manager.conversation("alice", "t-1") as context:
                context.conversation_state["n"] = 1
                inside.set()
                await leave.wait()

        task = asyncio.create_task(holder())
        await inside.wait()
        with pytest.raises(ConversationBusyError, match="busy"):
            async with manager.conversation("alice", "t-1"):
                raise AssertionError("entered a held conversation")  # pragma: no cover
        # Another conversation of the same user, and another user, do not wait.
        async with manager.conversation("alice", "t-2") as other:
            other.conversation_state["m"] = 2
        async with manager.conversation("bob", "t-1"):
            pass
        leave.set()
        await task
        assert store.peek(KEY).conversation_state == {"n": 1}  # type: ignore[union-attr]
        assert store._leases.holder(KEY) is None

    run(main())


def test_a_task_started_inside_the_block_that_outlives_it_uses_the_store_again() -> None:
    async def main() -> None:
        store = CountingStore()
        manager = UserSessionManager(store=store)
        manager._sync_store = None
        after_block = asyncio.Event()

        async def background() -> Any:
            await after_block.wait()
            return await manager.get_or_create_user_session("alice", "t-1")

        async with manager.conversation("alice", "t-1") as context:
            task = asyncio.create_task(background())
        after_block.set()
        assert await task is context
        assert store.calls == ["acquire", "release", "touch"]

    run(main())


def test_concurrent_messages_of_one_conversation_store_every_update_once() -> None:
    async def main() -> None:
        store = InMemorySessionStore()
        manager = UserSessionManager(store=store)

        async def message(number: int) -> None:
            async with manager.conversation("alice", "t-1") as context:
                seen = list(context.conversation_state.get("messages", []))
                for _ in range(3):
                    await asyncio.sleep(0)  # the agent thinks; others try to get in
                context.conversation_state["messages"] = [*seen, number]

        await asyncio.gather(*(message(number) for number in range(20)))
        record = store.peek(KEY)
        assert record is not None
        assert sorted(record.conversation_state["messages"]) == list(range(20))
        assert record.version == 20

    run(main())


def test_waiters_enter_in_arrival_order_and_a_newcomer_does_not_overtake() -> None:
    async def main() -> None:
        manager = UserSessionManager()
        order: list[str] = []
        release = asyncio.Event()

        async def message(name: str, hold: asyncio.Event | None = None) -> None:
            async with manager.conversation("alice", "t-1"):
                order.append(name)
                if hold is not None:
                    await hold.wait()

        first = asyncio.create_task(message("first", release))
        await yield_until(lambda: order == ["first"])
        leases: FifoLeases = manager._conversation_gates
        waiters = []
        for name in ("second", "third", "fourth"):
            waiters.append(asyncio.create_task(message(name)))
            await yield_until(lambda: leases.waiting(KEY) == len(waiters))
        release.set()
        # A newcomer arriving as the holder leaves queues behind the waiters.
        newcomer = asyncio.create_task(message("newcomer"))
        await asyncio.gather(first, *waiters, newcomer)
        assert order == ["first", "second", "third", "fourth", "newcomer"]
        assert len(manager.store._leases) == len(manager._conversation_gates) == 0  # type: ignore[attr-defined]

    run(main())


def test_a_cancelled_waiter_leaves_no_trace_and_the_next_one_is_served() -> None:
    async def main() -> None:
        manager = UserSessionManager()
        leases: FifoLeases = manager._conversation_gates
        entered: list[int] = []
        release = asyncio.Event()

        async def message(number: int, hold: asyncio.Event | None = None) -> None:
            async with manager.conversation("alice", "t-1"):
                entered.append(number)
                if hold is not None:
                    await hold.wait()

        holder = asyncio.create_task(message(0, release))
        await yield_until(lambda: entered == [0])
        cancelled = asyncio.create_task(message(1))
        served = asyncio.create_task(message(2))
        await yield_until(lambda: leases.waiting(KEY) == 2)
        cancelled.cancel()
        with pytest.raises(asyncio.CancelledError):
            await cancelled
        assert leases.waiting(KEY) == 1
        release.set()
        await asyncio.gather(holder, served)
        assert entered == [0, 2]
        assert len(leases) == 0

    run(main())


def test_cancelling_the_holder_releases_the_lease_without_saving() -> None:
    async def main() -> None:
        store = InMemorySessionStore()
        manager = UserSessionManager(store=store)
        inside = asyncio.Event()

        async def message() -> None:
            async with manager.conversation("alice", "t-1") as context:
                context.conversation_state["half"] = "done"
                inside.set()
                await asyncio.Event().wait()

        task = asyncio.create_task(message())
        await inside.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert store._leases.holder(KEY) is None
        assert store.peek(KEY).conversation_state == {}  # type: ignore[union-attr]
        assert store.peek(KEY).version == 0  # type: ignore[union-attr]

    run(main())


class CountingStore(InMemorySessionStore):
    def __init__(self) -> None:
        super().__init__()
        self.calls: list[str] = []

    async def touch(self, key: Any, **kwargs: Any) -> Any:
        self.calls.append("touch")
        return await super().touch(key, **kwargs)

    async def acquire_conversation(self, candidate: Any, **kwargs: Any) -> Any:
        self.calls.append("acquire")
        return await super().acquire_conversation(candidate, **kwargs)

    async def release_conversation(self, *args: Any, **kwargs: Any) -> Any:
        self.calls.append("release")
        return await super().release_conversation(*args, **kwargs)


def test_inside_the_block_the_session_is_answered_without_a_store_call() -> None:
    async def main() -> None:
        store = CountingStore()
        manager = UserSessionManager(store=store)
        # Not the sync fast path: the counting store must see every touch.
        manager._sync_store = None
        async with manager.conversation("alice", "t-1") as context:
            assert await manager.get_or_create_user_session("alice", "t-1") is context
            view = await session_websocket_context(object(), "alice", "t-1", manager=manager)
            assert view.context is context
        assert store.calls == ["acquire", "release"]
        # Outside the block the old API touches the store as before.
        assert await manager.get_or_create_user_session("alice", "t-1") is context
        assert store.calls == ["acquire", "release", "touch"]

    run(main())


def test_conversation_is_not_reentrant() -> None:
    async def main() -> None:
        manager = UserSessionManager()
        async with manager.conversation("alice", "t-1"):
            with pytest.raises(RuntimeError, match="not re-entrant"):
                async with manager.conversation("alice", "t-1"):
                    pass  # pragma: no cover
        # The refused inner call did not release the outer lease early, nor leak.
        assert len(manager.store._leases) == len(manager._conversation_gates) == 0  # type: ignore[attr-defined]

    run(main())


def test_a_store_without_leases_is_refused_with_the_fix() -> None:
    class PlainStore:
        pass

    async def main() -> None:
        manager = UserSessionManager(store=PlainStore())  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="does not support conversation"):
            async with manager.conversation("alice", "t-1"):
                pass  # pragma: no cover

    run(main())


def test_ids_are_validated_before_anything_is_held() -> None:
    async def main() -> None:
        manager = UserSessionManager()
        with pytest.raises(ValueError, match="user_id"):
            async with manager.conversation("", "t-1"):
                pass  # pragma: no cover
        assert len(manager.store._leases) == len(manager._conversation_gates) == 0  # type: ignore[attr-defined]

    run(main())


@pytest.mark.parametrize(("ttl", "wait"), [(0, 1), (-1, 1), (1, -0.5), (float("nan"), 1)])
def test_lease_terms_are_validated(ttl: float, wait: float) -> None:
    with pytest.raises(ValueError, match="conversation_"):
        UserSessionManager(conversation_lease_ttl=ttl, conversation_wait=wait)
    with pytest.raises(ValueError):
        LeaseTerms(ttl=ttl, wait=wait)


def test_a_context_class_without_conversation_state_gets_one() -> None:
    async def main() -> None:
        store = InMemorySessionStore()
        manager = UserSessionManager(factory=AppContext, store=store)
        async with manager.conversation("alice", "t-1") as context:
            assert isinstance(context, AppContext)
            context.conversation_state["topic"] = "invoices"  # type: ignore[attr-defined]
        assert store.peek(KEY).conversation_state == {"topic": "invoices"}  # type: ignore[union-attr]
        # A second manager on the same store builds its own context from the record.
        other = UserSessionManager(factory=AppContext, store=store)
        async with other.conversation("alice", "t-1") as rebuilt:
            assert rebuilt is not context
            assert rebuilt.conversation_state == {"topic": "invoices"}  # type: ignore[attr-defined]

    run(main())


class SlottedContext:
    __slots__ = ("run_id", "thread_id", "user_id")

    def __init__(self, user_id: str, thread_id: str, run_id: str) -> None:
        self.user_id = user_id
        self.thread_id = thread_id
        self.run_id = run_id


def test_a_context_class_that_refuses_the_attribute_gets_an_error_naming_the_fix() -> None:
    async def main() -> None:
        manager = UserSessionManager(factory=SlottedContext)
        # The old API keeps working for such a class (no state involved).
        context = await manager.get_or_create_user_session("alice", "t-9")
        assert isinstance(context, SlottedContext)
        with pytest.raises(TypeError, match="add a 'conversation_state' slot"):
            async with manager.conversation("alice", "t-1"):
                pass  # pragma: no cover
        with pytest.raises(TypeError, match="add a 'conversation_state' slot"):
            await manager.save_conversation_state(context)
        # The refused conversation left nothing held.
        assert len(manager.store._leases) == len(manager._conversation_gates) == 0  # type: ignore[attr-defined]

    run(main())


def test_a_failing_factory_inside_conversation_leaves_no_record_and_no_lease() -> None:
    def failing(**ids: Any) -> Any:
        raise RuntimeError("factory failed")

    async def main() -> None:
        store = InMemorySessionStore()
        manager = UserSessionManager(factory=failing, store=store)
        with pytest.raises(RuntimeError, match="factory failed"):
            async with manager.conversation("alice", "t-1"):
                pass  # pragma: no cover
        assert KEY not in store
        assert store._leases.holder(KEY) is None
        assert manager.stats().failed_creations == 1

    run(main())


def test_a_session_ended_during_the_block_is_not_resurrected_by_its_save() -> None:
    from ctxmigrate.shim import SessionEndedError

    async def main() -> None:
        store = InMemorySessionStore()
        manager = UserSessionManager(store=store)
        with pytest.raises(SessionEndedError, match="not saved"):
            async with manager.conversation("alice", "t-1") as context:
                context.conversation_state["late"] = True
                assert await manager.end_session("alice", "t-1") is True
        assert KEY not in store
        assert store._leases.holder(KEY) is None
        assert manager.stats().active == 0

    run(main())


class SlowReleaseStore(InMemorySessionStore):
    """Releases wait for the test's gate, as a network store's reply would."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = asyncio.Event()
        self.releasing = 0

    async def release_conversation(self, *args: Any, **kwargs: Any) -> Any:
        self.releasing += 1
        await self.gate.wait()
        return await super().release_conversation(*args, **kwargs)


def test_a_cancellation_during_the_release_sees_the_save_through_then_raises() -> None:
    async def main() -> None:
        store = SlowReleaseStore()
        manager = UserSessionManager(store=store)

        async def message() -> None:
            async with manager.conversation("alice", "t-1") as context:
                context.conversation_state["n"] = 1

        task = asyncio.create_task(message())
        await yield_until(lambda: store.releasing == 1)
        task.cancel()
        await yield_until(lambda: True, max_iterations=1)
        store.gate.set()
        with pytest.raises(asyncio.CancelledError):
            await task
        record = store.peek(KEY)
        assert record is not None
        assert (record.conversation_state, record.version) == ({"n": 1}, 1)
        assert store._leases.holder(KEY) is None
        # The live entry knows the save happened: the next block enters cleanly.
        async with manager.conversation("alice", "t-1") as context:
            assert context.conversation_state == {"n": 1}
        assert store.peek(KEY).version == 1  # type: ignore[union-attr]

    run(main())


class FailingReleaseStore(InMemorySessionStore):
    async def release_conversation(self, *args: Any, **kwargs: Any) -> Any:
        raise ConnectionError("store unreachable")


def test_a_failing_release_never_hides_the_blocks_own_exception() -> None:
    async def main() -> None:
        manager = UserSessionManager(store=FailingReleaseStore())
        with pytest.raises(ValueError, match="agent failed"):
            async with manager.conversation("alice", "t-1"):
                raise ValueError("agent failed")

    run(main())


def test_a_failing_release_on_normal_exit_raises_and_forgets_the_version() -> None:
    async def main() -> None:
        store = FailingReleaseStore()
        manager = UserSessionManager(store=store)
        with pytest.raises(ConnectionError):
            async with manager.conversation("alice", "t-1") as context:
                context.conversation_state["n"] = 1
        # Not known to be saved: the live state is put back, and the next access
        # reloads whatever the store holds.
        assert context.conversation_state == {}
        assert manager._live[KEY].version == -1

    run(main())


class FailingSaveStore(InMemorySessionStore):
    def __init__(self) -> None:
        super().__init__()
        self.fail = False

    async def save_state(self, *args: Any, **kwargs: Any) -> Any:
        if self.fail:
            raise ConnectionError("reply lost")
        return await super().save_state(*args, **kwargs)


def test_an_old_api_save_that_fails_puts_the_state_back_and_reloads_next_time() -> None:
    async def main() -> None:
        store = FailingSaveStore()
        manager = UserSessionManager(store=store, factory=AppContext)
        context = await manager.get_or_create_user_session("alice", "t-1")
        context.conversation_state["n"] = 1  # type: ignore[attr-defined]
        await manager.save_conversation_state(context)
        context.conversation_state["n"] = 2  # type: ignore[attr-defined]
        store.fail = True
        with pytest.raises(ConnectionError):
            await manager.save_conversation_state(context)
        assert context.conversation_state == {"n": 1}  # type: ignore[attr-defined]
        assert manager._live[KEY].version == -1
        store.fail = False
        assert await manager.get_or_create_user_session("alice", "t-1") is context
        assert manager._live[KEY].version == 1

    run(main())


def test_reload_conversation_state_of_a_context_that_is_not_live_is_false() -> None:
    async def main() -> None:
        manager = UserSessionManager()
        context = await manager.get_or_create_user_session("alice", "t-1")
        await manager.end_session("alice", "t-1")
        assert await manager.reload_conversation_state(context) is False

    run(main())


def test_conversation_through_a_measured_store_times_the_lease_calls() -> None:
    from ctxmigrate.shim.store_metrics import measured_store

    async def main() -> None:
        store = measured_store(InMemorySessionStore())
        manager = UserSessionManager(store=store)
        for number in range(3):
            async with manager.conversation("alice", "t-1") as context:
                context.conversation_state["n"] = number
        stats = store.metrics.snapshot()
        assert stats["acquire_conversation"].count == 3
        assert stats["release_conversation"].count == 3
        assert stats["acquire_conversation"].errors == 0
        assert store.wrapped.peek(KEY).conversation_state == {"n": 2}  # type: ignore[attr-defined]

    run(main())


def test_a_conversation_that_creates_at_the_cap_drops_the_evicted_live_context() -> None:
    async def main() -> None:
        manager = UserSessionManager(max_sessions_per_user=1)
        async with manager.conversation("alice", "t-1") as first:
            pass
        async with manager.conversation("alice", "t-2"):
            pass
        stats = manager.stats()
        assert (stats.active, stats.created, stats.evicted["user_capacity"]) == (1, 2, 1)
        assert not manager.owns(first)

    run(main())


def test_entering_a_conversation_refreshes_the_contexts_activity() -> None:
    async def main() -> None:
        clock = [1_700_000_000.0]
        manager = UserSessionManager(clock=lambda: clock[0])
        context = await manager.get_or_create_user_session("alice", "t-1")
        clock[0] += 30
        async with manager.conversation("alice", "t-1") as held:
            assert held is context
            assert context.last_activity_timestamp == clock[0]

    run(main())
