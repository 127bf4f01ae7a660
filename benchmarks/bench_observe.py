"""Overhead of ``@observe_legacy`` per call, against the same factory undecorated.

Run from the repository root:

    python benchmarks/bench_observe.py          # full run (about 15 s)
    python benchmarks/bench_observe.py --quick  # smoke run

Both loops call a legacy-shaped factory (builds a small object) from the same
call site, over 10,000 conversations (so most calls are rebuilds of a
conversation already seen, as in production); the loops are interleaved, best
of five each, in one run, timed in CPU time of the process (``time.process_time``:
time spent waiting for a CPU on a shared machine is not counted). It prints ns
per call for each, the difference (the observer's overhead per call; aim: under
2 µs) and the ratio.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import Any

from ctxmigrate.shim.observe import LegacyObserver, observe_legacy


class LegacyContext:
    # Weak references allowed, like the dataclasses legacy contexts are: the
    # observer counts live results with them (leak detection).
    __slots__ = ("__weakref__", "run_id", "thread_id", "user_id")

    def __init__(self, user_id: str, thread_id: str, run_id: str | None) -> None:
        self.user_id = user_id
        self.thread_id = thread_id
        self.run_id = run_id


def create_user_execution_context(
    user_id: str, thread_id: str, run_id: str | None = None, db_session: Any = None
) -> LegacyContext:
    return LegacyContext(user_id, thread_id, run_id)


def loop(factory: Callable[..., LegacyContext], threads: list[str], rounds: int) -> float:
    # CPU time of this process: time spent descheduled on a shared machine is not counted.
    start = time.process_time()
    for _ in range(rounds):
        for thread_id in threads:
            factory(user_id="user", thread_id=thread_id, run_id="run")
    return time.process_time() - start


def main(quick: bool) -> None:
    conversations = 1_000 if quick else 10_000
    rounds = 2 if quick else 20
    repeats = 2 if quick else 5
    threads = [f"thread-{index}" for index in range(conversations)]
    observer = LegacyObserver()
    observed = observe_legacy(observer=observer)(create_user_execution_context)
    calls = conversations * rounds
    plain_best = observed_best = float("inf")
    for _ in range(repeats):
        plain_best = min(plain_best, loop(create_user_execution_context, threads, rounds))
        observed_best = min(observed_best, loop(observed, threads, rounds))
    plain_ns = plain_best / calls * 1e9
    observed_ns = observed_best / calls * 1e9
    report = observer.report()
    print(f"calls per loop:            {calls:,} over {conversations:,} conversations")
    print(f"undecorated factory:       {plain_ns:,.0f} ns/call")
    print(f"@observe_legacy factory:   {observed_ns:,.0f} ns/call")
    print(f"overhead per call:         {observed_ns - plain_ns:,.0f} ns (aim: under 2,000 ns)")
    print(f"ratio observed / plain:    {observed_ns / plain_ns:.2f}x")
    print(f"recorded calls / rebuilt:  {report['calls']:,} / {report['rebuilt']:,}")
    print(f"results still alive:       {sum(observer.live_objects().values()):,}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="a small smoke run")
    main(parser.parse_args().quick)
