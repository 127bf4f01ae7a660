"""Module-level API used by rewritten code, and what importing the shim does."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap

import ctxmigrate.shim as shim
from ctxmigrate.shim import (
    UserSessionManager,
    configure,
    default_manager,
    get_or_create_user_session,
)

DESIGN_EXPORTS = {
    "UserExecutionContext",
    "UserSessionManager",
    "get_or_create_user_session",
    "configure",
    "session_websocket_context",
    "WebSocketContextView",
    "to_user_execution_context",
    "get_manager_for_context",
    "create_user_execution_context",
    "SessionKey",
}


def test_the_names_of_the_design_are_exported() -> None:
    assert set(shim.__all__) >= DESIGN_EXPORTS
    assert all(hasattr(shim, name) for name in shim.__all__)


def test_module_level_call_uses_the_configured_manager() -> None:
    manager = UserSessionManager()
    configure(manager)

    async def scenario() -> None:
        context = await get_or_create_user_session(user_id="u", thread_id="t", run_id="r")
        assert await manager.get_session("u", "t") is context

    asyncio.run(scenario())


def test_module_level_call_accepts_the_codemods_keywords() -> None:
    async def scenario() -> None:
        first = await get_or_create_user_session(
            user_id="u", thread_id="t", run_id="r", websocket_connection_id="ws"
        )
        assert await get_or_create_user_session("u", "t") is first
        assert first.websocket_connection_id == "ws"

    asyncio.run(scenario())


def test_module_level_call_forwards_factory_keywords() -> None:
    seen: dict[str, object] = {}

    def factory(**ids: object) -> object:
        seen.update(ids)
        return object()

    configure(UserSessionManager(factory=factory))

    async def scenario() -> None:
        await get_or_create_user_session("u", "t", tenant="acme")

    asyncio.run(scenario())
    assert seen["tenant"] == "acme"


def test_default_manager_is_created_once_on_first_use() -> None:
    assert default_manager() is default_manager()


def test_default_manager_serves_one_session_across_event_loops() -> None:
    async def get() -> object:
        return await get_or_create_user_session("u", "t")

    assert asyncio.run(get()) is asyncio.run(get())


def run_fresh_interpreter(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-W", "error", "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        check=False,
    )


def test_importing_the_shim_loads_no_cli_stack_and_no_redis() -> None:
    result = run_fresh_interpreter(
        """
        import sys
        import ctxmigrate.shim
        heavy = sorted(
            name for name in (
                "libcst", "click", "rich", "yaml", "redis", "prometheus_client", "opentelemetry"
            )
            if name in sys.modules
        )
        assert heavy == [], heavy
        """
    )
    assert result.returncode == 0, result.stderr


def test_a_fresh_interpreter_can_use_the_default_manager_from_two_event_loops() -> None:
    result = run_fresh_interpreter(
        """
        import asyncio
        from ctxmigrate.shim import get_or_create_user_session

        async def get():
            return await get_or_create_user_session("u", "t")

        first = asyncio.run(get())
        assert asyncio.run(get()) is first
        """
    )
    assert result.returncode == 0, result.stderr
