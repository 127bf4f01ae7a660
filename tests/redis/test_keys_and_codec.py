"""The key scheme and the JSON record codec: pure functions, no server needed."""

from __future__ import annotations

import collections
import enum
import itertools
import json

import pytest

from ctxmigrate.shim.redis_store import (
    RECORD_SCHEMA,
    RecordEncodingError,
    RecordRejected,
    decode_record,
    encode_record,
    encode_state,
    global_index_key,
    parse_session_key,
    session_key,
    user_index_key,
    validate_key_prefix,
)
from ctxmigrate.shim.store import SessionKey, SessionRecord

TRICKY_IDS = ["a", "a:b", "a:s:b", "b", "b:c", "s", "u", "all", "a%3Ab", "%", "über", "a b", "-"]
TRICKY_PAIRS = [SessionKey(u, t) for u, t in itertools.product(TRICKY_IDS, repeat=2)]
KEY = SessionKey("alice", "thread-1")


def make_record(**overrides: object) -> SessionRecord:
    fields: dict[str, object] = {
        "key": KEY,
        "run_id": "run-1",
        "websocket_connection_id": "ws-1",
        "created_at": 1_700_000_000.25,
        "last_activity": 1_700_000_001.5,
        "conversation_state": {"turns": [1, 2.5, "three", None, True, {}], "empty": []},
        "version": 3,
    }
    fields.update(overrides)
    return SessionRecord(**fields)  # type: ignore[arg-type]


def stored_document(**overrides: object) -> bytes:
    document = json.loads(encode_record(make_record()))
    document.update(overrides)
    return json.dumps(document).encode()


def test_user_id_containing_the_separator_cannot_forge_another_users_key() -> None:
    # Joined naively, ("a:b", "c") and ("a", "b:c") would both be "a:b:c".
    assert session_key("p", SessionKey("a:b", "c")) != session_key("p", SessionKey("a", "b:c"))


def test_session_keys_are_distinct_for_every_pair_of_tricky_ids() -> None:
    keys = {session_key("p", pair) for pair in TRICKY_PAIRS}
    assert len(keys) == len(TRICKY_PAIRS)


def test_session_and_index_keys_never_coincide() -> None:
    session_keys = {session_key("p", pair) for pair in TRICKY_PAIRS}
    index_keys = {user_index_key("p", user_id) for user_id in TRICKY_IDS}
    assert len(index_keys) == len(TRICKY_IDS)
    assert session_keys.isdisjoint(index_keys | {global_index_key("p")})


@pytest.mark.parametrize("pair", TRICKY_PAIRS, ids=repr)
def test_session_key_parses_back_to_its_ids(pair: SessionKey) -> None:
    assert parse_session_key("p", session_key("p", pair)) == pair


def test_key_is_readable_for_plain_ids() -> None:
    assert session_key("ctxmigrate", KEY) == "ctxmigrate:s:alice:thread-1"
    assert user_index_key("ctxmigrate", "alice") == "ctxmigrate:u:alice"


@pytest.mark.parametrize("prefix", ["", "a b", "a\nb", "a\x00"])
def test_key_prefix_with_spaces_or_control_characters_is_rejected(prefix: str) -> None:
    with pytest.raises(ValueError, match="prefix"):
        validate_key_prefix(prefix)


def test_record_round_trips_through_json() -> None:
    record = make_record()
    decoded = decode_record(encode_record(record), KEY)
    assert decoded == record
    # An empty list stays a list (a Lua cjson round trip would turn it into {}).
    assert decoded.conversation_state["empty"] == []


def test_record_has_the_layout_the_scripts_splice() -> None:
    raw = encode_record(make_record()).decode()
    assert raw.startswith(f'{{"schema":{RECORD_SCHEMA},"version":3,"last_activity":1700000001.5,')
    assert raw.count(',"conversation_state":') == 1
    assert raw.endswith(
        '"conversation_state":'
        + json.dumps(make_record().conversation_state, separators=(",", ":"))
        + "}"
    )


def test_ids_that_look_like_the_splice_point_stay_inside_their_string() -> None:
    sneaky = SessionKey('a,"conversation_state":{"x":1}', 'b"}')
    record = make_record(key=sneaky, run_id=',"conversation_state":')
    raw = encode_record(record)
    assert raw.decode().count(',"conversation_state":') == 1
    assert decode_record(raw, sneaky) == record


@pytest.mark.parametrize(
    "state",
    [
        {"when": object()},
        {"nan": float("nan")},
        {"bytes": b"x"},
        # json.dumps would quietly turn these keys into strings, so another
        # process would read back a different state than this one holds.
        {1: "int key"},
        {"nested": [{"deep": {None: 1}}]},
    ],
    ids=["object", "nan", "bytes", "int-key", "nested-none-key"],
)
def test_state_that_is_not_json_is_refused_at_encoding(state: dict[object, object]) -> None:
    with pytest.raises(RecordEncodingError, match="conversation_state must be"):
        encode_record(make_record(conversation_state=state))


class Color(enum.StrEnum):
    RED = "red"


class Level(enum.IntEnum):
    HIGH = 3


class Label(str):
    pass


@pytest.mark.parametrize(
    "state",
    [
        {"pair": (1, 2)},
        {"nested": [{"pair": ("a", "b")}]},
        {"color": Color.RED},
        {"level": Level.HIGH},
        {"label": Label("x")},
        {"ordered": collections.OrderedDict(a=1)},
        {Label("key"): 1},
    ],
    ids=["tuple", "nested-tuple", "strenum", "intenum", "str-subclass", "dict-subclass", "key"],
)
def test_values_json_would_not_give_back_as_the_same_type_are_refused(
    state: dict[str, object],
) -> None:
    with pytest.raises(RecordEncodingError, match="conversation_state must be JSON"):
        encode_state(state)


def test_self_referencing_state_is_refused_not_walked_forever() -> None:
    history: list[object] = []
    history.append(history)
    looped: dict[str, object] = {}
    looped["self"] = looped
    for state in ({"history": history}, looped):
        with pytest.raises(RecordEncodingError, match=r"[Cc]ircular"):
            encode_state(state)


def test_shared_containers_are_refused() -> None:
    # JSON copies a shared container, so other processes would read two where this
    # one holds one; and n levels of sharing would encode 2**n copies.
    shared = {"n": 1}
    for state in ({"a": shared, "b": [shared]}, {"b": [shared, shared]}):
        with pytest.raises(RecordEncodingError, match="appears twice"):
            encode_state(state)
    # Equal but distinct containers, and repeated scalars, are fine.
    assert json.loads(encode_state({"a": {"n": 1}, "b": [{"n": 1}], "c": ["x", "x"]})) == {
        "a": {"n": 1},
        "b": [{"n": 1}],
        "c": ["x", "x"],
    }


def test_state_with_nested_sharing_is_refused_before_encoding() -> None:
    # Each level references the one below twice: 2**20 leaves if json.dumps ran
    # (2**40 at depth 40, which would block the event loop for good).
    node: list[object] = ["leaf"]
    for _ in range(20):
        node = [node, node]
    with pytest.raises(RecordEncodingError, match="appears twice"):
        encode_state({"tree": node})


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"\x80\x04\x95pickle", "not JSON"),
        (b"{not json", "not JSON"),
        (b"[1, 2]", "top level"),
        (b'"a string"', "top level"),
        (b'{"user_id": "alice"}', "not the record layout"),
        (stored_document(extra=1), "not the record layout"),
        (stored_document(schema=2), "schema"),
        (stored_document(schema=True), "schema"),
        (stored_document(user_id="mallory"), "do not match"),
        (stored_document(thread_id="thread-2"), "do not match"),
        (stored_document(user_id=7), "user_id is int"),
        (stored_document(run_id=None), "run_id is NoneType"),
        (stored_document(websocket_connection_id=5), "websocket_connection_id"),
        (stored_document(created_at="yesterday"), "created_at"),
        (stored_document(created_at=True), "created_at"),
        (stored_document(last_activity=None), "last_activity"),
        (stored_document(conversation_state=[1]), "conversation_state"),
        (stored_document(version=-1), "version"),
        (stored_document(version=1.5), "version"),
        (stored_document(version=False), "version"),
        (stored_document().replace(b'"version": 3', b'"version": NaN'), "non-finite"),
        (stored_document().replace(b"1700000000.25", b"Infinity"), "non-finite"),
        (stored_document()[:-1] + b', "conversation_state": {"x": 1}}', "duplicate"),
        (b"[" * 100_000 + b"]" * 100_000, "not JSON"),
    ],
    ids=lambda value: value if isinstance(value, str) else None,
)
def test_malformed_record_is_rejected_with_a_reason(raw: bytes, reason: str) -> None:
    with pytest.raises(RecordRejected, match=reason):
        decode_record(raw, KEY)


def test_record_with_members_out_of_order_is_rejected() -> None:
    document = json.loads(encode_record(make_record()))
    reordered = {"conversation_state": document.pop("conversation_state"), **document}
    with pytest.raises(RecordRejected, match="layout"):
        decode_record(json.dumps(reordered).encode(), KEY)
