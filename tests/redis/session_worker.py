"""A worker process for the cross-process tests: ``python -m tests.redis.session_worker``.

Each run connects, prints ``ready``, waits for a ``go`` line on stdin (so the
parent can release several workers at once, without sleeping), does its part
and prints one JSON line with what it saw.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import uuid
from typing import Any

from ctxmigrate.shim import UserSessionManager
from ctxmigrate.shim.errors import StateConflictError
from ctxmigrate.shim.redis_store import RedisSessionStore
from ctxmigrate.shim.store import SessionKey, SessionPolicy, SessionRecord

NOW = 1_700_000_000.0


def wait_for_go() -> None:
    print("ready", flush=True)
    if sys.stdin.readline().strip() != "go":
        raise SystemExit("expected 'go' on stdin")


async def race_store(store: RedisSessionStore, args: argparse.Namespace) -> dict[str, Any]:
    policy = SessionPolicy(idle_timeout=60.0, max_sessions=None, max_sessions_per_user=None)
    key = SessionKey(args.user, args.thread)

    async def one() -> tuple[str, bool]:
        candidate = SessionRecord(key, f"run_{uuid.uuid4().hex}", None, NOW, NOW)
        outcome = await store.get_or_create(candidate, now=NOW, policy=policy)
        return outcome.record.run_id, outcome.created

    await store.ping()
    wait_for_go()
    results = await asyncio.gather(*(one() for _ in range(args.tasks)))
    return {"run_ids": [run_id for run_id, _ in results], "created": sum(c for _, c in results)}


async def race_manager(store: RedisSessionStore, args: argparse.Namespace) -> dict[str, Any]:
    manager = UserSessionManager(store=store, max_sessions_per_user=None)
    await store.ping()
    wait_for_go()
    contexts = await asyncio.gather(
        *(manager.get_or_create_user_session(args.user, args.thread) for _ in range(args.tasks))
    )
    stats = manager.stats()
    await manager.aclose()
    return {
        "run_ids": [context.run_id for context in contexts],
        "one_object": all(context is contexts[0] for context in contexts),
        "created": stats.created,
    }


async def share(store: RedisSessionStore, args: argparse.Namespace) -> dict[str, Any]:
    """Open the conversation, report what it holds, append one note and save."""
    manager = UserSessionManager(store=store)
    wait_for_go()
    context = await manager.get_or_create_user_session(args.user, args.thread)
    seen = json.loads(json.dumps(context.conversation_state))
    context.conversation_state.setdefault("notes", []).append(args.note)
    await manager.save_conversation_state(context)
    stats = manager.stats()
    await manager.aclose()
    return {"run_id": context.run_id, "seen": seen, "created": stats.created}


async def increment_count(
    store: RedisSessionStore, key: SessionKey, *, now: float, policy: SessionPolicy
) -> int:
    """Add one to ``conversation_state["count"]`` by compare-and-set on ``version``.

    Retries after every conflict (another writer saved first); returns how many
    conflicts it took.
    """
    conflicts = 0
    while True:
        record = await store.touch(key, now=now, policy=policy)
        assert record is not None
        state = dict(record.conversation_state)
        state["count"] = int(state.get("count", 0)) + 1
        try:
            await store.save_state(
                key, state, expected_version=record.version, now=now, policy=policy
            )
            return conflicts
        except StateConflictError:
            conflicts += 1


async def increment(store: RedisSessionStore, args: argparse.Namespace) -> dict[str, Any]:
    policy = SessionPolicy(idle_timeout=60.0, max_sessions=None, max_sessions_per_user=None)
    key = SessionKey(args.user, args.thread)
    await store.ping()
    wait_for_go()
    conflicts = await asyncio.gather(
        *(increment_count(store, key, now=NOW, policy=policy) for _ in range(args.tasks))
    )
    return {"conflicts": sum(conflicts)}


async def converse(store: RedisSessionStore, args: argparse.Namespace) -> dict[str, Any]:
    """Send ``--tasks`` concurrent messages to one conversation through conversation().

    Each message reads the list of messages, "thinks" (yields for a few
    milliseconds) and appends its own id: a lost update would drop one.
    """
    manager = UserSessionManager(store=store, conversation_wait=60.0)
    await store.ping()
    wait_for_go()
    run_ids: set[str] = set()

    async def message(index: int) -> None:
        async with manager.conversation(args.user, args.thread) as context:
            run_ids.add(context.run_id)
            seen = list(context.conversation_state.get("messages", []))
            await asyncio.sleep(0.002)
            context.conversation_state["messages"] = [*seen, f"{os.getpid()}-{index}"]

    await asyncio.gather(*(message(index) for index in range(args.tasks)))
    await manager.aclose()
    return {"pid": os.getpid(), "run_ids": sorted(run_ids)}


async def fill_user(store: RedisSessionStore, args: argparse.Namespace) -> dict[str, Any]:
    policy = SessionPolicy(idle_timeout=60.0, max_sessions=None, max_sessions_per_user=args.cap)

    async def create(index: int) -> int:
        # The pid keeps every worker's threads distinct from the others'.
        key = SessionKey(args.user, f"{os.getpid()}-{index}")
        candidate = SessionRecord(key, f"run_{uuid.uuid4().hex}", None, NOW, NOW)
        outcome = await store.get_or_create(candidate, now=NOW + index, policy=policy)
        return len(outcome.removed)

    await store.ping()
    wait_for_go()
    removed = await asyncio.gather(*(create(index) for index in range(args.tasks)))
    return {"removed": sum(removed)}


MODES = {
    "race-store": race_store,
    "race-manager": race_manager,
    "share": share,
    "increment": increment,
    "fill-user": fill_user,
    "converse": converse,
}


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=sorted(MODES))
    parser.add_argument("--url", required=True)
    parser.add_argument("--prefix", required=True)
    parser.add_argument("--user", default="alice")
    parser.add_argument("--thread", default="thread-1")
    parser.add_argument("--tasks", type=int, default=1)
    parser.add_argument("--note", default="")
    parser.add_argument("--cap", type=int, default=None)
    args = parser.parse_args()
    async with RedisSessionStore(args.url, key_prefix=args.prefix, max_connections=8) as store:
        result = await MODES[args.mode](store, args)
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    asyncio.run(main())
