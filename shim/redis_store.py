"""The Redis session store, under the import path of earlier releases.

The store is the package :mod:`ctxmigrate.shim.redis` (keys, codec, scripts,
store); this module re-exports its public names so that
``from ctxmigrate.shim.redis_store import RedisSessionStore`` keeps working.
"""

from ctxmigrate.shim.redis import (
    RECORD_REJECTED_EVENT,
    RECORD_SCHEMA,
    SWEEP_BATCH,
    RecordEncodingError,
    RecordRejected,
    RedisSessionStore,
    SessionStoreUnavailableError,
    decode_record,
    encode_record,
    encode_state,
    global_index_key,
    lease_key,
    parse_session_key,
    public_address,
    session_key,
    user_index_key,
    validate_key_prefix,
    waiter_key,
    waiting_line_key,
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
