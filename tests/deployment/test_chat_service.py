"""examples/chat_service as deployed: uvicorn with 2 workers, Redis, a real websocket client.

Every test starts the service (``python -m examples.chat_service``) on loopback,
drives it with ``websockets`` and reads what Redis holds with a plain client.
Every loop has a bound (a count or a deadline), so a regression fails instead
of hanging.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from examples.chat_service.deployment import (
    RunningService,
    chat_message,
    run_service,
    send_on,
    send_once,
)
from tests.redis.conftest import RedisServer

pytestmark = [pytest.mark.redis, pytest.mark.slow]

KEY_PREFIX = "chat"
# How long connections_on_each_worker waits for the kernel to hand connections to every worker.
REACH_EVERY_WORKER_SECONDS = 30.0


def stored_record(redis_server: RedisServer, user_id: str, thread_id: str) -> dict[str, Any]:
    """The conversation's session record as Redis holds it (plain ids need no escaping)."""
    raw = redis_server.client().get(f"{KEY_PREFIX}:s:{user_id}:{thread_id}")
    assert raw is not None, f"no record for {user_id}/{thread_id}"
    record: dict[str, Any] = json.loads(raw)
    return record


def stored_ids(redis_server: RedisServer, user_id: str, thread_id: str) -> list[str]:
    state = stored_record(redis_server, user_id, thread_id)["conversation_state"]
    return [entry["id"] for entry in state.get("messages", [])]


async def connections_on_each_worker(
    service: RunningService, per_worker: int, workers: int = 2
) -> dict[int, list[ClientConnection]]:
    """Open connections until each worker holds ``per_worker`` of them.

    The kernel hands a new connection to whichever worker accepts first, and an
    idle worker often wins many in a row: so open them in concurrent batches,
    ask each connection which worker it reached (a message to a conversation of
    its own), keep what is needed and close the rest. The service answers its
    health check as soon as one worker serves: on a loaded machine the other
    may still be starting, so batches go on (a short pause apart) until a
    deadline rather than for a fixed count that a fast loop spends in a moment.
    """
    kept: dict[int, list[ClientConnection]] = {}
    deadline = time.monotonic() + REACH_EVERY_WORKER_SECONDS
    while time.monotonic() < deadline:
        batch = await asyncio.gather(
            *(connect(service.ws_url(), open_timeout=10) for _ in range(2 * per_worker))
        )
        replies = await asyncio.gather(
            *(send_on(c, chat_message("probe", f"p-{id(c)}")) for c in batch)
        )
        for connection, reply in zip(batch, replies, strict=True):
            assert reply["ok"], reply
            on_worker = kept.setdefault(reply["worker"], [])
            if len(on_worker) < per_worker:
                on_worker.append(connection)
            else:
                await connection.close()
        if len(kept) >= workers and all(len(c) == per_worker for c in kept.values()):
            return kept
        await asyncio.sleep(0.05)
    # Close what was kept, so the failure does not leak sockets into later tests.
    for connections in kept.values():
        for connection in connections:
            await connection.close()
    raise AssertionError(
        f"connections did not reach {workers} workers in {REACH_EVERY_WORKER_SECONDS} s: "
        f"{list(kept)}; "
        f"the supervisor's children: {service.child_pids()}\n{service.log()}"
    )


def test_one_run_id_per_conversation_across_workers(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    conversations = [("alice", "thread-1"), ("alice", "thread-2"), ("bob", "thread-1")]

    async def refused_then_served(service: RunningService) -> None:
        async with connect(service.ws_url(), open_timeout=10) as connection:
            await connection.send("not json")
            reply = json.loads(await asyncio.wait_for(connection.recv(), 30))
            assert reply["ok"] is False
            assert reply["error"].startswith("BadRequest: a message must be a JSON object")
            bad_id = chat_message("alice", "thread\n1")
            reply = await send_on(connection, bad_id)
            assert reply["ok"] is False and reply["message_id"] == bad_id["message_id"]
            assert reply["error"].startswith("InvalidSessionIdError: thread_id")
            # The connection stays open, and nothing was stored for either.
            assert (await send_on(connection, chat_message("zoe", "thread-1")))["ok"]

    async def legacy_forgets(service: RunningService) -> None:
        # The baseline handler, for contrast: a new context (and run_id) for
        # every message of one conversation, nothing kept.
        replies = [
            await send_once(service.ws_url("/ws/legacy"), chat_message("yann", "thread-1"))
            for _ in range(3)
        ]
        assert [reply["stored"] for reply in replies] == [1, 1, 1]
        assert len({reply["run_id"] for reply in replies}) == 3
        assert redis_server.client().get(f"{KEY_PREFIX}:s:yann:thread-1") is None

    async def drive(service: RunningService) -> dict[tuple[str, str], list[dict[str, Any]]]:
        await refused_then_served(service)
        await legacy_forgets(service)
        # Connections held on each worker, taken in turns (worker A, worker B,
        # worker A, ...): every message of a conversation reaches the other
        # worker than the one before. A new connection per message left it to
        # the kernel, which once gave all of 100 in a row to one worker.
        by_worker = await connections_on_each_worker(service, per_worker=3)
        connections = [c for pair in zip(*by_worker.values(), strict=True) for c in pair]
        replies: dict[tuple[str, str], list[dict[str, Any]]] = {c: [] for c in conversations}
        for user_id, thread_id in conversations:
            for connection in connections:
                message = chat_message(user_id, thread_id)
                replies[(user_id, thread_id)].append(await send_on(connection, message))
        for connection in connections:
            await connection.close()
        return replies

    with run_service(redis_server.url, log_dir=tmp_path, key_prefix=KEY_PREFIX) as service:
        replies = asyncio.run(drive(service))

    run_ids = {}
    for (user_id, thread_id), conversation in replies.items():
        assert all(reply["ok"] for reply in conversation), conversation
        assert len({reply["worker"] for reply in conversation}) == 2, "both workers served it"
        assert len({reply["run_id"] for reply in conversation}) == 1, conversation
        assert [reply["stored"] for reply in conversation] == list(range(1, len(conversation) + 1))
        record = stored_record(redis_server, user_id, thread_id)
        assert record["run_id"] == conversation[0]["run_id"]
        assert stored_ids(redis_server, user_id, thread_id) == [
            reply["message_id"] for reply in conversation
        ]
        run_ids[(user_id, thread_id)] = record["run_id"]
    assert len(set(run_ids.values())) == len(conversations), "each conversation its own run"


@pytest.mark.parametrize("spacing", [0.0, 0.02], ids=["at-once", "20ms-apart"])
def test_burst_of_concurrent_messages_to_one_conversation_stores_each_exactly_once(
    redis_server: RedisServer, tmp_path: Path, spacing: float
) -> None:
    burst = 20

    async def send_after(delay: float, connection: ClientConnection, message: Any) -> Any:
        await asyncio.sleep(delay)
        return await send_on(connection, message)

    async def drive(service: RunningService) -> list[dict[str, Any]]:
        by_worker = await connections_on_each_worker(service, per_worker=burst // 2)
        # Alternating workers: worker A, worker B, worker A, ...
        connections = [c for pair in zip(*by_worker.values(), strict=True) for c in pair]
        messages = [chat_message("carol", "thread-1", f"message {n}") for n in range(burst)]
        # All at once, or 20 ms apart (the pattern that stored only 14 to 18 of
        # 20 through the old get + save handler); each handler reads the conversation, waits
        # 50 ms (the agent), then writes.
        replies = await asyncio.gather(
            *(
                send_after(index * spacing, connection, message)
                for index, (connection, message) in enumerate(
                    zip(connections, messages, strict=True)
                )
            )
        )
        for connection in connections:
            await connection.close()
        return replies

    with run_service(
        redis_server.url,
        log_dir=tmp_path,
        key_prefix=KEY_PREFIX,
        agent_delay=0.05,
        busy_timeout=60.0,
    ) as service:
        replies = asyncio.run(drive(service))

    assert [reply for reply in replies if not reply["ok"]] == []
    assert len({reply["worker"] for reply in replies}) == 2, "the burst reached both workers"
    assert len({reply["run_id"] for reply in replies}) == 1
    # Serialised: each acknowledgement saw a different conversation length.
    assert sorted(reply["stored"] for reply in replies) == list(range(1, burst + 1))
    stored = stored_ids(redis_server, "carol", "thread-1")
    assert Counter(stored) == Counter(reply["message_id"] for reply in replies)
    assert len(stored) == burst
    # Stored in the order the acknowledgements counted.
    by_position = sorted(replies, key=lambda reply: reply["stored"])
    assert stored == [reply["message_id"] for reply in by_position]


def test_redis_restart_gives_clear_errors_and_loses_nothing_acknowledged(
    aof_redis: RedisServer, tmp_path: Path
) -> None:
    conversations = [("dave", "thread-1"), ("dave", "thread-2"), ("erin", "thread-1")]
    acked: dict[tuple[str, str], list[str]] = {c: [] for c in conversations}
    sent: dict[tuple[str, str], list[str]] = {c: [] for c in conversations}
    # (phase, error text) of every message answered with an error
    errors: dict[tuple[str, str], list[tuple[str, str]]] = {c: [] for c in conversations}
    workers_before: set[int] = set()
    workers_after: set[int] = set()
    phase = {"name": "before"}
    deadline = time.monotonic() + 45

    async def sender(
        service: RunningService, conversation: tuple[str, str], persistent: bool
    ) -> None:
        user_id, thread_id = conversation
        async with connect(service.ws_url(), open_timeout=10) as connection:
            for _ in range(2000):
                if phase["name"] == "done" or time.monotonic() > deadline:
                    return
                message = chat_message(user_id, thread_id)
                sent[conversation].append(message["message_id"])
                if persistent:
                    # One connection through the whole outage: it stays open.
                    reply = await send_on(connection, message)
                else:
                    reply = await send_once(service.ws_url(), message)
                if reply["ok"]:
                    acked[conversation].append(message["message_id"])
                    (workers_before if phase["name"] == "before" else workers_after).add(
                        reply["worker"]
                    )
                else:
                    errors[conversation].append((phase["name"], reply["error"]))
                    await asyncio.sleep(0.02)

    async def until(condition: Any, what: str) -> None:
        while not condition():
            assert time.monotonic() < deadline, f"timed out waiting for {what}"
            await asyncio.sleep(0.02)

    async def drive(service: RunningService) -> None:
        senders = [
            asyncio.create_task(sender(service, conversation, persistent=index == 0))
            for index, conversation in enumerate(conversations)
        ]
        try:
            await until(lambda: all(len(a) >= 5 for a in acked.values()), "first acks")
            acked_before_kill = {c: len(a) for c, a in acked.items()}
            aof_redis.kill()
            phase["name"] = "down"
            await until(lambda: all(len(e) >= 2 for e in errors.values()), "errors")
            # The readiness probe says so too, naming the problem.
            status, body = await asyncio.to_thread(service.health)
            assert status == 503, body
            assert body["error"].startswith("SessionStoreUnavailableError: "), body
            # Nothing was acknowledged while Redis was down.
            assert all(len(acked[c]) <= acked_before_kill[c] + 1 for c in conversations)
            aof_redis.start()
            phase["name"] = "after"
            marks = {c: len(a) for c, a in acked.items()}
            await until(
                lambda: all(len(acked[c]) >= marks[c] + 5 for c in conversations), "recovery"
            )
            assert (await asyncio.to_thread(service.health))[0] == 200
            phase["name"] = "done"
            await asyncio.gather(*senders)
        finally:
            for task in senders:
                task.cancel()

    with run_service(
        aof_redis.url, log_dir=tmp_path, key_prefix=KEY_PREFIX, busy_timeout=1.0, lease_ttl=2.0
    ) as service:
        processes = service.child_pids()
        asyncio.run(drive(service))
        assert service.process.poll() is None
        # Recovered by the same worker processes: none was restarted or replaced.
        assert service.child_pids() == processes
        assert workers_before | workers_after <= processes

    for conversation in conversations:
        assert errors[conversation], conversation
        assert any(phase == "down" for phase, _ in errors[conversation])
        for phase, error in errors[conversation]:
            if error.startswith("ConversationBusyError: ") and phase == "after":
                # A lease taken just before the kill outlives the restart
                # (AOF) until it expires: a clear "busy", then service again.
                continue
            assert error.startswith("SessionStoreUnavailableError: Redis session store at "), error
            assert aof_redis.url in error
        stored = stored_ids(aof_redis, *conversation)
        assert len(stored) == len(set(stored)), "nothing stored twice"
        assert set(acked[conversation]) <= set(stored), "an acknowledged message was lost"
        assert set(stored) <= set(sent[conversation])
        # Acknowledged in the order they are stored.
        assert [m for m in stored if m in set(acked[conversation])] == acked[conversation]
    assert workers_after, "served again after the restart"


def test_sigkilled_worker_is_replaced_and_the_others_carry_on(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    acked: list[str] = []
    run_ids: set[str] = set()

    async def send(connection: ClientConnection) -> dict[str, Any]:
        message = chat_message("frank", "thread-1")
        reply = await send_on(connection, message)
        assert reply["ok"], reply
        acked.append(message["message_id"])
        run_ids.add(reply["run_id"])
        return reply

    async def connection_on_another_worker(
        service: RunningService, than: set[int]
    ) -> tuple[ClientConnection, int]:
        # Batches of concurrent connections (an idle worker tends to win the
        # accepts one at a time), until a deadline: a replacement worker needs
        # a second or so to start.
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            batch = await asyncio.gather(
                *(connect(service.ws_url(), open_timeout=10) for _ in range(4))
            )
            found: tuple[ClientConnection, int] | None = None
            for connection in batch:
                worker: int = (await send(connection))["worker"]
                if found is None and worker not in than:
                    found = (connection, worker)
                else:
                    await connection.close()
            if found is not None:
                return found
            await asyncio.sleep(0.05)
        raise AssertionError(f"no connection reached a worker other than {than}")

    async def drive(service: RunningService) -> None:
        survivor_connection, survivor = await connection_on_another_worker(service, set())
        victim_connection, victim = await connection_on_another_worker(service, {survivor})

        os.kill(victim, signal.SIGKILL)

        # The victim's client sees its connection drop (its message is not acknowledged)...
        with pytest.raises(ConnectionClosed):
            await send_on(victim_connection, chat_message("frank", "thread-1"), reply_timeout=10)
        # ...the survivor's connection carries on, on the same worker...
        for _ in range(5):
            assert (await send(survivor_connection))["worker"] == survivor
        # ...and uvicorn's supervisor starts a replacement that serves new connections.
        replacement_connection, replacement = await connection_on_another_worker(
            service, {survivor, victim}
        )
        assert (await send(survivor_connection))["worker"] == survivor
        assert (await send(replacement_connection))["worker"] == replacement
        for connection in (survivor_connection, replacement_connection):
            await connection.close()
        with pytest.raises(ProcessLookupError):
            os.kill(victim, 0)  # gone, and reaped by the supervisor
        children = service.child_pids()
        assert survivor in children and replacement in children and victim not in children

    with run_service(redis_server.url, log_dir=tmp_path, key_prefix=KEY_PREFIX) as service:
        asyncio.run(drive(service))
        assert service.process.poll() is None, "the supervisor kept running"

    assert len(run_ids) == 1, "the conversation survived the worker"
    assert stored_ids(redis_server, "frank", "thread-1") == acked


def test_worker_killed_mid_message_loses_only_that_message_and_its_lease_expires(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    acked: list[str] = []
    lease = redis_server.client()

    async def drive(service: RunningService) -> None:
        first = chat_message("grace", "thread-1")
        assert (await send_once(service.ws_url(), first))["ok"]
        acked.append(first["message_id"])
        connections = {
            worker: on_worker[0]
            for worker, on_worker in (await connections_on_each_worker(service, 1)).items()
        }
        victim, survivor = connections
        # The victim starts a message (it takes the lease, then the agent works
        # for the agent delay) and dies in the middle of it.
        doomed = chat_message("grace", "thread-1", "never acknowledged")
        await connections[victim].send(json.dumps(doomed))
        for _ in range(500):
            if lease.exists(f"{KEY_PREFIX}:l:grace:thread-1"):
                break
            await asyncio.sleep(0.01)
        else:
            raise AssertionError("the victim's message never took the conversation's lease")
        # Held: a message of the same conversation on the other worker waits.
        waiting = asyncio.create_task(
            send_on(connections[survivor], chat_message("grace", "thread-1"))
        )
        os.kill(victim, signal.SIGKILL)
        with pytest.raises(ConnectionClosed):
            await asyncio.wait_for(connections[victim].recv(), 10)
        # The dead holder never renews its lease: it expires, the waiter gets
        # the conversation, with the state as last saved.
        reply = await waiting
        assert reply["ok"] and reply["worker"] == survivor, reply
        assert reply["stored"] == 2
        acked.append(reply["message_id"])
        await connections[survivor].close()

    with run_service(
        redis_server.url,
        log_dir=tmp_path,
        key_prefix=KEY_PREFIX,
        agent_delay=1.5,
        busy_timeout=30.0,
        lease_ttl=2.0,
    ) as service:
        asyncio.run(drive(service))

    assert stored_ids(redis_server, "grace", "thread-1") == acked
