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


class GatedStore:
    """An async-only store (like Redis): each call does its atomic work at once, in
    the in-memory store, and its reply waits while the test holds that method's gate.

    ``hold("touch")`` makes the following ``touch`` replies wait until ``release("touch")``
    (or until the returned event is set: each call waits on the gate held when it was
    made, so replies can be released in any order); ``calls[name]`` counts the calls
    that have done their work.
    """

    def __init__(self) -> None:
        from ctxmigrate.shim import InMemorySessionStore

        self.inner = InMemorySessionStore()
        self.gates: dict[str, asyncio.Event] = {}
        self.calls: dict[str, int] = {}

    def hold(self, method: str) -> asyncio.Event:
        gate = self.gates[method] = asyncio.Event()
        return gate

    def release(self, method: str) -> None:
        self.gates.pop(method).set()

    async def _reply(self, method: str, value: Any) -> Any:
        self.calls[method] = self.calls.get(method, 0) + 1
        gate = self.gates.get(method)
        if gate is not None:
            await gate.wait()
        return value

    async def get_or_create(self, candidate: Any, *, now: float, policy: Any) -> Any:
        return await self._reply(
            "get_or_create", self.inner.get_or_create_now(candidate, now=now, policy=policy)
        )

    async def touch(self, key: Any, *, now: float, policy: Any) -> Any:
        return await self._reply("touch", self.inner.touch_now(key, now=now, policy=policy))

    async def save_state(
        self, key: Any, state: Any, *, expected_version: int, now: float, policy: Any
    ) -> Any:
        record = self.inner.save_state_now(
            key, state, expected_version=expected_version, now=now, policy=policy
        )
        return await self._reply("save_state", record)

    async def delete(self, key: Any) -> bool:
        return bool(await self._reply("delete", self.inner.delete_now(key)))

    async def sweep_expired(self, *, now: float, policy: Any) -> Any:
        return await self._reply("sweep_expired", self.inner.sweep_expired_now(now, policy))

    async def aclose(self) -> None:
        return None
