"""Redis session store benchmark: get-or-create throughput, hit and miss, against in-memory.

Run from the repository root (needs redis-server on PATH, see scripts/ensure-redis,
or an existing server with --url):

    python benchmarks/bench_redis.py            # full run (about two minutes on 2 cores)
    python benchmarks/bench_redis.py --quick    # smoke run (seconds)
    python benchmarks/bench_redis.py --url redis://127.0.0.1:6379/0

It prints, in one run, for ``await manager.get_or_create_user_session(user, thread)``:

- hit: the conversation already has a live context in this process (the
  message path of an ongoing conversation). In-memory: a dict lookup and a
  touch; Redis: plus one Lua script round trip (refresh TTL and activity,
  confirm the record and its run_id).
- miss: every call opens a new conversation (record created; Redis: one script
  that also maintains the per-user and total indexes, then the factory).

for the in-memory store (one process), the Redis store from one process (one
caller at a time, and ``--concurrency`` callers in flight), and from
``--processes`` processes at once (aggregate throughput), each as calls per
second and as a ratio to the in-memory figure. Without --url it starts its own
redis-server on a unix socket (no persistence), like the tests do.

Figures depend on the machine and on what else runs on it; the ratios are
what to compare. The processes share the cores with redis-server itself.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from ctxmigrate.shim import UserSessionManager
from ctxmigrate.shim.redis_store import RedisSessionStore

# Generous caps: the benchmark measures the paths, not evictions.
MAX_SESSIONS = 10_000_000
MAX_SESSIONS_PER_USER = 1_000_000
HIT_CONVERSATIONS = 100


@dataclass(frozen=True)
class Workload:
    calls: int
    concurrency: int
    repeats: int


def make_manager(store: RedisSessionStore | None) -> UserSessionManager:
    return UserSessionManager(
        store=store, max_sessions=MAX_SESSIONS, max_sessions_per_user=MAX_SESSIONS_PER_USER
    )


async def open_hit_conversations(manager: UserSessionManager, tag: str) -> None:
    """Open the conversations the hit workload reuses, outside the timed part."""
    for index in range(HIT_CONVERSATIONS):
        await manager.get_or_create_user_session(f"user-{index % 10}", f"hit-{tag}-{index}")


async def timed_calls(
    manager: UserSessionManager, *, hit: bool, calls: int, concurrency: int, tag: str
) -> float:
    """Seconds for ``calls`` get-or-create calls, ``concurrency`` of them in flight."""
    per_worker = calls // concurrency

    async def worker(worker_index: int) -> None:
        for call in range(per_worker):
            if hit:
                thread_id = f"hit-{tag}-{(worker_index + call) % HIT_CONVERSATIONS}"
            else:
                thread_id = f"miss-{tag}-{worker_index}-{call}"
            await manager.get_or_create_user_session(f"user-{call % 10}", thread_id)

    started = time.perf_counter()
    await asyncio.gather(*(worker(index) for index in range(concurrency)))
    return time.perf_counter() - started


async def best_rate(store_url: str | None, prefix: str, *, hit: bool, workload: Workload) -> float:
    """Best calls/second over the repeats (each repeat with a fresh manager and keys)."""
    best = 0.0
    for repeat in range(workload.repeats):
        store = (
            None
            if store_url is None
            else RedisSessionStore(store_url, key_prefix=prefix, max_connections=64)
        )
        manager = make_manager(store)
        tag = f"{repeat}-{uuid.uuid4().hex[:8]}"
        if hit:
            await open_hit_conversations(manager, tag)
        calls = workload.calls - workload.calls % workload.concurrency
        seconds = await timed_calls(
            manager, hit=hit, calls=calls, concurrency=workload.concurrency, tag=tag
        )
        await manager.aclose()
        if store is not None:
            await store.aclose()
        best = max(best, calls / seconds)
    return best


def process_worker(
    store_url: str,
    prefix: str,
    hit: bool,
    workload: Workload,
    barrier: multiprocessing.synchronize.Barrier,
    results: multiprocessing.Queue[int],
) -> None:
    async def run() -> int:
        store = RedisSessionStore(store_url, key_prefix=prefix, max_connections=64)
        manager = make_manager(store)
        tag = uuid.uuid4().hex[:8]
        if hit:
            await open_hit_conversations(manager, tag)
        calls = workload.calls - workload.calls % workload.concurrency
        # Everyone is connected and warmed up; the parent's clock starts at this
        # barrier. (A blocking wait is fine: nothing else runs in this loop yet.)
        barrier.wait()
        await timed_calls(manager, hit=hit, calls=calls, concurrency=workload.concurrency, tag=tag)
        await manager.aclose()
        await store.aclose()
        return calls

    results.put(asyncio.run(run()))


def multi_process_rate(
    store_url: str, prefix: str, *, hit: bool, processes: int, workload: Workload
) -> float:
    """Aggregate calls/second of ``processes`` processes released together."""
    context = multiprocessing.get_context("spawn")
    best = 0.0
    for _ in range(workload.repeats):
        barrier = context.Barrier(processes + 1)
        results: multiprocessing.Queue[int] = context.Queue()
        workers = [
            context.Process(
                target=process_worker,
                args=(store_url, prefix, hit, workload, barrier, results),
            )
            for _ in range(processes)
        ]
        for worker in workers:
            worker.start()
        barrier.wait()
        started = time.perf_counter()
        total_calls = sum(results.get(timeout=600) for _ in workers)
        seconds = time.perf_counter() - started
        for worker in workers:
            worker.join()
            if worker.exitcode != 0:
                raise RuntimeError(f"benchmark worker exited with {worker.exitcode}")
        best = max(best, total_calls / seconds)
    return best


@contextmanager
def private_redis_server() -> Iterator[str]:
    binary = shutil.which("redis-server")
    if binary is None:
        raise SystemExit("redis-server is not on PATH: run scripts/ensure-redis, or pass --url")
    with tempfile.TemporaryDirectory(prefix="ctxb-", dir="/tmp") as directory:
        socket_path = Path(directory) / "redis.sock"
        command = [binary, "--port", "0", "--unixsocket", str(socket_path)]
        command += ["--unixsocketperm", "700", "--save", "", "--appendonly", "no"]
        command += ["--daemonize", "no", "--logfile", str(Path(directory) / "redis.log")]
        server = subprocess.Popen(command, stdin=subprocess.DEVNULL)
        try:
            url = f"unix://{socket_path}"
            asyncio.run(wait_until_ready(url))
            yield url
        finally:
            server.kill()
            server.wait()


async def wait_until_ready(url: str) -> None:
    deadline = time.monotonic() + 10
    while True:
        store = RedisSessionStore(url, retries=0)
        try:
            await store.ping()
            return
        except ConnectionError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.01)
        finally:
            await store.aclose()


def report(label: str, rate: float, baseline: float) -> None:
    print(f"  {label:<44}{rate:>12,.0f} calls/s   ratio to in-memory {rate / baseline:8.3f}")


def run(url: str, quick: bool, processes: int, concurrency: int) -> None:
    single = Workload(calls=300 if quick else 5_000, concurrency=1, repeats=1 if quick else 3)
    concurrent = Workload(
        calls=600 if quick else 20_000, concurrency=concurrency, repeats=1 if quick else 3
    )
    in_memory = Workload(
        calls=2_000 if quick else 100_000, concurrency=1, repeats=1 if quick else 3
    )
    prefix = f"bench-{uuid.uuid4().hex[:8]}"
    print(f"Redis at {url}; {processes} processes, {concurrency} callers in flight per process")
    for hit in (True, False):
        name = "hit (live conversation)" if hit else "miss (new conversation)"
        baseline = asyncio.run(best_rate(None, prefix, hit=hit, workload=in_memory))
        print(name)
        report("in-memory store, 1 process", baseline, baseline)
        report(
            "Redis store, 1 process, 1 caller",
            asyncio.run(best_rate(url, prefix, hit=hit, workload=single)),
            baseline,
        )
        report(
            f"Redis store, 1 process, {concurrency} callers",
            asyncio.run(best_rate(url, prefix, hit=hit, workload=concurrent)),
            baseline,
        )
        report(
            f"Redis store, {processes} processes x {concurrency} callers",
            multi_process_rate(url, prefix, hit=hit, processes=processes, workload=concurrent),
            baseline,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run of a few seconds")
    parser.add_argument("--url", help="an existing Redis (default: start a private redis-server)")
    parser.add_argument("--processes", type=int, default=4)
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args()
    if args.url is not None:
        run(args.url, args.quick, args.processes, args.concurrency)
        return
    with private_redis_server() as url:
        run(url, args.quick, args.processes, args.concurrency)


if __name__ == "__main__":
    main()
