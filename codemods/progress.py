"""How far the migration is: what is left by category, rule and directory, and
the share of the baseline's sites that were migrated (``ctxmigrate progress``).

``remaining`` counts the sites that still need work: ``rewrite`` and ``review``
findings. ``keep`` sites are intentional (test code, suppressions) and never
count as remaining work; they are listed separately.

``percent_done`` is measured against a reference:

* with a baseline, the baseline's ``rewrite``/``review`` sites:
  ``fixed / known_at_baseline``, where ``fixed`` are the baseline's sites no
  longer found (new sites add to ``remaining`` but not to the reference);
* without one but with ``--history``, the oldest audited commit:
  ``(oldest - remaining) / oldest``, never below 0;
* otherwise there is no reference and ``percent_done`` is null.

A reference with no sites at all is 100% done.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ctxmigrate.codemods.baseline import (
    Baseline,
    key_findings,
    match_baseline,
    scope_of,
)
from ctxmigrate.codemods.model import AuditReport, Finding

PROGRESS_VERSION = 1
WORK_CATEGORIES = ("rewrite", "review")


@dataclass(frozen=True)
class Site:
    """A remaining site; ``path`` is relative to the current directory, as
    ``audit`` prints it, and ``directory`` is its first component (so running
    in ``services/`` groups by ``services/*``)."""

    finding: Finding

    @property
    def path(self) -> str:
        return self.finding.path

    @property
    def directory(self) -> str:
        return top_level_directory(self.path)

    def to_json(self) -> dict[str, Any]:
        f = self.finding
        return {
            "path": self.path,
            "line": f.line,
            "column": f.column,
            "rule": f.rule,
            "category": f.category,
            "function": f.function,
            "message": f.message,
            "new": None,
        }


@dataclass(frozen=True)
class HistoryPoint:
    commit: str
    date: str  # committer date, ISO 8601 as git prints it
    subject: str
    counts: dict[str, int]  # rewrite, review, keep
    cached: bool = False

    @property
    def remaining(self) -> int:
        return sum(self.counts.get(category, 0) for category in WORK_CATEGORIES)

    def to_json(self) -> dict[str, Any]:
        return {
            "commit": self.commit,
            "date": self.date,
            "subject": self.subject,
            "remaining": self.remaining,
            **{
                category: self.counts.get(category, 0) for category in ("rewrite", "review", "keep")
            },
            "cached": self.cached,
        }


@dataclass
class Progress:
    sites: list[Site]  # remaining (rewrite/review), sorted by path, line
    kept: int
    errors: int
    files_scanned: int
    baseline_file: str | None = None
    known_at_baseline: int | None = None  # rewrite/review sites in the baseline
    fixed: int | None = None
    new: set[int] = field(default_factory=set)  # indexes into ``sites`` not in the baseline
    history: list[HistoryPoint] = field(default_factory=list)  # oldest first

    @property
    def remaining(self) -> int:
        return len(self.sites)

    @property
    def reference(self) -> int | None:
        if self.known_at_baseline is not None:
            return self.known_at_baseline
        if self.history:
            return self.history[0].remaining
        return None

    @property
    def percent_done(self) -> float | None:
        reference = self.reference
        if reference is None:
            return None
        if reference == 0:
            return 100.0
        if self.known_at_baseline is not None:
            done = self.fixed or 0
        else:
            done = max(reference - self.remaining, 0)
        return round(100.0 * min(done, reference) / reference, 1)

    def by_category(self) -> dict[str, int]:
        counts: Counter[str] = Counter(site.finding.category for site in self.sites)
        return {category: counts.get(category, 0) for category in WORK_CATEGORIES}

    def by_rule(self) -> dict[str, dict[str, int]]:
        table: dict[str, dict[str, int]] = {}
        for site in self.sites:
            row = table.setdefault(site.finding.rule, dict.fromkeys(WORK_CATEGORIES, 0))
            row[site.finding.category] += 1
        return dict(sorted(table.items()))

    def by_directory(self) -> dict[str, dict[str, int]]:
        table: dict[str, dict[str, int]] = {}
        for site in self.sites:
            row = table.setdefault(site.directory, dict.fromkeys(WORK_CATEGORIES, 0))
            row[site.finding.category] += 1
        return dict(sorted(table.items()))

    def to_json(self) -> dict[str, Any]:
        sites = []
        for index, site in enumerate(self.sites):
            entry = site.to_json()
            entry["new"] = index in self.new if self.baseline_file is not None else None
            sites.append(entry)
        return {
            "version": PROGRESS_VERSION,
            "percent_done": self.percent_done,
            "remaining": self.remaining,
            "fixed": self.fixed,
            "baseline": None
            if self.baseline_file is None
            else {
                "file": self.baseline_file,
                "known": self.known_at_baseline,
                "new": len(self.new),
            },
            "by_category": self.by_category(),
            "by_rule": self.by_rule(),
            "by_directory": self.by_directory(),
            "keep": self.kept,
            "errors": self.errors,
            "files_scanned": self.files_scanned,
            "sites": sites,
            "history": [point.to_json() for point in self.history],
        }


def top_level_directory(path: str) -> str:
    """``pkg/sub/a.py`` -> ``pkg``; a file in the current directory -> ``.``;
    outside it (``../lib/a.py``) -> ``../lib``."""
    parts = path.split("/")
    ups = 0
    while ups < len(parts) - 1 and parts[ups] == "..":
        ups += 1
    if ups == len(parts) - 1:
        return "/".join(parts[:ups]) or "."
    return "/".join(parts[: ups + 1])


def measure_progress(
    report: AuditReport,
    root: Path,
    run_paths: Sequence[Path],
    baseline: Baseline | None = None,
    baseline_file: str | None = None,
    cwd: Path | None = None,
) -> Progress:
    """The progress of one audited tree, against ``baseline`` when given."""
    base = (cwd or Path.cwd()).resolve()
    work = [f for f in report.findings if f.category in WORK_CATEGORIES]
    work.sort(key=Finding.sort_key)
    sites = [Site(f) for f in work]
    progress = Progress(
        sites=sites,
        kept=sum(1 for f in report.findings if f.category == "keep"),
        errors=len(report.errors),
        files_scanned=report.files_scanned,
    )
    if baseline is None:
        return progress
    keyed = key_findings(work, root, base)
    scope = scope_of(baseline, run_paths, root)
    match = match_baseline(baseline, keyed, scope)
    new_ids = {id(f) for f in match.new}
    progress.baseline_file = baseline_file
    # Entries of files outside the run's paths are neither done nor remaining.
    progress.known_at_baseline = sum(
        entry.count
        for entry in baseline.entries.values()
        if entry.category in WORK_CATEGORIES and scope[entry.path]
    )
    progress.fixed = sum(e.count for e in match.fixed if e.category in WORK_CATEGORIES)
    progress.new = {index for index, site in enumerate(sites) if id(site.finding) in new_ids}
    return progress
