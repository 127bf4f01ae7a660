"""classify_context: the context reasons shared by the three codemods."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import libcst as cst
import pytest

from ctxmigrate.codemods.classify import classify_context
from ctxmigrate.codemods.config import Config
from ctxmigrate.codemods.rules import REGISTERED_RULES
from ctxmigrate.codemods.rules.base import RuleDefinition
from ctxmigrate.codemods.sites import Decision, Reference, Scope, ScopeKind, Span, Target

TargetKind = str
RULE_BY_KIND: dict[str, RuleDefinition] = {
    rule.target.kind: rule for rule in REGISTERED_RULES if rule.target is not None
}

CONFIG = Config(root=Path("."))
CALL = cst.parse_expression("create_user_execution_context(user_id=u, thread_id=t)")
assert isinstance(CALL, cst.Call)


def judge(ref: Reference) -> Decision | None:
    """classify_context as the rule of the reference's target judges it."""
    return classify_context(ref, RULE_BY_KIND[ref.target.kind])


def reference(
    kind: TargetKind = "factory", scope: ScopeKind = "async", **changes: object
) -> Reference:
    name = {"factory": "create_user_execution_context", "websocket_context": "WebSocketContext"}
    qualname = f"pkg.deps.{name.get(kind, 'create_websocket_manager')}"
    base = Reference(
        target=Target(RULE_BY_KIND[kind].target, qualname, None),  # type: ignore[arg-type]
        usage="call",
        node=CALL,
        call=CALL,
        callee_code="create_user_execution_context",
        scope=Scope(scope, "handle"),
        span=Span(1, 1, 1, 10),
        in_test=False,
        suppressed=frozenset(),
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def test_async_call_allows_a_rewrite() -> None:
    assert judge(reference()) is None


@pytest.mark.parametrize(
    ("scope", "reason"),
    [
        ("sync", "sync function: await is impossible"),
        ("module", "module level: await is impossible"),
        ("class", "class body: await is impossible"),
        ("lambda", "inside a lambda: await is impossible"),
    ],
)
def test_scopes_where_await_is_impossible(scope: ScopeKind, reason: str) -> None:
    decision = judge(reference(scope=scope))
    assert decision is not None
    assert (decision.category, decision.message) == ("review", reason)


def test_manager_factory_stays_sync_so_scope_does_not_matter() -> None:
    assert judge(reference("manager_factory", "sync")) is None
    assert judge(reference("manager_factory", "module")) is None


@pytest.mark.parametrize("suppressed", [frozenset({"CTX001"}), frozenset({"*"})])
def test_suppression_comment_is_keep(suppressed: frozenset[str]) -> None:
    decision = judge(reference(scope="sync", suppressed=suppressed))
    assert decision is not None and decision.category == "keep"
    assert "ctxmigrate: ignore" in decision.message


def test_suppression_of_another_rule_does_not_apply() -> None:
    ref = reference("websocket_context", suppressed=frozenset({"CTX001"}))
    assert judge(ref) is None


def test_test_code_is_keep_before_any_review_reason() -> None:
    decision = judge(reference(scope="sync", usage="value", in_test=True))
    assert decision is not None
    assert (decision.category, decision.message) == (
        "keep",
        "test code builds a fresh isolated context on purpose",
    )


@pytest.mark.parametrize(
    ("usage", "reason"),
    [
        ("value", "create_user_execution_context is used as a value"),
        ("getattr", "dynamic use: getattr(...) looks create_user_execution_context up by name"),
        ("partial", "dynamic use: functools.partial binds create_user_execution_context"),
        ("star", "unresolved star import: `from x import *` may provide it"),
    ],
)
def test_dynamic_uses_are_review(usage: str, reason: str) -> None:
    ref = reference(
        usage=usage, uncertainty="`from x import *` may provide it" if usage == "star" else None
    )
    decision = judge(ref)
    assert decision is not None and decision.category == "review"
    assert decision.message.startswith(reason)


def test_uncertain_resolution_is_review_with_its_reason() -> None:
    decision = judge(reference(uncertainty="bound twice"))
    assert decision is not None
    assert (decision.category, decision.message) == ("review", "bound twice")


def test_websocket_value_use_names_the_method() -> None:
    decision = judge(reference("websocket_context", usage="value"))
    assert decision is not None
    assert decision.message.startswith("WebSocketContext.create_for_user is used as a value")


def test_every_rule_can_be_suppressed_by_its_name() -> None:
    from ctxmigrate.codemods import RULES
    from ctxmigrate.codemods.analysis.summaries import suppressed_rules
    from ctxmigrate.codemods.classify import is_suppressed

    for rule in RULES:
        assert is_suppressed(suppressed_rules(f"# ctxmigrate: ignore[{rule.name}]"), rule)
        others = [other for other in RULES if other.id != rule.id]
        assert not any(
            is_suppressed(suppressed_rules(f"# ctxmigrate: ignore[{rule.name}]"), other)
            for other in others
        )


@pytest.mark.parametrize(
    "comment",
    [
        "# ctxmigrate: ignore[CTX001]",
        "# ctxmigrate: ignore[ctx001]",
        "# ctxmigrate: ignore[reuse-session]",
        "# ctxmigrate: ignore[Reuse-Session, CTX003]",
        "#CTXMIGRATE: IGNORE",
    ],
)
def test_suppression_comment_names_the_rule_by_id_or_name_in_any_case(comment: str) -> None:
    from ctxmigrate.codemods.analysis.summaries import suppressed_rules

    decision = judge(reference(suppressed=suppressed_rules(comment)))
    assert decision is not None and decision.category == "keep"
