"""Single-flight creation: exactly one factory call per key, whatever the concurrency."""

from __future__ import annotations

import asyncio

import pytest

from ctxmigrate.shim import UserSessionManager
from ctxmigrate.shim.single_flight import SingleFlight

from .support import GatedAsyncFactory, yield_until


def test_thousand_concurrent_first_calls_create_exactly_one_context() -> None:
    factory = GatedAsyncFactory()

    async def scenario() -> None:
        manager = UserSessionManager(factory=factory)
        callers = [
            asyncio.create_task(manager.get_or_create_user_session("u", "t")) for _ in range(1000)
        ]
        await yield_until(lambda: factory.calls == 1)
        factory.open()
        contexts = await asyncio.gather(*callers)
        assert factory.calls == 1
        assert all(context is contexts[0] for context in contexts)
        stats = manager.stats()
        assert (stats.created, stats.active, stats.in_flight) == (1, 1, 0)

    asyncio.run(scenario())


def test_concurrent_first_calls_with_sync_factory_create_one() -> None:
    calls = 0

    def factory(**ids: str) -> object:
        nonlocal calls
        calls += 1
        return object()

    async def scenario() -> None:
        manager = UserSessionManager(factory=factory)
        contexts = await asyncio.gather(
            *(manager.get_or_create_user_session("u", "t") for _ in range(100))
        )
        assert calls == 1
        assert len({id(context) for context in contexts}) == 1

    asyncio.run(scenario())


def test_factory_failure_reaches_every_waiter_and_is_not_cached() -> None:
    failure = RuntimeError("database down")
    factory = GatedAsyncFactory(fail_with=failure)

    async def scenario() -> None:
        manager = UserSessionManager(factory=factory)
        callers = [
            asyncio.create_task(manager.get_or_create_user_session("u", "t")) for _ in range(10)
        ]
        await yield_until(lambda: factory.calls == 1)
        factory.open()
        results = await asyncio.gather(*callers, return_exceptions=True)
        assert all(result is failure for result in results)
        assert factory.calls == 1
        stats = manager.stats()
        assert (stats.active, stats.in_flight, stats.failed_creations) == (0, 0, 1)
        assert len(manager.store) == 0  # type: ignore[arg-type]

        factory.fail_with = None
        context = await manager.get_or_create_user_session("u", "t")
        assert factory.calls == 2
        assert context.user_id == "u"

    asyncio.run(scenario())


@pytest.mark.parametrize("cancelled", [0, 1, 2, 3])
def test_cancelling_some_waiters_of_three(cancelled: int) -> None:
    factory = GatedAsyncFactory()

    async def scenario() -> None:
        manager = UserSessionManager(factory=factory)
        callers = [
            asyncio.create_task(manager.get_or_create_user_session("u", "t")) for _ in range(3)
        ]
        await yield_until(lambda: factory.calls == 1)
        for caller in callers[:cancelled]:
            caller.cancel()
        await asyncio.gather(*callers[:cancelled], return_exceptions=True)
        if cancelled < 3:
            factory.open()
        results = await asyncio.gather(*callers, return_exceptions=True)

        assert all(isinstance(result, asyncio.CancelledError) for result in results[:cancelled])
        survivors = results[cancelled:]
        assert all(result is survivors[0] for result in survivors)
        assert factory.calls == 1
        stats = manager.stats()
        assert stats.in_flight == 0
        if cancelled < 3:
            # Cancelling some waiters did not cancel the shared creation.
            assert factory.finished == 1
            assert (stats.active, stats.created) == (1, 1)
        else:
            # The last waiter left: the creation was abandoned, nothing half-made remains.
            assert factory.finished == 0
            assert (stats.active, stats.created) == (0, 0)
            assert len(manager.store) == 0  # type: ignore[arg-type]

    asyncio.run(scenario())


def test_abandoned_creation_is_retried_by_the_next_caller() -> None:
    factory = GatedAsyncFactory()

    async def scenario() -> None:
        manager = UserSessionManager(factory=factory)
        caller = asyncio.create_task(manager.get_or_create_user_session("u", "t"))
        await yield_until(lambda: factory.calls == 1)
        caller.cancel()
        await asyncio.gather(caller, return_exceptions=True)
        factory.gate = None
        retry = asyncio.create_task(manager.get_or_create_user_session("u", "t"))
        await yield_until(lambda: factory.calls == 2)
        factory.open()
        assert (await retry).user_id == "u"

    asyncio.run(scenario())


def test_single_flight_bookkeeping_is_empty_after_success_and_failure() -> None:
    async def scenario() -> None:
        flights: SingleFlight[str, int] = SingleFlight()

        async def succeed() -> int:
            return 1

        async def fail() -> int:
            raise ValueError("no")

        assert await flights.run("k", succeed) == 1
        assert len(flights) == 0
        with pytest.raises(ValueError, match="no"):
            await flights.run("k", fail)
        assert len(flights) == 0 and "k" not in flights

    asyncio.run(scenario())


def test_single_flight_distinct_keys_run_independently() -> None:
    async def scenario() -> None:
        flights: SingleFlight[str, str] = SingleFlight()
        started: list[str] = []

        def work(key: str) -> object:
            async def run() -> str:
                started.append(key)
                await asyncio.sleep(0)
                return key

            return run

        results = await asyncio.gather(
            flights.run("a", work("a")),  # type: ignore[arg-type]
            flights.run("b", work("b")),  # type: ignore[arg-type]
            flights.run("a", work("a")),  # type: ignore[arg-type]
        )
        assert results == ["a", "b", "a"]
        assert sorted(started) == ["a", "b"]

    asyncio.run(scenario())


def test_a_caller_never_joins_abandoned_work() -> None:
    async def scenario() -> None:
        flights: SingleFlight[str, str] = SingleFlight()
        unwinding, unwind = asyncio.Event(), asyncio.Event()
        runs = 0

        async def work() -> str:
            nonlocal runs
            runs += 1
            if runs == 1:
                try:
                    await asyncio.Event().wait()
                except asyncio.CancelledError:
                    unwinding.set()
                    await unwind.wait()
                    raise
            return "fresh"

        first = asyncio.create_task(flights.run("k", work))
        await yield_until(lambda: runs == 1)
        first.cancel()
        await unwinding.wait()
        second = asyncio.create_task(flights.run("k", work))
        third = asyncio.create_task(flights.run("k", work))
        await asyncio.sleep(0)
        assert runs == 1  # the new callers wait for the unwinding; nothing runs twice at once
        unwind.set()
        assert await asyncio.gather(second, third) == ["fresh", "fresh"]
        assert runs == 2 and first.cancelled() and len(flights) == 0

    asyncio.run(scenario())


def test_cancel_all_forgets_flights_cancelled_before_their_first_step() -> None:
    async def scenario() -> None:
        flights: SingleFlight[str, str] = SingleFlight()

        async def work() -> str:
            return "fresh"

        first = asyncio.create_task(flights.run("k", work))
        await asyncio.sleep(0)  # first started the flight; the flight's task has not run
        assert len(flights) == 1
        await flights.cancel_all()
        assert len(flights) == 0
        assert (await asyncio.gather(first, return_exceptions=True))[0].__class__ is (
            asyncio.CancelledError
        )
        assert await flights.run("k", work) == "fresh"

    asyncio.run(scenario())


def test_a_flight_whose_task_is_done_is_never_joined() -> None:
    async def scenario() -> None:
        flights: SingleFlight[str, str] = SingleFlight()

        async def work() -> str:
            return "fresh"

        first = asyncio.create_task(flights.run("k", work))
        await asyncio.sleep(0)
        # Cancelled from outside before its first step (e.g. the loop shutting
        # down): _fly's cleanup never runs and the entry stays behind.
        flights._flights["k"].task.cancel()
        await asyncio.gather(first, return_exceptions=True)
        assert await flights.run("k", work) == "fresh"
        assert len(flights) == 0

    asyncio.run(scenario())
