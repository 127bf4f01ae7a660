"""The rule registry: one explicit, ordered tuple, one line per rule.

The order is the order ``ctxmigrate list`` shows the rules and the order a
file's rewrites are planned in: the fixable rules first, then the audit-only
ones. Adding a rule is one file in this folder and one line here (see
CONTRIBUTING.md). These modules import nothing heavy at import time: the
configuration loader reads the rules' keys before any file is parsed.
"""

from __future__ import annotations

from ctxmigrate.codemods.rules import (
    adapt_websocket_context,
    duplicate_context_class,
    fresh_ids,
    non_defining_import,
    reuse_session,
    reuse_websocket_manager,
    runtime_only_site,
    string_reference,
)
from ctxmigrate.codemods.rules.base import LegacyTarget, RuleDefinition

REGISTERED_RULES: tuple[RuleDefinition, ...] = (
    reuse_session.RULE,
    adapt_websocket_context.RULE,
    reuse_websocket_manager.RULE,
    fresh_ids.RULE,
    string_reference.RULE,
    non_defining_import.RULE,
    duplicate_context_class.RULE,
    runtime_only_site.RULE,
)


def legacy_targets(
    rules: tuple[RuleDefinition, ...] = REGISTERED_RULES,
) -> tuple[LegacyTarget, ...]:
    """The legacy targets the rules look for, once each, in registry order."""
    targets = [rule.target for rule in rules if rule.target is not None]
    return tuple(dict.fromkeys(targets))
