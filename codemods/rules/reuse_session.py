"""CTX001 reuse-session: one context per conversation instead of one per message.

``create_user_execution_context(user_id=u, thread_id=t, run_id=r)`` inside an
``async def`` becomes ``await get_or_create_user_session(user_id=u,
thread_id=t, run_id=r)``: the session manager returns the conversation's
existing context instead of building a fresh one for every message.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ctxmigrate.codemods.legacy_call_codemod import AwaitedKeywordCallCodemod
from ctxmigrate.codemods.rules.base import Example, LegacyTarget, RuleDefinition

if TYPE_CHECKING:
    from ctxmigrate.codemods.arguments import ArgumentMapping

DESCRIPTION = (
    "Reuse the conversation's session: await get_or_create_user_session(...) "
    "instead of create_user_execution_context(...) in async code."
)

FACTORY = LegacyTarget(
    kind="factory",
    default_name="create_user_execution_context",
    definition="def",
    signature=("user_id", "thread_id", "run_id", "db_session", "websocket_connection_id"),
    config_key="factories",
)
# What the session API accepts; everything else in a legacy call needs a human.
SESSION_KEYWORDS = frozenset({"user_id", "thread_id", "run_id", "websocket_connection_id"})
REQUIRED_IDS = ("user_id", "thread_id")

_DEFINITION = "def create_user_execution_context(user_id, thread_id, run_id=None):\n    pass\n"
_DEPS = {"app/deps.py": _DEFINITION}

VALID = (
    Example(
        {
            **_DEPS,
            "app/handler.py": "from app.deps import create_user_execution_context\n\n\n"
            "def handle(user_id, thread_id):\n"
            "    return create_user_execution_context(user_id, thread_id)\n",
        },
        "app/handler.py",
        "review",
    ),
    Example(
        {
            **_DEPS,
            "app/handler.py": "class Factory:\n"
            "    def create_user_execution_context(self, user_id, thread_id):\n"
            "        pass\n\n\n"
            "async def handle(factory, user_id, thread_id):\n"
            "    return factory.create_user_execution_context(user_id, thread_id)\n",
        },
        "app/handler.py",
        None,
    ),
)
INVALID = (
    Example(
        {
            **_DEPS,
            "app/handler.py": "from app.deps import create_user_execution_context\n\n\n"
            "async def handle(user_id, thread_id):\n"
            "    return create_user_execution_context(user_id, thread_id)\n",
        },
        "app/handler.py",
        "rewrite",
        "from ctxmigrate.shim import get_or_create_user_session\n\n\n"
        "async def handle(user_id, thread_id):\n"
        "    return await get_or_create_user_session(user_id=user_id, thread_id=thread_id)\n",
    ),
)


class ReuseSessionCodemod(AwaitedKeywordCallCodemod):
    accepted_keywords = SESSION_KEYWORDS
    required_keywords = REQUIRED_IDS
    new_callee_name = "get_or_create_user_session"
    identifies = "conversation"
    not_a_legacy_call_reason = "not a call: the factory is used as a value"

    def rewrite_reason(self, callee: str) -> str:
        return (
            "builds a fresh context for every message; "
            f"reuse the conversation's session with {callee}(...)"
        )

    def mapping_problem(self, mapping: ArgumentMapping, signature: tuple[str, ...]) -> str | None:
        if "db_session" in mapping.names():
            return (
                "passes a per-request db_session: a session shared by the whole "
                "conversation cannot hold it"
            )
        return super().mapping_problem(mapping, signature)


RULE = RuleDefinition(
    id="CTX001",
    name="reuse-session",
    description=DESCRIPTION,
    fixable=True,
    target=FACTORY,
    new_target_key="session-target",
    test_reason="test code builds a fresh isolated context on purpose",
    awaits_new_call=True,
    codemod=ReuseSessionCodemod,
    valid=VALID,
    invalid=INVALID,
)
ReuseSessionCodemod.rule = RULE
