"""CTX104 duplicate-context-class: a census of the context classes in the tree.

Every class named ``UserExecutionContext`` or ``WebSocketContext`` in the
scanned tree is reported; several of one name need review, since sessions
hold one context type. The census runs over the module summaries of the
whole tree, not per module.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from ctxmigrate.codemods.classify import is_suppressed, suppression_reason
from ctxmigrate.codemods.model import Category, Finding
from ctxmigrate.codemods.rules.base import Example, RuleDefinition

if TYPE_CHECKING:
    from ctxmigrate.codemods.analysis.summaries import ModuleSummary

# The class names the census counts (the pre-filter searches for them too).
CENSUS_CLASS_NAMES = ("UserExecutionContext", "WebSocketContext")

_CLASS = "class UserExecutionContext:\n    pass\n"
VALID = (Example({"app/context.py": _CLASS}, "app/context.py", "keep"),)
INVALID = (
    Example(
        {
            "app/context.py": _CLASS,
            "app/legacy.py": _CLASS,
        },
        "app/legacy.py",
        "review",
    ),
)


def census_findings(
    summaries: Sequence[ModuleSummary], display_paths: Mapping[str, str]
) -> list[Finding]:
    """CTX104: one finding per class named like a context type, over the whole tree."""
    by_name: dict[str, list[tuple[str, ModuleSummary, int]]] = {}
    for summary in summaries:
        display = display_paths[summary.module]
        for position, site in enumerate(summary.classes):
            by_name.setdefault(site.name, []).append((display, summary, position))
    findings: list[Finding] = []
    category: Category
    for name, places in sorted(by_name.items()):
        places.sort(key=lambda place: (place[0], place[1].classes[place[2]].line))
        locations = ", ".join(
            f"{display}:{summary.classes[position].line}" for display, summary, position in places
        )
        for display, summary, position in places:
            site = summary.classes[position]
            if is_suppressed(site.suppressed, RULE):
                category = "keep"
                message = suppression_reason(RULE.id)
            elif len(places) == 1:
                category = "keep"
                message = f"the only class named {name} in the scanned tree"
            else:
                category = "review"
                message = (
                    f"{len(places)} classes named {name} in the scanned tree ({locations}): "
                    "sessions hold one context type; decide which one the others become"
                )
            findings.append(
                Finding(
                    rule=RULE.id,
                    category=category,
                    path=display,
                    line=site.line,
                    column=site.column,
                    end_line=site.end_line,
                    end_column=site.end_column,
                    symbol=f"{summary.module}.{name}",
                    function=None,
                    message=message,
                )
            )
    return findings


RULE = RuleDefinition(
    id="CTX104",
    name="duplicate-context-class",
    description="Census of classes named UserExecutionContext / WebSocketContext; "
    "several of one name need review.",
    fixable=False,
    valid=VALID,
    invalid=INVALID,
)
