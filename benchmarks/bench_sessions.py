"""Session layer benchmark: hit path against create-per-message, and memory over time.

Run from the repository root:

    python benchmarks/bench_sessions.py          # full run (about a minute)
    python benchmarks/bench_sessions.py --quick  # smoke run (a few seconds)

It prints, in one run:

1. the hit path of ``await get_or_create_user_session(user_id, thread_id)`` against
   the legacy pattern (a fresh run id and a new validated context for every message),
   and against the barest create-per-message (the shim's slotted context), as ratios;
2. tracemalloc memory while 1,000,000 messages flow over 10,000 conversations with
   the background idle cleanup running (simulated time: 1,000 s over the run, idle
   timeout 30 s, cleanup every 10 s), at 100k messages and at the end: it stays
   proportional to the active sessions, not to the messages;
3. the memory of an idle session beyond a bare context (the legacy object itself),
   that is, what the session layer adds per conversation.

Figures are machine dependent; the ratios are what to compare.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import time
import tracemalloc
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from ctxmigrate.shim import UserExecutionContext, UserSessionManager, configure
from ctxmigrate.shim import get_or_create_user_session as module_get_or_create
from ctxmigrate.shim.configuration import reset_configuration
from ctxmigrate.shim.testing import ManualClock
from ctxmigrate.shim.validation import validate_id

_PLACEHOLDER_IDS = frozenset({"none", "null", "undefined", "placeholder", "default", "temp"})


@dataclass(frozen=True)
class LegacyUserExecutionContext:
    """The shape of the legacy per-request context (a frozen, validated dataclass).

    Modelled on the websocket_core backends this tool migrates, but lighter: the
    real ones also log on creation and run a dozen more checks, so the ratio
    below is a lower bound.
    """

    user_id: str
    thread_id: str
    run_id: str
    request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    websocket_client_id: str | None = None
    created_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    agent_context: dict[str, Any] = field(default_factory=dict)
    audit_metadata: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in ("user_id", "thread_id", "run_id", "request_id"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value.strip():
                raise ValueError(f"{name} must be a non-empty string")
            if value.lower() in _PLACEHOLDER_IDS:
                raise ValueError(f"{name} is a placeholder value")


def legacy_create_user_execution_context(
    user_id: str, thread_id: str
) -> LegacyUserExecutionContext:
    """The legacy pattern, per message: a fresh run id and a new validated context."""
    return LegacyUserExecutionContext(user_id, thread_id, f"run_{uuid.uuid4().hex}")


def bare_create_user_execution_context(user_id: str, thread_id: str) -> UserExecutionContext:
    """The least a create-per-message pattern can do: valid ids, fresh run id, new context."""
    validate_id(user_id, "user_id")
    validate_id(thread_id, "thread_id")
    return UserExecutionContext(user_id, thread_id, f"run_{uuid.uuid4().hex}")


def conversation_ids(conversations: int, threads_per_user: int) -> tuple[list[str], list[str]]:
    users = [f"user-{index // threads_per_user:06d}" for index in range(conversations)]
    threads = [f"thread-{index:06d}" for index in range(conversations)]
    return users, threads


async def measure_hit_path(messages: int, conversations: int, repeats: int) -> None:
    users, threads = conversation_ids(conversations, threads_per_user=10)
    reset_configuration()
    manager = UserSessionManager()
    configure(manager)
    for user_id, thread_id in zip(users, threads, strict=True):
        await module_get_or_create(user_id, thread_id)
    order = [(index * 7919) % conversations for index in range(messages)]

    async def session_loop() -> float:
        started = time.perf_counter()
        for index in order:
            await module_get_or_create(users[index], threads[index])
        return time.perf_counter() - started

    def create_per_message_loop(create: Callable[[str, str], object]) -> Callable[[], float]:
        def loop() -> float:
            started = time.perf_counter()
            for index in order:
                create(users[index], threads[index])
            return time.perf_counter() - started

        return loop

    legacy_loop = create_per_message_loop(legacy_create_user_execution_context)
    bare_loop = create_per_message_loop(bare_create_user_execution_context)
    # Interleaved repeats, best of each: a burst of load from elsewhere on the
    # machine then slows all three alike instead of one.
    session_runs: list[float] = []
    legacy_runs: list[float] = []
    bare_runs: list[float] = []
    for _ in range(repeats):
        session_runs.append(await session_loop())
        legacy_runs.append(legacy_loop())
        bare_runs.append(bare_loop())
    session_seconds = min(session_runs)
    legacy_seconds = min(legacy_runs)
    bare_seconds = min(bare_runs)
    stats = manager.stats()
    assert stats.created == conversations and stats.active == conversations
    print(f"hit path ({messages:,} messages over {conversations:,} live conversations)")
    for label, seconds in (
        ("await get_or_create_user_session", session_seconds),
        ("legacy create-per-message", legacy_seconds),
        ("bare create-per-message", bare_seconds),
    ):
        print(f"  {label:<34}{seconds / messages * 1e9:8.0f} ns/message")
    print(f"  ratio legacy / session            {legacy_seconds / session_seconds:8.1f}x")
    print(f"  ratio bare / session              {bare_seconds / session_seconds:8.1f}x")


@dataclass
class Checkpoint:
    messages: int
    traced_bytes: int
    active: int


async def measure_memory_over_time(
    messages: int, conversations: int, checkpoint_at: int
) -> tuple[Checkpoint, Checkpoint]:
    """Messages over a sliding window of conversations; old ones go idle and expire."""
    users, threads = conversation_ids(conversations, threads_per_user=10)
    window = max(conversations // 10, 1)
    clock = ManualClock()
    # The run spans 1,000 simulated seconds: about 33 idle timeouts.
    tick_seconds = 1000.0 / messages
    reset_configuration()
    gc.collect()
    tracemalloc.start()
    baseline = tracemalloc.get_traced_memory()[0]
    manager = UserSessionManager(
        idle_timeout=30.0, cleanup_interval=10.0, clock=clock, sleep=clock.sleep
    )
    configure(manager)
    checkpoints: list[Checkpoint] = []
    async with manager:
        for message in range(messages):
            start = (message * (conversations - window)) // messages
            index = start + (message * 7919) % window
            await module_get_or_create(users[index], threads[index])
            clock.advance(tick_seconds)
            if message % 1000 == 999:
                # Let the background cleanup task run, as a server's event loop would.
                await asyncio.sleep(0)
            if message + 1 in (checkpoint_at, messages):
                await manager.cleanup_inactive_sessions()
                gc.collect()
                checkpoints.append(
                    Checkpoint(
                        message + 1,
                        tracemalloc.get_traced_memory()[0] - baseline,
                        manager.stats().active,
                    )
                )
        stats = manager.stats()
    tracemalloc.stop()
    early, late = checkpoints
    print(
        f"memory: {messages:,} messages over {conversations:,} conversations, "
        f"idle cleanup running (created {stats.created:,}, expired {stats.expired:,})"
    )
    for point in checkpoints:
        print(
            f"  after {point.messages:>9,} messages  {point.traced_bytes / 1024:9.1f} KiB  "
            f"{point.active:6,} active  {point.traced_bytes / max(point.active, 1):6.0f} B/active"
        )
    print(
        f"  ratio end / {early.messages:,} messages  {late.traced_bytes / early.traced_bytes:.2f}x"
    )
    return early, late


async def measure_idle_session_overhead(sessions: int) -> None:
    """Bytes per idle session, minus the bytes of the bare context the legacy code built."""
    users, threads = conversation_ids(sessions, threads_per_user=1)
    reset_configuration()

    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    bare = [
        bare_create_user_execution_context(user_id, thread_id)
        for user_id, thread_id in zip(users, threads, strict=True)
    ]
    gc.collect()
    bare_bytes = (tracemalloc.get_traced_memory()[0] - before) / sessions
    del bare
    tracemalloc.stop()

    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    manager = UserSessionManager(max_sessions=None)
    for user_id, thread_id in zip(users, threads, strict=True):
        await manager.get_or_create_user_session(user_id, thread_id)
    gc.collect()
    session_bytes = (tracemalloc.get_traced_memory()[0] - before) / sessions
    tracemalloc.stop()
    print(f"idle session memory ({sessions:,} sessions, one per user, empty conversation_state)")
    print(f"  bare context                {bare_bytes:6.0f} B")
    print(f"  session (context included)  {session_bytes:6.0f} B")
    print(f"  overhead per idle session   {session_bytes - bare_bytes:6.0f} B")


async def main(quick: bool) -> None:
    if quick:
        await measure_hit_path(messages=20_000, conversations=1_000, repeats=1)
        await measure_memory_over_time(messages=20_000, conversations=1_000, checkpoint_at=5_000)
        await measure_idle_session_overhead(sessions=1_000)
    else:
        await measure_hit_path(messages=500_000, conversations=10_000, repeats=5)
        await measure_memory_over_time(
            messages=1_000_000, conversations=10_000, checkpoint_at=100_000
        )
        await measure_idle_session_overhead(sessions=10_000)
    reset_configuration()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a small smoke run")
    asyncio.run(main(parser.parse_args().quick))
