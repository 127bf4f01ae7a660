"""The Redis session store: :class:`RedisSessionStore` and what it is made of.

``keys`` (the key scheme), ``codec`` (the record's JSON), ``scripts`` (the Lua
scripts, built from the Python definitions of both) and ``store`` (the store).
Importing this package imports redis-py; ``import ctxmigrate.shim`` never does.
"""

from ctxmigrate.shim.redis.codec import (
    RECORD_SCHEMA,
    RecordEncodingError,
    RecordRejected,
    decode_record,
    encode_record,
    encode_state,
)
from ctxmigrate.shim.redis.keys import (
    global_index_key,
    lease_key,
    parse_session_key,
    session_key,
    user_index_key,
    validate_key_prefix,
    waiter_key,
    waiting_line_key,
)
from ctxmigrate.shim.redis.store import (
    RECORD_REJECTED_EVENT,
    SWEEP_BATCH,
    RedisSessionStore,
    SessionStoreUnavailableError,
    public_address,
)

__all__ = [
    "RECORD_REJECTED_EVENT",
    "RECORD_SCHEMA",
    "SWEEP_BATCH",
    "RecordEncodingError",
    "RecordRejected",
    "RedisSessionStore",
    "SessionStoreUnavailableError",
    "decode_record",
    "encode_record",
    "encode_state",
    "global_index_key",
    "lease_key",
    "parse_session_key",
    "public_address",
    "session_key",
    "user_index_key",
    "validate_key_prefix",
    "waiter_key",
    "waiting_line_key",
]
