"""``progress`` as text: the headline, remaining work by category, rule and directory."""

from __future__ import annotations

from collections.abc import Mapping

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from ctxmigrate.cli.rule_catalogue import rule_label
from ctxmigrate.codemods.model import Rule
from ctxmigrate.codemods.progress import WORK_CATEGORIES, Progress


def headline(progress: Progress) -> str:
    """One line: remaining work, and the share done against the reference."""
    counts = progress.by_category()
    remaining = progress.remaining
    text = (
        f"{remaining} site{'s' if remaining != 1 else ''} left to migrate "
        f"({counts['rewrite']} rewrite, {counts['review']} review); {progress.kept} keep"
    )
    percent = progress.percent_done
    if progress.baseline_file is not None:
        text += (
            f". {percent:.1f}% done against baseline {progress.baseline_file}: "
            f"{progress.fixed} of {progress.known_at_baseline} fixed, {len(progress.new)} new"
        )
    elif percent is not None and progress.history:
        text += f". {percent:.1f}% done since {progress.history[0].commit[:12]}"
    return text


def _counts_table(title: str, rows: Mapping[str, Mapping[str, int]], first: str) -> Table:
    table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, show_edge=False)
    table.add_column(first, overflow="fold")
    for category in WORK_CATEGORIES:
        table.add_column(category, justify="right")
    table.add_column("total", justify="right")
    for name, counts in rows.items():
        table.add_row(
            Text(name),
            *(str(counts[category]) for category in WORK_CATEGORIES),
            str(sum(counts.values())),
        )
    return table


def render_progress(progress: Progress, rules_by_id: Mapping[str, Rule], console: Console) -> None:
    console.print(headline(progress), markup=False)
    console.print()
    if progress.sites:
        by_rule = {rule_label(rule, rules_by_id): row for rule, row in progress.by_rule().items()}
        console.print(_counts_table("by rule", by_rule, "rule"))
        console.print()
        console.print(_counts_table("by directory", progress.by_directory(), "directory"))
        console.print()
    if progress.history:
        table = Table(title="history", title_justify="left", box=box.SIMPLE_HEAD, show_edge=False)
        for name in ("commit", "date", "remaining", "rewrite", "review", "subject"):
            numeric = name in ("remaining", "rewrite", "review")
            table.add_column(name, justify="right" if numeric else "left", overflow="fold")
        for point in progress.history:
            table.add_row(
                point.commit[:12],
                point.date,
                str(point.remaining),
                str(point.counts["rewrite"]),
                str(point.counts["review"]),
                Text(point.subject),
            )
        console.print(table)
        console.print()
    if progress.errors:
        errors = progress.errors
        console.print(
            f"{errors} file{'s' if errors != 1 else ''} could not be analysed "
            "(run audit to see them)",
            markup=False,
        )
