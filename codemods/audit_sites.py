"""What the audit-only rules (CTX101-CTX104) share: a site before positions are known.

Each audit-only rule is one file in ``rules/`` whose ``find_sites`` reads the
resolving pass's notes (``ReferenceFinder``) of one module; CTX104's census is
computed over the whole tree. ``audit_sites`` runs the selected ones.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ctxmigrate.codemods.model import Rule

if TYPE_CHECKING:
    import libcst as cst

    from ctxmigrate.codemods.analysis.references import ReferenceFinder
    from ctxmigrate.codemods.rules.base import RuleDefinition

RELATED_LINE = "{related_line}"


@dataclass(frozen=True)
class AuditSite:
    """An audit-only finding before positions are known."""

    rule: Rule
    node: cst.CSTNode
    symbol: str
    function: str | None
    # May contain ``{related_line}``: the line of ``related`` once known.
    message: str
    related: cst.CSTNode | None = None
    # Test code reaches ``keep`` (fresh ids in tests are the point of a test);
    # False for rules whose breakage is in the tests themselves (CTX102).
    keep_in_tests: bool = True


def audit_sites(finder: ReferenceFinder, rules: Iterable[RuleDefinition]) -> list[AuditSite]:
    """The sites of one module found by ``rules`` (those with a ``find_sites``)."""
    sites: list[AuditSite] = []
    for rule in rules:
        if rule.find_sites is not None:
            sites.extend(rule.find_sites(finder))
    return sites
