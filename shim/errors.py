"""Errors raised by the session layer.

Every error derives from :class:`SessionError`, so an application can catch the
shim's failures in one place; each also derives from the built-in exception a
caller would expect (``ValueError`` for bad ids, ``RuntimeError`` for misuse).
"""

from __future__ import annotations

from typing import Any


class SessionError(Exception):
    """Base class of every error raised by ``ctxmigrate.shim``."""


class InvalidSessionIdError(SessionError, ValueError):
    """An id (user_id, thread_id, run_id, connection id) was rejected.

    ``field`` names the argument, so a handler can answer "thread_id must be ..."
    without parsing the message. The rejected value is never echoed: it may be
    hostile (log injection) or personal data.
    """

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field} {problem}")
        self.field = field


class SessionEndedError(SessionError, LookupError):
    """The session ended or expired: its state was not saved, and it was not re-created."""


class StateConflictError(SessionError):
    """The session's state changed since this process loaded it (another writer won).

    Nothing was written. ``unsaved_state`` is a copy of the state that was
    refused (when the manager raised it), so a caller can re-apply its change
    to the current state deliberately.
    """

    unsaved_state: dict[str, Any] | None = None


class SyncAccessError(SessionError, RuntimeError):
    """A sync call cannot be served: the store, the factory or a pending creation is async."""


class ConfigurationError(SessionError, RuntimeError):
    """The shim was asked for something that ``configure(...)`` has not provided."""


class ConversationBusyError(SessionError, TimeoutError):
    """``manager.conversation(...)`` waited its configured time and another holder kept it.

    Nothing was loaded or changed; the caller may tell its client to retry.
    """


class LeaseLostError(SessionError, RuntimeError):
    """The conversation's lease expired or was taken over while this holder ran.

    Raised when the ``conversation()`` block exits: its changes were not saved
    (another holder may have written since), and this holder's live
    ``conversation_state`` was put back to what it last loaded.
    """
