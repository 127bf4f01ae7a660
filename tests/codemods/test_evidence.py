"""Path mapping and matching of run-time call sites onto findings (codemods/evidence.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from ctxmigrate.codemods.evidence import (
    Evidence,
    EvidenceError,
    PathMapper,
    attach_evidence,
    parse_path_map,
)
from ctxmigrate.codemods.model import AuditReport, Finding

FILES = [
    ("svc/a/handler.py", Path("/repo/svc/a/handler.py")),
    ("svc/b/handler.py", Path("/repo/svc/b/handler.py")),
    ("svc/b/only.py", Path("/repo/svc/b/only.py")),
]


def test_the_longest_matching_suffix_wins() -> None:
    mapper = PathMapper(FILES)
    assert mapper("/app/svc/a/handler.py") == "svc/a/handler.py"
    assert mapper("/app/b/handler.py") == "svc/b/handler.py"
    assert mapper("C:\\deploy\\svc\\b\\only.py") == "svc/b/only.py"  # a Windows host
    assert mapper("/anywhere/only.py") == "svc/b/only.py"


def test_ties_and_unknown_file_names_map_to_nothing() -> None:
    mapper = PathMapper(FILES)
    assert mapper("/app/handler.py") is None  # svc/a and svc/b match equally well
    assert mapper("/usr/lib/python3/site-packages/other.py") is None
    assert mapper("") is None


def test_a_path_map_wins_over_suffixes_and_the_longest_prefix_applies() -> None:
    pairs = parse_path_map(["/app=/repo/svc/a", "/app/special=/repo/svc/b"])
    mapper = PathMapper(FILES, pairs)
    assert mapper("/app/handler.py") == "svc/a/handler.py"
    assert mapper("/app/special/handler.py") == "svc/b/handler.py"
    # A mapped path that is not an audited file is not suffix-matched instead.
    assert mapper("/app/only.py") is None
    assert mapper("/elsewhere/only.py") == "svc/b/only.py"
    with pytest.raises(EvidenceError, match="expected FROM=TO"):
        parse_path_map(["=x"])


def finding(rule: str, line: int, end_line: int) -> Finding:
    return Finding(rule, "review", "svc/b/only.py", line, 1, end_line, 2, "s", None, "m")


def observations(*sites: tuple[str, int, int]) -> dict[str, Any]:
    return {
        "processes": [{"id": "p"}],
        "call_sites": [
            {
                "api": "api",
                "path": path,
                "line": line,
                "function": "f",
                "calls": calls,
                "rebuilt": 0,
                "conversations": 1,
            }
            for path, line, calls in sites
        ],
    }


def test_a_site_goes_to_the_narrowest_findings_containing_its_line() -> None:
    census = finding("CTX104", 1, 50)
    call = finding("CTX001", 10, 12)
    report = AuditReport(findings=[census, call])
    result = attach_evidence(
        report,
        observations(("/app/only.py", 11, 3), ("/app/only.py", 10, 2)),
        PathMapper(FILES),
        runtime_only_enabled=True,
        read_line=lambda path, line: None,
    )
    assert result.of(call) == Evidence(5, 0, 2)
    assert result.of(census) is None
    assert result.runtime_only == []


def test_a_runtime_only_site_past_the_end_of_the_file_says_so() -> None:
    report = AuditReport()
    result = attach_evidence(
        report,
        observations(("/app/only.py", 99, 1)),
        PathMapper(FILES),
        runtime_only_enabled=True,
        read_line=lambda path, line: None,
    )
    [only] = result.runtime_only
    assert (only.rule, only.line, only.column) == ("CTX105", 99, 1)
    assert "line 99 is not in the file now" in only.message
    assert report.findings == [only]
    disabled = attach_evidence(
        AuditReport(),
        observations(("/app/only.py", 99, 1)),
        PathMapper(FILES),
        runtime_only_enabled=False,
        read_line=lambda path, line: None,
    )
    assert disabled.runtime_only == []
