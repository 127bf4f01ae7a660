"""Process-wide configuration, and the module-level calls that rewritten code makes.

``ctxmigrate apply`` rewrites legacy sites into calls of the functions below
(``await get_or_create_user_session(...)``, ``get_manager_for_context(...)``);
they use the manager chosen with :func:`configure`, or a default in-memory
:class:`~ctxmigrate.shim.manager.UserSessionManager` created on first use.
Creating it touches no asyncio object, so the default manager works from any
event loop (pytest creates one per test).
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any, Literal

from ctxmigrate.shim.errors import ConfigurationError
from ctxmigrate.shim.legacy_observer import ContextObserver
from ctxmigrate.shim.manager import UserSessionManager, managers_alive

Mode = Literal["observe", "reuse"]
MODES: tuple[Mode, ...] = ("observe", "reuse")


class _Configuration:
    __slots__ = ("manager", "manager_factory", "mode", "observer", "unbound_websocket_managers")

    def __init__(self) -> None:
        self.manager: UserSessionManager[Any] | None = None
        self.mode: Mode = "observe"
        self.manager_factory: Callable[[Any], Any] | None = None
        self.observer = ContextObserver()
        self.unbound_websocket_managers = 0


_configuration = _Configuration()


def configure(
    manager: UserSessionManager[Any] | None = None,
    *,
    mode: Mode | None = None,
    manager_factory: Callable[[Any], Any] | None = None,
    observer: ContextObserver | None = None,
) -> None:
    """Choose the process-wide session manager and the drop-in's mode.

    Arguments left as ``None`` keep their current value.

    ``manager``: the manager that module-level calls use (enter it with
    ``async with manager:`` in the application's lifespan for background cleanup).
    ``mode``: what the deprecated ``create_user_execution_context`` does:
    ``"observe"`` (default: a new context per call, as before, counted per
    conversation and call site) or ``"reuse"`` (route to the session manager).
    ``manager_factory``: builds a websocket manager from a context, for
    ``get_manager_for_context(context)`` calls that pass no factory.
    ``observer``: where observe mode records (a fresh one replaces the counts).
    """
    if mode is not None and mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(map(repr, MODES))}, got {mode!r}")
    if manager is not None:
        _configuration.manager = manager
    if mode is not None:
        _configuration.mode = mode
    if manager_factory is not None:
        _configuration.manager_factory = manager_factory
    if observer is not None:
        _configuration.observer = observer


def reset_configuration() -> None:
    """Forget everything :func:`configure` set (for test isolation)."""
    global _configuration
    _configuration = _Configuration()


def default_manager() -> UserSessionManager[Any]:
    """The configured manager, or a default in-memory one created now."""
    manager = _configuration.manager
    if manager is None:
        manager = _configuration.manager = UserSessionManager()
    return manager


def current_mode() -> Mode:
    return _configuration.mode


def current_observer() -> ContextObserver:
    return _configuration.observer


def unbound_websocket_manager_count() -> int:
    """How many ``get_manager_for_context`` calls got a context that is not a live
    session (so a fresh, uncached manager was built, as before the migration)."""
    return _configuration.unbound_websocket_managers


def get_or_create_user_session(
    user_id: str,
    thread_id: str | None = None,
    *,
    run_id: str | None = None,
    websocket_connection_id: str | None = None,
    **factory_kwargs: Any,
) -> Coroutine[Any, Any, Any]:
    """``await get_or_create_user_session(...)`` of the configured (or default) manager.

    A plain function returning the manager's coroutine, rather than an ``async
    def`` awaiting it: one coroutine per message instead of two on the hit path.
    """
    manager = _configuration.manager
    if manager is None:
        manager = default_manager()
    if factory_kwargs:
        return manager.get_or_create_user_session(
            user_id,
            thread_id,
            run_id=run_id,
            websocket_connection_id=websocket_connection_id,
            **factory_kwargs,
        )
    # Forwarding an empty **kwargs costs more than the rest of the hit path's call.
    return manager.get_or_create_user_session(
        user_id, thread_id, run_id=run_id, websocket_connection_id=websocket_connection_id
    )


def get_manager_for_context(context: Any, factory: Callable[[Any], Any] | None = None) -> Any:
    """One websocket manager per live session, instead of one per message.

    The first call for a session builds it with ``factory(context)`` (or the
    ``manager_factory`` given to :func:`configure`); later calls return the same
    object, and it is dropped when the session ends, expires or is evicted.

    A context that is not the live context of any session (built by legacy code
    that has not been migrated yet, or kept after its session ended) gets a fresh
    manager from the factory, exactly as the legacy call did, and is counted in
    :func:`unbound_websocket_manager_count`: runtime evidence of a site still to
    migrate.
    """
    chosen = factory if factory is not None else _configuration.manager_factory
    if chosen is None:
        raise ConfigurationError(
            "get_manager_for_context needs a websocket manager factory: pass "
            "factory=create_websocket_manager, or call configure(manager_factory=...) at startup"
        )
    manager = owning_manager(context)
    if manager is not None:
        return manager.websocket_manager_for(context, chosen)
    _configuration.unbound_websocket_managers += 1
    return chosen(context)


def owning_manager(context: object) -> UserSessionManager[Any] | None:
    """The manager whose live session ``context`` is (the configured one first), or ``None``."""
    configured = _configuration.manager
    if configured is not None and configured.owns(context):
        return configured
    for manager in managers_alive():
        if manager is not configured and manager.owns(context):
            return manager
    return None
