"""``audit --format sarif``: a SARIF 2.1.0 log with one run.

Unlike ruff and Semgrep, rewrite findings carry their replacement in ``fixes``
so a SARIF viewer can offer the change. Columns are code points, as the JSON
contract counts them, so the run says ``columnKind: unicodeCodePoints``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from ctxmigrate.codemods.model import AuditReport, Category, Finding, Rule

if TYPE_CHECKING:
    from ctxmigrate.codemods.evidence import EvidenceResult

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
SARIF_VERSION = "2.1.0"
SOURCE_ROOT = "%SRCROOT%"

# rewrite and review both ask for a change in the code under review (warning);
# keep sites are intentional and reported for completeness (note).
SARIF_LEVELS: Mapping[Category, str] = {
    "rewrite": "warning",
    "review": "warning",
    "keep": "note",
}


def _artifact_location(path: str) -> dict[str, Any]:
    # Paths are relative to the current directory; SARIF wants a URI reference.
    return {"uri": quote(path), "uriBaseId": SOURCE_ROOT}


def _region(finding: Finding) -> dict[str, int]:
    return {
        "startLine": finding.line,
        "startColumn": finding.column,
        "endLine": finding.end_line,
        "endColumn": finding.end_column,
    }


def _result(
    finding: Finding, rule_index: Mapping[str, int], evidence: EvidenceResult | None = None
) -> dict[str, Any]:
    result: dict[str, Any] = {
        "ruleId": finding.rule,
        "level": SARIF_LEVELS[finding.category],
        "message": {"text": finding.message},
        "locations": [
            {
                "physicalLocation": {
                    "artifactLocation": _artifact_location(finding.path),
                    "region": _region(finding),
                },
                **(
                    {"logicalLocations": [{"fullyQualifiedName": finding.function}]}
                    if finding.function
                    else {}
                ),
            }
        ],
        "properties": {"category": finding.category, "symbol": finding.symbol},
    }
    if evidence is not None:  # audit --evidence: run-time calls, or null
        seen = evidence.of(finding)
        result["properties"]["evidence"] = None if seen is None else seen.to_json()
    if finding.rule in rule_index:
        result["ruleIndex"] = rule_index[finding.rule]
    if finding.category == "rewrite" and finding.fix is not None:
        result["fixes"] = [
            {
                "description": {
                    "text": f"Replace with {finding.fix} (ctxmigrate apply also updates imports)"
                },
                "artifactChanges": [
                    {
                        "artifactLocation": _artifact_location(finding.path),
                        "replacements": [
                            {
                                "deletedRegion": _region(finding),
                                "insertedContent": {"text": finding.fix},
                            }
                        ],
                    }
                ],
            }
        ]
    return result


def _notification(path: str, message: str) -> dict[str, Any]:
    return {
        "level": "error",
        "message": {"text": message},
        "locations": [{"physicalLocation": {"artifactLocation": _artifact_location(path)}}],
    }


def sarif_log(
    report: AuditReport,
    rules: Sequence[Rule],
    tool_version: str,
    source_root: Path,
    evidence: EvidenceResult | None = None,
) -> dict[str, Any]:
    rule_index = {rule.id: index for index, rule in enumerate(rules)}
    return {
        "$schema": SARIF_SCHEMA,
        "version": SARIF_VERSION,
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "ctxmigrate",
                        "version": tool_version,
                        "rules": [
                            {
                                "id": rule.id,
                                "name": rule.name,
                                "shortDescription": {"text": rule.description},
                                "properties": {"fixable": rule.fixable},
                            }
                            for rule in rules
                        ],
                    }
                },
                "originalUriBaseIds": {SOURCE_ROOT: {"uri": source_root.resolve().as_uri() + "/"}},
                "columnKind": "unicodeCodePoints",
                "invocations": [
                    {
                        # Unreadable files are per-file problems: the run itself completed.
                        "executionSuccessful": True,
                        "toolExecutionNotifications": [
                            _notification(error.path, error.message)
                            for error in sorted(report.errors, key=lambda error: error.path)
                        ],
                    }
                ],
                "results": [
                    _result(finding, rule_index, evidence)
                    for finding in sorted(report.findings, key=Finding.sort_key)
                ],
            }
        ],
    }
