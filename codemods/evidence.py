"""Production evidence in the audit: ``ctxmigrate audit --evidence FILE``.

The observations that ``@observe_legacy`` records at run time
(``write_observations``) name call sites by the path the process saw
(``/app/agent_service/handler.py``), line and function. This module maps those
paths onto the audited files, adds ``{"calls", "rebuilt", "conversations"}`` to
each static finding at a recorded call site, and turns a recorded call site
without any static finding into a finding of CTX105 runtime-only-site
(``review``): a legacy factory reached in a way static analysis cannot follow
(``getattr``, a factory passed as a value, a plugin).

Path mapping
============

1. ``--evidence-path-map FROM=TO`` (repeatable): a recorded path that starts
   with the directory ``FROM`` has it replaced by ``TO`` (relative to the
   current directory); the longest matching ``FROM`` wins, and a mapped path
   is never suffix-matched.
2. Otherwise the longest matching path suffix: the audited file whose trailing
   path components match most of the recorded path's trailing components (at
   least the file name). Two audited files matching equally well make the site
   ambiguous: it is left out, and counted as unmatched.

A recorded site matches a finding of the same file whose lines contain the
site's line (the narrowest such findings, when several nest). Sites whose file
is not among the audited files (site-packages, another repository, an excluded
file) are counted as unmatched and reported on stderr, never as findings.
"""

from __future__ import annotations

import glob
import os
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ctxmigrate.codemods.model import AuditReport, Category, CtxmigrateError, Finding, Rule

RUNTIME_ONLY_SITE = Rule(
    "CTX105",
    "runtime-only-site",
    "A call site of a legacy factory seen at run time (audit --evidence) where static "
    "analysis found no legacy site: dynamic use to review.",
    fixable=False,
)


class EvidenceError(CtxmigrateError):
    """An evidence file or path map that cannot be used (exit 2)."""


@dataclass(frozen=True)
class Evidence:
    calls: int
    rebuilt: int
    conversations: int

    def to_json(self) -> dict[str, int]:
        return {"calls": self.calls, "rebuilt": self.rebuilt, "conversations": self.conversations}

    def __add__(self, other: Evidence) -> Evidence:
        return Evidence(
            self.calls + other.calls,
            self.rebuilt + other.rebuilt,
            self.conversations + other.conversations,
        )


@dataclass
class EvidenceResult:
    """What the evidence added to a report."""

    by_finding: dict[Finding, Evidence] = field(default_factory=dict)
    runtime_only: list[Finding] = field(default_factory=list)
    files: int = 0
    processes: int = 0
    call_sites: int = 0
    unmatched: list[str] = field(default_factory=list)  # recorded paths, one per site

    def of(self, finding: Finding) -> Evidence | None:
        return self.by_finding.get(finding)

    def summary_json(self) -> dict[str, int]:
        return {
            "files": self.files,
            "processes": self.processes,
            "call_sites": self.call_sites,
            "unmatched_call_sites": len(self.unmatched),
        }


def expand_evidence_files(patterns: Sequence[str]) -> list[Path]:
    """Files named by ``--evidence`` values (globs allowed), each once, in order."""
    found: list[Path] = []
    for pattern in patterns:
        if glob.has_magic(pattern):
            matches = sorted(glob.glob(pattern, recursive=True))
            if not matches:
                raise EvidenceError(f"--evidence {pattern}: no file matches")
            found.extend(Path(match) for match in matches)
        else:
            path = Path(pattern)
            if not path.is_file():
                raise EvidenceError(f"--evidence {pattern}: no such file")
            found.append(path)
    return list(dict.fromkeys(found))


def load_evidence(patterns: Sequence[str]) -> tuple[dict[str, Any], int]:
    """The merged observations of every file, and how many files there were."""
    from ctxmigrate.shim.observe import ObservationsError, merge_observations, read_observations

    files = expand_evidence_files(patterns)
    try:
        return merge_observations(read_observations(path) for path in files), len(files)
    except ObservationsError as error:
        raise EvidenceError(str(error)) from error


def parse_path_map(items: Sequence[str]) -> list[tuple[str, str]]:
    """``FROM=TO`` pairs, longest ``FROM`` first."""
    pairs: list[tuple[str, str]] = []
    for item in items:
        source, separator, target = item.partition("=")
        if not separator or not source:
            raise EvidenceError(
                f"--evidence-path-map {item!r}: expected FROM=TO (e.g. /app=.), "
                "FROM a directory recorded at run time, TO where it is here"
            )
        pairs.append((_normal(source).rstrip("/") or "/", target or "."))
    return sorted(pairs, key=lambda pair: -len(pair[0]))


def _normal(path: str) -> str:
    return path.replace("\\", "/")


def _parts(path: str) -> list[str]:
    return [part for part in _normal(path).split("/") if part not in ("", ".")]


class PathMapper:
    """Recorded path -> the display path of an audited file, or ``None``."""

    def __init__(
        self, files: Iterable[tuple[str, Path]], path_map: Sequence[tuple[str, str]] = ()
    ) -> None:
        # display path -> absolute path, and by file name for suffix matching.
        self._by_absolute: dict[str, str] = {}
        self._by_name: dict[str, list[tuple[list[str], str]]] = defaultdict(list)
        for display, absolute in files:
            self._by_absolute[os.path.normcase(os.path.abspath(absolute))] = display
            parts = _parts(str(absolute))
            if parts:
                self._by_name[parts[-1]].append((parts, display))
        self._path_map = list(path_map)
        self._cache: dict[str, str | None] = {}

    def __call__(self, recorded: str) -> str | None:
        if recorded not in self._cache:
            self._cache[recorded] = self._map(recorded)
        return self._cache[recorded]

    def _map(self, recorded: str) -> str | None:
        normal = _normal(recorded)
        for source, target in self._path_map:
            if normal == source or normal.startswith(source.rstrip("/") + "/"):
                rest = normal[len(source) :].lstrip("/")
                local = os.path.abspath(os.path.join(target, rest))
                return self._by_absolute.get(os.path.normcase(local))
        parts = _parts(recorded)
        if not parts:
            return None
        best: list[str] = []
        best_length = 0
        for candidate, display in self._by_name.get(parts[-1], ()):
            length = 0
            for mine, theirs in zip(reversed(parts), reversed(candidate), strict=False):
                if mine != theirs:
                    break
                length += 1
            if length > best_length:
                best, best_length = [display], length
            elif length == best_length:
                best.append(display)
        return best[0] if len(best) == 1 else None


def _site_evidence(site: Mapping[str, Any]) -> Evidence:
    return Evidence(site["calls"], site["rebuilt"], site["conversations"])


def attach_evidence(
    report: AuditReport,
    observations: Mapping[str, Any],
    mapper: Callable[[str], str | None],
    *,
    runtime_only_enabled: bool,
    read_line: Callable[[str, int], str | None],
) -> EvidenceResult:
    """Evidence per finding; CTX105 findings for runtime-only sites (added to ``report``)."""
    result = EvidenceResult(
        processes=len(observations["processes"]), call_sites=len(observations["call_sites"])
    )
    by_path: dict[str, list[Finding]] = defaultdict(list)
    for finding in report.findings:
        if finding.rule != RUNTIME_ONLY_SITE.id:
            by_path[finding.path].append(finding)
    runtime_only: dict[tuple[str, int], tuple[Evidence, list[str], list[str]]] = {}
    for site in observations["call_sites"]:
        display = mapper(site["path"])
        if display is None:
            result.unmatched.append(site["path"])
            continue
        line = site["line"]
        containing = [f for f in by_path.get(display, ()) if f.line <= line <= f.end_line]
        evidence = _site_evidence(site)
        if containing:
            narrowest = min(f.end_line - f.line for f in containing)
            for finding in containing:
                if finding.end_line - finding.line == narrowest:
                    previous = result.by_finding.get(finding)
                    result.by_finding[finding] = (
                        evidence if previous is None else previous + evidence
                    )
            continue
        previous_entry = runtime_only.get((display, line))
        if previous_entry is None:
            runtime_only[(display, line)] = (evidence, [site["api"]], [site["function"]])
        else:
            total, apis, functions = previous_entry
            apis.append(site["api"])
            functions.append(site["function"])
            runtime_only[(display, line)] = (total + evidence, apis, functions)
    if runtime_only_enabled:
        for (display, line), (evidence, apis, functions) in sorted(runtime_only.items()):
            finding = _runtime_only_finding(display, line, apis, functions, read_line)
            result.runtime_only.append(finding)
            result.by_finding[finding] = evidence
        report.findings.extend(result.runtime_only)
    return result


def _runtime_only_finding(
    display: str,
    line: int,
    apis: list[str],
    functions: list[str],
    read_line: Callable[[str, int], str | None],
) -> Finding:
    unique_apis = list(dict.fromkeys(apis))
    text = read_line(display, line)
    if text is None:
        column, end_column = 1, 1
        where = f"; line {line} is not in the file now (evidence from another version?)"
    else:
        stripped = text.rstrip()
        column = len(stripped) - len(stripped.lstrip()) + 1
        end_column = len(stripped) + 1
        where = ""
    names = ", ".join(unique_apis)
    function = functions[0]
    category: Category = "review"
    message = (
        f"{names} is called here at run time, but static analysis sees no legacy site: "
        f"a dynamic use (getattr, a factory passed as a value, a plugin) to migrate by hand"
        f"{where}"
    )
    if text is not None and "ctxmigrate" in text:
        # Loaded only here: the suppression rules live with the static analysis.
        from ctxmigrate.codemods.classify import is_suppressed, suppression_reason
        from ctxmigrate.codemods.resolve import suppressed_rules

        if is_suppressed(suppressed_rules(text), RUNTIME_ONLY_SITE.id):
            category, message = "keep", suppression_reason(RUNTIME_ONLY_SITE.id)
    return Finding(
        rule=RUNTIME_ONLY_SITE.id,
        category=category,
        path=display,
        line=line,
        column=column,
        end_line=line,
        end_column=max(end_column, column),
        symbol=names,
        function=None if function == "<module>" else function,
        message=message,
    )


def file_line_reader(display_to_absolute: Mapping[str, Path]) -> Callable[[str, int], str | None]:
    """Reads line ``n`` (1-based) of an audited file, or ``None`` past its end."""
    cache: dict[str, list[str] | None] = {}

    def read_line(display: str, line: int) -> str | None:
        if display not in cache:
            try:
                text = display_to_absolute[display].read_bytes().decode("utf-8", "replace")
                cache[display] = text.splitlines()
            except (OSError, KeyError):
                cache[display] = None
        lines = cache[display]
        if lines is None or not 1 <= line <= len(lines):
            return None
        return lines[line - 1]

    return read_line


def sort_by_evidence(findings: Iterable[Finding], result: EvidenceResult) -> list[Finding]:
    """Most calls first (then most rebuilt), findings without evidence last by location."""

    def key(finding: Finding) -> tuple[int, int, int, tuple[str, int, int, str]]:
        evidence = result.of(finding)
        if evidence is None:
            return (1, 0, 0, finding.sort_key())
        return (0, -evidence.calls, -evidence.rebuilt, finding.sort_key())

    return sorted(findings, key=key)


def report_json(
    report: AuditReport, result: EvidenceResult, *, by_evidence: bool
) -> dict[str, Any]:
    """The version 1 JSON report with ``evidence`` on every finding (or ``null``)."""
    document = report.to_json()
    ordered = (
        sort_by_evidence(report.findings, result)
        if by_evidence
        else sorted(report.findings, key=Finding.sort_key)
    )
    findings = []
    for finding in ordered:
        entry = finding.to_json()
        evidence = result.of(finding)
        entry["evidence"] = None if evidence is None else evidence.to_json()
        findings.append(entry)
    document["findings"] = findings
    document["evidence"] = result.summary_json()
    return document


def collect_evidence(
    report: AuditReport,
    paths: Sequence[Path],
    config: Any,
    observations: Mapping[str, Any],
    files_read: int,
    path_map: Sequence[tuple[str, str]],
) -> EvidenceResult:
    """Map the observations onto the files under ``paths`` and attach them to ``report``."""
    from ctxmigrate.codemods.discovery import discover
    from ctxmigrate.codemods.engine import rule_selected

    sources = discover(paths, config).files
    absolute = {source.display: source.path for source in sources}
    mapper = PathMapper(((source.display, source.path) for source in sources), path_map)
    result = attach_evidence(
        report,
        observations,
        mapper,
        runtime_only_enabled=rule_selected(RUNTIME_ONLY_SITE, config),
        read_line=file_line_reader(absolute),
    )
    result.files = files_read
    return result
