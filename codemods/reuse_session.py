"""CTX001 reuse-session: one context per conversation instead of one per message.

``create_user_execution_context(user_id=u, thread_id=t, run_id=r)`` inside an
``async def`` becomes ``await get_or_create_user_session(user_id=u,
thread_id=t, run_id=r)``: the session manager returns the conversation's
existing context instead of building a fresh one for every message.
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
    "Reuse the conversation's session: await get_or_create_user_session(...) "
    "instead of create_user_execution_context(...) in async code."
)

# The legacy factory's signature when its definition is not in the scanned tree.
LEGACY_SIGNATURE = ("user_id", "thread_id", "run_id", "db_session", "websocket_connection_id")
# What the session API accepts; everything else in a legacy call needs a human.
SESSION_KEYWORDS = frozenset({"user_id", "thread_id", "run_id", "websocket_connection_id"})
REQUIRED_IDS = ("user_id", "thread_id")


class ReuseSessionCodemod:
    rule = Rule(id="CTX001", name="reuse-session", description=DESCRIPTION, fixable=True)
    target_kind: TargetKind = "factory"

    def classify(self, ref: Reference, config: Config) -> Decision:
        context_decision = classify_context(ref, config)
        if context_decision is not None:
            return context_decision
        if ref.in_generator_expression:
            return Decision("review", GENERATOR_EXPRESSION_REASON)
        problem = self._argument_problem(ref) or expression_target_problem(
            config.session_target, ref.scope.function
        )
        if problem is not None:
            return Decision("review", problem)
        fix = code_for(self.rewrite(ref, config))
        return Decision(
            "rewrite",
            "builds a fresh context for every message; "
            f"reuse the conversation's session with {callee_label(config.session_target)}(...)",
            fix=fix,
        )

    def _argument_problem(self, ref: Reference) -> str | None:
        if ref.call is None:
            return "not a call: the factory is used as a value"
        mapping = map_arguments(ref.call, call_signature(ref.target.params, LEGACY_SIGNATURE))
        if mapping.problem is not None:
            return mapping.problem
        passed = mapping.names()
        if "db_session" in passed:
            return (
                "passes a per-request db_session: a session shared by the whole "
                "conversation cannot hold it"
            )
        unsupported = sorted(passed - SESSION_KEYWORDS)
        if unsupported:
            return (
                f"passes {', '.join(unsupported)}, which get_or_create_user_session does not accept"
            )
        missing = [name for name in REQUIRED_IDS if name not in passed]
        if missing:
            return f"does not pass {' or '.join(missing)}: the conversation cannot be identified"
        return None

    def rewrite(self, ref: Reference, config: Config) -> cst.BaseExpression:
        call = ref.call
        if call is None:
            raise ValueError("CTX001 rewrites calls only")
        mapping = map_arguments(call, call_signature(ref.target.params, LEGACY_SIGNATURE))
        if mapping.problem is not None:
            raise ValueError(mapping.problem)
        keyword_arguments = [as_keyword(name, argument) for name, argument in mapping.arguments]
        return awaited_call(call, target_expression(config.session_target), keyword_arguments)

    def required_import(self, config: Config) -> tuple[str, str] | None:
        return target_import(config.session_target)
