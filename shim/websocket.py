"""The adapter between the legacy ``WebSocketContext`` and the session's context.

Legacy handlers built a ``WebSocketContext`` per message beside the
``UserExecutionContext``, and the two could disagree about the user's thread and
run. Here the websocket side is a *view* over the session context: its ids are
read from the session, so they cannot disagree.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any, Generic

from typing_extensions import TypeVar

from ctxmigrate.shim.configuration import default_manager, owning_manager
from ctxmigrate.shim.context import SessionContext
from ctxmigrate.shim.manager import UserSessionManager
from ctxmigrate.shim.validation import new_connection_id

logger = logging.getLogger(__name__)

ViewedT = TypeVar("ViewedT", bound=SessionContext, default=Any)

#: A connection older than this is reported by ``validate_for_message_processing``
#: (the legacy class warned after 24 hours too).
_OLD_CONNECTION_SECONDS = 86_400


class WebSocketContextView(Generic[ViewedT]):
    """A ``WebSocketContext``-compatible object bound to a session context.

    It exposes the legacy attributes (``websocket``, ``connection_id``,
    ``user_id``, ``thread_id``, ``run_id``, ``connected_at``, ``last_activity``,
    ``is_active``) and methods (``update_activity()``, ``get_connection_info()``,
    ``validate_for_message_processing()``, ``to_isolation_key()``), so code typed
    for the legacy class keeps working. The ids come from ``context``, the
    session's context; ``connection_id`` and ``connected_at`` belong to the view,
    so a reconnect gets a new view over the same session.

    ``manager`` is the session manager owning ``context`` (found among the live
    managers when not given); :meth:`update_activity` and
    :meth:`refresh_activity` count as activity of the session there.
    """

    __slots__ = ("_manager", "connected_at", "connection_id", "context", "websocket")

    def __init__(
        self,
        websocket: Any,
        connection_id: str,
        context: ViewedT,
        *,
        connected_at: datetime | None = None,
        manager: UserSessionManager[Any] | None = None,
    ) -> None:
        self.websocket = websocket
        self.connection_id = connection_id
        self.context = context
        self.connected_at = datetime.now(UTC) if connected_at is None else connected_at
        self._manager = manager

    @property
    def user_id(self) -> str:
        return self.context.user_id

    @property
    def thread_id(self) -> str:
        return self.context.thread_id

    @property
    def run_id(self) -> str:
        return self.context.run_id

    @property
    def last_activity(self) -> datetime:
        """The session's last activity (the view's creation time if the context has none)."""
        activity = getattr(self.context, "last_activity", None)
        return activity if isinstance(activity, datetime) else self.connected_at

    @property
    def is_active(self) -> bool:
        """Whether the websocket reports itself connected (Starlette's ``client_state``)."""
        state = getattr(self.websocket, "client_state", None)
        return getattr(state, "name", None) == "CONNECTED"

    def _session_manager(self) -> UserSessionManager[Any] | None:
        manager = self._manager
        if manager is not None and manager.owns(self.context):
            return manager
        return owning_manager(self.context)

    def update_activity(self) -> None:
        """Mark the *session* active (the view has no activity of its own).

        This is an access of the session, like a message: it slides the
        manager's idle timer and, with the in-memory store, the stored record's
        expiry. A synchronous method cannot reach an async-only store (Redis):
        there it refreshes only this process's timer, so heartbeats should
        ``await view.refresh_activity()`` instead. A context that is not a live
        session (already ended, or built by legacy code) only gets its own
        ``update_activity()`` called, as before.
        """
        manager = self._session_manager()
        if manager is not None:
            manager.mark_active(self.context)
            return
        update_activity = getattr(self.context, "update_activity", None)
        if callable(update_activity):
            update_activity()

    async def refresh_activity(self) -> bool:
        """Refresh the session (idle timer and stored record, any store); whether it is live."""
        manager = self._session_manager()
        return manager is not None and await manager.touch_session(self.context)

    def get_connection_info(self) -> dict[str, Any]:
        """The legacy debugging summary (ids and timestamps, no message data)."""
        state = getattr(self.websocket, "client_state", None)
        return {
            "connection_id": self.connection_id,
            "user_id": self.user_id,
            "thread_id": self.thread_id,
            "run_id": self.run_id,
            "connected_at": self.connected_at.isoformat(),
            "last_activity": self.last_activity.isoformat(),
            "is_active": self.is_active,
            "client_state": getattr(state, "name", "UNKNOWN"),
        }

    def validate_for_message_processing(self) -> bool:
        """True if a message can be processed; ``ValueError`` saying why not otherwise."""
        if not self.is_active:
            raise ValueError(
                f"WebSocket context validation failed: connection {self.connection_id} "
                "is not active"
            )
        if not (self.user_id and self.thread_id and self.run_id):
            raise ValueError(
                f"WebSocket context validation failed: missing required identifiers in "
                f"context {self.connection_id}"
            )
        age = (datetime.now(UTC) - self.connected_at).total_seconds()
        if age > _OLD_CONNECTION_SECONDS:
            logger.warning("WebSocket connection %s is very old: %.0fs", self.connection_id, age)
        return True

    def to_isolation_key(self) -> str:
        """A key unique to (user, thread, run).

        Unlike the legacy ``f"ws_{user_id}_{thread_id}_{run_id}"``, which lets
        user ``a_b`` collide with user ``a``'s thread ``b_...``, each id is
        length-prefixed, so distinct triples always give distinct keys.
        """
        user_id, thread_id = self.user_id, self.thread_id
        return f"ws_{len(user_id)}:{user_id}_{len(thread_id)}:{thread_id}_{self.run_id}"

    def __repr__(self) -> str:
        return (
            f"WebSocketContextView(connection_id={self.connection_id!r}, context={self.context!r})"
        )


async def session_websocket_context(
    websocket: Any,
    user_id: str,
    thread_id: str | None = None,
    run_id: str | None = None,
    connection_id: str | None = None,
    *,
    manager: UserSessionManager[Any] | None = None,
) -> WebSocketContextView[Any]:
    """Replacement for ``WebSocketContext.create_for_user(...)``.

    Returns a view bound to the conversation's session (got or created with the
    configured manager, or ``manager``), so the websocket side and the execution
    side share one context. ``connection_id`` is generated when not given.
    """
    connection_id = new_connection_id() if connection_id is None else connection_id
    context = await (manager or default_manager()).get_or_create_user_session(
        user_id, thread_id, run_id=run_id, websocket_connection_id=connection_id
    )
    return WebSocketContextView(websocket, connection_id, context, manager=manager)


async def to_user_execution_context(
    websocket_context: Any, *, manager: UserSessionManager[Any] | None = None
) -> Any:
    """The session context behind a legacy ``WebSocketContext`` (or a view).

    Gets or creates the session for the websocket context's (user_id, thread_id);
    its run_id and connection_id are used only if the session is created now.
    """
    return await (manager or default_manager()).get_or_create_user_session(
        websocket_context.user_id,
        websocket_context.thread_id,
        run_id=websocket_context.run_id,
        websocket_connection_id=websocket_context.connection_id,
    )
