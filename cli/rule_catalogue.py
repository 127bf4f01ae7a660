"""Which rules and codemods exist: the registry in ``ctxmigrate.codemods``.

The registry imports libcst (~0.1 s), so it is loaded on first use: an audit
whose pre-filter finds no candidate file, and one that needs no rule list
(JSON output, no ``--select``/``--ignore``), never load it in the CLI process.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ctxmigrate.codemods.model import Rule
    from ctxmigrate.codemods.sites import Codemod


def registered_codemods() -> tuple[Codemod, ...]:
    """The codemods in their registry order."""
    from ctxmigrate.codemods import CODEMODS

    return CODEMODS


def all_rules() -> tuple[Rule, ...]:
    """Every rule users can name, fixable ones first."""
    from ctxmigrate.codemods import RULES

    return RULES


def rule_label(rule_id: str, rules_by_id: Mapping[str, Rule]) -> str:
    rule = rules_by_id.get(rule_id)
    return f"{rule_id} {rule.name}" if rule is not None else rule_id
