"""Redis down, restarted, silent or unreachable: a clear error, then recovery; no split brain."""

from __future__ import annotations

import asyncio
import socket
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

from ctxmigrate.shim import UserSessionManager
from ctxmigrate.shim.errors import SessionError
from ctxmigrate.shim.redis_store import (
    RedisSessionStore,
    SessionStoreUnavailableError,
    public_address,
)
from ctxmigrate.shim.store import SessionKey, SessionPolicy, SessionRecord

from .conftest import RedisServer

NOW = 1_700_000_000.0
POLICY = SessionPolicy(idle_timeout=60.0, max_sessions=None, max_sessions_per_user=None)
KEY = SessionKey("alice", "thread-1")


def candidate(run_id: str) -> SessionRecord:
    return SessionRecord(KEY, run_id, None, NOW, NOW)


@pytest.mark.redis
def test_redis_killed_gives_a_clear_error_and_the_store_recovers_after_restart(
    restartable_redis: RedisServer,
) -> None:
    async def scenario() -> None:
        async with RedisSessionStore(
            restartable_redis.url, key_prefix="faults", socket_timeout=1.0, retries=1
        ) as store:
            before = await store.get_or_create(candidate("run-before"), now=NOW, policy=POLICY)
            assert before.created

            restartable_redis.kill()
            with pytest.raises(SessionStoreUnavailableError) as raised:
                await store.get_or_create(candidate("run-during"), now=NOW, policy=POLICY)
            assert restartable_redis.url in str(raised.value)
            assert "get_or_create" in str(raised.value)
            with pytest.raises(SessionStoreUnavailableError):
                await store.touch(KEY, now=NOW, policy=POLICY)
            with pytest.raises(SessionStoreUnavailableError):
                await store.ping()

            restartable_redis.start()
            # Same store object, no reconnect call: the pool reconnects by itself.
            # The server kept nothing (no persistence), so this is a new session.
            after = await store.get_or_create(candidate("run-after"), now=NOW, policy=POLICY)
            assert after.created and after.record.run_id == "run-after"
            touched = await store.touch(KEY, now=NOW, policy=POLICY)
            assert touched is not None and touched.run_id == "run-after"

    asyncio.run(scenario())


@pytest.mark.redis
def test_manager_on_a_dead_redis_raises_instead_of_serving_a_local_session(
    restartable_redis: RedisServer,
) -> None:
    async def scenario() -> None:
        async with RedisSessionStore(restartable_redis.url, retries=0) as store:
            manager = UserSessionManager(store=store)
            context = await manager.get_or_create_user_session("alice", "thread-1")
            restartable_redis.kill()
            # A live object exists here, but another worker could not see it:
            # handing it out while Redis is down would be a split brain.
            with pytest.raises(SessionStoreUnavailableError):
                await manager.get_or_create_user_session("alice", "thread-1")
            with pytest.raises(SessionStoreUnavailableError):
                await manager.get_or_create_user_session("alice", "thread-2")
            assert isinstance(context.run_id, str)
            await manager.aclose()

    asyncio.run(scenario())


@pytest.mark.redis
def test_a_read_only_server_after_failover_gives_the_clear_error(
    restartable_redis: RedisServer,
) -> None:
    async def scenario() -> None:
        async with RedisSessionStore(restartable_redis.url, retries=0) as store:
            await store.get_or_create(candidate("run-1"), now=NOW, policy=POLICY)
            # What a failover does to the old primary: it becomes a read-only replica.
            restartable_redis.client().replicaof("127.0.0.1", "1")
            with pytest.raises(SessionStoreUnavailableError, match="ReadOnlyError"):
                await store.touch(KEY, now=NOW, policy=POLICY)
            # Promoted again (its primary never answered, so it kept its data).
            restartable_redis.client().replicaof("NO", "ONE")
            touched = await store.touch(KEY, now=NOW, policy=POLICY)
            assert touched is not None and touched.run_id == "run-1"

    asyncio.run(scenario())


def test_nothing_listening_gives_the_error_naming_the_address() -> None:
    async def scenario() -> None:
        with tempfile.TemporaryDirectory(prefix="ctxr-", dir="/tmp") as directory:
            url = f"unix://{directory}/nobody.sock"
            async with RedisSessionStore(url, retries=0) as store:
                with pytest.raises(SessionStoreUnavailableError, match=r"nobody\.sock") as raised:
                    await store.touch(KEY, now=NOW, policy=POLICY)
        error = raised.value
        assert isinstance(error, SessionError) and isinstance(error, ConnectionError)
        assert error.address == url and error.operation == "touch"
        # redis-py's own message ends in a full stop; ours must not add a second one.
        assert ".." not in str(error)
        assert ". Sessions are not served from a local fallback" in str(error)

    asyncio.run(scenario())


@pytest.mark.parametrize("cause", ["Connection refused.", "Connection refused"])
def test_unavailable_message_has_one_full_stop_after_the_cause(cause: str) -> None:
    error = SessionStoreUnavailableError("redis://h:6391", "touch", OSError(cause))
    assert "OSError: Connection refused. Sessions are not served" in str(error)


def test_constructing_the_store_warns_nothing_on_the_installed_redis_py() -> None:
    """redis-py 8.2 warns when a synchronous Retry reaches the asyncio pool.

    The suite runs with warnings as errors (pyproject's filterwarnings); this
    test says so on its own, so an application under ``-W error`` is covered
    whatever the suite's configuration becomes.
    """

    async def scenario() -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            store = RedisSessionStore("redis://127.0.0.1:1/0", retries=3)
            await store.aclose()

    asyncio.run(scenario())


@pytest.fixture
def silent_server() -> Iterator[str]:
    """A unix socket that takes connections and never answers: a hung Redis.

    Nobody calls accept(): the kernel completes connections into the listen
    backlog, so the client connects, sends its command and waits in vain.
    """
    with tempfile.TemporaryDirectory(prefix="ctxr-", dir="/tmp") as directory:
        path = Path(directory) / "silent.sock"
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as listener:
            listener.bind(str(path))
            listener.listen(16)
            yield f"unix://{path}"


def test_a_server_that_does_not_answer_times_out_with_the_clear_error(silent_server: str) -> None:
    async def scenario() -> None:
        async with RedisSessionStore(silent_server, socket_timeout=0.2, retries=0) as store:
            with pytest.raises(SessionStoreUnavailableError, match=r"silent\.sock.*Timeout"):
                await store.get_or_create(candidate("run-1"), now=NOW, policy=POLICY)

    asyncio.run(scenario())


@pytest.mark.parametrize(
    ("url", "address"),
    [
        ("redis://:s3cret@cache.internal:6380/2", "redis://cache.internal:6380/2"),
        ("rediss://app:s3cret@cache.internal/0", "rediss://cache.internal:6379/0"),
        ("redis://localhost", "redis://localhost:6379/0"),
        ("unix:///run/redis.sock?db=1", "unix:///run/redis.sock"),
    ],
)
def test_address_in_errors_never_carries_credentials(url: str, address: str) -> None:
    assert public_address(url) == address
