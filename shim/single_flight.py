"""Single-flight: at most one in-flight computation per key (after Go's ``singleflight``).

Guarantees, each tested in ``tests/shim/test_single_flight.py``:

* concurrent callers of :meth:`SingleFlight.run` for one key share one run of the
  work and receive the identical result, or the identical exception;
* a failure is not cached: the key is forgotten before any caller resumes, so
  the next call runs the work again;
* cancelling one caller never cancels the shared work; when the *last* caller
  is cancelled the work is cancelled too, and that caller returns only after
  the work has finished unwinding (so it leaves nothing half-made behind);
* a caller never receives a cancellation it did not ask for: a caller arriving
  while abandoned work unwinds does not join it, it waits for the unwinding to
  finish (not for its result) and then starts fresh work, so there is still
  never more than one run per key at a time;
* the bookkeeping is empty whenever nothing is in flight;
* no asyncio object is created before the first call, and a call made from a
  different event loop than a stale in-flight entry starts fresh work instead
  of awaiting a task of another loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

KeyT = TypeVar("KeyT", bound=Hashable)
ResultT = TypeVar("ResultT")


class _Flight(Generic[ResultT]):
    __slots__ = ("abandoned", "task", "waiters")

    def __init__(self) -> None:
        self.task: asyncio.Task[ResultT]
        self.waiters = 0
        # Set when the last waiter left and the task was cancelled: nobody may join.
        self.abandoned = False


class SingleFlight(Generic[KeyT, ResultT]):
    """Deduplicates concurrent async work by key within one process."""

    def __init__(self) -> None:
        self._flights: dict[KeyT, _Flight[ResultT]] = {}

    def __len__(self) -> int:
        """Number of keys with work in flight."""
        return len(self._flights)

    def __contains__(self, key: object) -> bool:
        return key in self._flights

    async def run(self, key: KeyT, work: Callable[[], Awaitable[ResultT]]) -> ResultT:
        """Run ``work()`` for ``key`` unless a run is already in flight; await its result."""
        loop = asyncio.get_running_loop()
        while True:
            flight = self._flights.get(key)
            # A flight whose task is done is stale: it finished without running
            # _fly's cleanup (cancelled before its first step). Never join it.
            if flight is None or flight.task.done() or flight.task.get_loop() is not loop:
                flight = _Flight()
                flight.task = loop.create_task(self._fly(key, flight, work))
                self._flights[key] = flight
                break
            if not flight.abandoned:
                break
            # Cancelled because its last waiter left, and still unwinding: its
            # outcome is a cancellation meant for someone else. Wait until it has
            # finished (and removed itself), then look again.
            await asyncio.wait((flight.task,))
            if self._flights.get(key) is flight:
                # A task cancelled before its first step never ran _fly's cleanup.
                del self._flights[key]
        flight.waiters += 1
        try:
            return await asyncio.shield(flight.task)
        finally:
            flight.waiters -= 1
            if flight.waiters == 0 and not flight.task.done():
                # The last caller was cancelled: nobody wants the result any more.
                flight.abandoned = True
                flight.task.cancel()
                await asyncio.wait((flight.task,))

    async def _fly(
        self, key: KeyT, flight: _Flight[ResultT], work: Callable[[], Awaitable[ResultT]]
    ) -> ResultT:
        try:
            return await work()
        finally:
            # Forget the key before any waiter resumes, so that a failure is
            # never served from the cache.
            if self._flights.get(key) is flight:
                del self._flights[key]

    async def cancel_all(self) -> None:
        """Cancel every flight and wait for it to unwind (used at shutdown)."""
        flights = list(self._flights.items())
        for _, flight in flights:
            flight.abandoned = True
            flight.task.cancel()
        if flights:
            await asyncio.wait([flight.task for _, flight in flights])
        # A task cancelled before its first step never ran _fly's cleanup: forget
        # the cancelled flights (not any started meanwhile) so no caller joins one.
        for key, flight in flights:
            if self._flights.get(key) is flight:
                del self._flights[key]
