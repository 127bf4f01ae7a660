"""RedisSessionStore against a real redis-server: the SessionStore contract and its guarantees."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import pytest

from ctxmigrate.shim.errors import StateConflictError
from ctxmigrate.shim.redis_store import (
    RECORD_REJECTED_EVENT,
    RecordEncodingError,
    RedisSessionStore,
    encode_record,
)
from ctxmigrate.shim.store import (
    Removal,
    RemovalReason,
    SessionKey,
    SessionPolicy,
    SessionRecord,
)

from .conftest import RedisServer
from .session_worker import increment_count

pytestmark = pytest.mark.redis

T = TypeVar("T")

NOW = 1_700_000_000.0
POLICY = SessionPolicy(idle_timeout=60.0, max_sessions=None, max_sessions_per_user=None)
KEY = SessionKey("alice", "thread-1")


def run_with_store(
    server: RedisServer,
    prefix: str,
    body: Callable[[RedisSessionStore], Awaitable[T]],
    **options: Any,
) -> T:
    async def main() -> T:
        async with RedisSessionStore(server.url, key_prefix=prefix, **options) as store:
            return await body(store)

    return asyncio.run(main())


def candidate(key: SessionKey = KEY, run_id: str = "run-1", now: float = NOW) -> SessionRecord:
    return SessionRecord(key, run_id, "ws-1", now, now)


def keys_under(server: RedisServer, prefix: str) -> list[bytes]:
    return sorted(server.client().scan_iter(match=f"{prefix}:*"))


# -- get_or_create / touch ---------------------------------------------------------------------


def test_first_get_or_create_stores_the_candidate_and_later_calls_return_it(
    redis_server: RedisServer, key_prefix: str
) -> None:
    async def body(store: RedisSessionStore) -> None:
        first = await store.get_or_create(candidate(run_id="run-1"), now=NOW, policy=POLICY)
        second = await store.get_or_create(candidate(run_id="run-2"), now=NOW + 1, policy=POLICY)
        assert first.created and not second.created
        assert second.record.run_id == "run-1"
        assert second.record.websocket_connection_id == "ws-1"
        assert second.record.created_at == NOW
        assert second.record.last_activity == NOW + 1
        assert second.record.key == KEY

    run_with_store(redis_server, key_prefix, body)


def test_touch_never_creates_a_record(redis_server: RedisServer, key_prefix: str) -> None:
    async def body(store: RedisSessionStore) -> None:
        assert await store.touch(KEY, now=NOW, policy=POLICY) is None

    run_with_store(redis_server, key_prefix, body)
    assert keys_under(redis_server, key_prefix) == []


def test_touch_refreshes_last_activity_and_the_redis_ttl(
    redis_server: RedisServer, key_prefix: str
) -> None:
    redis_key = f"{key_prefix}:s:alice:thread-1"

    async def body(store: RedisSessionStore) -> SessionRecord | None:
        await store.get_or_create(candidate(), now=NOW, policy=POLICY)
        # Pretend the TTL nearly ran out, without waiting for it.
        redis_server.client().pexpire(redis_key, 50)
        return await store.touch(KEY, now=NOW + 30, policy=POLICY)

    touched = run_with_store(redis_server, key_prefix, body)
    assert touched is not None and touched.last_activity == NOW + 30
    assert redis_server.client().pttl(redis_key) > 50_000


def test_get_or_create_hit_refreshes_the_redis_ttl(
    redis_server: RedisServer, key_prefix: str
) -> None:
    redis_key = f"{key_prefix}:s:alice:thread-1"

    async def body(store: RedisSessionStore) -> None:
        await store.get_or_create(candidate(), now=NOW, policy=POLICY)
        redis_server.client().pexpire(redis_key, 50)
        await store.get_or_create(candidate(run_id="other"), now=NOW + 1, policy=POLICY)

    run_with_store(redis_server, key_prefix, body)
    assert redis_server.client().pttl(redis_key) > 50_000


def test_record_idle_for_the_timeout_is_absent_and_removed(
    redis_server: RedisServer, key_prefix: str
) -> None:
    async def body(store: RedisSessionStore) -> None:
        await store.get_or_create(candidate(), now=NOW, policy=POLICY)
        assert await store.touch(KEY, now=NOW + 59.9, policy=POLICY) is not None
        # Sliding expiry: idle is counted from the last access, at NOW + 59.9.
        assert await store.touch(KEY, now=NOW + 119.9, policy=POLICY) is None

    run_with_store(redis_server, key_prefix, body)
    assert keys_under(redis_server, key_prefix) == []


def test_get_or_create_replaces_an_idle_record_and_reports_it_expired(
    redis_server: RedisServer, key_prefix: str
) -> None:
    async def body(store: RedisSessionStore) -> None:
        await store.get_or_create(candidate(run_id="old"), now=NOW, policy=POLICY)
        outcome = await store.get_or_create(candidate(run_id="new"), now=NOW + 60, policy=POLICY)
        assert outcome.created
        assert outcome.record.run_id == "new"
        assert outcome.removed == (Removal(KEY, RemovalReason.EXPIRED),)

    run_with_store(redis_server, key_prefix, body)


def test_ids_with_the_separator_stay_separate_sessions_on_the_server(
    redis_server: RedisServer, key_prefix: str
) -> None:
    async def body(store: RedisSessionStore) -> None:
        one = SessionKey("a:b", "c")
        other = SessionKey("a", "b:c")
        await store.get_or_create(candidate(one, run_id="run-ab"), now=NOW, policy=POLICY)
        outcome = await store.get_or_create(
            candidate(other, run_id="run-a"), now=NOW, policy=POLICY
        )
        assert outcome.created
        touched = await store.touch(one, now=NOW, policy=POLICY)
        assert touched is not None and touched.run_id == "run-ab"

    run_with_store(redis_server, key_prefix, body)


def test_unicode_ids_round_trip(redis_server: RedisServer, key_prefix: str) -> None:
    key = SessionKey("ünïcødé 用户", "thread/😀")

    async def body(store: RedisSessionStore) -> SessionRecord | None:
        await store.get_or_create(candidate(key), now=NOW, policy=POLICY)
        return await store.touch(key, now=NOW, policy=POLICY)

    touched = run_with_store(redis_server, key_prefix, body)
    assert touched is not None and touched.key == key


def test_prefixes_separate_applications(redis_server: RedisServer, key_prefix: str) -> None:
    async def body(store: RedisSessionStore) -> None:
        await store.get_or_create(candidate(), now=NOW, policy=POLICY)

    run_with_store(redis_server, key_prefix + "-a", body)
    assert keys_under(redis_server, key_prefix + "-b") == []
    assert keys_under(redis_server, key_prefix + "-a") != []


# -- expiry on every key -----------------------------------------------------------------------


def test_every_key_the_store_writes_has_an_expiry(
    redis_server: RedisServer, key_prefix: str
) -> None:
    capped = SessionPolicy(idle_timeout=60.0, max_sessions=6, max_sessions_per_user=3)

    async def body(store: RedisSessionStore) -> None:
        for user in ("u1", "u2", "u3"):
            for thread in range(4):
                key = SessionKey(user, f"t{thread}")
                await store.get_or_create(candidate(key), now=NOW + thread, policy=capped)
                await store.touch(key, now=NOW + thread, policy=capped)
                await store.save_state(
                    key, {"n": thread}, expected_version=0, now=NOW + thread, policy=capped
                )
        await store.delete(SessionKey("u3", "t3"))

    run_with_store(redis_server, key_prefix, body)
    client = redis_server.client()
    keys = keys_under(redis_server, key_prefix)
    assert keys, "the scenario wrote nothing"
    assert {key: client.pttl(key) for key in keys if client.pttl(key) <= 0} == {}


# -- conversation_state --------------------------------------------------------------------------


def test_save_state_is_compare_and_set_on_version(
    redis_server: RedisServer, key_prefix: str
) -> None:
    async def body(store: RedisSessionStore) -> None:
        await store.get_or_create(candidate(), now=NOW, policy=POLICY)
        saved = await store.save_state(
            KEY, {"turns": ["hi"], "empty": []}, expected_version=0, now=NOW + 1, policy=POLICY
        )
        assert saved is not None
        assert (saved.version, saved.last_activity, saved.run_id) == (1, NOW + 1, "run-1")
        with pytest.raises(StateConflictError, match="version 1, expected 0"):
            await store.save_state(KEY, {"turns": []}, expected_version=0, now=NOW, policy=POLICY)
        touched = await store.touch(KEY, now=NOW + 2, policy=POLICY)
        assert touched is not None
        assert touched.conversation_state == {"turns": ["hi"], "empty": []}
        assert touched.version == 1
        assert touched.created_at == NOW

    run_with_store(redis_server, key_prefix, body)


def test_save_state_after_delete_does_not_resurrect_the_session(
    redis_server: RedisServer, key_prefix: str
) -> None:
    async def body(store: RedisSessionStore) -> None:
        await store.get_or_create(candidate(), now=NOW, policy=POLICY)
        assert await store.delete(KEY) is True
        assert await store.delete(KEY) is False
        saved = await store.save_state(KEY, {"x": 1}, expected_version=0, now=NOW, policy=POLICY)
        assert saved is None

    run_with_store(redis_server, key_prefix, body)
    assert keys_under(redis_server, key_prefix) == []


def test_save_state_of_an_idle_session_writes_nothing(
    redis_server: RedisServer, key_prefix: str
) -> None:
    async def body(store: RedisSessionStore) -> None:
        await store.get_or_create(candidate(), now=NOW, policy=POLICY)
        saved = await store.save_state(
            KEY, {"x": 1}, expected_version=0, now=NOW + 60, policy=POLICY
        )
        assert saved is None

    run_with_store(redis_server, key_prefix, body)
    assert keys_under(redis_server, key_prefix) == []


def test_state_that_is_not_json_is_refused_before_anything_is_written(
    redis_server: RedisServer, key_prefix: str
) -> None:
    async def body(store: RedisSessionStore) -> SessionRecord | None:
        await store.get_or_create(candidate(), now=NOW, policy=POLICY)
        with pytest.raises(RecordEncodingError):
            await store.save_state(KEY, {"x": {1, 2}}, expected_version=0, now=NOW, policy=POLICY)
        return await store.touch(KEY, now=NOW, policy=POLICY)

    touched = run_with_store(redis_server, key_prefix, body)
    assert touched is not None and touched.version == 0


def test_concurrent_read_modify_write_loses_no_update(
    redis_server: RedisServer, key_prefix: str
) -> None:
    writers, increments = 20, 5

    async def increment(store: RedisSessionStore) -> int:
        conflicts = 0
        for _ in range(increments):
            conflicts += await increment_count(store, KEY, now=NOW, policy=POLICY)
        return conflicts

    async def body(store: RedisSessionStore) -> tuple[SessionRecord | None, int]:
        await store.get_or_create(candidate(), now=NOW, policy=POLICY)
        conflicts = await asyncio.gather(*(increment(store) for _ in range(writers)))
        return await store.touch(KEY, now=NOW, policy=POLICY), sum(conflicts)

    final, conflicts = run_with_store(redis_server, key_prefix, body, max_connections=8)
    assert final is not None
    assert final.conversation_state == {"count": writers * increments}
    assert final.version == writers * increments
    # The writers did interleave: without compare-and-set, updates would have been lost.
    assert conflicts > 0


# -- caps and sweeping -------------------------------------------------------------------------


def test_per_user_cap_evicts_the_least_recently_active_session_of_that_user(
    redis_server: RedisServer, key_prefix: str
) -> None:
    capped = SessionPolicy(idle_timeout=60.0, max_sessions=None, max_sessions_per_user=3)

    async def body(store: RedisSessionStore) -> None:
        for thread in range(3):
            key = SessionKey("alice", f"t{thread}")
            await store.get_or_create(candidate(key), now=NOW + thread, policy=capped)
        await store.get_or_create(candidate(SessionKey("bob", "t0")), now=NOW, policy=capped)
        # t0 is the oldest, but touching it makes t1 the least recently active.
        await store.touch(SessionKey("alice", "t0"), now=NOW + 10, policy=capped)
        outcome = await store.get_or_create(
            candidate(SessionKey("alice", "t3")), now=NOW + 11, policy=capped
        )
        assert outcome.removed == (Removal(SessionKey("alice", "t1"), RemovalReason.USER_CAPACITY),)
        assert await store.count_user_sessions("alice", now=NOW + 11, policy=capped) == 3
        assert await store.touch(SessionKey("bob", "t0"), now=NOW + 11, policy=capped) is not None

    run_with_store(redis_server, key_prefix, body)


def test_cap_removes_expired_sessions_before_evicting_live_ones(
    redis_server: RedisServer, key_prefix: str
) -> None:
    capped = SessionPolicy(idle_timeout=60.0, max_sessions=None, max_sessions_per_user=2)

    async def body(store: RedisSessionStore) -> None:
        await store.get_or_create(candidate(SessionKey("alice", "old")), now=NOW, policy=capped)
        await store.get_or_create(
            candidate(SessionKey("alice", "live")), now=NOW + 50, policy=capped
        )
        outcome = await store.get_or_create(
            candidate(SessionKey("alice", "new")), now=NOW + 70, policy=capped
        )
        assert outcome.removed == (Removal(SessionKey("alice", "old"), RemovalReason.EXPIRED),)

    run_with_store(redis_server, key_prefix, body)


def test_cap_does_not_count_sessions_whose_keys_vanished(
    redis_server: RedisServer, key_prefix: str
) -> None:
    capped = SessionPolicy(idle_timeout=60.0, max_sessions=None, max_sessions_per_user=2)

    async def body(store: RedisSessionStore) -> None:
        await store.get_or_create(candidate(SessionKey("alice", "t0")), now=NOW, policy=capped)
        await store.get_or_create(candidate(SessionKey("alice", "t1")), now=NOW + 1, policy=capped)
        # As if Redis' own TTL or maxmemory eviction had removed it.
        redis_server.client().delete(f"{key_prefix}:s:alice:t1")
        outcome = await store.get_or_create(
            candidate(SessionKey("alice", "t2")), now=NOW + 2, policy=capped
        )
        assert outcome.removed == (Removal(SessionKey("alice", "t1"), RemovalReason.EXPIRED),)
        assert await store.touch(SessionKey("alice", "t0"), now=NOW + 2, policy=capped) is not None

    run_with_store(redis_server, key_prefix, body)


def test_total_cap_holds_exactly(redis_server: RedisServer, key_prefix: str) -> None:
    capped = SessionPolicy(idle_timeout=60.0, max_sessions=10, max_sessions_per_user=None)

    async def body(store: RedisSessionStore) -> list[Removal]:
        removed: list[Removal] = []
        for index in range(100):
            key = SessionKey(f"user{index % 7}", f"t{index}")
            outcome = await store.get_or_create(candidate(key), now=NOW + index, policy=capped)
            removed.extend(outcome.removed)
        return removed

    removed = run_with_store(redis_server, key_prefix, body)
    assert len(removed) == 90
    assert {removal.reason for removal in removed} == {RemovalReason.CAPACITY}
    # Oldest first: the first 90 sessions went, in creation order.
    assert [removal.key.thread_id for removal in removed] == [f"t{i}" for i in range(90)]
    session_keys = [key for key in keys_under(redis_server, key_prefix) if b":s:" in key]
    assert len(session_keys) == 10


def test_sweep_removes_exactly_the_idle_records(
    redis_server: RedisServer, key_prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Small batches, so the sweep's batching loop runs more than once.
    monkeypatch.setattr("ctxmigrate.shim.redis.store.SWEEP_BATCH", 4)

    async def body(store: RedisSessionStore) -> list[SessionKey]:
        for index in range(10):
            key = SessionKey(f"u{index % 3}", f"idle{index}")
            await store.get_or_create(candidate(key), now=NOW, policy=POLICY)
        await store.get_or_create(candidate(SessionKey("u0", "live")), now=NOW + 30, policy=POLICY)
        swept = await store.sweep_expired(now=NOW + 60, policy=POLICY)
        assert await store.touch(SessionKey("u0", "live"), now=NOW + 60, policy=POLICY) is not None
        return swept

    swept = run_with_store(redis_server, key_prefix, body)
    assert sorted(key.thread_id for key in swept) == sorted(f"idle{i}" for i in range(10))
    session_keys = [key for key in keys_under(redis_server, key_prefix) if b":s:" in key]
    assert session_keys == [f"{key_prefix}:s:u0:live".encode()]


# -- untrusted values ----------------------------------------------------------------------------


def _plant(server: RedisServer, prefix: str, key: SessionKey, value: bytes) -> None:
    from ctxmigrate.shim.redis_store import session_key

    server.client().set(session_key(prefix, key), value, px=60_000)


MALFORMED_VALUES = {
    "pickle": b"\x80\x04\x95\x10\x00\x00\x00\x00\x00\x00\x00\x8c\x02os\x94.",
    "not-json": b"{this is not json",
    "wrong-types": encode_record(candidate()).replace(b'"run_id":"run-1"', b'"run_id":17'),
    "other-users-record": encode_record(candidate(SessionKey("mallory", "thread-1"))),
    "garbage-after-valid-header": b'{"schema":1,"version":0,"last_activity":1700000000.0,"x":',
}


@pytest.mark.parametrize("value", MALFORMED_VALUES.values(), ids=MALFORMED_VALUES.keys())
def test_lookup_of_a_malformed_record_finds_nothing_and_logs_a_security_event(
    redis_server: RedisServer, key_prefix: str, value: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    _plant(redis_server, key_prefix, KEY, value)

    async def body(store: RedisSessionStore) -> SessionRecord | None:
        return await store.touch(KEY, now=NOW, policy=POLICY)

    with caplog.at_level(logging.WARNING, logger="ctxmigrate.shim.redis_store"):
        assert run_with_store(redis_server, key_prefix, body) is None
    events = [r for r in caplog.records if getattr(r, "event", None) == RECORD_REJECTED_EVENT]
    assert len(events) == 1
    assert events[0].redis_key == f"{key_prefix}:s:alice:thread-1"  # type: ignore[attr-defined]
    # The value itself never reaches the log.
    assert value.decode("latin-1") not in caplog.text


@pytest.mark.parametrize("value", MALFORMED_VALUES.values(), ids=MALFORMED_VALUES.keys())
def test_get_or_create_replaces_a_malformed_record_with_the_candidate(
    redis_server: RedisServer, key_prefix: str, value: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    _plant(redis_server, key_prefix, KEY, value)

    async def body(store: RedisSessionStore) -> None:
        outcome = await store.get_or_create(candidate(run_id="fresh"), now=NOW, policy=POLICY)
        assert outcome.created and outcome.record.run_id == "fresh"
        touched = await store.touch(KEY, now=NOW, policy=POLICY)
        assert touched is not None and touched.run_id == "fresh"

    with caplog.at_level(logging.WARNING, logger="ctxmigrate.shim.redis_store"):
        run_with_store(redis_server, key_prefix, body)
    assert any(getattr(r, "event", None) == RECORD_REJECTED_EVENT for r in caplog.records)


@pytest.mark.parametrize("value", MALFORMED_VALUES.values(), ids=MALFORMED_VALUES.keys())
def test_save_state_over_a_malformed_record_is_refused_and_it_stays_untrusted(
    redis_server: RedisServer, key_prefix: str, value: bytes
) -> None:
    _plant(redis_server, key_prefix, KEY, value)

    async def body(store: RedisSessionStore) -> tuple[SessionRecord | None, SessionRecord | None]:
        saved = await store.save_state(KEY, {"x": 1}, expected_version=0, now=NOW, policy=POLICY)
        return saved, await store.touch(KEY, now=NOW, policy=POLICY)

    assert run_with_store(redis_server, key_prefix, body) == (None, None)


# -- connections ---------------------------------------------------------------------------------


def test_pool_never_opens_more_than_max_connections(
    redis_server: RedisServer, key_prefix: str
) -> None:
    client = redis_server.client()
    client.client_setname("test-observer")

    def connected_clients() -> int:
        return sum(1 for entry in client.client_list() if entry["name"] != "test-observer")

    baseline = connected_clients()

    async def body(store: RedisSessionStore) -> int:
        await asyncio.gather(
            *(
                store.get_or_create(candidate(SessionKey("u", f"t{i}")), now=NOW, policy=POLICY)
                for i in range(60)
            )
        )
        return connected_clients() - baseline

    assert run_with_store(redis_server, key_prefix, body, max_connections=3) <= 3
    # aclose() closed them.
    assert connected_clients() == baseline


def test_another_users_record_is_logged_with_the_precise_reason(
    redis_server: RedisServer, key_prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    _plant(redis_server, key_prefix, KEY, MALFORMED_VALUES["other-users-record"])

    async def body(store: RedisSessionStore) -> SessionRecord | None:
        return await store.touch(KEY, now=NOW, policy=POLICY)

    with caplog.at_level(logging.WARNING, logger="ctxmigrate.shim.redis_store"):
        assert run_with_store(redis_server, key_prefix, body) is None
    (event,) = [r for r in caplog.records if getattr(r, "event", None) == RECORD_REJECTED_EVENT]
    assert event.reason == "ids inside the record do not match its key"  # type: ignore[attr-defined]
