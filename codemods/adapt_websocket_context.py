"""CTX002 adapt-websocket-context: derive the websocket view from the session.

``WebSocketContext.create_for_user(websocket=w, user_id=u, thread_id=t,
run_id=r, connection_id=c)`` inside an ``async def`` becomes ``await
session_websocket_context(websocket=w, user_id=u, thread_id=t, run_id=r,
connection_id=c)``: a WebSocketContext-compatible view bound to the same
conversation session, instead of a second context built beside it.
"""

from __future__ import annotations

import libcst as cst

from ctxmigrate.codemods.arguments import (
    GENERATOR_EXPRESSION_REASON,
    as_keyword,
    awaited_call,
    call_signature,
    callee_label,
    code_for,
    expression_target_problem,
    map_arguments,
    target_expression,
    target_import,
)
from ctxmigrate.codemods.classify import classify_context
from ctxmigrate.codemods.config import Config
from ctxmigrate.codemods.model import Rule
from ctxmigrate.codemods.sites import Decision, Reference, TargetKind

DESCRIPTION = (
    "Derive the websocket context from the session: await session_websocket_context(...) "
    "instead of WebSocketContext.create_for_user(...) in async code."
)

FACTORY_METHOD = "create_for_user"
# ``create_for_user``'s signature (without ``cls``) when the class is not in the scanned tree.
LEGACY_SIGNATURE = ("websocket", "user_id", "thread_id", "run_id", "connection_id")
VIEW_KEYWORDS = frozenset(LEGACY_SIGNATURE)
REQUIRED_ARGUMENTS = ("websocket", "user_id", "thread_id")


def _factory_method_call(ref: Reference) -> cst.Call | None:
    """The call when the site is ``<WebSocketContext>.create_for_user(...)``."""
    call = ref.call
    if call is None:
        return None
    func = call.func
    if isinstance(func, cst.Attribute) and func.attr.value == FACTORY_METHOD:
        return call
    return None


class AdaptWebSocketContextCodemod:
    rule = Rule(id="CTX002", name="adapt-websocket-context", description=DESCRIPTION, fixable=True)
    target_kind: TargetKind = "websocket_context"

    def classify(self, ref: Reference, config: Config) -> Decision:
        context_decision = classify_context(ref, config)
        if context_decision is not None:
            return context_decision
        if ref.in_generator_expression:
            return Decision("review", GENERATOR_EXPRESSION_REASON)
        problem = self._argument_problem(ref) or expression_target_problem(
            config.websocket_target, ref.scope.function
        )
        if problem is not None:
            return Decision("review", problem)
        fix = code_for(self.rewrite(ref, config))
        return Decision(
            "rewrite",
            "builds a second, unrelated context beside the session; "
            f"derive it from the session with {callee_label(config.websocket_target)}(...)",
            fix=fix,
        )

    def _argument_problem(self, ref: Reference) -> str | None:
        call = _factory_method_call(ref)
        if call is None:
            return (
                f"uses WebSocketContext other than through {FACTORY_METHOD}(...): "
                "only that factory method can be adapted"
            )
        mapping = map_arguments(call, call_signature(ref.target.params, LEGACY_SIGNATURE))
        if mapping.problem is not None:
            return mapping.problem
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

    def rewrite(self, ref: Reference, config: Config) -> cst.BaseExpression:
        call = _factory_method_call(ref)
        if call is None:
            raise ValueError(f"CTX002 rewrites {FACTORY_METHOD}(...) calls only")
        mapping = map_arguments(call, call_signature(ref.target.params, LEGACY_SIGNATURE))
        if mapping.problem is not None:
            raise ValueError(mapping.problem)
        keyword_arguments = [as_keyword(name, argument) for name, argument in mapping.arguments]
        return awaited_call(call, target_expression(config.websocket_target), keyword_arguments)

    def required_import(self, config: Config) -> tuple[str, str] | None:
        return target_import(config.websocket_target)
