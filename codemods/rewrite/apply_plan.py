"""Apply planning: which fixes a run may use, whether it may write them, and whether it failed.

The library decides what ``ctxmigrate apply`` does; the CLI only asks
(``--interactive``), renders and maps the outcome to an exit code:

- ``plan_apply`` drops the fixes of files that changed since an interactive
  review (``stale``): approvals are positions, valid only in the reviewed bytes;
- ``check_write_allowed`` refuses to write over uncommitted changes, or when git
  refused to read the checkout (so they cannot be checked), with typed errors;
- ``ApplyPlan.failed`` is the exit policy: a dry run fails when something would
  change, a write when something could not be written; a file that could not
  be analysed or a stale file always fails the run.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ctxmigrate.codemods.model import CtxmigrateError, FileError, Finding
from ctxmigrate.codemods.rewrite.writing import uncommitted_files

if TYPE_CHECKING:
    from ctxmigrate.codemods.engine import RunResult
    from ctxmigrate.codemods.rewrite.planning import FixResult
    from ctxmigrate.codemods.rewrite.writing import WriteOutcome


class WriteRefused(CtxmigrateError):
    """``apply --write`` must not write (exit 2); ``--allow-dirty`` overrides it."""


class GitUnavailableError(WriteRefused):
    """Git refused to read a checkout: uncommitted changes cannot be checked."""

    def __init__(self, refusals: Sequence[FileError]) -> None:
        self.refusals = list(refusals)
        listed = "".join(f"\n  {_one_line(error.path)}: {error.message}" for error in refusals)
        super().__init__(
            "refusing to write: git refused to read the checkout, so uncommitted changes "
            "cannot be checked (fix git, e.g. git config --global --add safe.directory "
            f"<checkout>, or pass --allow-dirty){listed}"
        )


class DirtyFilesError(WriteRefused):
    """Files the fix would write have uncommitted changes."""

    def __init__(self, paths: Sequence[str]) -> None:
        self.paths = list(paths)
        listed = "\n".join(f"  {_one_line(path)}" for path in paths)
        super().__init__(
            "refusing to write files with uncommitted changes (commit or stash them "
            f"first, or pass --allow-dirty):\n{listed}"
        )


def _one_line(path: str) -> str:
    """A path for a one-line message: as is, or quoted when it holds a newline or
    another unprintable character."""
    return path if path.isprintable() else repr(path)


# (path, line, column, rule) of a finding, as ``--interactive`` records approvals.
AcceptKey = tuple[str, int, int, str]


def finding_key(finding: Finding) -> AcceptKey:
    """A finding's (path, line, column, rule): what approvals and applied sites are keyed by."""
    return (finding.path, finding.line, finding.column, finding.rule)


@dataclass(frozen=True)
class ReviewedState:
    """What an interactive review was based on: each file's bytes (None:
    unreadable) and the rewrite sites found in them."""

    sources: Mapping[str, bytes | None] = field(default_factory=dict)
    sites: Mapping[str, frozenset[AcceptKey]] = field(default_factory=dict)


@dataclass
class ApplyPlan:
    result: RunResult
    # Files edited since the review (or whose rewrite sites moved): left out whole,
    # so a declined site is never written in place of an approved one.
    stale: set[str]
    fixes: list[FixResult]

    @property
    def changed(self) -> list[FixResult]:
        return [fix for fix in self.fixes if fix.fixed is not None]

    def not_applied(self) -> list[Finding]:
        """Findings of the run the fixes do not apply (stale files left out)."""
        applied = {finding_key(f) for fix in self.changed for f in fix.applied}
        return [
            f
            for f in self.result.report.findings
            if finding_key(f) not in applied and f.path not in self.stale
        ]

    def not_approved(self) -> list[Finding]:
        """``rewrite`` findings not applied in files whose fix did not fail."""
        failed_paths = {fix.path for fix in self.fixes if fix.error is not None}
        return [
            f for f in self.not_applied() if f.category == "rewrite" and f.path not in failed_paths
        ]

    def failed(self, written: Sequence[WriteOutcome] | None) -> bool:
        """The exit policy; ``written`` is None for a dry run (diffs or a patch)."""
        failed_fixes = any(fix.error is not None for fix in self.fixes)
        # A file that could not be analysed may hide sites: never a clean run.
        unanalysed = bool(self.result.report.errors)
        if written is not None:
            refused = any(not outcome.written for outcome in written)
            return refused or failed_fixes or bool(self.stale) or unanalysed
        return bool(self.changed) or failed_fixes or bool(self.stale) or unanalysed


def plan_apply(result: RunResult, reviewed: ReviewedState | None = None) -> ApplyPlan:
    """The fixes ``result`` offers, minus the files stale since ``reviewed``."""
    stale = set() if reviewed is None else stale_paths(result, reviewed)
    return ApplyPlan(result, stale, [fix for fix in result.fixes if fix.path not in stale])


def stale_paths(result: RunResult, reviewed: ReviewedState) -> set[str]:
    """Files whose fix must not be used: not reviewed, edited since, or whose
    rewrite sites moved."""
    found: dict[str, set[AcceptKey]] = {}
    for finding in result.report.findings:
        if finding.category == "rewrite":
            found.setdefault(finding.path, set()).add(finding_key(finding))
    return {
        fix.path
        for fix in result.fixes
        if fix.fixed is not None
        and (
            fix.path not in reviewed.sources
            or reviewed.sources[fix.path] != fix.original
            or reviewed.sites.get(fix.path) != frozenset(found.get(fix.path, ()))
        )
    }


def check_write_allowed(plan: ApplyPlan, *, allow_dirty: bool) -> None:
    """Raise a ``WriteRefused`` when ``--write`` must not touch the changed files."""
    changed = plan.changed
    if allow_dirty or not changed:
        return
    if plan.result.git_refusals:
        raise GitUnavailableError(plan.result.git_refusals)
    dirty = set(uncommitted_files([fix.abspath for fix in changed]))
    if dirty:
        raise DirtyFilesError([fix.path for fix in changed if fix.abspath in dirty])
