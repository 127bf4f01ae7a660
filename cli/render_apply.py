"""What ``apply`` shows: diffs on stdout, the summary on stderr.

The summary goes to stderr (as ruff does with ``--diff``) so that
``ctxmigrate apply > migration.patch`` is a patch ``git apply`` accepts.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from rich.console import Console
from rich.text import Text

from ctxmigrate.cli.render_table import CATEGORY_STYLES
from ctxmigrate.cli.terminal import display_path, uses_color, write_stdout_bytes
from ctxmigrate.codemods.model import FileError, Finding
from ctxmigrate.codemods.rewrite.writing import WriteOutcome, build_patch, patch_paths, unified_diff

if TYPE_CHECKING:
    # Only named in annotations: importing planning pulls in LibCST's codemod
    # framework, which ``ctxmigrate --help`` (it loads every subcommand) must not pay.
    from ctxmigrate.codemods.rewrite.planning import FixResult

DIFF_LINE_STYLES = (
    ("diff --git", "bold"),
    ("---", "bold"),
    ("+++", "bold"),
    ("@@", "cyan"),
    ("+", "green"),
    ("-", "red"),
    ("\\", "dim"),
)


def show_diffs(fixes: Sequence[FixResult], console: Console) -> None:
    """Colored through rich on a terminal; otherwise the exact patch bytes."""
    changed = [fix for fix in fixes if fix.fixed is not None]
    if not uses_color(console):
        write_stdout_bytes(build_patch(changed))
        return
    for path, fix in zip(patch_paths(changed), changed, strict=True):
        assert fix.fixed is not None
        text = unified_diff(path, fix.original, fix.fixed)
        for line in text.splitlines():
            # Surrogate escapes stand for undecodable bytes; a terminal cannot show them.
            shown = line.encode("utf-8", "replace").decode("utf-8").rstrip("\r")
            style = next((s for prefix, s in DIFF_LINE_STYLES if line.startswith(prefix)), "")
            console.print(Text(shown, style=style), soft_wrap=True)


STALE_REASON = (
    "changed since you reviewed it; nothing of it applied (run apply --interactive again)"
)


@dataclass
class ApplySummary:
    """Everything the summary reports, gathered by the apply command."""

    fixes: Sequence[FixResult]
    skipped: Sequence[Finding]
    file_errors: Sequence[FileError]
    written: Sequence[WriteOutcome] | None = None
    not_approved: int = 0
    decisions_file: str | None = None
    patch_file: str | None = None
    # --interactive: files edited since the review, left out (not written, no diff).
    stale: Sequence[str] = ()

    @property
    def changed(self) -> list[FixResult]:
        return [fix for fix in self.fixes if fix.fixed is not None]

    @property
    def failed_fixes(self) -> list[FixResult]:
        return [fix for fix in self.fixes if fix.error is not None]

    @property
    def refused_writes(self) -> list[WriteOutcome]:
        return [outcome for outcome in self.written or () if not outcome.written]


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def render_summary(summary: ApplySummary, console: Console) -> None:
    changed = summary.changed
    sites = sum(len(fix.applied) for fix in changed)
    if summary.written is None:
        verb = "Would change"
    else:
        written = {outcome.path for outcome in summary.written if outcome.written}
        changed = [fix for fix in changed if fix.path in written]
        sites = sum(len(fix.applied) for fix in changed)
        verb = "Changed"
    if changed:
        console.print(
            Text(f"{verb} {_plural(sites, 'site')} in {_plural(len(changed), 'file')}.", "bold")
        )
    elif summary.file_errors and not (summary.stale or summary.changed or summary.failed_fixes):
        console.print(Text("Nothing to change in the files that could be analysed.", "bold"))
    elif not (summary.stale or summary.changed or summary.failed_fixes):
        # Pending changes that could not be written are explained below, never
        # summed up as "nothing to change".
        console.print(Text("Nothing to change.", "bold"))
    if summary.file_errors:
        count = len(summary.file_errors)
        console.print(
            Text(
                f"{_plural(count, 'file')} could not be analysed: legacy sites in "
                f"{'it' if count == 1 else 'them'} are neither found nor changed (see below).",
                "bold red",
            )
        )
    if summary.patch_file is not None and summary.changed:
        console.print(f"Patch written to {summary.patch_file} (apply it with: git apply).")

    for path in summary.stale:
        console.print(
            Text(
                f"{'not written' if summary.written is not None else 'left out'}: "
                f"{display_path(path)}: {STALE_REASON}",
                "bold red",
            )
        )
    for outcome in summary.refused_writes:
        console.print(
            Text(f"not written: {display_path(outcome.path)}: {outcome.reason}", "bold red")
        )
    for fix in summary.failed_fixes:
        console.print(Text(f"left untouched: {display_path(fix.path)}: {fix.error}", "bold red"))
    for error in summary.file_errors:
        console.print(Text(f"error: {display_path(error.path)}: {error.message}", "red"))
    for fix in summary.fixes:
        for note in fix.notes:
            console.print(Text(f"note: {display_path(fix.path)}: {note}", "yellow"))

    review = [finding for finding in summary.skipped if finding.category != "keep"]
    keep = [finding for finding in summary.skipped if finding.category == "keep"]
    if review:
        console.print(Text(f"Skipped {_plural(len(review), 'site')}:", "bold"))
        for finding in review:
            line = Text(
                f"  {display_path(finding.path)}:{finding.line}:{finding.column} {finding.rule} "
            )
            line.append(finding.category, CATEGORY_STYLES[finding.category])
            line.append(f" {finding.message}")
            console.print(line)
    if keep:
        console.print(Text(f"Kept {_plural(len(keep), 'site')} on purpose:", "bold"))
        for message, count in sorted(Counter(f.message for f in keep).items()):
            console.print(Text(f"  {count} × {message}"))
    if summary.not_approved:
        console.print(
            f"{_plural(summary.not_approved, 'rewrite site')} not approved "
            f"(decisions in {summary.decisions_file})."
        )
