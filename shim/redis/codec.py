"""Record codec of the Redis session store: JSON only, in the layout the scripts splice.

A record is one JSON object whose first three members are always, in this
order, ``schema``, ``version`` and ``last_activity``, and whose last member is
``conversation_state``::

    {"schema":1,"version":3,"last_activity":1700000001.5,"user_id":"alice",
     "thread_id":"t-1","run_id":"run_...","websocket_connection_id":null,
     "created_at":1700000000.25,"conversation_state":{...}}

``RECORD_SCHEMA`` is the one definition of the schema number: the encoder
writes it, the decoder requires it, and the Lua scripts receive it (see
:mod:`ctxmigrate.shim.redis.scripts`). Every function takes the schema as a
parameter (default ``RECORD_SCHEMA``) so a store can be built for another one.
"""

from __future__ import annotations

import json
import math
from typing import Any, Final

from ctxmigrate.shim.errors import SessionError
from ctxmigrate.shim.store import SessionKey, SessionRecord

#: Bumped when the JSON layout changes; a record of another schema is not trusted.
RECORD_SCHEMA: Final = 1

_RECORD_FIELDS: Final = (
    "schema",
    "version",
    "last_activity",
    "user_id",
    "thread_id",
    "run_id",
    "websocket_connection_id",
    "created_at",
    "conversation_state",
)

#: Records removed per sweep script call: a script blocks the server while it runs.


class RecordEncodingError(SessionError, ValueError):
    """The record cannot be stored as JSON (e.g. conversation_state holds a non-JSON value)."""


class RecordRejected(Exception):
    """Why a stored value was not trusted (becomes a security log line, never escapes the store)."""


def json_number(value: float, field: str) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise RecordEncodingError(f"{field} must be a finite number, got {value!r}")
    # repr of a finite float is a valid JSON number and round-trips exactly.
    return repr(float(value))


_JSON_SCALARS: Final = (str, int, float, bool, type(None))


def _require_plain_json(state: dict[str, Any]) -> None:
    """Refuse what ``json.dumps`` would accept but not give back as is.

    Only exact ``dict`` (with exact ``str`` keys), ``list``, ``str``, ``int``,
    ``float``, ``bool`` and ``None`` pass: json.dumps silently turns int keys
    into strings, tuples into lists and subclasses (StrEnum, IntEnum, an
    OrderedDict) into their base type, so other processes would read a
    different state than this one holds. A container may appear only once: one
    that contains itself cannot be JSON, and JSON would copy a shared one
    (a list referenced from two places comes back as two lists), so n levels
    of sharing would make 2**n copies and block the event loop in json.dumps.
    """
    seen: set[int] = set()
    pending: list[object] = [state]
    while pending:
        value = pending.pop()
        kind = type(value)
        if kind is dict or kind is list:
            if id(value) in seen:
                raise RecordEncodingError(
                    f"conversation_state must be JSON: a {kind.__name__} appears twice in it "
                    "(shared, or circular: it contains itself); JSON would copy it, so "
                    "give each place its own copy"
                )
            seen.add(id(value))
            if kind is list:
                pending.extend(value)  # type: ignore[arg-type]
                continue
            for key, item in value.items():  # type: ignore[attr-defined]
                if type(key) is not str:
                    raise RecordEncodingError(
                        f"conversation_state must be JSON: object key {key!r} is not a str"
                    )
                pending.append(item)
        elif kind not in _JSON_SCALARS:
            raise RecordEncodingError(
                f"conversation_state must be JSON: a {kind.__name__} value would not come "
                "back as the same type (use dict, list, str, int, float, bool or None)"
            )


def encode_state(state: dict[str, Any]) -> str:
    """``conversation_state`` as JSON text, refusing anything JSON would not give back as is."""
    if not isinstance(state, dict):
        raise RecordEncodingError(f"conversation_state must be a dict, not {type(state).__name__}")
    _require_plain_json(state)
    try:
        # allow_nan=False: NaN and Infinity are not JSON.
        return json.dumps(state, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    except (TypeError, ValueError, RecursionError) as exc:
        raise RecordEncodingError(
            "conversation_state must be JSON (dict/list/str/int/float/bool/None "
            f"with str keys): {exc}"
        ) from exc


def ids_fragment(key: SessionKey) -> str:
    """``"user_id":...,"thread_id":...,``: the bytes that follow a record's header.

    The scripts compare them verbatim, so the encoder must produce them this way.
    """
    return (
        f'"user_id":{json.dumps(key.user_id, ensure_ascii=False)},'
        f'"thread_id":{json.dumps(key.thread_id, ensure_ascii=False)},'
    )


def encode_record(record: SessionRecord, schema: int = RECORD_SCHEMA) -> bytes:
    """The record as JSON bytes, in the layout the scripts splice (see the module docstring)."""
    others = json.dumps(
        {"run_id": record.run_id, "websocket_connection_id": record.websocket_connection_id},
        ensure_ascii=False,
        separators=(",", ":"),
    )[1:-1]
    version = record.version
    if isinstance(version, bool) or not isinstance(version, int) or version < 0:
        raise RecordEncodingError(f"version must be a non-negative int, got {version!r}")
    text = (
        f'{{"schema":{schema},"version":{version},'
        f'"last_activity":{json_number(record.last_activity, "last_activity")},'
        f"{ids_fragment(record.key)}{others},"
        f'"created_at":{json_number(record.created_at, "created_at")},'
        f'"conversation_state":{encode_state(record.conversation_state)}}}'
    )
    return text.encode("utf-8")


def _reject_constant(name: str) -> float:
    raise RecordRejected(f"non-finite number {name} in JSON")


def _reject_duplicate_members(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # json.loads keeps the last of duplicate members, while the scripts splice
    # at the first: a record with duplicates could mean two things.
    document = dict(pairs)
    if len(document) != len(pairs):
        raise RecordRejected("duplicate member names in a JSON object")
    return document


def _require_str(document: dict[str, Any], field: str) -> str:
    value = document[field]
    if not isinstance(value, str):
        raise RecordRejected(f"{field} is {type(value).__name__}, not str")
    return value


def _require_timestamp(document: dict[str, Any], field: str) -> float:
    value = document[field]
    # bool is an int subclass: true/false is not a timestamp.
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise RecordRejected(f"{field} is not a finite number")
    return float(value)


def layout_rejection(raw: bytes, key: SessionKey, schema: int = RECORD_SCHEMA) -> str:
    """The precise reason for a value the scripts found out of layout, for the log line."""
    try:
        decode_record(raw, key, schema)
    except RecordRejected as exc:
        return str(exc)
    return "not in the record layout"


def decode_record(raw: bytes, key: SessionKey, schema: int = RECORD_SCHEMA) -> SessionRecord:
    """Decode and validate a record read from the Redis key of ``key``.

    Raises :class:`RecordRejected` with the reason when anything is off. The
    ids inside must be the ids of the key it was read from: a record copied
    under another user's key is not that user's session.
    """
    try:
        document = json.loads(
            raw.decode("utf-8"),
            parse_constant=_reject_constant,
            object_pairs_hook=_reject_duplicate_members,
        )
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise RecordRejected(f"not JSON: {type(exc).__name__}") from exc
    if not isinstance(document, dict):
        raise RecordRejected(f"top level is {type(document).__name__}, not an object")
    if list(document) != list(_RECORD_FIELDS):
        # The order matters too: the scripts splice the record by position.
        raise RecordRejected(f"members are {sorted(document)}, not the record layout")
    found = document["schema"]
    if isinstance(found, bool) or found != schema:
        raise RecordRejected(f"schema {found!r}, expected {schema}")
    if SessionKey(_require_str(document, "user_id"), _require_str(document, "thread_id")) != key:
        raise RecordRejected("ids inside the record do not match its key")
    connection_id = document["websocket_connection_id"]
    if connection_id is not None and not isinstance(connection_id, str):
        raise RecordRejected("websocket_connection_id is neither str nor null")
    state = document["conversation_state"]
    if not isinstance(state, dict):
        raise RecordRejected("conversation_state is not an object")
    version = document["version"]
    if isinstance(version, bool) or not isinstance(version, int) or version < 0:
        raise RecordRejected("version is not a non-negative integer")
    return SessionRecord(
        key=key,
        run_id=_require_str(document, "run_id"),
        websocket_connection_id=connection_id,
        created_at=_require_timestamp(document, "created_at"),
        last_activity=_require_timestamp(document, "last_activity"),
        conversation_state=state,
        version=version,
    )
