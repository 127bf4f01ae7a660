"""CTX002 adapt-websocket-context: derive the websocket view from the session.

``WebSocketContext.create_for_user(websocket=w, user_id=u, thread_id=t,
run_id=r, connection_id=c)`` inside an ``async def`` becomes ``await
session_websocket_context(websocket=w, user_id=u, thread_id=t, run_id=r,
connection_id=c)``: a WebSocketContext-compatible view bound to the same
conversation session, instead of a second context built beside it.
"""

from __future__ import annotations

import libcst as cst

from ctxmigrate.codemods.arguments import ArgumentMapping, awaited_keyword_call, target_expression
from ctxmigrate.codemods.config import Config
from ctxmigrate.codemods.legacy_call_codemod import LegacyCallCodemod
from ctxmigrate.codemods.model import Rule
from ctxmigrate.codemods.sites import Reference, TargetKind

DESCRIPTION = (
    "Derive the websocket context from the session: await session_websocket_context(...) "
    "instead of WebSocketContext.create_for_user(...) in async code."
)

FACTORY_METHOD = "create_for_user"
# ``create_for_user``'s signature (without ``cls``) when the class is not in the scanned tree.
LEGACY_SIGNATURE = ("websocket", "user_id", "thread_id", "run_id", "connection_id")
VIEW_KEYWORDS = frozenset(LEGACY_SIGNATURE)
REQUIRED_ARGUMENTS = ("websocket", "user_id", "thread_id")


class AdaptWebSocketContextCodemod(LegacyCallCodemod):
    rule = Rule(id="CTX002", name="adapt-websocket-context", description=DESCRIPTION, fixable=True)
    target_kind: TargetKind = "websocket_context"
    legacy_signature = LEGACY_SIGNATURE
    awaits_new_call = True
    not_a_legacy_call_reason = (
        f"uses WebSocketContext other than through {FACTORY_METHOD}(...): "
        "only that factory method can be adapted"
    )
    rewritable_calls = f"{FACTORY_METHOD}(...) calls"

    def legacy_call(self, ref: Reference) -> cst.Call | None:
        """The call when the site is ``<WebSocketContext>.create_for_user(...)``."""
        call = ref.call
        if call is None:
            return None
        func = call.func
        if isinstance(func, cst.Attribute) and func.attr.value == FACTORY_METHOD:
            return call
        return None

    def configured_target(self, config: Config) -> str:
        return config.websocket_target

    def rewrite_reason(self, callee: str) -> str:
        return (
            "builds a second, unrelated context beside the session; "
            f"derive it from the session with {callee}(...)"
        )

    def mapping_problem(self, mapping: ArgumentMapping, signature: tuple[str, ...]) -> str | None:
        passed = mapping.names()
        unsupported = sorted(passed - VIEW_KEYWORDS)
        if unsupported:
            return (
                f"passes {', '.join(unsupported)}, which session_websocket_context does not accept"
            )
        missing = [name for name in REQUIRED_ARGUMENTS if name not in passed]
        if missing:
            return f"does not pass {' or '.join(missing)}: the session cannot be identified"
        return None

    def new_call(
        self, call: cst.Call, mapping: ArgumentMapping, config: Config
    ) -> cst.BaseExpression:
        return awaited_keyword_call(call, target_expression(config.websocket_target), mapping)
