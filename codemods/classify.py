"""The reasons a site's *context* decides its category, shared by the three codemods.

Each codemod calls ``classify_context`` first; ``None`` means the context
allows a rewrite and the codemod goes on to judge the arguments. The order is
the order a human would check: an explicit suppression, then test code, then
anything that makes the resolution uncertain or the use dynamic, then whether
``await`` is possible where the call sits.
"""

from __future__ import annotations

import functools

from ctxmigrate.codemods.config import Config
from ctxmigrate.codemods.sites import Decision, Reference, TargetKind

RULE_BY_KIND: dict[TargetKind, str] = {
    "factory": "CTX001",
    "websocket_context": "CTX002",
    "manager_factory": "CTX003",
}

_TEST_REASONS: dict[TargetKind, str] = {
    "factory": "test code builds a fresh isolated context on purpose",
    "websocket_context": "test code builds a fresh isolated websocket context on purpose",
    "manager_factory": "test code builds its own websocket manager on purpose",
}

_SCOPE_REASONS = {
    "sync": "sync function: await is impossible",
    "module": "module level: await is impossible",
    "class": "class body: await is impossible",
    "lambda": "inside a lambda: await is impossible",
}


def is_suppressed(suppressed: frozenset[str], rule_id: str) -> bool:
    """``suppressed`` holds what a comment named, normalised by ``suppressed_rules``.

    A comment may name a rule by id or by name, as --select does
    (``# ctxmigrate: ignore[reuse-session]``).
    """
    return "*" in suppressed or rule_id in suppressed or _rule_names().get(rule_id) in suppressed


@functools.cache
def _rule_names() -> dict[str, str]:
    # The registry imports the codemods, which import this module: look it up late.
    from ctxmigrate.codemods import RULES

    return {rule.id: rule.name for rule in RULES}


def suppression_reason(rule_id: str) -> str:
    return f"suppressed by a '# ctxmigrate: ignore' comment ({rule_id})"


def classify_context(ref: Reference, config: Config) -> Decision | None:
    """keep/review decided by where and how the target is used; None allows a rewrite."""
    rule_id = RULE_BY_KIND[ref.target.kind]
    if is_suppressed(ref.suppressed, rule_id):
        return Decision("keep", suppression_reason(rule_id))
    if ref.in_test:
        return Decision("keep", _TEST_REASONS[ref.target.kind])
    name = ref.target.qualname.rpartition(".")[2]
    if ref.target.kind == "websocket_context":
        name = f"{name}.create_for_user"
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
    # The manager factory stays a sync call after its rewrite: await is never needed.
    if ref.target.kind != "manager_factory" and ref.scope.kind in _SCOPE_REASONS:
        return Decision("review", _SCOPE_REASONS[ref.scope.kind])
    return None
