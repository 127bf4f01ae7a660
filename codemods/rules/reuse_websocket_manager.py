"""CTX003 reuse-websocket-manager: one websocket manager per session.

``create_websocket_manager(ctx)`` becomes ``get_manager_for_context(ctx,
factory=create_websocket_manager)``. The factory is the callee exactly as
written, so the application's own factory still builds the manager, once per
session instead of once per message. The call stays synchronous, so unlike
CTX001/CTX002 a sync function, a lambda or module level is no obstacle.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ctxmigrate.codemods.legacy_call_codemod import LegacyCallCodemod
from ctxmigrate.codemods.rules.base import Example, LegacyTarget, RuleDefinition

if TYPE_CHECKING:
    import libcst as cst

    from ctxmigrate.codemods.arguments import ArgumentMapping
    from ctxmigrate.codemods.config import Config

DESCRIPTION = (
    "Reuse one websocket manager per session: get_manager_for_context(ctx, factory=...) "
    "instead of create_websocket_manager(ctx)."
)

MANAGER_FACTORY = LegacyTarget(
    kind="manager_factory",
    default_name="create_websocket_manager",
    definition="def",
    signature=("user_context",),
    config_key="manager-factories",
    carries_ids=False,
)
FACTORY_KEYWORD = "factory"

_DEFINITION = "def create_websocket_manager(user_context):\n    return user_context\n"
_MANAGER = {"app/manager.py": _DEFINITION}

VALID = (
    Example(
        {
            **_MANAGER,
            "app/handler.py": "from app.manager import create_websocket_manager\n\n\n"
            "def handle(context, extra):\n"
            "    return create_websocket_manager(context, extra)\n",
        },
        "app/handler.py",
        "review",
    ),
)
INVALID = (
    Example(
        {
            **_MANAGER,
            "app/handler.py": "from app.manager import create_websocket_manager\n\n\n"
            "def handle(context):\n"
            "    return create_websocket_manager(context)\n",
        },
        "app/handler.py",
        "rewrite",
        "from app.manager import create_websocket_manager\n"
        "from ctxmigrate.shim import get_manager_for_context\n\n\n"
        "def handle(context):\n"
        "    return get_manager_for_context(context, factory=create_websocket_manager)\n",
    ),
)


class ReuseWebSocketManagerCodemod(LegacyCallCodemod):
    not_a_legacy_call_reason = "not a call: the manager factory is used as a value"

    def rewrite_reason(self, callee: str) -> str:
        return (
            "builds a new websocket manager for every message; "
            f"reuse the session's manager with {callee}(...)"
        )

    def unawaited_async_reason(self, callee: str, new_callee: str) -> str:
        return (
            f"not awaited: {callee} is an async def, so this call makes a coroutine; "
            f"{new_callee} would store that coroutine as the session's manager"
        )

    def mapping_problem(self, mapping: ArgumentMapping, signature: tuple[str, ...]) -> str | None:
        if not mapping.arguments:
            return "passes no context: the session's manager cannot be found"
        if len(mapping.arguments) > 1:
            extra = ", ".join(name for name, _ in mapping.arguments[1:])
            return (
                f"passes {extra} besides the context: get_manager_for_context "
                "forwards only the context to the factory"
            )
        if mapping.arguments[0][0] != signature[0]:
            return f"does not pass the context ({signature[0]})"
        return None

    def new_call(
        self, call: cst.Call, mapping: ArgumentMapping, config: Config
    ) -> cst.BaseExpression:
        import libcst as cst

        from ctxmigrate.codemods.arguments import as_positional, target_expression

        if len(mapping.arguments) != 1:
            raise ValueError("CTX003 rewrites one-argument calls only")
        context_argument = mapping.arguments[0][1]
        # The factory argument takes the context's place at the end of the
        # list (its trailing comma and the whitespace before ``)``); the
        # context gets a separator that repeats the call's own layout.
        factory_argument = cst.Arg(
            keyword=cst.Name(FACTORY_KEYWORD),
            equal=cst.AssignEqual(
                whitespace_before=cst.SimpleWhitespace(""),
                whitespace_after=cst.SimpleWhitespace(""),
            ),
            value=call.func.deep_clone(),
            comma=context_argument.comma,
            whitespace_after_arg=context_argument.whitespace_after_arg,
        )
        first_argument = as_positional(context_argument).with_changes(
            comma=cst.Comma(
                whitespace_before=cst.SimpleWhitespace(""),
                whitespace_after=_separator_like(call.whitespace_before_args),
            ),
            whitespace_after_arg=cst.SimpleWhitespace(""),
        )
        return call.with_changes(
            func=target_expression(self.configured_target(config)),
            args=(first_argument, factory_argument),
        )


RULE = RuleDefinition(
    id="CTX003",
    name="reuse-websocket-manager",
    description=DESCRIPTION,
    fixable=True,
    target=MANAGER_FACTORY,
    new_target_key="manager-target",
    test_reason="test code builds its own websocket manager on purpose",
    # The call stays synchronous, so a generator expression, a sync function, a
    # lambda or module level is no obstacle.
    awaits_new_call=False,
    # The callee is passed on as ``factory=``, so the name it was called by stays in use.
    keeps_callee=True,
    codemod=ReuseWebSocketManagerCodemod,
    valid=VALID,
    invalid=INVALID,
)
ReuseWebSocketManagerCodemod.rule = RULE


def _separator_like(
    whitespace_before_args: cst.BaseParenthesizableWhitespace,
) -> cst.BaseParenthesizableWhitespace:
    """A space, or for an argument list on its own lines, a newline at the same indent."""
    import libcst as cst

    if isinstance(whitespace_before_args, cst.ParenthesizedWhitespace):
        return cst.ParenthesizedWhitespace(
            first_line=cst.TrailingWhitespace(),
            empty_lines=(),
            indent=whitespace_before_args.indent,
            last_line=whitespace_before_args.last_line,
        )
    return cst.SimpleWhitespace(" ")
