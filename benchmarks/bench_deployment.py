"""The chat service as deployed: conversation() against the legacy create-per-message handler.

Run from the repository root (needs redis-server on PATH, see scripts/ensure-redis,
or an existing server with --url):

    python benchmarks/bench_deployment.py            # full run (about a minute on 2 cores)
    python benchmarks/bench_deployment.py --quick    # smoke run (seconds)

It starts ``examples/chat_service`` (``python -m examples.chat_service``, uvicorn
with ``--workers`` processes) against a redis-server of its own (unix socket, no
persistence) and drives it from this process with the ``websockets`` client:
``--clients`` clients at once, each in its own conversation, each sending
``--messages`` messages one after another. Two handlers:

- legacy (``/ws/legacy``): a fresh context per message, no Redis, nothing
  persisted: the pattern being migrated away from, and the baseline;
- conversation() (``/ws``): ``async with manager.conversation(user, thread)``,
  the conversation's state read and saved in Redis under a lease.

each with one persistent connection per client, and with a new connection per
message. It prints messages/s, p50 and p99 latency (send to reply, the
connection's opening included when it is new), and the ratio of each
conversation() figure to the legacy figure of the same connection mode,
measured in the same run. Then the Redis commands per message: top-level
commands as the server received them (MONITOR: one script call is one round
trip), and every command including those run inside scripts (INFO
commandstats).

The client, the workers and redis-server share the machine's cores; the
ratios are what to compare. Before measuring, every conversation has one
message already (the measured messages are those of ongoing conversations).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import redis

REPOSITORY_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPOSITORY_ROOT))  # examples/ is not an installed package

from websockets.asyncio.client import connect  # noqa: E402

from examples.chat_service.deployment import (  # noqa: E402
    RedisCommandCounter,
    RunningService,
    chat_message,
    run_service,
    send_on,
    send_once,
)

HANDLERS = (("legacy", "/ws/legacy"), ("conversation()", "/ws"))
MODES = ("persistent connection", "new connection per message")


@dataclass(frozen=True)
class Load:
    clients: int
    messages: int
    repeats: int


@dataclass(frozen=True)
class Figures:
    messages_per_second: float
    p50_ms: float
    p99_ms: float


def percentile(sorted_values: list[float], fraction: float) -> float:
    index = min(len(sorted_values) - 1, round(fraction * (len(sorted_values) - 1)))
    return sorted_values[index]


async def one_run(service: RunningService, path: str, mode: str, load: Load) -> Figures:
    url = service.ws_url(path)
    tag = uuid.uuid4().hex[:8]
    latencies: list[float] = []

    warmed: set[int] = set()

    async def client(index: int) -> None:
        user_id, thread_id = f"u{index}-{tag}", "thread"
        # The conversation's first message (session created) is not measured.
        warm = await send_once(url, chat_message(user_id, thread_id))
        assert warm["ok"], warm
        warmed.add(index)
        await ready.wait()
        if mode == "persistent connection":
            async with connect(url, open_timeout=30) as connection:
                for _ in range(load.messages):
                    started = time.perf_counter()
                    reply = await send_on(connection, chat_message(user_id, thread_id))
                    latencies.append(time.perf_counter() - started)
                    assert reply["ok"], reply
        else:
            for _ in range(load.messages):
                started = time.perf_counter()
                reply = await send_once(url, chat_message(user_id, thread_id))
                latencies.append(time.perf_counter() - started)
                assert reply["ok"], reply

    ready = asyncio.Event()
    tasks = [asyncio.create_task(client(index)) for index in range(load.clients)]
    # Start the clock once every conversation exists.
    deadline = time.monotonic() + 60
    while len(warmed) < load.clients:
        if any(task.done() for task in tasks) or time.monotonic() > deadline:
            await asyncio.gather(*tasks)  # raises the client's error
            raise RuntimeError("the clients did not warm up within 60 s")
        await asyncio.sleep(0.01)
    started = time.perf_counter()
    ready.set()
    await asyncio.gather(*tasks)
    elapsed = time.perf_counter() - started
    latencies.sort()
    return Figures(
        messages_per_second=len(latencies) / elapsed,
        p50_ms=percentile(latencies, 0.50) * 1000,
        p99_ms=percentile(latencies, 0.99) * 1000,
    )


def best_of_interleaved(service: RunningService, mode: str, load: Load) -> dict[str, Figures]:
    """Per handler, the run with the highest throughput of ``load.repeats``.

    The handlers take turns (legacy, conversation(), legacy, ...) so that a
    change in what else the machine runs affects both alike.
    """
    runs: dict[str, list[Figures]] = {label: [] for label, _ in HANDLERS}
    for _ in range(load.repeats):
        for label, path in HANDLERS:
            runs[label].append(asyncio.run(one_run(service, path, mode, load)))
    return {
        label: max(figures, key=lambda f: f.messages_per_second) for label, figures in runs.items()
    }


def commands_per_message(
    service: RunningService, redis_url: str, path: str, messages: int
) -> tuple[Counter[str], Counter[str]]:
    """Top-level commands (MONITOR) and all commands (commandstats) per message, by name.

    One conversation, already started, one persistent connection: the message
    path of an ongoing conversation.
    """
    user_id, thread_id = f"count-{uuid.uuid4().hex[:8]}", "thread"

    async def send(count: int) -> None:
        async with connect(service.ws_url(path), open_timeout=30) as connection:
            for _ in range(count):
                reply = await send_on(connection, chat_message(user_id, thread_id))
                assert reply["ok"], reply

    asyncio.run(send(1))
    client = redis.Redis.from_url(redis_url, socket_timeout=30)
    try:
        client.config_resetstat()
        with RedisCommandCounter(redis_url) as counter:
            asyncio.run(send(messages))
            top_level = counter.stop()
        all_commands = Counter(
            {
                name.removeprefix("cmdstat_").upper(): stats["calls"]
                for name, stats in client.info("commandstats").items()
            }
        )
    finally:
        client.close()
    # The counting itself: MONITOR, CONFIG RESETSTAT, the end marker, this INFO.
    for name in ("MONITOR", "CONFIG|RESETSTAT", "ECHO", "INFO"):
        all_commands.pop(name, None)
    # A new pooled connection (after a worker's first use) says HELLO once:
    # connection set-up, not part of the message path.
    for counts in (top_level, all_commands):
        for name in ("HELLO", "CLIENT|SETINFO", "CLIENT"):
            counts.pop(name, None)
    return top_level, all_commands


def describe(counts: Counter[str], messages: int) -> str:
    total = sum(counts.values()) / messages
    parts = ", ".join(
        f"{name} {calls / messages:.2f}" for name, calls in sorted(counts.items()) if calls
    )
    return f"{total:.2f}" + (f" ({parts})" if parts else "")


@contextmanager
def private_redis_server() -> Iterator[str]:
    binary = shutil.which("redis-server")
    if binary is None:
        raise SystemExit("redis-server is not on PATH: run scripts/ensure-redis, or pass --url")
    with tempfile.TemporaryDirectory(prefix="ctxd-", dir="/tmp") as directory:
        socket_path = Path(directory) / "redis.sock"
        command = [binary, "--port", "0", "--unixsocket", str(socket_path)]
        command += ["--unixsocketperm", "700", "--save", "", "--appendonly", "no"]
        command += ["--daemonize", "no", "--dir", directory]
        command += ["--logfile", str(Path(directory) / "redis.log")]
        server = subprocess.Popen(command, stdin=subprocess.DEVNULL)
        try:
            url = f"unix://{socket_path}"
            wait_until_ready(url)
            yield url
        finally:
            server.kill()
            server.wait()


def wait_until_ready(url: str) -> None:
    deadline = time.monotonic() + 10
    while True:
        client = redis.Redis.from_url(url, socket_timeout=1)
        try:
            client.ping()
            return
        except redis.RedisError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.01)
        finally:
            client.close()


def server_version(url: str) -> str:
    client = redis.Redis.from_url(url, socket_timeout=5)
    try:
        return str(client.info("server")["redis_version"])
    finally:
        client.close()


def run(
    url: str, *, workers: int, load: Load, agent_delay: float, count_messages: int | None
) -> None:
    print(
        f"agent delay {agent_delay * 1000:g} ms: {load.clients} clients at once, each its own "
        f"conversation, {load.messages} messages each; best of {load.repeats}"
    )
    with (
        tempfile.TemporaryDirectory(prefix="ctxd-log-") as log_dir,
        run_service(
            url,
            log_dir=Path(log_dir),
            workers=workers,
            key_prefix=f"bench-{uuid.uuid4().hex[:8]}",
            agent_delay=agent_delay,
            busy_timeout=60.0,
        ) as service,
    ):
        print(
            f"  {'handler, connections':<52}{'msgs/s':>9}{'p50 ms':>9}{'p99 ms':>9}"
            f"   ratio to legacy"
        )
        for mode in MODES:
            best = best_of_interleaved(service, mode, load)
            legacy = best[HANDLERS[0][0]]
            for label, _ in HANDLERS:
                figures = best[label]
                ratio = figures.messages_per_second / legacy.messages_per_second
                print(
                    f"  {label + ', ' + mode:<52}{figures.messages_per_second:>9,.0f}"
                    f"{figures.p50_ms:>9.2f}{figures.p99_ms:>9.2f}   {ratio:.3f}"
                )
        print()
        if count_messages is None:
            return
        print(f"Redis commands per message ({count_messages} messages of one conversation):")
        for label, path in HANDLERS:
            top_level, all_commands = commands_per_message(service, url, path, count_messages)
            print(f"  {label:<16} top-level (MONITOR): {describe(top_level, count_messages)}")
            print(
                f"  {'':<16} inside scripts included (commandstats): "
                f"{describe(all_commands, count_messages)}"
            )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--quick", action="store_true", help="tiny parameters (smoke run)")
    parser.add_argument("--url", help="an existing Redis (default: start a private one)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--clients", type=int, default=None)
    parser.add_argument("--messages", type=int, default=None)
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument(
        "--agent-delays",
        default="0,0.05",
        help="simulated agent work per message, seconds, one service per value (%(default)s)",
    )
    arguments = parser.parse_args(argv)
    load = Load(
        clients=arguments.clients or (4 if arguments.quick else 32),
        messages=arguments.messages or (5 if arguments.quick else 100),
        repeats=arguments.repeats or (1 if arguments.quick else 3),
    )
    try:
        delays = [float(text) for text in arguments.agent_delays.split(",")]
    except ValueError:
        parser.error(f"--agent-delays: numbers separated by commas, not {arguments.agent_delays}")
    if not delays or any(not delay >= 0 for delay in delays):
        parser.error("--agent-delays must be >= 0")
    count_messages = 10 if arguments.quick else 200
    with contextlib.ExitStack() as stack:
        url = arguments.url or stack.enter_context(private_redis_server())
        print(
            f"chat service: {arguments.workers} uvicorn workers, Redis {server_version(url)}, "
            f"client in this process"
        )
        print()
        for index, delay in enumerate(delays):
            run(
                url,
                workers=arguments.workers,
                load=load,
                agent_delay=delay,
                # The round trips do not depend on the delay: counted once.
                count_messages=count_messages if index == len(delays) - 1 else None,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
