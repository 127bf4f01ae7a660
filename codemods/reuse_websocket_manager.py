"""CTX003 reuse-websocket-manager: one websocket manager per session.

``create_websocket_manager(ctx)`` becomes ``get_manager_for_context(ctx,
factory=create_websocket_manager)``. The factory is the callee exactly as
written, so the application's own factory still builds the manager, once per
session instead of once per message. The call stays synchronous, so unlike
CTX001/CTX002 a sync function, a lambda or module level is no obstacle.
"""

from __future__ import annotations

import libcst as cst

from ctxmigrate.codemods.arguments import (
    as_positional,
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
    "Reuse one websocket manager per session: get_manager_for_context(ctx, factory=...) "
    "instead of create_websocket_manager(ctx)."
)

LEGACY_SIGNATURE = ("user_context",)
FACTORY_KEYWORD = "factory"


class ReuseWebSocketManagerCodemod:
    rule = Rule(id="CTX003", name="reuse-websocket-manager", description=DESCRIPTION, fixable=True)
    target_kind: TargetKind = "manager_factory"

    def classify(self, ref: Reference, config: Config) -> Decision:
        # classify_context never blocks this rule on the scope: nothing is awaited.
        context_decision = classify_context(ref, config)
        if context_decision is not None:
            return context_decision
        problem = self._argument_problem(ref) or expression_target_problem(
            config.manager_target, ref.scope.function
        )
        if problem is not None:
            return Decision("review", problem)
        fix = code_for(self.rewrite(ref, config))
        return Decision(
            "rewrite",
            "builds a new websocket manager for every message; "
            f"reuse the session's manager with {callee_label(config.manager_target)}(...)",
            fix=fix,
        )

    def _argument_problem(self, ref: Reference) -> str | None:
        if ref.call is None:
            return "not a call: the manager factory is used as a value"
        signature = call_signature(ref.target.params, LEGACY_SIGNATURE)
        mapping = map_arguments(ref.call, signature)
        if mapping.problem is not None:
            return mapping.problem
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

    def rewrite(self, ref: Reference, config: Config) -> cst.BaseExpression:
        call = ref.call
        if call is None:
            raise ValueError("CTX003 rewrites calls only")
        mapping = map_arguments(call, call_signature(ref.target.params, LEGACY_SIGNATURE))
        if mapping.problem is not None or len(mapping.arguments) != 1:
            raise ValueError(mapping.problem or "CTX003 rewrites one-argument calls only")
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
            func=target_expression(config.manager_target),
            args=(first_argument, factory_argument),
        )

    def required_import(self, config: Config) -> tuple[str, str] | None:
        return target_import(config.manager_target)


def _separator_like(
    whitespace_before_args: cst.BaseParenthesizableWhitespace,
) -> cst.BaseParenthesizableWhitespace:
    """A space, or for an argument list on its own lines, a newline at the same indent."""
    if isinstance(whitespace_before_args, cst.ParenthesizedWhitespace):
        return cst.ParenthesizedWhitespace(
            first_line=cst.TrailingWhitespace(),
            empty_lines=(),
            indent=whitespace_before_args.indent,
            last_line=whitespace_before_args.last_line,
        )
    return cst.SimpleWhitespace(" ")
