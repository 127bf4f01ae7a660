"""Redis key scheme of the session store: one definition, used by Python and the scripts.

Keys, under the configurable prefix ``P``: ``P:s:<user>:<thread>`` (the record),
``P:u:<user>`` (the user's index), ``P:all`` (the global index),
``P:l:<user>:<thread>`` (a conversation's lease), ``P:q:<user>:<thread>`` (its
waiting line) and ``P:w:<token>`` (a waiter's heartbeat). The kind names below
are the only place they are spelled: the Lua scripts receive them from here
(see :mod:`ctxmigrate.shim.redis.scripts`).
"""

from __future__ import annotations

import urllib.parse
from typing import Final

from ctxmigrate.shim.store import SessionKey

SESSION_KIND: Final = "s"
USER_INDEX_KIND: Final = "u"
GLOBAL_INDEX_NAME: Final = "all"
LEASE_KIND: Final = "l"
WAITING_LINE_KIND: Final = "q"
WAITER_KIND: Final = "w"


def _encode_key_component(value: str) -> str:
    # quote(safe="") keeps only [A-Za-z0-9_.~-] and escapes everything else,
    # "%" included, so it is injective and its output never contains ":":
    # user and thread cannot run into each other.
    return urllib.parse.quote(value, safe="")


def _pair(key: SessionKey) -> str:
    return f"{_encode_key_component(key.user_id)}:{_encode_key_component(key.thread_id)}"


def validate_key_prefix(prefix: str) -> str:
    if not isinstance(prefix, str) or not prefix:
        raise ValueError("Redis key prefix must be a non-empty string")
    if not prefix.isprintable() or " " in prefix:
        # Keys show up in logs and redis-cli; control characters and spaces make them ambiguous.
        raise ValueError(f"Redis key prefix must be printable, without spaces: {prefix!r}")
    return prefix


def session_key(prefix: str, key: SessionKey) -> str:
    """``<prefix>:s:<user>:<thread>``: the Redis key of one session record."""
    return f"{prefix}:{SESSION_KIND}:{_pair(key)}"


def user_index_key(prefix: str, user_id: str) -> str:
    """``<prefix>:u:<user>``: the user's session keys, scored by last activity."""
    return f"{prefix}:{USER_INDEX_KIND}:{_encode_key_component(user_id)}"


def global_index_key(prefix: str) -> str:
    """``<prefix>:all``: every session key, scored by last activity."""
    return f"{prefix}:{GLOBAL_INDEX_NAME}"


def lease_key(prefix: str, key: SessionKey) -> str:
    """``<prefix>:l:<user>:<thread>``: the conversation's lease (the holder's token)."""
    return f"{prefix}:{LEASE_KIND}:{_pair(key)}"


def waiting_line_key(prefix: str, key: SessionKey) -> str:
    """``<prefix>:q:<user>:<thread>``: the tokens waiting for the conversation, by arrival."""
    return f"{prefix}:{WAITING_LINE_KIND}:{_pair(key)}"


def waiter_key(prefix: str, token: str) -> str:
    """``<prefix>:w:<token>``: exists while the waiter with ``token`` keeps polling."""
    return f"{prefix}:{WAITER_KIND}:{token}"


def parse_session_key(prefix: str, redis_key: str) -> SessionKey:
    """Invert :func:`session_key` (to report which sessions a script removed)."""
    head = f"{prefix}:{SESSION_KIND}:"
    user_part, separator, thread_part = redis_key.removeprefix(head).partition(":")
    if not redis_key.startswith(head) or not separator:
        raise ValueError(f"not a session key under prefix {prefix!r}: {redis_key!r}")
    return SessionKey(
        urllib.parse.unquote(user_part, errors="strict"),
        urllib.parse.unquote(thread_part, errors="strict"),
    )
