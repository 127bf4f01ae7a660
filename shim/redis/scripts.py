"""The Lua scripts of the Redis session store, built from the Python definitions.

Every operation is one script, which Redis runs atomically. The schema number
(:data:`ctxmigrate.shim.redis.codec.RECORD_SCHEMA`) and the key kind names
(:mod:`ctxmigrate.shim.redis.keys`) are not spelled in the Lua text: a prelude
generated from the Python definitions declares them (``RECORD_HEADER``,
``SESSION_INFIX``, ...), so changing one definition changes what both sides
read and write. :func:`build_scripts` builds the set for a schema.
"""

from __future__ import annotations

from dataclasses import dataclass

from ctxmigrate.shim.redis import keys
from ctxmigrate.shim.redis.codec import RECORD_SCHEMA

# Every script: KEYS[1] = the session key (or the global index for the sweep),
# KEYS[2] = the user's index, KEYS[3] = the global index; ARGV[1] = key prefix,
# ARGV[2] = now (the manager's clock, epoch seconds as a JSON number),
# ARGV[3] = idle timeout in seconds, ARGV[4] = the same in ms (the TTL),
# ARGV[5] = the record's ids as they follow its header (see codec.ids_fragment).
# Idle expiry follows the manager's clock (``now - last_activity >= idle``), as
# the in-memory store does; Redis' own TTL is the backstop that removes
# records nobody touches again.

_LUA_COMMON = r"""
local prefix = ARGV[1]
local now_text = ARGV[2]
local now = tonumber(ARGV[2])
local idle = tonumber(ARGV[3])
local ttl_ms = tonumber(ARGV[4])
local global_index = prefix .. GLOBAL_INDEX_SUFFIX

local function parse_header(raw)
  -- The ids must follow the header verbatim: a record naming other ids is
  -- untrusted here already, so no script ever refreshes or writes over it.
  local version, last_activity, rest_at =
    string.match(raw, '^' .. RECORD_HEADER .. '(%d+),"last_activity":([-+.%deE]+),()')
  if not version or string.sub(raw, rest_at, rest_at + #ARGV[5] - 1) ~= ARGV[5] then
    return nil
  end
  return version, last_activity, rest_at
end

local function with_header(raw, version, rest_at)
  return RECORD_HEADER .. string.format('%d', tonumber(version))
    .. ',"last_activity":' .. now_text .. ',' .. string.sub(raw, rest_at)
end

local function user_index_of(key)
  -- key is prefix:s:<user>:<thread>, and the encoded user never contains ':'
  local user = string.match(string.sub(key, #prefix + #SESSION_INFIX + 1), '^([^:]*):')
  return prefix .. USER_INDEX_INFIX .. user
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
local fresh = RECORD_HEADER .. string.format('%d', tonumber(version) + 1)
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
local waiter_prefix = prefix .. WAITER_INFIX

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


def _lua_string(text: str) -> str:
    """``text`` as a Lua string literal."""
    escaped = text.replace("\\", "\\\\").replace("'", "\\'").replace("\n", "\\n")
    return f"'{escaped}'"


def lua_prelude(schema: int = RECORD_SCHEMA) -> str:
    """The Lua declarations of the schema header and key names, from the Python definitions."""
    if isinstance(schema, bool) or not isinstance(schema, int) or schema < 0:
        raise ValueError(f"a record schema is a non-negative int, got {schema!r}")
    header = '{"schema":' + str(schema) + ',"version":'
    declarations = {
        "RECORD_HEADER": header,
        # Read from the keys module at build time: the one definition.
        "SESSION_INFIX": f":{keys.SESSION_KIND}:",
        "USER_INDEX_INFIX": f":{keys.USER_INDEX_KIND}:",
        "GLOBAL_INDEX_SUFFIX": f":{keys.GLOBAL_INDEX_NAME}",
        "WAITER_INFIX": f":{keys.WAITER_KIND}:",
    }
    return "".join(f"local {name} = {_lua_string(value)}\n" for name, value in declarations.items())


@dataclass(frozen=True, slots=True)
class LuaScripts:
    """The source of every script of the store, for one record schema."""

    touch: str
    get_or_create: str
    save_state: str
    delete: str
    sweep: str
    count_user: str
    acquire: str
    renew: str
    release: str
    abandon: str


def build_scripts(schema: int = RECORD_SCHEMA) -> LuaScripts:
    prelude = lua_prelude(schema)
    return LuaScripts(
        touch=prelude + _TOUCH_LUA,
        get_or_create=prelude + _GET_OR_CREATE_LUA,
        save_state=prelude + _SAVE_STATE_LUA,
        delete=prelude + _DELETE_LUA,
        sweep=prelude + _SWEEP_LUA,
        count_user=prelude + _COUNT_USER_LUA,
        acquire=prelude + _ACQUIRE_LUA,
        renew=_RENEW_LUA,
        release=prelude + _RELEASE_LUA,
        abandon=_ABANDON_LUA,
    )
