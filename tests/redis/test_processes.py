"""Several OS processes sharing sessions through one real Redis."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from .conftest import RedisServer

pytestmark = pytest.mark.redis

REPO_ROOT = Path(__file__).resolve().parents[2]


def run_workers(
    server: RedisServer, prefix: str, mode: str, count: int, **options: object
) -> list[dict[str, Any]]:
    """Start ``count`` workers, release them together once all are connected, collect results."""
    command = [sys.executable, "-m", "tests.redis.session_worker", mode]
    command += ["--url", server.url, "--prefix", prefix]
    for name, value in options.items():
        command += [f"--{name}", str(value)]
    workers = [
        subprocess.Popen(
            command,
            cwd=REPO_ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(count)
    ]
    try:
        for worker in workers:
            assert worker.stdout is not None
            line = worker.stdout.readline()
            assert line == "ready\n", f"worker failed to start: {line!r} {worker.stderr.read()}"  # type: ignore[union-attr]
        for worker in workers:
            assert worker.stdin is not None
            worker.stdin.write("go\n")
            worker.stdin.flush()
        results = []
        for worker in workers:
            out, err = worker.communicate(timeout=120)
            assert worker.returncode == 0, err
            results.append(json.loads(out))
        return results
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
                worker.wait()


def test_two_processes_share_one_conversation(redis_server: RedisServer, key_prefix: str) -> None:
    (first,) = run_workers(redis_server, key_prefix, "share", 1, note="from-first")
    (second,) = run_workers(redis_server, key_prefix, "share", 1, note="from-second")
    (third,) = run_workers(redis_server, key_prefix, "share", 1, note="from-third")
    assert first["run_id"] == second["run_id"] == third["run_id"]
    assert (first["created"], second["created"], third["created"]) == (1, 0, 0)
    assert first["seen"] == {}
    assert second["seen"] == {"notes": ["from-first"]}
    assert third["seen"] == {"notes": ["from-first", "from-second"]}


def test_200_way_race_across_4_processes_creates_one_record(
    redis_server: RedisServer, key_prefix: str
) -> None:
    results = run_workers(redis_server, key_prefix, "race-store", 4, tasks=50)
    run_ids = {run_id for result in results for run_id in result["run_ids"]}
    assert sum(len(result["run_ids"]) for result in results) == 200
    assert len(run_ids) == 1
    assert sum(result["created"] for result in results) == 1
    session_keys = list(redis_server.client().scan_iter(match=f"{key_prefix}:s:*"))
    assert session_keys == [f"{key_prefix}:s:alice:thread-1".encode()]


def test_200_way_race_through_managers_in_4_processes(
    redis_server: RedisServer, key_prefix: str
) -> None:
    results = run_workers(redis_server, key_prefix, "race-manager", 4, tasks=50)
    assert len({run_id for result in results for run_id in result["run_ids"]}) == 1
    # Within a process, every caller holds the very same object.
    assert all(result["one_object"] for result in results)
    assert sum(result["created"] for result in results) == 1


def test_concurrent_writers_in_4_processes_lose_no_update(
    redis_server: RedisServer, key_prefix: str
) -> None:
    # Someone has to open the conversation first.
    run_workers(redis_server, key_prefix, "race-store", 1, tasks=1)
    results = run_workers(redis_server, key_prefix, "increment", 4, tasks=25)
    stored = redis_server.client().get(f"{key_prefix}:s:alice:thread-1")
    assert stored is not None
    record = json.loads(stored)
    assert record["conversation_state"] == {"count": 100}
    assert record["version"] == 100
    assert sum(result["conflicts"] for result in results) > 0


def test_per_user_cap_holds_across_processes(redis_server: RedisServer, key_prefix: str) -> None:
    results = run_workers(redis_server, key_prefix, "fill-user", 4, tasks=30, cap=10)
    client = redis_server.client()
    session_keys = list(client.scan_iter(match=f"{key_prefix}:s:alice:*"))
    # 120 distinct sessions of one user, created concurrently by 4 processes,
    # under a cap of 10: exactly 10 are left, and every other creation evicted one.
    assert len(session_keys) == 10
    assert client.zcard(f"{key_prefix}:u:alice") == 10
    assert sum(result["removed"] for result in results) == 110


def test_4_processes_x_10_concurrent_messages_to_one_conversation_store_all_40_once(
    redis_server: RedisServer, key_prefix: str
) -> None:
    results = run_workers(redis_server, key_prefix, "converse", 4, tasks=10)
    assert len({run_id for result in results for run_id in result["run_ids"]}) == 1
    client = redis_server.client()
    (session_key,) = client.scan_iter(match=f"{key_prefix}:s:*")
    record = json.loads(client.get(session_key))
    expected = sorted(f"{result['pid']}-{index}" for result in results for index in range(10))
    assert sorted(record["conversation_state"]["messages"]) == expected
    assert record["version"] == 40
    leftovers = [
        key
        for pattern in (f"{key_prefix}:l:*", f"{key_prefix}:q:*", f"{key_prefix}:w:*")
        for key in client.scan_iter(match=pattern)
    ]
    assert leftovers == []
