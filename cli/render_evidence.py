"""The ``audit`` table with production evidence (``--evidence``).

Sorted by location, it is the usual table per file with an ``evidence``
column; with ``--sort evidence`` it is one table over every file, the call
sites that fired most first, findings without evidence last.
"""

from __future__ import annotations

from collections.abc import Mapping
from itertools import groupby

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from ctxmigrate.cli.render_table import CATEGORY_STYLES, print_errors_and_summary
from ctxmigrate.cli.rule_catalogue import rule_label
from ctxmigrate.cli.terminal import display_path
from ctxmigrate.codemods.evidence import Evidence, EvidenceResult, sort_by_evidence
from ctxmigrate.codemods.model import AuditReport, Finding, Rule


def evidence_text(evidence: Evidence | None) -> Text:
    if evidence is None:
        return Text("-", style="dim")
    return Text(
        f"{evidence.calls} calls, {evidence.rebuilt} rebuilt, "
        f"{evidence.conversations} conversations",
        style="bold" if evidence.rebuilt else "",
    )


def _table(title: str | None, with_path: bool) -> Table:
    table = Table(
        title=Text(title, style="bold", overflow="fold") if title is not None else None,
        title_justify="left",
        box=box.SIMPLE_HEAD,
        show_edge=False,
    )
    table.add_column("rule", overflow="fold")
    table.add_column("category", no_wrap=True)
    table.add_column("path:line:col" if with_path else "line:col", overflow="fold")
    table.add_column("function", overflow="fold")
    table.add_column("evidence", overflow="fold")
    table.add_column("message", overflow="fold")
    return table


def _add_row(
    table: Table,
    finding: Finding,
    rules_by_id: Mapping[str, Rule],
    result: EvidenceResult,
    with_path: bool,
) -> None:
    location = f"{finding.line}:{finding.column}"
    table.add_row(
        Text(rule_label(finding.rule, rules_by_id)),
        Text(finding.category, style=CATEGORY_STYLES[finding.category]),
        Text(f"{display_path(finding.path)}:{location}" if with_path else location),
        Text(finding.function or "<module>"),
        evidence_text(result.of(finding)),
        Text(finding.message),
    )


def render_evidence_table(
    report: AuditReport,
    rules_by_id: Mapping[str, Rule],
    console: Console,
    result: EvidenceResult,
    *,
    by_evidence: bool,
) -> None:
    if by_evidence:
        findings = sort_by_evidence(report.findings, result)
        if findings:
            table = _table("findings, most calls at run time first", with_path=True)
            for finding in findings:
                _add_row(table, finding, rules_by_id, result, with_path=True)
            console.print(table)
            console.print()
    else:
        findings = sorted(report.findings, key=Finding.sort_key)
        for path, group in groupby(findings, key=lambda finding: finding.path):
            table = _table(display_path(path), with_path=False)
            for finding in group:
                _add_row(table, finding, rules_by_id, result, with_path=False)
            console.print(table)
            console.print()
    print_errors_and_summary(report, bool(findings), console)
    observed = sum(1 for finding in report.findings if result.of(finding) is not None)
    console.print(
        Text(
            f"evidence: {result.files} file{'s' if result.files != 1 else ''}, "
            f"{result.processes} process{'es' if result.processes != 1 else ''}, "
            f"{result.call_sites} call site{'s' if result.call_sites != 1 else ''}; "
            f"{observed} finding{'s' if observed != 1 else ''} seen at run time, "
            f"{len(result.runtime_only)} runtime-only, "
            f"{len(result.unmatched)} call site{'s' if len(result.unmatched) != 1 else ''} "
            "outside the audited files"
        )
    )
