"""ctxmigrate.shim: one session per conversation, at runtime.

What an application imports during the migration. Standard library and
``typing_extensions`` only: importing it never pulls in the CLI stack
(libcst, click, rich, yaml) or redis.
"""

from ctxmigrate.shim.configuration import (
    configure,
    current_observer,
    default_manager,
    get_manager_for_context,
    get_or_create_user_session,
    reset_configuration,
    unbound_websocket_manager_count,
)
from ctxmigrate.shim.context import SessionContext, UserExecutionContext
from ctxmigrate.shim.deprecation import deprecated
from ctxmigrate.shim.errors import (
    ConfigurationError,
    ConversationBusyError,
    InvalidSessionIdError,
    LeaseLostError,
    SessionEndedError,
    SessionError,
    StateConflictError,
    SyncAccessError,
)
from ctxmigrate.shim.legacy import (  # type: ignore[deprecated, unused-ignore]  # a re-export
    create_user_execution_context,
)
from ctxmigrate.shim.legacy_observer import CallSite, ContextObserver
from ctxmigrate.shim.manager import UserSessionManager
from ctxmigrate.shim.metrics import LeakCheck, SessionStats
from ctxmigrate.shim.observe import legacy_observer, observe_legacy, write_observations
from ctxmigrate.shim.store import (
    CreateOutcome,
    InMemorySessionStore,
    Removal,
    RemovalReason,
    SessionKey,
    SessionPolicy,
    SessionRecord,
    SessionStore,
    SyncSessionStore,
)
from ctxmigrate.shim.validation import MAX_ID_LENGTH
from ctxmigrate.shim.websocket import (
    WebSocketContextView,
    session_websocket_context,
    to_user_execution_context,
)

__all__ = [
    "MAX_ID_LENGTH",
    "CallSite",
    "ConfigurationError",
    "ContextObserver",
    "ConversationBusyError",
    "CreateOutcome",
    "InMemorySessionStore",
    "InvalidSessionIdError",
    "LeakCheck",
    "LeaseLostError",
    "Removal",
    "RemovalReason",
    "SessionContext",
    "SessionEndedError",
    "SessionError",
    "SessionKey",
    "SessionPolicy",
    "SessionRecord",
    "SessionStats",
    "SessionStore",
    "StateConflictError",
    "SyncAccessError",
    "SyncSessionStore",
    "UserExecutionContext",
    "UserSessionManager",
    "WebSocketContextView",
    "configure",
    "create_user_execution_context",
    "current_observer",
    "default_manager",
    "deprecated",
    "get_manager_for_context",
    "get_or_create_user_session",
    "legacy_observer",
    "observe_legacy",
    "reset_configuration",
    "session_websocket_context",
    "to_user_execution_context",
    "unbound_websocket_manager_count",
    "write_observations",
]
