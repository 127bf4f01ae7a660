"""The reasons a site's *context* decides its category, shared by the three codemods.

Each codemod calls ``classify_context`` first; ``None`` means the context
allows a rewrite and the codemod goes on to judge the arguments. The order is
the order a human would check: an explicit suppression, then test code, then
anything that makes the resolution uncertain or the use dynamic, then whether
``await`` is possible where the call sits.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ctxmigrate.codemods.model import Rule
from ctxmigrate.codemods.sites import Decision, Reference

if TYPE_CHECKING:
    from ctxmigrate.codemods.rules.base import RuleDefinition

_SCOPE_REASONS = {
    "sync": "sync function: await is impossible",
    "module": "module level: await is impossible",
    "class": "class body: await is impossible",
    "lambda": "inside a lambda: await is impossible",
}


def is_suppressed(suppressed: frozenset[str], rule: Rule) -> bool:
    """``suppressed`` holds what a comment named, normalised by ``suppressed_rules``.

    A comment may name a rule by id or by name, as --select does
    (``# ctxmigrate: ignore[reuse-session]``).
    """
    return "*" in suppressed or rule.id in suppressed or rule.name.lower() in suppressed


def suppression_reason(rule_id: str) -> str:
    return f"suppressed by a '# ctxmigrate: ignore' comment ({rule_id})"


def classify_context(ref: Reference, rule: RuleDefinition) -> Decision | None:
    """keep/review decided by where and how the target is used; None allows a rewrite.

    ``rule`` is the rule judging the site: its id is what a suppression comment
    must name, its ``test_reason`` and ``awaits_new_call`` decide the rest.
    """
    if is_suppressed(ref.suppressed, rule):
        return Decision("keep", suppression_reason(rule.id))
    if ref.in_test:
        return Decision("keep", rule.test_reason or "test code")
    name = ref.target.qualname.rpartition(".")[2]
    if ref.target.spec.method is not None:
        name = f"{name}.{ref.target.spec.method}"
    if ref.usage == "star":
        return Decision(
            "review",
            f"unresolved star import: {ref.uncertainty or 'a star import may provide ' + name}; "
            "import the name explicitly so the site can be resolved",
        )
    if ref.uncertainty is not None:
        return Decision("review", ref.uncertainty)
    if ref.usage == "value":
        return Decision(
            "review",
            f"{name} is used as a value (passed, stored, returned or decorated with): "
            "the call happens elsewhere and cannot be rewritten here",
        )
    if ref.usage == "getattr":
        return Decision("review", f"dynamic use: getattr(...) looks {name} up by name")
    if ref.usage == "partial":
        return Decision("review", f"dynamic use: functools.partial binds {name} for a later call")
    # A rewrite that stays a sync call (CTX003) never needs await.
    if rule.awaits_new_call and ref.scope.kind in _SCOPE_REASONS:
        return Decision("review", _SCOPE_REASONS[ref.scope.kind])
    return None
