"""The report formats, rendered from real AuditReport objects."""

from __future__ import annotations

import io
import json
from dataclasses import replace
from pathlib import Path

import pytest
from rich.console import Console

from ctxmigrate.cli.render_github import escape_data, escape_property, github_annotations
from ctxmigrate.cli.render_sarif import sarif_log
from ctxmigrate.cli.render_table import render_table
from ctxmigrate.cli.terminal import display_path
from ctxmigrate.codemods.model import AuditReport, FileError, Finding
from tests.cli.report_samples import BROKEN, REWRITE, RULES, RULES_BY_ID, sample_report
from tests.cli.sarif_checks import assert_valid_sarif


def test_sarif_log_has_the_required_shape(tmp_path: Path) -> None:
    log = sarif_log(sample_report(), RULES, "0.1.0", tmp_path)
    assert_valid_sarif(json.loads(json.dumps(log)))


def test_sarif_results_levels_and_locations(tmp_path: Path) -> None:
    results = sarif_log(sample_report(), RULES, "0.1.0", tmp_path)["runs"][0]["results"]
    assert [(r["ruleId"], r["level"]) for r in results] == [
        ("CTX001", "warning"),  # review, line 40
        ("CTX001", "warning"),  # rewrite, line 102
        ("CTX101", "note"),  # keep
    ]
    assert results[1]["locations"][0]["physicalLocation"] == {
        "artifactLocation": {"uri": "pkg/handler.py", "uriBaseId": "%SRCROOT%"},
        "region": {"startLine": 102, "startColumn": 23, "endLine": 106, "endColumn": 14},
    }
    assert results[2]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == (
        "tests/test%20handler.py"
    )


def test_sarif_fixes_only_for_rewrite_findings(tmp_path: Path) -> None:
    results = sarif_log(sample_report(), RULES, "0.1.0", tmp_path)["runs"][0]["results"]
    assert [("fixes" in r) for r in results] == [False, True, False]
    replacement = results[1]["fixes"][0]["artifactChanges"][0]["replacements"][0]
    assert replacement == {
        "deletedRegion": {"startLine": 102, "startColumn": 23, "endLine": 106, "endColumn": 14},
        "insertedContent": {
            "text": "await get_or_create_user_session(user_id=user_id, thread_id=thread_id)"
        },
    }


def test_sarif_reports_file_errors_as_notifications(tmp_path: Path) -> None:
    run = sarif_log(sample_report(), RULES, "0.1.0", tmp_path)["runs"][0]
    (notification,) = run["invocations"][0]["toolExecutionNotifications"]
    assert notification["level"] == "error"
    assert notification["message"]["text"] == BROKEN.message
    assert notification["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == (
        "pkg/broken.py"
    )
    assert run["originalUriBaseIds"]["%SRCROOT%"]["uri"] == tmp_path.resolve().as_uri() + "/"


def test_sarif_driver_lists_every_rule(tmp_path: Path) -> None:
    driver = sarif_log(AuditReport(), RULES, "9.9", tmp_path)["runs"][0]["tool"]["driver"]
    assert driver["version"] == "9.9"
    assert [(r["id"], r["name"], r["shortDescription"]["text"]) for r in driver["rules"]] == [
        (rule.id, rule.name, rule.description) for rule in RULES
    ]


def test_github_escaping_of_message_and_properties() -> None:
    assert escape_data("100% done\r\nnext: a, b") == "100%25 done%0D%0Anext: a, b"
    assert escape_property("a:b,c%\n") == "a%3Ab%2Cc%25%0A"


def test_github_annotations_one_line_per_finding_and_error() -> None:
    lines = github_annotations(sample_report(), RULES_BY_ID).splitlines()
    assert lines == [
        "::warning file=pkg/handler.py,line=40,col=5,endLine=40,endColumn=60,"
        "title=CTX001 reuse-session::[review] module level: await is impossible [see docs]",
        "::warning file=pkg/handler.py,line=102,col=23,endLine=106,endColumn=14,"
        "title=CTX001 reuse-session::[rewrite] builds a fresh context for every message",
        "::notice file=tests/test handler.py,line=3,col=1,endLine=3,endColumn=10,"
        "title=CTX101 fresh-ids-per-message::[keep] test code builds a fresh isolated "
        "context on purpose",
        "::error file=pkg/broken.py,title=ctxmigrate::syntax error at line 3, column 7",
    ]


def test_github_annotation_escapes_a_path_with_comma_and_colon() -> None:
    finding = Finding("CTX001", "rewrite", "a,b:c.py", 1, 1, 1, 2, "s", None, "multi\nline")
    (line,) = github_annotations(AuditReport(findings=[finding]), RULES_BY_ID).splitlines()
    assert line.startswith("::warning file=a%2Cb%3Ac.py,line=1,")
    assert line.endswith("::[rewrite] multi%0Aline")


def render_to_text(report: AuditReport, *, color: bool) -> str:
    buffer = io.StringIO()
    console = Console(
        file=buffer, width=160, force_terminal=color, color_system="standard" if color else None
    )
    render_table(report, RULES_BY_ID, console)
    return buffer.getvalue()


def test_table_groups_findings_by_file_and_ends_with_the_summary() -> None:
    text = render_to_text(sample_report(), color=False)
    assert "\x1b[" not in text
    handler = text.index("pkg/handler.py")
    assert text.index("40:5") > handler
    assert text.index("102:23") > text.index("40:5")
    assert text.index("tests/test handler.py") > text.index("102:23")
    assert "AgentHandler.handle_message" in text
    assert "<module>" in text
    # Message text is not read as rich markup.
    assert "[see docs]" in text
    assert "errors" in text and "syntax error at line 3, column 7" in text
    assert text.rstrip().splitlines()[-1] == (
        "5 files scanned: 1 rewrite, 1 review, 1 keep, 1 error"
    )


def test_table_colors_categories_on_a_terminal() -> None:
    text = render_to_text(sample_report(), color=True)
    assert "\x1b[1;32mrewrite" in text
    assert "\x1b[1;33mreview" in text


def test_table_for_an_empty_report() -> None:
    text = render_to_text(AuditReport(files_scanned=1), color=False)
    assert text.splitlines() == [
        "No legacy sites found.",
        "1 file scanned: 0 rewrite, 0 review, 0 keep, 0 errors",
    ]


@pytest.mark.parametrize(
    ("message", "properties"),
    [
        ("syntax error: line 2, column 7: invalid syntax", "line=2,col=7,"),
        (
            "syntax error: line 12, column 1: unexpected EOF (this looks like Python 2 code)",
            "line=12,col=1,",
        ),
        ("syntax error: line 3, column None: bad", ""),
        ("cannot decode as utf-8 (line 4, byte 0xff): add a cookie", ""),
    ],
)
def test_github_error_annotation_carries_the_syntax_error_position(
    message: str, properties: str
) -> None:
    report = AuditReport(errors=[FileError("pkg/broken.py", message)])
    (line,) = github_annotations(report, RULES_BY_ID).splitlines()
    assert line.startswith(f"::error file=pkg/broken.py,{properties}title=ctxmigrate::")


@pytest.mark.parametrize(
    ("path", "shown"),
    [
        ("pkg/handler.py", "pkg/handler.py"),
        ("tests/test handler.py", "tests/test handler.py"),
        ("pkg/ünï.py", "pkg/ünï.py"),
        ("pkg/we\nird.py", "'pkg/we\\nird.py'"),
        ("pkg/tab\there.py", "'pkg/tab\\there.py'"),
        ("pkg/\udcffbad.py", "'pkg/\\udcffbad.py'"),
    ],
)
def test_display_path_quotes_only_unprintable_names(path: str, shown: str) -> None:
    assert display_path(path) == shown


def test_table_title_quotes_a_path_with_a_newline() -> None:
    odd = replace(REWRITE, path="pkg/we\nird.py")
    text = render_to_text(AuditReport(findings=[odd], files_scanned=1), color=False)
    assert "'pkg/we\\nird.py'" in text.splitlines()[0]
