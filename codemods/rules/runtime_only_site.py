"""CTX105 runtime-only-site: a legacy call seen at run time where static analysis saw none.

Its findings come from runtime evidence (``audit --evidence``, see
``codemods/evidence.py``), not from the source text.
"""

from __future__ import annotations

from ctxmigrate.codemods.rules.base import RuleDefinition

RULE = RuleDefinition(
    "CTX105",
    "runtime-only-site",
    "A call site of a legacy factory seen at run time (audit --evidence) where static "
    "analysis found no legacy site: dynamic use to review.",
    fixable=False,
    from_runtime_evidence=True,
)
