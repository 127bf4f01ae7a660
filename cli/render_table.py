"""The default ``audit`` output: one rich table per file, errors, a summary line."""

from __future__ import annotations

from collections.abc import Mapping
from itertools import groupby

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from ctxmigrate.cli.rule_catalogue import rule_label
from ctxmigrate.cli.terminal import display_path
from ctxmigrate.codemods.model import AuditReport, Category, Finding, Rule

CATEGORY_STYLES: Mapping[Category, str] = {
    "rewrite": "bold green",
    "review": "bold yellow",
    "keep": "dim",
}


def _file_table(path: str, findings: list[Finding], rules_by_id: Mapping[str, Rule]) -> Table:
    table = Table(
        title=Text(display_path(path), style="bold", overflow="fold"),
        title_justify="left",
        box=box.SIMPLE_HEAD,
        show_edge=False,
    )
    # fold, never "…": a truncated message or function name is lost information.
    table.add_column("rule", overflow="fold")
    table.add_column("category", no_wrap=True)
    table.add_column("line:col", justify="right", no_wrap=True)
    table.add_column("function", overflow="fold")
    table.add_column("message", overflow="fold")
    for finding in findings:
        # Text(), not str: messages quote code such as "[CTX001]" that rich
        # would otherwise read as markup.
        table.add_row(
            Text(rule_label(finding.rule, rules_by_id)),
            Text(finding.category, style=CATEGORY_STYLES[finding.category]),
            Text(f"{finding.line}:{finding.column}"),
            Text(finding.function or "<module>"),
            Text(finding.message),
        )
    return table


def summary_line(report: AuditReport) -> Text:
    summary = report.summary()
    files = summary["files_scanned"]
    line = Text(f"{files} file{'s' if files != 1 else ''} scanned: ")
    for index, category in enumerate(CATEGORY_STYLES):
        if index:
            line.append(", ")
        line.append(f"{summary[category]} {category}", style=CATEGORY_STYLES[category])
    errors = len(report.errors)
    line.append(f", {errors} error{'s' if errors != 1 else ''}", style="bold red" if errors else "")
    return line


def render_table(report: AuditReport, rules_by_id: Mapping[str, Rule], console: Console) -> None:
    findings = sorted(report.findings, key=Finding.sort_key)
    for path, group in groupby(findings, key=lambda finding: finding.path):
        console.print(_file_table(path, list(group), rules_by_id))
        console.print()
    print_errors_and_summary(report, bool(findings), console)


def print_errors_and_summary(report: AuditReport, any_findings: bool, console: Console) -> None:
    """The table's tail, shared by every table renderer: errors, then the summary line."""
    if report.errors:
        errors = Table(title=Text("errors", style="bold red"), title_justify="left")
        errors.add_column("path", overflow="fold")
        errors.add_column("message", overflow="fold")
        for error in sorted(report.errors, key=lambda error: error.path):
            errors.add_row(Text(display_path(error.path)), Text(error.message))
        console.print(errors)
        console.print()
    if not any_findings:
        console.print("No legacy sites found.")
    console.print(summary_line(report))
