"""Validation of the ids that key a session.

Ids arrive from websocket payloads, so they are untrusted. A valid id is a
non-empty ``str`` of at most :data:`MAX_ID_LENGTH` characters whose every
character is printable (``str.isprintable``): this rejects control characters
(C0, C1, DEL), format characters such as bidi overrides, line and paragraph
separators, lone surrogates (which cannot be encoded as UTF-8 for a shared
store) and unassigned code points. The ASCII space is allowed.
"""

from __future__ import annotations

import unicodedata
import uuid

from ctxmigrate.shim.errors import InvalidSessionIdError

MAX_ID_LENGTH = 256


def validate_id(value: object, field: str) -> str:
    """Return ``value`` as a plain ``str``; raise :class:`InvalidSessionIdError` otherwise."""
    if type(value) is not str:
        if not isinstance(value, str):
            raise InvalidSessionIdError(field, f"must be a str, not {type(value).__name__}")
        # A str subclass could override __eq__/__hash__ and so alias another
        # user's key: keep only its characters.
        value = str.__str__(value)
    if not value:
        raise InvalidSessionIdError(field, "must not be empty")
    if len(value) > MAX_ID_LENGTH:
        raise InvalidSessionIdError(
            field, f"must be at most {MAX_ID_LENGTH} characters, got {len(value)}"
        )
    if not value.isprintable():
        position = next(i for i, char in enumerate(value) if not char.isprintable())
        # The Unicode category (Cc control, Cf format, Zl line separator, ...) says
        # what kind of character it was without echoing any of the value.
        category = unicodedata.category(value[position])
        raise InvalidSessionIdError(
            field,
            f"must not contain control or other non-printable characters "
            f"(a character of Unicode category {category} at position {position})",
        )
    return value


def validate_optional_id(value: object, field: str) -> str | None:
    """Like :func:`validate_id`, but ``None`` means "not given"."""
    return None if value is None else validate_id(value, field)


def new_thread_id() -> str:
    """A fresh thread id for a conversation started without one."""
    return f"thread_{uuid.uuid4().hex}"


def new_run_id() -> str:
    """A fresh run id for a new session."""
    return f"run_{uuid.uuid4().hex}"


def new_connection_id() -> str:
    """A fresh websocket connection id, for callers that did not pass one."""
    return f"ws_{uuid.uuid4().hex}"
