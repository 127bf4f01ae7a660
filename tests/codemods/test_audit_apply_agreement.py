"""audit and apply agree: apply changes exactly the sites audit calls ``rewrite``.

For every golden input, the characters apply changes must all lie inside a
``rewrite`` finding's span or an import statement (the new import, the old
one removed), and every ``rewrite`` finding's span must actually change. The
diff is computed on the decoded text, character by character, independently
of how fix_source works.
"""

from __future__ import annotations

import ast
import difflib
import io
import tokenize
from pathlib import Path

import pytest

from ctxmigrate.codemods.analysis.memory import analyze_sources
from ctxmigrate.codemods.model import Finding
from ctxmigrate.codemods.rewrite.planning import fix_source

from .support import LEGACY_CONFIG, golden_codemod, golden_id, golden_inputs, golden_project

Region = tuple[int, int]  # character offsets, end exclusive


def decode(source: bytes) -> str:
    encoding, _ = tokenize.detect_encoding(io.BytesIO(source).readline)
    return source.decode(encoding).removeprefix("\ufeff")


def line_starts(text: str) -> list[int]:
    starts = [0]
    for line in text.splitlines(keepends=True):
        starts.append(starts[-1] + len(line))
    return starts


def finding_region(finding: Finding, starts: list[int]) -> Region:
    return (
        starts[finding.line - 1] + finding.column - 1,
        starts[finding.end_line - 1] + finding.end_column - 1,
    )


def import_regions(text: str, starts: list[int]) -> list[Region]:
    """Whole lines of every import statement, newline included."""
    return [
        (starts[node.lineno - 1], starts[(node.end_lineno or node.lineno)])
        for node in ast.walk(ast.parse(text))
        if isinstance(node, ast.Import | ast.ImportFrom)
    ]


def changed_regions(before: str, after: str) -> list[Region]:
    """Spans of ``before`` that differ from ``after``; insertions are empty spans."""
    matcher = difflib.SequenceMatcher(a=before, b=after, autojunk=False)
    return [(i1, i2) for tag, i1, i2, _, _ in matcher.get_opcodes() if tag != "equal"]


def covered(change: Region, allowed: list[Region]) -> bool:
    start, end = change
    if start == end:
        return any(low <= start <= high for low, high in allowed)
    return all(any(low <= offset < high for low, high in allowed) for offset in range(start, end))


def touches(region: Region, changes: list[Region]) -> bool:
    low, high = region
    return any(start <= high and low <= end for start, end in changes)


@pytest.mark.parametrize("input_path", golden_inputs(), ids=golden_id)
def test_apply_changes_exactly_the_rewrite_sites(input_path: Path) -> None:
    source = input_path.read_bytes()
    display, project = golden_project(input_path, source)
    codemod = golden_codemod(input_path)
    analysis = analyze_sources(project, LEGACY_CONFIG, [codemod])[display]
    audit_rewrites = {
        (f.line, f.column)
        for f in analysis.findings
        if f.rule == codemod.rule.id and f.category == "rewrite"
    }

    result = fix_source(analysis, LEGACY_CONFIG, [codemod])
    assert result.error is None
    assert {(f.line, f.column) for f in result.applied} == audit_rewrites
    if not audit_rewrites:
        assert result.fixed is None
        return
    assert result.fixed is not None

    before, after = decode(source), decode(result.fixed)
    starts = line_starts(before)
    rewrite_regions = [
        finding_region(f, starts)
        for f in analysis.findings
        if (f.line, f.column) in audit_rewrites and f.rule == codemod.rule.id
    ]
    changes = changed_regions(before, after)
    allowed = rewrite_regions + import_regions(before, starts)
    outside = [
        before[start : end + 1] for start, end in changes if not covered((start, end), allowed)
    ]
    assert outside == [], "apply changed text outside the rewrite sites and imports"
    untouched = [region for region in rewrite_regions if not touches(region, changes)]
    assert untouched == [], "a rewrite finding that apply did not change"
