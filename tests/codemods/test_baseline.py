"""Fingerprints and matching in codemods/baseline.py, without the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ctxmigrate.codemods.baseline import (
    Baseline,
    BaselineError,
    baseline_from_findings,
    key_findings,
    load_baseline,
    match_baseline,
    normalized_code,
    region_text,
)
from ctxmigrate.codemods.config import config_from_mapping
from ctxmigrate.codemods.model import ConfigError, Finding


def finding(line: int, column: int, end_line: int, end_column: int, function: str = "f") -> Finding:
    return Finding(
        rule="CTX001",
        category="rewrite",
        path="mod.py",
        line=line,
        column=column,
        end_line=end_line,
        end_column=end_column,
        symbol="pkg.deps.create_user_execution_context",
        function=function,
        message="m",
    )


@pytest.mark.parametrize(
    "variant",
    [
        "make(a=1, b=2)",
        "make( a = 1 ,b=2 )",
        "make(\n    a=1,  # first\n    b=2,\n)",
        "make(a=1,\n\tb=2)",
    ],
)
def test_whitespace_comments_and_a_trailing_comma_do_not_change_the_code(variant: str) -> None:
    assert normalized_code(variant) == normalized_code("make(a=1, b=2)")


@pytest.mark.parametrize(
    ("before", "after"),
    [
        ('make(a="x y")', 'make(a="x  y")'),
        ("make(a=1, b=2)", "make(a=1, b=3)"),
        ("make(a=1, b=2)", "make(b=2, a=1)"),
        ("make(a=(1,), b=2)", "make(a=(1), b=2)"),
    ],
)
def test_real_changes_change_the_code(before: str, after: str) -> None:
    assert normalized_code(before) != normalized_code(after)


def test_region_text_counts_characters_not_bytes_and_spans_lines() -> None:
    lines = ["x = 'é'; make(a,", "    b)  # tail"]
    assert region_text(lines, finding(1, 10, 2, 7)) == "make(a,\n    b)"
    assert region_text(lines, finding(1, 10, 1, 17)) == "make(a,"
    assert region_text(lines, finding(3, 1, 3, 2)) == ""


def test_keys_use_the_project_path_and_read_the_decoded_source(tmp_path: Path) -> None:
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "mod.py").write_bytes(
        b"# -*- coding: latin-1 -*-\r\nx = '\xe9'; make(a)\r\n"
    )
    site = Finding(**{**finding(2, 11, 2, 18).to_json(), "path": "mod.py"})
    keyed = key_findings([site], tmp_path, cwd=tmp_path / "pkg")
    assert keyed[0].key[0] == "pkg/mod.py"
    other = Finding(**{**site.to_json(), "column": 1, "end_column": 8})
    assert key_findings([other], tmp_path, cwd=tmp_path / "pkg")[0].key != keyed[0].key


def test_matching_takes_known_sites_by_count_and_reports_the_rest_fixed(tmp_path: Path) -> None:
    (tmp_path / "mod.py").write_text("make(a)\nmake(a)\nmake(b)\n")
    a1, a2, b = finding(1, 1, 1, 8), finding(2, 1, 2, 8), finding(3, 1, 3, 8)
    baseline = baseline_from_findings(key_findings([a1, a2, b], tmp_path, cwd=tmp_path))
    assert sorted(e.count for e in baseline.entries.values()) == [1, 2]
    match = match_baseline(baseline, key_findings([a1], tmp_path, cwd=tmp_path))
    assert (match.known, match.new, match.fixed_count) == ([a1], [], 2)
    assert match.remaining.total() == 1
    out_of_scope = match_baseline(
        baseline, key_findings([a1], tmp_path, cwd=tmp_path), in_scope={"mod.py": False}
    )
    assert out_of_scope.fixed_count == 0
    assert out_of_scope.remaining.total() == 3


def test_round_trip_and_an_empty_baseline_file_is_valid(tmp_path: Path) -> None:
    (tmp_path / "mod.py").write_text("make(a)\n")
    baseline = baseline_from_findings(key_findings([finding(1, 1, 1, 8)], tmp_path, cwd=tmp_path))
    path = tmp_path / "b.json"
    path.write_text(baseline.to_text())
    assert load_baseline(path).entries == baseline.entries
    path.write_text(Baseline().to_text())
    assert load_baseline(path).entries == {}


def test_a_repeated_entry_is_corrupt(tmp_path: Path) -> None:
    (tmp_path / "mod.py").write_text("make(a)\n")
    text = baseline_from_findings(
        key_findings([finding(1, 1, 1, 8)], tmp_path, cwd=tmp_path)
    ).to_text()
    document = json.loads(text)
    document["entries"] *= 2
    path = tmp_path / "b.json"
    path.write_text(json.dumps(document))
    with pytest.raises(BaselineError, match=r"entry 2 repeats mod\.py .* \(use 'count'\)"):
        load_baseline(path)


@pytest.mark.parametrize("value", [3, "", ["a.json"]])
def test_the_baseline_key_must_be_a_path(tmp_path: Path, value: object) -> None:
    with pytest.raises(ConfigError, match="'baseline' must be a non-empty path"):
        config_from_mapping({"baseline": value}, tmp_path, "pyproject.toml")
    assert config_from_mapping({"baseline": "ci/b.json"}, tmp_path, "x").baseline == "ci/b.json"
