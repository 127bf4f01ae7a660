"""CTX001 reuse-session: one context per conversation instead of one per message.

``create_user_execution_context(user_id=u, thread_id=t, run_id=r)`` inside an
``async def`` becomes ``await get_or_create_user_session(user_id=u,
thread_id=t, run_id=r)``: the session manager returns the conversation's
existing context instead of building a fresh one for every message.
"""

from __future__ import annotations

import libcst as cst

from ctxmigrate.codemods.arguments import ArgumentMapping, awaited_keyword_call, target_expression
from ctxmigrate.codemods.config import Config
from ctxmigrate.codemods.legacy_call_codemod import LegacyCallCodemod
from ctxmigrate.codemods.model import Rule
from ctxmigrate.codemods.sites import TargetKind

DESCRIPTION = (
    "Reuse the conversation's session: await get_or_create_user_session(...) "
    "instead of create_user_execution_context(...) in async code."
)

# The legacy factory's signature when its definition is not in the scanned tree.
LEGACY_SIGNATURE = ("user_id", "thread_id", "run_id", "db_session", "websocket_connection_id")
# What the session API accepts; everything else in a legacy call needs a human.
SESSION_KEYWORDS = frozenset({"user_id", "thread_id", "run_id", "websocket_connection_id"})
REQUIRED_IDS = ("user_id", "thread_id")


class ReuseSessionCodemod(LegacyCallCodemod):
    rule = Rule(id="CTX001", name="reuse-session", description=DESCRIPTION, fixable=True)
    target_kind: TargetKind = "factory"
    legacy_signature = LEGACY_SIGNATURE
    awaits_new_call = True
    not_a_legacy_call_reason = "not a call: the factory is used as a value"

    def configured_target(self, config: Config) -> str:
        return config.session_target

    def rewrite_reason(self, callee: str) -> str:
        return (
            "builds a fresh context for every message; "
            f"reuse the conversation's session with {callee}(...)"
        )

    def mapping_problem(self, mapping: ArgumentMapping, signature: tuple[str, ...]) -> str | None:
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

    def new_call(
        self, call: cst.Call, mapping: ArgumentMapping, config: Config
    ) -> cst.BaseExpression:
        return awaited_keyword_call(call, target_expression(config.session_target), mapping)
