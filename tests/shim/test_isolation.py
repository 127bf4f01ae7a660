"""Isolation between users, and validation of untrusted ids."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from ctxmigrate.shim import InvalidSessionIdError, SessionKey, UserSessionManager
from ctxmigrate.shim.validation import validate_id


def test_keys_are_pairs_not_joined_strings() -> None:
    async def scenario() -> None:
        manager = UserSessionManager()
        forged = await manager.get_or_create_user_session("a:b", "c")
        victim = await manager.get_or_create_user_session("a", "b:c")
        assert forged is not victim
        assert (forged.user_id, victim.user_id) == ("a:b", "a")
        assert SessionKey("a:b", "c") != SessionKey("a", "b:c")

    asyncio.run(scenario())


def test_same_thread_id_for_two_users_gives_two_contexts() -> None:
    async def scenario() -> None:
        manager = UserSessionManager()
        alice = await manager.get_or_create_user_session("alice", "shared-thread")
        bob = await manager.get_or_create_user_session("bob", "shared-thread")
        assert alice is not bob
        assert bob.user_id == "bob"
        assert await manager.get_session("bob", "shared-thread") is bob
        assert await manager.get_session("mallory", "shared-thread") is None

    asyncio.run(scenario())


def test_ending_one_users_session_leaves_the_other_users() -> None:
    async def scenario() -> None:
        manager = UserSessionManager()
        alice = await manager.get_or_create_user_session("alice", "t")
        await manager.get_or_create_user_session("bob", "t")
        await manager.end_session("bob", "t")
        assert await manager.get_session("alice", "t") is alice

    asyncio.run(scenario())


class SneakyId(str):
    """A str subclass claiming equality with everything."""

    def __eq__(self, other: object) -> bool:
        return True

    def __hash__(self) -> int:
        return hash("alice")


def test_str_subclass_ids_cannot_alias_another_users_key() -> None:
    async def scenario() -> None:
        manager = UserSessionManager()
        alice = await manager.get_or_create_user_session("alice", "t")
        sneaky = await manager.get_or_create_user_session(SneakyId("mallory"), "t")
        assert sneaky is not alice
        assert type(sneaky.user_id) is str
        assert sneaky.user_id == "mallory"

    asyncio.run(scenario())


BAD_IDS: list[tuple[Any, str]] = [
    ("", "must not be empty"),
    ("x" * 257, "at most 256"),
    ("a\nb", "non-printable"),
    ("a\x00b", "non-printable"),
    ("a\x1bb", "non-printable"),
    ("a\x85b", "non-printable"),
    ("a\u202eb", "non-printable"),
    (None, "must be a str"),
    (42, "must be a str"),
    (b"bytes", "must be a str"),
]


ID_FIELDS = ["user_id", "thread_id", "run_id", "websocket_connection_id"]


@pytest.mark.parametrize(
    ("field", "value", "problem"),
    [
        (field, value, problem)
        for field in ID_FIELDS
        for value, problem in BAD_IDS
        # None is meaningful for the optional ids (not given, or a new conversation).
        if not (value is None and field != "user_id")
    ],
)
def test_bad_ids_are_rejected_naming_the_field(field: str, value: Any, problem: str) -> None:
    ids: dict[str, Any] = {"user_id": "u", "thread_id": "t", "run_id": "r"}
    ids[field] = value

    async def scenario() -> None:
        manager = UserSessionManager()
        with pytest.raises(InvalidSessionIdError, match=problem) as raised:
            await manager.get_or_create_user_session(**ids)
        assert raised.value.field == field
        assert isinstance(raised.value, ValueError)
        assert str(raised.value).startswith(field)

    asyncio.run(scenario())


def test_rejection_message_does_not_echo_the_value() -> None:
    async def scenario() -> None:
        manager = UserSessionManager()
        with pytest.raises(InvalidSessionIdError) as raised:
            await manager.get_or_create_user_session("secret-token\n", "t")
        assert "secret-token" not in str(raised.value)

    asyncio.run(scenario())


@pytest.mark.parametrize(
    ("value", "detail"),
    [
        ("ab\ncd", "category Cc at position 2"),
        ("\u202e", "category Cf at position 0"),
        ("a b\u2028", "category Zl at position 3"),
    ],
)
def test_rejection_names_kind_and_position_but_no_character_of_the_value(
    value: str, detail: str
) -> None:
    with pytest.raises(InvalidSessionIdError) as raised:
        validate_id(value, "thread_id")
    message = str(raised.value)
    assert detail in message
    # Not the offending character, raw or escaped.
    offending = next(char for char in value if not char.isprintable())
    assert offending not in message
    assert repr(offending).strip("'") not in message


def test_longest_allowed_id_and_spaces_are_accepted() -> None:
    async def scenario() -> None:
        manager = UserSessionManager()
        context = await manager.get_or_create_user_session("x" * 256, "thread with spaces é")
        assert len(context.user_id) == 256

    asyncio.run(scenario())


def test_a_rejected_call_changes_nothing() -> None:
    async def scenario() -> None:
        manager = UserSessionManager()
        existing = await manager.get_or_create_user_session("u", "t")
        before = manager.stats()
        for call in (
            manager.get_or_create_user_session("u", "t", run_id="bad\x00"),
            manager.get_or_create_user_session("u", "t\x00"),
            manager.get_or_create_user_session("u\x00", "t"),
            manager.get_or_create_user_session("u", "t", websocket_connection_id=""),
        ):
            with pytest.raises(InvalidSessionIdError):
                await call
        with pytest.raises(InvalidSessionIdError):
            await manager.end_session("u", "")
        assert manager.stats() == before
        assert len(manager.store) == 1  # type: ignore[arg-type]
        assert await manager.get_session("u", "t") is existing

    asyncio.run(scenario())
