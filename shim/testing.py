"""Test support for applications using the shim: a clock you move by hand.

Give a :class:`ManualClock` to ``UserSessionManager(clock=clock, sleep=clock.sleep)``
and idle expiry and background cleanup run on simulated time: tests advance the
clock instead of sleeping.
"""

from __future__ import annotations

import asyncio
import heapq


class ManualClock:
    """Epoch seconds that change only through :meth:`advance`, with a matching ``sleep``."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self.now = start
        self.sleep_calls = 0
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        """Move time forward and wake every sleeper whose deadline has come."""
        self.now += seconds
        while self._sleepers and self._sleepers[0][0] <= self.now:
            _, _, wakeup = heapq.heappop(self._sleepers)
            if not wakeup.done():
                wakeup.set_result(None)

    async def sleep(self, seconds: float) -> None:
        """Wait until the clock has been advanced by ``seconds``."""
        self.sleep_calls += 1
        wakeup = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self.now + seconds, self.sleep_calls, wakeup))
        await wakeup
