"""The deprecated drop-in for the legacy ``create_user_execution_context``.

It keeps the legacy keyword signature, so an application can point its old
import at it without touching call sites, and it is marked deprecated (PEP 702)
so type checkers list every remaining caller.

Modes (chosen with ``configure(mode=...)``):

``"observe"`` (default)
    Build a new context per call, exactly as before, with the configured
    manager's factory, and record it per conversation and call site
    (``current_observer().to_json()``).
``"reuse"``
    Return the conversation's session context from the configured manager.
    The legacy function is synchronous, and a synchronous function cannot await
    an async manager, so this uses the manager's synchronous get-or-create path:
    it needs the in-memory store (which answers without awaiting) and a
    synchronous factory, and it raises ``SyncAccessError`` (rather than blocking
    the event loop) when a store is async-only, the factory is async, or an async
    creation of the same session is in flight. Code that can ``await`` should be
    rewritten to ``await get_or_create_user_session(...)`` (``ctxmigrate apply``).

A call that passes a ``db_session`` is never routed to a shared session, in
either mode: a per-request database session must not outlive its request inside
a context that later messages reuse. It gets a fresh context, as before, and is
counted as ``with_db_session`` in the observer's report. The ``db_session`` is
passed to the configured manager's factory; a manager without ``factory=`` builds
the shim's ``UserExecutionContext``, which has no ``db_session`` attribute, so
there the fresh context does not carry it.
"""

from __future__ import annotations

from typing import Any

from ctxmigrate.shim.configuration import current_mode, current_observer, default_manager
from ctxmigrate.shim.deprecation import deprecated
from ctxmigrate.shim.legacy_observer import caller_outside_shim
from ctxmigrate.shim.observe import legacy_observer

DROP_IN_API = "ctxmigrate.shim.create_user_execution_context"


# The message is a literal on purpose: type checkers read only a literal (PEP 702).
@deprecated(
    "create_user_execution_context() builds a new context for every message; use "
    "`await get_or_create_user_session(user_id, thread_id, run_id=...)` from ctxmigrate.shim "
    "(`ctxmigrate apply` rewrites the call sites). This drop-in will be removed in ctxmigrate 1.0."
)
def create_user_execution_context(
    user_id: str,
    thread_id: str,
    run_id: str | None = None,
    db_session: Any = None,
    websocket_connection_id: str | None = None,
) -> Any:
    """Legacy signature; see the module docstring for what each mode does."""
    manager = default_manager()
    if current_mode() == "reuse" and db_session is None:
        return manager.get_or_create_user_session_sync(
            user_id, thread_id, run_id=run_id, websocket_connection_id=websocket_connection_id
        )
    # The db_session goes to the application's factory; the shim's own
    # UserExecutionContext (a manager without factory=) has no place for it.
    extra: dict[str, Any] = (
        {"db_session": db_session} if db_session is not None and manager.factory is not None else {}
    )
    context = manager.create_detached_context(
        user_id, thread_id, run_id=run_id, websocket_connection_id=websocket_connection_id, **extra
    )
    site = caller_outside_shim()
    current_observer().record(user_id, thread_id, site, db_session=db_session is not None)
    # Also evidence for `audit --evidence` and the metrics, like an @observe_legacy factory.
    observer = legacy_observer()
    observer.record(DROP_IN_API, site.path, site.line, site.function, user_id, thread_id)
    observer.track(DROP_IN_API, context)  # live outside the session layer (leak detection)
    return context
