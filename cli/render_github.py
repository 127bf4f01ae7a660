"""``audit --format github``: GitHub Actions workflow commands (annotations).

https://docs.github.com/actions/reference/workflow-commands-for-github-actions
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from ctxmigrate.cli.rule_catalogue import rule_label
from ctxmigrate.codemods.model import AuditReport, Category, Finding, Rule

# review and rewrite both need action in the pull request; keep is informational.
ANNOTATION_LEVELS: Mapping[Category, str] = {
    "rewrite": "warning",
    "review": "warning",
    "keep": "notice",
}


def escape_data(text: str) -> str:
    """The message part (after ``::``): the runner decodes %25, %0D and %0A."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    """A ``key=value`` property: additionally ``:`` and ``,`` separate fields."""
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


# The engine's message for a file that does not parse ("syntax error: line 2,
# column 7: ..."); its position becomes the annotation's line and col.
SYNTAX_ERROR_POSITION = re.compile(r"^syntax error: line (\d+), column (\d+)")


def error_position(message: str) -> dict[str, int]:
    """``line``/``col`` properties for a file error whose message names them."""
    match = SYNTAX_ERROR_POSITION.match(message)
    if match is None:
        return {}
    return {"line": int(match[1]), "col": int(match[2])}


def _command(level: str, properties: Mapping[str, object], message: str) -> str:
    fields = ",".join(f"{key}={escape_property(str(value))}" for key, value in properties.items())
    return f"::{level} {fields}::{escape_data(message)}"


def _finding_command(finding: Finding, rules_by_id: Mapping[str, Rule]) -> str:
    return _command(
        ANNOTATION_LEVELS[finding.category],
        {
            "file": finding.path,
            "line": finding.line,
            "col": finding.column,
            "endLine": finding.end_line,
            "endColumn": finding.end_column,
            "title": rule_label(finding.rule, rules_by_id),
        },
        f"[{finding.category}] {finding.message}",
    )


def github_annotations(report: AuditReport, rules_by_id: Mapping[str, Rule]) -> str:
    lines = [
        _finding_command(finding, rules_by_id)
        for finding in sorted(report.findings, key=Finding.sort_key)
    ]
    lines.extend(
        _command(
            "error",
            {"file": error.path, **error_position(error.message), "title": "ctxmigrate"},
            error.message,
        )
        for error in sorted(report.errors, key=lambda error: error.path)
    )
    return "".join(line + "\n" for line in lines)
