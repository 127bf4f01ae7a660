"""CTX002 adapt-websocket-context: derive the websocket view from the session.

``WebSocketContext.create_for_user(websocket=w, user_id=u, thread_id=t,
run_id=r, connection_id=c)`` inside an ``async def`` becomes ``await
session_websocket_context(websocket=w, user_id=u, thread_id=t, run_id=r,
connection_id=c)``: a WebSocketContext-compatible view bound to the same
conversation session, instead of a second context built beside it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ctxmigrate.codemods.legacy_call_codemod import AwaitedKeywordCallCodemod
from ctxmigrate.codemods.rules.base import Example, LegacyTarget, RuleDefinition

if TYPE_CHECKING:
    import libcst as cst

    from ctxmigrate.codemods.sites import Reference

DESCRIPTION = (
    "Derive the websocket context from the session: await session_websocket_context(...) "
    "instead of WebSocketContext.create_for_user(...) in async code."
)

FACTORY_METHOD = "create_for_user"
WEBSOCKET_CONTEXT = LegacyTarget(
    kind="websocket_context",
    default_name="WebSocketContext",
    definition="class",
    # ``create_for_user``'s signature (without ``cls``) when the class is not in the tree.
    signature=("websocket", "user_id", "thread_id", "run_id", "connection_id"),
    config_key="websocket-contexts",
    method=FACTORY_METHOD,
)
VIEW_KEYWORDS = frozenset(WEBSOCKET_CONTEXT.signature)
REQUIRED_ARGUMENTS = ("websocket", "user_id", "thread_id")

_DEFINITION = (
    "class WebSocketContext:\n"
    "    @classmethod\n"
    "    def create_for_user(cls, websocket, user_id, thread_id):\n"
    "        return cls()\n"
)
_WS = {"app/ws.py": _DEFINITION}

VALID = (
    Example(
        {
            **_WS,
            "app/handler.py": "from app.ws import WebSocketContext\n\n\n"
            "def check(context):\n"
            "    return isinstance(context, WebSocketContext)\n",
        },
        "app/handler.py",
        None,
    ),
    Example(
        {
            **_WS,
            "app/handler.py": "from app.ws import WebSocketContext\n\n\n"
            "async def handle(websocket, user_id):\n"
            "    return WebSocketContext.create_for_user(websocket, user_id, None, extra=1)\n",
        },
        "app/handler.py",
        "review",
    ),
)
INVALID = (
    Example(
        {
            **_WS,
            "app/handler.py": "from app.ws import WebSocketContext\n\n\n"
            "async def handle(websocket, user_id, thread_id):\n"
            "    return WebSocketContext.create_for_user(websocket, user_id, thread_id)\n",
        },
        "app/handler.py",
        "rewrite",
        "from ctxmigrate.shim import session_websocket_context\n\n\n"
        "async def handle(websocket, user_id, thread_id):\n"
        "    return await session_websocket_context("
        "websocket=websocket, user_id=user_id, thread_id=thread_id)\n",
    ),
)


class AdaptWebSocketContextCodemod(AwaitedKeywordCallCodemod):
    accepted_keywords = VIEW_KEYWORDS
    required_keywords = REQUIRED_ARGUMENTS
    new_callee_name = "session_websocket_context"
    identifies = "session"
    not_a_legacy_call_reason = (
        f"uses WebSocketContext other than through {FACTORY_METHOD}(...): "
        "only that factory method can be adapted"
    )
    rewritable_calls = f"{FACTORY_METHOD}(...) calls"

    def legacy_call(self, ref: Reference) -> cst.Call | None:
        """The call when the site is ``<WebSocketContext>.create_for_user(...)``."""
        import libcst as cst

        call = ref.call
        if call is None:
            return None
        func = call.func
        if isinstance(func, cst.Attribute) and func.attr.value == FACTORY_METHOD:
            return call
        return None

    def rewrite_reason(self, callee: str) -> str:
        return (
            "builds a second, unrelated context beside the session; "
            f"derive it from the session with {callee}(...)"
        )


RULE = RuleDefinition(
    id="CTX002",
    name="adapt-websocket-context",
    description=DESCRIPTION,
    fixable=True,
    target=WEBSOCKET_CONTEXT,
    new_target_key="websocket-target",
    test_reason="test code builds a fresh isolated websocket context on purpose",
    awaits_new_call=True,
    codemod=AdaptWebSocketContextCodemod,
    valid=VALID,
    invalid=INVALID,
)
AdaptWebSocketContextCodemod.rule = RULE
