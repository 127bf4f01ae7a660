"""CTX002 adapt-websocket-context: inline no-op and transformed cases, through the real resolver."""

# The source samples are compared byte for byte; their long lines are part of them.
# ruff: noqa: E501

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from ctxmigrate.codemods.config import Config
from ctxmigrate.codemods.rewrite.planning import FixResult, fix_sources
from ctxmigrate.codemods.rules.adapt_websocket_context import AdaptWebSocketContextCodemod

from .support import LEGACY_WEBSOCKET_MODULE, InlineCases

CODEMOD = AdaptWebSocketContextCodemod()
WS_PATH = "app/endpoints/ws.py"
CONFIG = Config(root=Path("."), websocket_contexts=("app.websocket.WebSocketContext",))
CASES = InlineCases(
    codemods=(CODEMOD,),
    config=CONFIG,
    path=WS_PATH,
    legacy_modules=LEGACY_WEBSOCKET_MODULE,
)
fix = CASES.fix
check_noop = CASES.check_noop
check_transformed = CASES.check_transformed


def reasons(result: FixResult) -> list[str]:
    return [finding.message for finding in result.skipped]


# -- no-op cases -----------------------------------------------------------------


def test_noop_in_sync_function() -> None:
    result = check_noop(
        """\
        from app.websocket import WebSocketContext

        def connect(ws, u, t):
            return WebSocketContext.create_for_user(websocket=ws, user_id=u, thread_id=t)
        """
    )
    assert [f.category for f in result.skipped] == ["review"]


def test_noop_in_lambda() -> None:
    check_noop(
        """\
        from app.websocket import WebSocketContext

        async def connect(ws, u):
            make = lambda t: WebSocketContext.create_for_user(websocket=ws, user_id=u, thread_id=t)
            return make("t")
        """
    )


def test_noop_for_method_with_the_same_name() -> None:
    result = check_noop(
        """\
        async def connect(pool, ws, u, t):
            return pool.create_for_user(websocket=ws, user_id=u, thread_id=t)
        """
    )
    assert result.skipped == []


def test_noop_when_class_name_is_shadowed() -> None:
    check_noop(
        """\
        from app.websocket import WebSocketContext

        async def connect(WebSocketContext, ws, u, t):
            return WebSocketContext.create_for_user(websocket=ws, user_id=u, thread_id=t)
        """
    )


def test_noop_with_suppression_comment() -> None:
    result = check_noop(
        """\
        from app.websocket import WebSocketContext

        async def connect(ws, u, t):
            return WebSocketContext.create_for_user(websocket=ws, user_id=u, thread_id=t)  # ctxmigrate: ignore[CTX002]
        """
    )
    assert [f.category for f in result.skipped] == ["keep"]


def test_noop_with_double_star_kwargs() -> None:
    result = check_noop(
        """\
        from app.websocket import WebSocketContext

        async def connect(**kwargs):
            return WebSocketContext.create_for_user(**kwargs)
        """
    )
    assert any("cannot map *args/**kwargs" in reason for reason in reasons(result))


def test_noop_when_thread_id_is_missing() -> None:
    result = check_noop(
        """\
        from app.websocket import WebSocketContext

        async def connect(ws, u):
            return WebSocketContext.create_for_user(websocket=ws, user_id=u)
        """
    )
    assert any("does not pass thread_id" in reason for reason in reasons(result))


def test_noop_for_direct_construction() -> None:
    result = check_noop(
        """\
        from app.websocket import WebSocketContext

        async def connect(ws, u, t):
            return WebSocketContext(ws, u, t)
        """
    )
    assert all(f.category != "rewrite" for f in result.skipped)


# -- transformed cases -------------------------------------------------------------


def test_keyword_call_in_async_def() -> None:
    check_transformed(
        """\
        from app.websocket import WebSocketContext

        async def connect(ws, u, t, r, c):
            return WebSocketContext.create_for_user(websocket=ws, user_id=u, thread_id=t, run_id=r, connection_id=c)
        """,
        """\
        from ctxmigrate.shim import session_websocket_context

        async def connect(ws, u, t, r, c):
            return await session_websocket_context(websocket=ws, user_id=u, thread_id=t, run_id=r, connection_id=c)
        """,
    )


def test_positional_arguments_become_keywords() -> None:
    check_transformed(
        """\
        from app.websocket import WebSocketContext

        async def connect(ws, u, t):
            return WebSocketContext.create_for_user(ws, u, t)
        """,
        """\
        from ctxmigrate.shim import session_websocket_context

        async def connect(ws, u, t):
            return await session_websocket_context(websocket=ws, user_id=u, thread_id=t)
        """,
    )


def test_alias_import() -> None:
    check_transformed(
        """\
        from app.websocket import WebSocketContext as WSC

        async def connect(ws, u, t):
            return WSC.create_for_user(websocket=ws, user_id=u, thread_id=t)
        """,
        """\
        from ctxmigrate.shim import session_websocket_context

        async def connect(ws, u, t):
            return await session_websocket_context(websocket=ws, user_id=u, thread_id=t)
        """,
    )


def test_module_attribute_call() -> None:
    check_transformed(
        """\
        from app import websocket

        async def connect(ws, u, t):
            return websocket.WebSocketContext.create_for_user(websocket=ws, user_id=u, thread_id=t)
        """,
        """\
        from ctxmigrate.shim import session_websocket_context

        async def connect(ws, u, t):
            return await session_websocket_context(websocket=ws, user_id=u, thread_id=t)
        """,
    )


def test_class_import_stays_while_an_annotation_uses_it() -> None:
    check_transformed(
        """\
        from app.websocket import WebSocketContext

        async def connect(ws, u, t) -> WebSocketContext:
            return WebSocketContext.create_for_user(websocket=ws, user_id=u, thread_id=t)
        """,
        """\
        from app.websocket import WebSocketContext
        from ctxmigrate.shim import session_websocket_context

        async def connect(ws, u, t) -> WebSocketContext:
            return await session_websocket_context(websocket=ws, user_id=u, thread_id=t)
        """,
    )


@pytest.mark.parametrize(
    ("use", "rewritten"),
    [
        (
            ".connection_id",
            "(await session_websocket_context(websocket=ws, user_id=u, thread_id=t)).connection_id",
        ),
        (
            ".send_json({})",
            "(await session_websocket_context(websocket=ws, user_id=u, thread_id=t)).send_json({})",
        ),
    ],
)
def test_result_used_as_primary_gets_parentheses(use: str, rewritten: str) -> None:
    check_transformed(
        f"""\
        from app.websocket import WebSocketContext

        async def connect(ws, u, t):
            return WebSocketContext.create_for_user(websocket=ws, user_id=u, thread_id=t){use}
        """,
        f"""\
        from ctxmigrate.shim import session_websocket_context

        async def connect(ws, u, t):
            return {rewritten}
        """,
    )


def test_configured_expression_target() -> None:
    config = Config(
        root=Path("."),
        websocket_contexts=CONFIG.websocket_contexts,
        websocket_target="self.sessions.websocket_view",
    )
    check_transformed(
        """\
        from app.websocket import WebSocketContext

        class Endpoint:
            async def connect(self, ws, u, t):
                return WebSocketContext.create_for_user(ws, u, t)
        """,
        """\
        class Endpoint:
            async def connect(self, ws, u, t):
                return await self.sessions.websocket_view(websocket=ws, user_id=u, thread_id=t)
        """,
        config,
    )


def test_noop_when_an_async_create_for_user_is_called_without_await() -> None:
    modules = {
        "app/websocket.py": b"class WebSocketContext:\n"
        b"    @classmethod\n"
        b"    async def create_for_user(cls, websocket, user_id, thread_id):\n"
        b"        return cls()\n",
    }
    source = textwrap.dedent(
        """\
        from app.websocket import WebSocketContext

        async def handle(websocket, user_id, thread_id):
            pending = WebSocketContext.create_for_user(websocket, user_id, thread_id)
            return await pending
        """
    ).encode()
    result = fix_sources({WS_PATH: source, **modules}, CONFIG, [CODEMOD])[WS_PATH]
    assert result.fixed is None
    [finding] = result.skipped
    assert finding.category == "review"
    assert finding.message.startswith(
        "not awaited: WebSocketContext.create_for_user is an async def"
    )
