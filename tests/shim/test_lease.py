"""FifoLeases: the in-process, first-come-first-served hold behind conversation()."""

from __future__ import annotations

import asyncio

import pytest

from ctxmigrate.shim import ConversationBusyError
from ctxmigrate.shim.lease import FifoLeases

from .support import yield_until


def test_a_free_key_is_granted_at_once_and_released_to_nothing() -> None:
    async def main() -> None:
        leases = FifoLeases()
        token = await leases.acquire("k", 0)
        assert leases.holder("k") == token
        assert len(leases) == 1
        assert leases.release("k", token) is True
        assert leases.holder("k") is None
        assert len(leases) == 0

    asyncio.run(main())


def test_only_the_holders_token_releases() -> None:
    async def main() -> None:
        leases = FifoLeases()
        token = await leases.acquire("k", 0)
        assert leases.release("k", "someone-else") is False
        assert leases.release("other-key", token) is False
        assert leases.holder("k") == token

    asyncio.run(main())


def test_a_release_hands_over_to_the_longest_waiter() -> None:
    async def main() -> None:
        leases = FifoLeases()
        first = await leases.acquire("k", 0)
        second = asyncio.create_task(leases.acquire("k", 10))
        third = asyncio.create_task(leases.acquire("k", 10))
        await yield_until(lambda: leases.waiting("k") == 2)
        leases.release("k", first)
        second_token = await second
        assert leases.holder("k") == second_token
        assert not third.done()
        leases.release("k", second_token)
        assert leases.holder("k") == await third

    asyncio.run(main())


def test_a_waiter_that_times_out_raises_busy_and_leaves_the_line() -> None:
    async def main() -> None:
        leases = FifoLeases()
        await leases.acquire("k", 0)
        with pytest.raises(ConversationBusyError, match="busy for 0 s"):
            await leases.acquire("k", 0)
        assert leases.waiting("k") == 0

    asyncio.run(main())


def test_a_waiter_cancelled_just_after_the_handover_passes_the_hold_on() -> None:
    async def main() -> None:
        leases = FifoLeases()
        holder = await leases.acquire("k", 0)
        handed = asyncio.create_task(leases.acquire("k", 10))
        after = asyncio.create_task(leases.acquire("k", 10))
        await yield_until(lambda: leases.waiting("k") == 2)
        leases.release("k", holder)  # handed over to the first waiter...
        handed.cancel()  # ...which gives up before it runs again
        with pytest.raises(asyncio.CancelledError):
            await handed
        assert leases.holder("k") == await after
        assert leases.waiting("k") == 0

    asyncio.run(main())


def test_a_release_skips_waiters_that_gave_up() -> None:
    async def main() -> None:
        leases = FifoLeases()
        holder = await leases.acquire("k", 0)
        gone = asyncio.create_task(leases.acquire("k", 10))
        await yield_until(lambda: leases.waiting("k") == 1)
        gone.cancel()
        with pytest.raises(asyncio.CancelledError):
            await gone
        assert leases.waiting("k") == 0
        assert leases.release("k", holder) is True
        assert len(leases) == 0

    asyncio.run(main())
