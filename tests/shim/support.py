"""Small helpers shared by the shim tests (no pytest-asyncio: plain asyncio.run)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any


async def yield_until(condition: Callable[[], bool], *, max_iterations: int = 1000) -> None:
    """Let other tasks run until ``condition()`` holds (bounded loop turns, no sleeping)."""
    for _ in range(max_iterations):
        if condition():
            return
        await asyncio.sleep(0)
    raise AssertionError("condition not reached")


class AppContext:
    """An application's own legacy context class (not the shim's)."""

    def __init__(
        self,
        user_id: str,
        thread_id: str,
        run_id: str,
        websocket_connection_id: str | None = None,
        db_session: Any = None,
    ) -> None:
        self.user_id = user_id
        self.thread_id = thread_id
        self.run_id = run_id
        self.websocket_connection_id = websocket_connection_id
        self.db_session = db_session
        self.activity_updates = 0

    def update_activity(self) -> None:
        self.activity_updates += 1


class GatedAsyncFactory:
    """A slow async factory: every call waits until the test opens the gate."""

    def __init__(self, *, fail_with: BaseException | None = None) -> None:
        self.calls = 0
        self.fail_with = fail_with
        self.gate: asyncio.Event | None = None
        self.finished = 0

    def open(self) -> None:
        assert self.gate is not None
        self.gate.set()

    async def __call__(self, **ids: Any) -> AppContext:
        self.calls += 1
        if self.gate is None:
            self.gate = asyncio.Event()
        await self.gate.wait()
        if self.fail_with is not None:
            raise self.fail_with
        self.finished += 1
        return AppContext(**ids)
