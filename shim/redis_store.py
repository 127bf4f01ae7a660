"""Redis session store: one session record per conversation, shared by processes and hosts.

The in-memory store keeps sessions inside one process; behind a load balancer a
conversation's messages land on different workers, and each worker would start
its own "session" (the original bug again). :class:`RedisSessionStore`
implements :class:`~ctxmigrate.shim.store.SessionStore` with the record in
Redis, so every worker agrees on one record and one run_id per
(user_id, thread_id); the manager of each process still keeps its live context
objects locally.

Install with ``pip install 'ctxmigrate[redis]'``. Only this module imports
redis: ``import ctxmigrate.shim`` never does.

How each guarantee is enforced (docs/redis.md says it for users):

- JSON only, never pickle: a record read back from a shared server must not be
  able to execute code. A value that does not decode, decodes to the wrong
  shape, or names other ids than its key, is treated as missing and logged as
  the security event ``ctxmigrate.session_record_rejected``.
- Keys cannot collide: each id is percent-encoded (``quote(id, safe="")``),
  which is injective and never emits ``:``, so a user id containing the
  separator cannot forge another user's key.
- Every operation is one Lua script, which Redis runs atomically: two workers
  racing on the first message of a conversation end with one record and one
  run_id, and no interleaving can exceed a cap or lose a state update.
- Every write sets an expiry (``PX``) in the same command; updates use ``XX``
  so an ended or expired session is never brought back by a late save.
- ``conversation_state`` saves are compare-and-set on the record's ``version``.
- Faults: a connection error or timeout raises
  :class:`SessionStoreUnavailableError` naming the server; there is no silent
  fallback to a process-local store (two workers would then hold two sessions
  for one conversation: a split brain). The pool reconnects by itself once
  Redis is back.

Record layout
=============

A record is one JSON object whose first three members are always, in this
order, ``schema``, ``version`` and ``last_activity``, and whose last member is
``conversation_state``::

    {"schema":1,"version":3,"last_activity":1700000001.5,"user_id":"alice",
     "thread_id":"t-1","run_id":"run_...","websocket_connection_id":null,
     "created_at":1700000000.25,"conversation_state":{...}}

The scripts rely on that layout to refresh ``last_activity`` and to replace
``conversation_state`` with plain string splicing, never decoding JSON inside
Redis (Lua's cjson would turn ``[]`` into ``{}`` and round large integers).
The splice point ``,"conversation_state":`` cannot occur inside an earlier
member: those are ids (JSON strings, where every ``"`` is escaped), numbers
and null. Python decodes and validates every record it receives in full.

Keys, under the configurable prefix ``P``:

- ``P:s:<user>:<thread>``: the record (a string), with a TTL of the idle timeout;
- ``P:u:<user>``: sorted set of the user's session keys, scored by last activity
  (the per-user cap evicts its lowest entry);
- ``P:all``: the same over all users (the total cap, and the sweep).

The indexes carry a TTL too, pushed forward on every write, so nothing this
store writes lives forever. Every script touches ``P:all``, so the store needs
a standalone Redis server (with replicas or Sentinel as you like), not Redis
Cluster.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import math
import random
import urllib.parse
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import Any, Final, Self

from ctxmigrate.shim.errors import (
    ConversationBusyError,
    LeaseLostError,
    SessionError,
    StateConflictError,
)
from ctxmigrate.shim.lease import LeaseGrant, LeaseTerms, new_lease_token
from ctxmigrate.shim.store import (
    CreateOutcome,
    Removal,
    RemovalReason,
    SessionKey,
    SessionPolicy,
    SessionRecord,
)

try:
    import redis.asyncio as aioredis
    import redis.exceptions as redis_errors

    # The asyncio Retry for the asyncio pool (redis-py 8.2 warns about the
    # synchronous one), and a backoff that redis-py has had since 4.x: both
    # exist from the oldest release pyproject.toml allows.
    from redis.asyncio.retry import Retry
    from redis.backoff import FullJitterBackoff
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        f"the Redis session store needs redis-py >= 5.0.2: pip install 'ctxmigrate[redis]' ({exc})"
    ) from exc

logger = logging.getLogger(__name__)

#: The fixed event name of the security log line for a record that was not trusted.
RECORD_REJECTED_EVENT: Final = "ctxmigrate.session_record_rejected"

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
SWEEP_BATCH: Final = 500

# A writer that keeps planting bad values must not keep get_or_create looping.
_MAX_UNTRUSTED_REPLACEMENTS: Final = 3

# A waiter for a busy conversation polls, first after about 2 ms, backing off
# to about 25 ms; its place in line lasts 2 s after each poll, so only a waiter
# that stopped polling (gave up, crashed, stalled for seconds) loses it.
_POLL_FIRST_SECONDS: Final = 0.002
_POLL_MAX_SECONDS: Final = 0.025
_WAITER_HEARTBEAT_MS: Final = 2000


class SessionStoreUnavailableError(SessionError, ConnectionError):
    """Redis could not serve the call: down, unreachable, timing out, pool exhausted,
    read-only after a failover, out of memory."""

    def __init__(self, address: str, operation: str, cause: BaseException) -> None:
        self.address = address
        self.operation = operation
        # redis-py's messages often end in a full stop already.
        detail = str(cause).rstrip(".")
        super().__init__(
            f"Redis session store at {address} is unavailable during {operation}: "
            f"{type(cause).__name__}: {detail}. Sessions are not served from a local "
            "fallback, since two workers would then hold two sessions for one conversation."
        )


class RecordEncodingError(SessionError, ValueError):
    """The record cannot be stored as JSON (e.g. conversation_state holds a non-JSON value)."""


class RecordRejected(Exception):
    """Why a stored value was not trusted (becomes a security log line, never escapes the store)."""


# ----------------------------------------------------------------------------
# Key scheme


def _encode_key_component(value: str) -> str:
    # quote(safe="") keeps only [A-Za-z0-9_.~-] and escapes everything else,
    # "%" included, so it is injective and its output never contains ":":
    # user and thread cannot run into each other.
    return urllib.parse.quote(value, safe="")


def validate_key_prefix(prefix: str) -> str:
    if not isinstance(prefix, str) or not prefix:
        raise ValueError("Redis key prefix must be a non-empty string")
    if not prefix.isprintable() or " " in prefix:
        # Keys show up in logs and redis-cli; control characters and spaces make them ambiguous.
        raise ValueError(f"Redis key prefix must be printable, without spaces: {prefix!r}")
    return prefix


def session_key(prefix: str, key: SessionKey) -> str:
    """``<prefix>:s:<user>:<thread>``: the Redis key of one session record."""
    return f"{prefix}:s:{_encode_key_component(key.user_id)}:{_encode_key_component(key.thread_id)}"


def user_index_key(prefix: str, user_id: str) -> str:
    """``<prefix>:u:<user>``: the user's session keys, scored by last activity."""
    return f"{prefix}:u:{_encode_key_component(user_id)}"


def global_index_key(prefix: str) -> str:
    """``<prefix>:all``: every session key, scored by last activity."""
    return f"{prefix}:all"


def lease_key(prefix: str, key: SessionKey) -> str:
    """``<prefix>:l:<user>:<thread>``: the conversation's lease (the holder's token)."""
    return f"{prefix}:l:{_encode_key_component(key.user_id)}:{_encode_key_component(key.thread_id)}"


def waiting_line_key(prefix: str, key: SessionKey) -> str:
    """``<prefix>:q:<user>:<thread>``: the tokens waiting for the conversation, by arrival."""
    return f"{prefix}:q:{_encode_key_component(key.user_id)}:{_encode_key_component(key.thread_id)}"


def waiter_key(prefix: str, token: str) -> str:
    """``<prefix>:w:<token>``: exists while the waiter with ``token`` keeps polling."""
    return f"{prefix}:w:{token}"


def parse_session_key(prefix: str, redis_key: str) -> SessionKey:
    """Invert :func:`session_key` (to report which sessions a script removed)."""
    head = f"{prefix}:s:"
    user_part, separator, thread_part = redis_key.removeprefix(head).partition(":")
    if not redis_key.startswith(head) or not separator:
        raise ValueError(f"not a session key under prefix {prefix!r}: {redis_key!r}")
    return SessionKey(
        urllib.parse.unquote(user_part, errors="strict"),
        urllib.parse.unquote(thread_part, errors="strict"),
    )


# ----------------------------------------------------------------------------
# Record codec


def _json_number(value: float, field: str) -> str:
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


def _ids_fragment(key: SessionKey) -> str:
    """``"user_id":...,"thread_id":...,``: the bytes that follow a record's header.

    The scripts compare them verbatim, so the encoder must produce them this way.
    """
    return (
        f'"user_id":{json.dumps(key.user_id, ensure_ascii=False)},'
        f'"thread_id":{json.dumps(key.thread_id, ensure_ascii=False)},'
    )


def encode_record(record: SessionRecord) -> bytes:
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
        f'{{"schema":{RECORD_SCHEMA},"version":{version},'
        f'"last_activity":{_json_number(record.last_activity, "last_activity")},'
        f"{_ids_fragment(record.key)}{others},"
        f'"created_at":{_json_number(record.created_at, "created_at")},'
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


def _layout_rejection(raw: bytes, key: SessionKey) -> str:
    """The precise reason for a value the scripts found out of layout, for the log line."""
    try:
        decode_record(raw, key)
    except RecordRejected as exc:
        return str(exc)
    return "not in the record layout"


def decode_record(raw: bytes, key: SessionKey) -> SessionRecord:
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
    schema = document["schema"]
    if isinstance(schema, bool) or schema != RECORD_SCHEMA:
        raise RecordRejected(f"schema {schema!r}, expected {RECORD_SCHEMA}")
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


# ----------------------------------------------------------------------------
# Lua scripts.
#
# Every script: KEYS[1] = the session key (or the global index for the sweep),
# KEYS[2] = the user's index, KEYS[3] = the global index; ARGV[1] = key prefix,
# ARGV[2] = now (the manager's clock, epoch seconds as a JSON number),
# ARGV[3] = idle timeout in seconds, ARGV[4] = the same in ms (the TTL),
# ARGV[5] = the record's ids as they follow its header (see _ids_fragment).
# Idle expiry follows the manager's clock (``now - last_activity >= idle``), as
# the in-memory store does; Redis' own TTL is the backstop that removes
# records nobody touches again.

_LUA_COMMON = r"""
local prefix = ARGV[1]
local now_text = ARGV[2]
local now = tonumber(ARGV[2])
local idle = tonumber(ARGV[3])
local ttl_ms = tonumber(ARGV[4])
local global_index = prefix .. ':all'

local function parse_header(raw)
  -- The ids must follow the header verbatim: a record naming other ids is
  -- untrusted here already, so no script ever refreshes or writes over it.
  local version, last_activity, rest_at =
    string.match(raw, '^{"schema":1,"version":(%d+),"last_activity":([-+.%deE]+),()')
  if not version or string.sub(raw, rest_at, rest_at + #ARGV[5] - 1) ~= ARGV[5] then
    return nil
  end
  return version, last_activity, rest_at
end

local function with_header(raw, version, rest_at)
  return '{"schema":1,"version":' .. string.format('%d', tonumber(version))
    .. ',"last_activity":' .. now_text .. ',' .. string.sub(raw, rest_at)
end

local function user_index_of(key)
  -- key is prefix:s:<user>:<thread>, and the encoded user never contains ':'
  local user = string.match(string.sub(key, #prefix + 4), '^([^:]*):')
  return prefix .. ':u:' .. user
end

local function extend_ttl(key)
  if redis.call('PTTL', key) < ttl_ms then
    redis.call('PEXPIRE', key, ttl_ms)
  end
end

local function index(key)
  local user_index = user_index_of(key)
  redis.call('ZADD', user_index, now_text, key)
  redis.call('ZADD', global_index, now_text, key)
  extend_ttl(user_index)
  extend_ttl(global_index)
end

local function rewrite_live(key, record)
  -- XX: rewriting a record never re-creates a session that ended meanwhile;
  -- PX: no session key is ever written without an expiry.
  redis.call('SET', key, record, 'XX', 'PX', ttl_ms)
  index(key)
end

local function refresh(key, raw, version, rest_at)
  local fresh = with_header(raw, version, rest_at)
  rewrite_live(key, fresh)
  return fresh
end

local function remove(key, reason, removed)
  redis.call('DEL', key)
  redis.call('ZREM', user_index_of(key), key)
  redis.call('ZREM', global_index, key)
  if removed then
    table.insert(removed, reason)
    table.insert(removed, key)
  end
end

local function is_idle(last_activity)
  return now - tonumber(last_activity) >= idle
end

local function idle_cutoff()
  return string.format('%.17g', now - idle)
end
"""

# Returns {'live', record} | {'missing'} | {'untrusted', value}.
_TOUCH_LUA = (
    _LUA_COMMON
    + r"""
local raw = redis.call('GET', KEYS[1])
if not raw then
  remove(KEYS[1])
  return {'missing'}
end
local version, last_activity, rest_at = parse_header(raw)
if not version then
  return {'untrusted', raw}
end
if is_idle(last_activity) then
  remove(KEYS[1])
  return {'missing'}
end
return {'live', refresh(KEYS[1], raw, version, rest_at)}
"""
)

# ARGV[6] = candidate record, ARGV[7] = per-user cap, ARGV[8] = total cap
# (0: none), ARGV[9] = a value Python rejected ('' for none), treated as absent.
# Returns {'live', record} | {'untrusted', value} | {'created', reason, key, ...}.
_GET_OR_CREATE_BODY = r"""
local candidate = ARGV[6]
local user_cap = tonumber(ARGV[7])
local total_cap = tonumber(ARGV[8])
local untrusted = ARGV[9]
local result = {'created'}

local raw = redis.call('GET', KEYS[1])
if raw and not (untrusted ~= '' and raw == untrusted) then
  local version, last_activity, rest_at = parse_header(raw)
  if not version then
    return {'untrusted', raw}
  end
  if not is_idle(last_activity) then
    return {'live', refresh(KEYS[1], raw, version, rest_at)}
  end
  remove(KEYS[1], 'expired', result)
elseif raw then
  remove(KEYS[1])
end

-- Expired sessions make room first, then the least recently active go.
for _, key in ipairs(redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', idle_cutoff())) do
  remove(key, 'expired', result)
end
if user_cap > 0 and redis.call('ZCARD', KEYS[2]) >= user_cap then
  -- Keys can vanish without us (Redis' own TTL, maxmemory eviction, an
  -- operator's DEL): drop those entries before evicting a live session.
  for _, key in ipairs(redis.call('ZRANGE', KEYS[2], 0, -1)) do
    if redis.call('EXISTS', key) == 0 then
      remove(key, 'expired', result)
    end
  end
  while redis.call('ZCARD', KEYS[2]) >= user_cap do
    remove(redis.call('ZRANGE', KEYS[2], 0, 0)[1], 'user_capacity', result)
  end
end
if total_cap > 0 and redis.call('ZCARD', KEYS[3]) >= total_cap then
  for _, key in ipairs(redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', idle_cutoff())) do
    remove(key, 'expired', result)
  end
  while redis.call('ZCARD', KEYS[3]) >= total_cap do
    local oldest = redis.call('ZRANGE', KEYS[3], 0, 0)[1]
    if redis.call('EXISTS', oldest) == 0 then
      remove(oldest, 'expired', result)
    else
      remove(oldest, 'capacity', result)
    end
  end
end

redis.call('SET', KEYS[1], candidate, 'NX', 'PX', ttl_ms)
index(KEYS[1])
return result
"""
_GET_OR_CREATE_LUA = _LUA_COMMON + _GET_OR_CREATE_BODY

# ARGV[6] = expected version, ARGV[7] = the new conversation_state as JSON.
# Returns {'saved', record} | {'missing'} | {'untrusted', value} | {'conflict', version}.
_SAVE_STATE_BODY = r"""
local raw = redis.call('GET', KEYS[1])
if not raw then
  remove(KEYS[1])
  return {'missing'}
end
local version, last_activity, rest_at = parse_header(raw)
local state_at = version and string.find(raw, ',"conversation_state":', rest_at, true)
if not state_at then
  return {'untrusted', raw}
end
if is_idle(last_activity) then
  remove(KEYS[1])
  return {'missing'}
end
if tonumber(version) ~= tonumber(ARGV[6]) then
  return {'conflict', version}
end
local fresh = '{"schema":1,"version":' .. string.format('%d', tonumber(version) + 1)
  .. ',"last_activity":' .. now_text .. ',' .. string.sub(raw, rest_at, state_at)
  .. '"conversation_state":' .. ARGV[7] .. '}'
rewrite_live(KEYS[1], fresh)
return {'saved', fresh}
"""
_SAVE_STATE_LUA = _LUA_COMMON + _SAVE_STATE_BODY

# Conversation leases (see ctxmigrate.shim.lease). KEYS[4] = the lease key,
# whose value is the holder's token and which expires with the lease;
# KEYS[5] = the waiting line, a sorted set of waiters' tokens by arrival. A
# waiter keeps a key <prefix>:w:<token> alive while it polls: one that stopped
# polling (gave up, crashed) loses its place when it reaches the front.

# ARGV[6..9] as for get_or_create, ARGV[10] = token, ARGV[11] = lease ttl in ms,
# ARGV[12] = waiter heartbeat in ms. Returns {'busy', position} or the reply of
# get_or_create (the lease is then held by the token).
_ACQUIRE_LUA = (
    _LUA_COMMON
    + r"""
local lease_key = KEYS[4]
local line_key = KEYS[5]
local token = ARGV[10]
local lease_ms = tonumber(ARGV[11])
local heartbeat_ms = tonumber(ARGV[12])
local waiter_prefix = prefix .. ':w:'

local function wait_in_line()
  local position = redis.call('ZRANK', line_key, token)
  if not position then
    local last = redis.call('ZRANGE', line_key, -1, -1, 'WITHSCORES')
    local arrival = 1
    if last[2] then
      arrival = tonumber(last[2]) + 1
    end
    redis.call('ZADD', line_key, arrival, token)
    position = redis.call('ZCARD', line_key) - 1
  end
  redis.call('SET', waiter_prefix .. token, '1', 'PX', heartbeat_ms)
  if redis.call('PTTL', line_key) < heartbeat_ms then
    redis.call('PEXPIRE', line_key, heartbeat_ms)
  end
  return {'busy', position}
end

local holder = redis.call('GET', lease_key)
if holder and holder ~= token then
  return wait_in_line()
end
if not holder then
  -- First come, first served: the front of the line goes next. A waiter that
  -- stopped polling is skipped.
  while true do
    local front = redis.call('ZRANGE', line_key, 0, 0)[1]
    if not front or front == token then
      break
    end
    if redis.call('EXISTS', waiter_prefix .. front) == 1 then
      return wait_in_line()
    end
    redis.call('ZREM', line_key, front)
  end
end
redis.call('ZREM', line_key, token)
redis.call('DEL', waiter_prefix .. token)
redis.call('SET', lease_key, token, 'PX', lease_ms)

local function get_or_create()
"""
    + _GET_OR_CREATE_BODY
    + r"""
end
return get_or_create()
"""
)

# KEYS[1] = the lease key. ARGV[1] = token, ARGV[2] = lease ttl in ms.
# Returns 1 if the token still held the lease (now extended), else 0.
_RENEW_LUA = r"""
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return 0
end
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2]))
return 1
"""

# KEYS as for save_state plus KEYS[4] = the lease key. ARGV[6] = expected
# version, ARGV[7] = the new conversation_state ('' to release without saving),
# ARGV[8] = token. Returns {'lost'} (nothing written, nothing released),
# {'released'}, or the reply of save_state (the lease released either way).
_RELEASE_LUA = (
    _LUA_COMMON
    + r"""
if redis.call('GET', KEYS[4]) ~= ARGV[8] then
  return {'lost'}
end
redis.call('DEL', KEYS[4])
if ARGV[7] == '' then
  return {'released'}
end
local function save_state()
"""
    + _SAVE_STATE_BODY
    + r"""
end
return save_state()
"""
)

# KEYS[1] = the lease key, KEYS[2] = the waiting line, KEYS[3] = the waiter's
# key. ARGV[1] = token. A waiter that gives up leaves the line; if its last
# attempt was granted after all (the reply never arrived), it lets go.
_ABANDON_LUA = r"""
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('DEL', KEYS[3])
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
end
return 0
"""

# Returns 1 if the record existed.
_DELETE_LUA = (
    _LUA_COMMON
    + r"""
local existed = redis.call('EXISTS', KEYS[1])
remove(KEYS[1])
return existed
"""
)

# KEYS[1] = the global index. ARGV[6] = batch size. Returns the removed keys.
_SWEEP_LUA = (
    _LUA_COMMON
    + r"""
local removed = {}
local expired = redis.call(
  'ZRANGEBYSCORE', KEYS[1], '-inf', idle_cutoff(), 'LIMIT', 0, tonumber(ARGV[6]))
for _, key in ipairs(expired) do
  remove(key)
  table.insert(removed, key)
end
return removed
"""
)

# KEYS[1] = a user's index. Returns how many of the user's sessions are live.
_COUNT_USER_LUA = (
    _LUA_COMMON
    + r"""
return redis.call('ZCOUNT', KEYS[1], '(' .. idle_cutoff(), '+inf')
"""
)


# ----------------------------------------------------------------------------
# The store

# Connection failures and timeouts, but also a server that answers and cannot
# serve: READONLY (a primary demoted by a failover), OOM at maxmemory, LOADING.
# Every redis-py error says which in its class and text, which the message keeps.
_UNAVAILABLE_ERRORS: Final = (redis_errors.RedisError, OSError)


def public_address(url: str) -> str:
    """The server address for error messages: no password, no username."""
    parsed = urllib.parse.urlsplit(url)
    if parsed.scheme == "unix":
        return f"unix://{parsed.path}"
    host = parsed.hostname or "localhost"
    port = parsed.port or 6379
    database = parsed.path.lstrip("/") or "0"
    return f"{parsed.scheme}://{host}:{port}/{database}"


def _milliseconds(seconds: float) -> int:
    # PX takes whole milliseconds; never 0 (that would expire at once).
    return max(1, math.ceil(seconds * 1000))


async def _finish(call: Any) -> None:
    """Run ``call`` to its end even if cancelled meanwhile (it cleans up after us)."""
    task = asyncio.ensure_future(call)
    while not task.done():
        try:
            await asyncio.wait((task,))
        except asyncio.CancelledError:
            continue
    if not task.cancelled():
        task.exception()  # retrieved: _leave logs its own failures


def _fingerprint(raw: bytes) -> str:
    return hashlib.sha256(raw).hexdigest()[:16]


class RedisSessionStore:
    """Session records in Redis, shared by every process using the same server and prefix.

    Pass it to the manager as its store. ``url`` is a redis-py URL
    (``redis://host:6379/0``, ``rediss://...``, ``unix:///run/redis.sock``).
    The connection settings are explicit because redis-py's defaults changed
    between releases (8.1: 5 s timeouts and ten retries, so a request could
    hang for many seconds before failing):

    - ``max_connections``: pool size per process; callers beyond it wait up to
      ``pool_timeout`` seconds for a free connection, then get an error.
    - ``socket_timeout`` / ``socket_connect_timeout``: seconds per command / connect.
    - ``retries``: reconnect attempts per command after a connection error,
      with jittered backoff (how the store recovers by itself after a restart).

    The idle timeout and the caps come from the manager's
    :class:`~ctxmigrate.shim.store.SessionPolicy` on every call.
    """

    def __init__(
        self,
        url: str,
        *,
        key_prefix: str = "ctxmigrate",
        max_connections: int = 32,
        socket_timeout: float = 2.0,
        socket_connect_timeout: float = 2.0,
        pool_timeout: float = 5.0,
        retries: int = 2,
    ) -> None:
        self.key_prefix = validate_key_prefix(key_prefix)
        if max_connections < 1:
            raise ValueError("max_connections must be at least 1")
        self.address = public_address(url)
        pool = aioredis.BlockingConnectionPool.from_url(
            url,
            max_connections=max_connections,
            timeout=pool_timeout,
            socket_timeout=socket_timeout,
            socket_connect_timeout=socket_connect_timeout,
            retry=Retry(FullJitterBackoff(cap=0.5, base=0.05), retries),
            decode_responses=False,
        )
        self._redis = aioredis.Redis.from_pool(pool)
        self._touch = self._redis.register_script(_TOUCH_LUA)
        self._get_or_create = self._redis.register_script(_GET_OR_CREATE_LUA)
        self._save_state = self._redis.register_script(_SAVE_STATE_LUA)
        self._delete = self._redis.register_script(_DELETE_LUA)
        self._sweep = self._redis.register_script(_SWEEP_LUA)
        self._count_user = self._redis.register_script(_COUNT_USER_LUA)
        self._acquire = self._redis.register_script(_ACQUIRE_LUA)
        self._renew = self._redis.register_script(_RENEW_LUA)
        self._release = self._redis.register_script(_RELEASE_LUA)
        self._abandon = self._redis.register_script(_ABANDON_LUA)

    # -- keys -------------------------------------------------------------------

    def session_key(self, key: SessionKey) -> str:
        return session_key(self.key_prefix, key)

    def user_index_key(self, user_id: str) -> str:
        return user_index_key(self.key_prefix, user_id)

    def global_index_key(self) -> str:
        return global_index_key(self.key_prefix)

    def _keys(self, key: SessionKey) -> tuple[str, str, str]:
        return (self.session_key(key), self.user_index_key(key.user_id), self.global_index_key())

    def _common_args(
        self, now: float, policy: SessionPolicy, key: SessionKey | None = None
    ) -> tuple[str, str, str, int, str]:
        # PX takes whole milliseconds; a TTL must never be 0 (that would delete at once).
        ttl_ms = max(1, math.ceil(policy.idle_timeout * 1000))
        return (
            self.key_prefix,
            _json_number(now, "now"),
            repr(float(policy.idle_timeout)),
            ttl_ms,
            "" if key is None else _ids_fragment(key),
        )

    # -- plumbing -----------------------------------------------------------------

    async def _run(
        self, operation: str, script: Any, keys: Sequence[str], args: Sequence[Any]
    ) -> Any:
        try:
            return await script(keys=keys, args=args)
        except _UNAVAILABLE_ERRORS as exc:
            raise SessionStoreUnavailableError(self.address, operation, exc) from exc

    def _decode(self, raw: bytes, key: SessionKey) -> SessionRecord | None:
        try:
            return decode_record(raw, key)
        except RecordRejected as exc:
            self._report_untrusted(raw, key, str(exc))
            return None

    def _report_untrusted(self, raw: bytes, key: SessionKey, reason: str) -> None:
        redis_key = self.session_key(key)
        # The value itself is not logged: it may be large, personal or hostile.
        logger.warning(
            "%s: untrusted session record at %s (%s); treated as missing",
            RECORD_REJECTED_EVENT,
            redis_key,
            reason,
            extra={
                "event": RECORD_REJECTED_EVENT,
                "redis_key": redis_key,
                "reason": reason,
                "value_sha256_prefix": _fingerprint(raw),
                "value_length": len(raw),
            },
        )

    def _removals(self, flat: Sequence[bytes]) -> tuple[Removal, ...]:
        return tuple(
            Removal(
                parse_session_key(self.key_prefix, redis_key.decode("utf-8")),
                RemovalReason(reason.decode("ascii")),
            )
            for reason, redis_key in zip(flat[0::2], flat[1::2], strict=True)
        )

    # -- SessionStore ---------------------------------------------------------------

    async def get_or_create(
        self, candidate: SessionRecord, *, now: float, policy: SessionPolicy
    ) -> CreateOutcome:
        """The live record for ``candidate.key`` (activity refreshed), or the candidate, stored.

        One Lua script: across processes exactly one candidate wins and every
        caller gets the winner's record (same run_id). A stored value that
        fails to decode is logged and replaced, compare-and-set on its exact
        bytes, so two processes replacing the same bad value still agree.
        """
        outcome = await self._create_rounds(
            "get_or_create", self._get_or_create, self._keys(candidate.key), candidate, now, policy
        )
        assert outcome is not None  # only a lease acquisition can be busy
        return outcome

    async def _create_rounds(
        self,
        operation: str,
        script: Any,
        keys: Sequence[str],
        candidate: SessionRecord,
        now: float,
        policy: SessionPolicy,
        lease_args: Sequence[Any] = (),
    ) -> CreateOutcome | None:
        """Run a get-or-create script (replacing untrusted values); ``None`` if busy."""
        key = candidate.key
        fresh_candidate = SessionRecord(
            key=key,
            run_id=candidate.run_id,
            websocket_connection_id=candidate.websocket_connection_id,
            created_at=candidate.created_at,
            last_activity=now,
            conversation_state=candidate.conversation_state,
            version=candidate.version,
        )
        encoded = encode_record(fresh_candidate)
        caps = (policy.max_sessions_per_user or 0, policy.max_sessions or 0)
        untrusted = b""
        for _round in range(_MAX_UNTRUSTED_REPLACEMENTS + 1):
            reply = await self._run(
                operation,
                script,
                keys,
                (*self._common_args(now, policy, key), encoded, *caps, untrusted, *lease_args),
            )
            status = reply[0]
            if status == b"created":
                return CreateOutcome(
                    fresh_candidate, created=True, removed=self._removals(reply[1:])
                )
            if status == b"busy":
                return None
            if status == b"live":
                record = self._decode(reply[1], key)
                if record is not None:
                    return CreateOutcome(record, created=False)
            else:
                self._report_untrusted(reply[1], key, _layout_rejection(reply[1], key))
            # Only these exact bytes are replaced: if another process replaced
            # them first, the next round returns its record instead.
            untrusted = reply[1]
        raise SessionError(
            f"session {key!r}: gave up after {_MAX_UNTRUSTED_REPLACEMENTS} untrusted "
            "records in a row (something keeps writing bad values under this key)"
        )

    # -- conversation leases (ConversationStore) -------------------------------------

    async def acquire_conversation(
        self,
        candidate: SessionRecord,
        *,
        clock: Callable[[], float],
        policy: SessionPolicy,
        terms: LeaseTerms,
    ) -> LeaseGrant:
        """Take the conversation's lease and get or create its record, in one script.

        While another holder has it, the caller waits in line (a sorted set by
        arrival, in Redis, so waiters of every process are served in order),
        polling with backoff, up to ``terms.wait`` seconds. Giving up (or being
        cancelled) leaves the line, and lets go of a lease granted by a reply
        that never arrived.
        """
        key = candidate.key
        token = new_lease_token()
        keys = (
            *self._keys(key),
            lease_key(self.key_prefix, key),
            waiting_line_key(self.key_prefix, key),
        )
        lease_args = (token, _milliseconds(terms.ttl), _WAITER_HEARTBEAT_MS)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + terms.wait
        delay = _POLL_FIRST_SECONDS
        try:
            while True:
                outcome = await self._create_rounds(
                    "acquire_conversation",
                    self._acquire,
                    keys,
                    candidate,
                    clock(),
                    policy,
                    lease_args,
                )
                if outcome is not None:
                    return LeaseGrant(token, outcome, expires=True)
                remaining = deadline - loop.time()
                if remaining <= 0:
                    raise ConversationBusyError(
                        f"the conversation stayed busy for {terms.wait:g} s (another message "
                        "of it is being handled); nothing was loaded or changed, try again"
                    )
                await asyncio.sleep(min(remaining, delay * random.uniform(0.5, 1.0)))
                delay = min(delay * 2, _POLL_MAX_SECONDS)
        except BaseException:
            await _finish(self._leave(key, token))
            raise

    async def _leave(self, key: SessionKey, token: str) -> None:
        try:
            await self._abandon(
                keys=(
                    lease_key(self.key_prefix, key),
                    waiting_line_key(self.key_prefix, key),
                    waiter_key(self.key_prefix, token),
                ),
                args=(token,),
            )
        except _UNAVAILABLE_ERRORS:
            # The lease and the place in line expire by themselves.
            logger.warning("could not leave the waiting line of %r; it expires by itself", key)

    async def renew_conversation(self, key: SessionKey, token: str, *, terms: LeaseTerms) -> bool:
        """Extend the lease to ``terms.ttl`` from now; ``False`` if ``token`` lost it."""
        held = await self._run(
            "renew_conversation",
            self._renew,
            (lease_key(self.key_prefix, key),),
            (token, _milliseconds(terms.ttl)),
        )
        return bool(held)

    async def release_conversation(
        self,
        key: SessionKey,
        token: str,
        state: dict[str, Any] | None,
        *,
        expected_version: int,
        now: float,
        policy: SessionPolicy,
    ) -> SessionRecord | None:
        """Save ``state`` (unless ``None``) and release the lease, in one script.

        The save is compare-and-set on the version and applies only while
        ``token`` holds the lease (the fencing check, in the same script).
        """
        try:
            encoded = "" if state is None else encode_state(state)
        except RecordEncodingError:
            await self.release_conversation(
                key, token, None, expected_version=expected_version, now=now, policy=policy
            )
            raise
        reply = await self._run(
            "release_conversation",
            self._release,
            (*self._keys(key), lease_key(self.key_prefix, key)),
            (*self._common_args(now, policy, key), expected_version, encoded, token),
        )
        status = reply[0]
        if status == b"lost":
            raise LeaseLostError(
                "the conversation's lease expired or was taken over before this block "
                "finished: its changes were not saved"
            )
        if status == b"released":
            return None
        return self._save_reply(reply, key, expected_version)

    async def touch(
        self, key: SessionKey, *, now: float, policy: SessionPolicy
    ) -> SessionRecord | None:
        """The live record with activity and TTL refreshed, or None. Never creates."""
        reply = await self._run(
            "touch", self._touch, self._keys(key), self._common_args(now, policy, key)
        )
        if reply[0] == b"live":
            return self._decode(reply[1], key)
        if reply[0] == b"untrusted":
            self._report_untrusted(reply[1], key, _layout_rejection(reply[1], key))
        return None

    async def save_state(
        self,
        key: SessionKey,
        state: dict[str, Any],
        *,
        expected_version: int,
        now: float,
        policy: SessionPolicy,
    ) -> SessionRecord | None:
        """Compare-and-set of ``conversation_state`` on ``version``; None if the session is gone."""
        reply = await self._run(
            "save_state",
            self._save_state,
            self._keys(key),
            (*self._common_args(now, policy, key), expected_version, encode_state(state)),
        )
        return self._save_reply(reply, key, expected_version)

    def _save_reply(
        self, reply: Sequence[bytes], key: SessionKey, expected_version: int
    ) -> SessionRecord | None:
        status = reply[0]
        if status == b"saved":
            return self._decode(reply[1], key)
        if status == b"conflict":
            raise StateConflictError(
                f"conversation_state was saved by another writer "
                f"(version {int(reply[1])}, expected {expected_version})"
            )
        if status == b"untrusted":
            self._report_untrusted(reply[1], key, _layout_rejection(reply[1], key))
        return None

    async def delete(self, key: SessionKey) -> bool:
        # The idle timeout and clock do not matter to a delete.
        args = (self.key_prefix, "0", "1", 1, "")
        existed = await self._run("delete", self._delete, self._keys(key), args)
        return bool(existed)

    async def sweep_expired(self, *, now: float, policy: SessionPolicy) -> list[SessionKey]:
        """Remove the records idle for ``policy.idle_timeout`` by ``now``, in batches."""
        swept: list[SessionKey] = []
        while True:
            batch = await self._run(
                "sweep_expired",
                self._sweep,
                (self.global_index_key(),),
                (*self._common_args(now, policy), SWEEP_BATCH),
            )
            swept.extend(
                parse_session_key(self.key_prefix, redis_key.decode("utf-8")) for redis_key in batch
            )
            if len(batch) < SWEEP_BATCH:
                return swept

    async def aclose(self) -> None:
        """Close the client and its connection pool."""
        await self._redis.aclose()

    # -- beyond the SessionStore protocol --------------------------------------------

    async def count_user_sessions(self, user_id: str, *, now: float, policy: SessionPolicy) -> int:
        """How many of the user's sessions are live at ``now``, across all processes."""
        count = await self._run(
            "count_user_sessions",
            self._count_user,
            (self.user_index_key(user_id),),
            self._common_args(now, policy),
        )
        return int(count)

    async def ping(self) -> None:
        """Raise :class:`SessionStoreUnavailableError` unless Redis answers."""
        try:
            await self._redis.ping()
        except _UNAVAILABLE_ERRORS as exc:
            raise SessionStoreUnavailableError(self.address, "ping", exc) from exc

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()
