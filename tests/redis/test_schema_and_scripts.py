"""The schema number and the key names have one definition, in Python, that the Lua follows.

Changing either (as a future record layout would) must change what the
scripts read and write, through every script, with nothing spelled twice.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

from ctxmigrate.shim import UserSessionManager
from ctxmigrate.shim.redis import RECORD_REJECTED_EVENT, RedisSessionStore, keys
from ctxmigrate.shim.redis.codec import RECORD_SCHEMA, decode_record
from ctxmigrate.shim.redis.scripts import build_scripts, lua_prelude
from ctxmigrate.shim.store import SessionKey, SessionPolicy, SessionRecord

from .conftest import RedisServer

pytestmark = pytest.mark.redis

KEY = SessionKey("alice", "t-1")
NOW = 1_700_000_000.0
POLICY = SessionPolicy(idle_timeout=60.0, max_sessions=3, max_sessions_per_user=2)


def test_no_script_spells_the_schema_or_a_key_name_itself() -> None:
    scripts = build_scripts(7)
    prelude = lua_prelude(7)
    assert """local RECORD_HEADER = '{"schema":7,"version":'""" in prelude
    for name in scripts.__slots__:
        text = getattr(scripts, name).removeprefix(prelude)
        assert '"schema"' not in text, name
        for literal in ("':s:'", "':u:'", "':all'", "':w:'", "':l:'", "':q:'"):
            assert literal not in text, (name, literal)


@pytest.mark.parametrize("schema", [-1, True, "1", 1.0])
def test_a_schema_must_be_a_non_negative_int(schema: Any) -> None:
    with pytest.raises(ValueError, match="schema"):
        build_scripts(schema)
    with pytest.raises(ValueError, match="schema"):
        RedisSessionStore("unix:///nonexistent", record_schema=schema)


def test_a_store_of_another_schema_round_trips_through_every_script(
    redis_server: RedisServer, key_prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    client = redis_server.client()
    schema = RECORD_SCHEMA + 1

    async def main() -> None:
        async with RedisSessionStore(
            redis_server.url, key_prefix=key_prefix, record_schema=schema
        ) as store:
            created = await store.get_or_create(
                SessionRecord(KEY, "run-1", None, NOW, NOW), now=NOW, policy=POLICY
            )
            assert created.created
            touched = await store.touch(KEY, now=NOW + 1, policy=POLICY)
            assert touched is not None
            assert touched.last_activity == NOW + 1
            saved = await store.save_state(
                KEY, {"n": 1}, expected_version=0, now=NOW + 2, policy=POLICY
            )
            assert saved is not None
            assert saved.version == 1
            manager = UserSessionManager(store=store, clock=lambda: NOW + 3)
            async with manager.conversation("alice", "t-1") as context:
                assert context.conversation_state == {"n": 1}
                context.conversation_state["n"] = 2
            raw = client.get(store.session_key(KEY))
            assert raw is not None
            assert raw.startswith(b'{"schema":%d,"version":2,' % schema)
            assert decode_record(raw, KEY, schema).conversation_state == {"n": 2}
            # Caps go through the scripts' index bookkeeping too.
            for thread in ("t-2", "t-3"):
                await store.get_or_create(
                    SessionRecord(SessionKey("alice", thread), "run", None, NOW, NOW),
                    now=NOW + 4,
                    policy=POLICY,
                )
            assert await store.count_user_sessions("alice", now=NOW + 4, policy=POLICY) == 2
            assert await store.sweep_expired(now=NOW + 100, policy=POLICY) != []
            # A store of the current schema does not trust the other schema's records.
            await store.get_or_create(
                SessionRecord(KEY, "run-2", None, NOW, NOW), now=NOW + 200, policy=POLICY
            )
        async with RedisSessionStore(redis_server.url, key_prefix=key_prefix) as current:
            with caplog.at_level(logging.WARNING):
                assert await current.touch(KEY, now=NOW + 201, policy=POLICY) is None
            assert RECORD_REJECTED_EVENT in caplog.text

    asyncio.run(main())


def test_renamed_key_kinds_are_what_python_and_every_script_use(
    redis_server: RedisServer, key_prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(keys, "SESSION_KIND", "record")
    monkeypatch.setattr(keys, "USER_INDEX_KIND", "user")
    monkeypatch.setattr(keys, "GLOBAL_INDEX_NAME", "everyone")
    monkeypatch.setattr(keys, "LEASE_KIND", "lease")
    monkeypatch.setattr(keys, "WAITING_LINE_KIND", "line")
    monkeypatch.setattr(keys, "WAITER_KIND", "waiter")
    client = redis_server.client()

    async def main() -> None:
        async with RedisSessionStore(redis_server.url, key_prefix=key_prefix) as store:
            manager = UserSessionManager(store=store, max_sessions_per_user=2, max_sessions=3)
            for thread in ("t-1", "t-2", "t-3"):  # the third evicts by the user's index
                async with manager.conversation("alice", thread) as context:
                    context.conversation_state["thread"] = thread
            assert manager.stats().evicted["user_capacity"] == 1

    asyncio.run(main())
    names = sorted(key.decode() for key in client.scan_iter(match=f"{key_prefix}:*"))
    assert names == [
        f"{key_prefix}:everyone",
        f"{key_prefix}:record:alice:t-2",
        f"{key_prefix}:record:alice:t-3",
        f"{key_prefix}:user:alice",
    ]
    assert client.zcard(f"{key_prefix}:user:alice") == 2
