"""The session's context object: one per (user_id, thread_id) conversation."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any, Protocol


class SessionContext(Protocol):
    """What the session layer reads from a context, whatever its class.

    The application's own context type (built by its legacy factory) satisfies
    this as long as it carries the three ids, as every legacy
    ``UserExecutionContext`` does.
    """

    @property
    def user_id(self) -> str: ...

    @property
    def thread_id(self) -> str: ...

    @property
    def run_id(self) -> str: ...


class UserExecutionContext:
    """A conversation's execution context, shared by every message of that conversation.

    Timestamps are kept as epoch seconds (``float``) and exposed as timezone-aware
    UTC ``datetime`` objects: the session manager refreshes activity on every
    message, and a float store costs nothing on that hot path. ``conversation_state``
    is the application's own data; it is saved to the session store with
    ``await manager.save_conversation_state(context)``.

    Equality is identity: two contexts are "the same session" only if they are
    the same object (within a process).
    """

    __slots__ = (
        "__weakref__",
        "_created_at",
        "_last_activity",
        "conversation_state",
        "run_id",
        "thread_id",
        "user_id",
        "websocket_connection_id",
    )

    def __init__(
        self,
        user_id: str,
        thread_id: str,
        run_id: str,
        websocket_connection_id: str | None = None,
        *,
        conversation_state: dict[str, Any] | None = None,
        created_at: float | None = None,
        last_activity: float | None = None,
    ) -> None:
        self.user_id = user_id
        self.thread_id = thread_id
        self.run_id = run_id
        self.websocket_connection_id = websocket_connection_id
        self.conversation_state: dict[str, Any] = (
            {} if conversation_state is None else conversation_state
        )
        self._created_at = time.time() if created_at is None else created_at
        self._last_activity = self._created_at if last_activity is None else last_activity

    @property
    def created_at(self) -> datetime:
        return datetime.fromtimestamp(self._created_at, UTC)

    @property
    def last_activity(self) -> datetime:
        return datetime.fromtimestamp(self._last_activity, UTC)

    @property
    def last_activity_timestamp(self) -> float:
        """``last_activity`` as epoch seconds, as the session manager's clock reports it."""
        return self._last_activity

    def update_activity(self, now: float | None = None) -> None:
        """Mark the context active at ``now`` (epoch seconds; the current time by default)."""
        self._last_activity = time.time() if now is None else now

    def __repr__(self) -> str:
        # conversation_state is left out: it can be large and personal.
        return (
            f"UserExecutionContext(user_id={self.user_id!r}, thread_id={self.thread_id!r}, "
            f"run_id={self.run_id!r}, websocket_connection_id={self.websocket_connection_id!r})"
        )
