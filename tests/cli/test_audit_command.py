"""``ctxmigrate audit`` end to end on a small real tree: formats, options, exit codes."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from ctxmigrate import __version__
from tests.cli.conftest import (
    CLEAN,
    FIRST_REWRITE_LINE,
    REVIEW_LINE,
    SECOND_REWRITE_LINE,
    LegacyTree,
    RunCli,
    read_fifo_in_background,
)
from tests.cli.sarif_checks import assert_valid_sarif

BROKEN = b"def broken(:\n    create_user_execution_context(user_id=1, thread_id=2)\n"

FINDING_TYPES: dict[str, type | tuple[type, ...]] = {
    "rule": str,
    "category": str,
    "path": str,
    "line": int,
    "column": int,
    "end_line": int,
    "end_column": int,
    "symbol": str,
    "function": (str, type(None)),
    "message": str,
    "fix": (str, type(None)),
}


def audit_json(run_cli: RunCli, *args: str) -> dict[str, Any]:
    result = run_cli("audit", "--format", "json", *args)
    assert result.exit_code in (0, 1), result.output
    document: dict[str, Any] = json.loads(result.stdout)
    return document


def sites(document: dict[str, Any]) -> list[tuple[str, str, str, int]]:
    return [(f["rule"], f["category"], f["path"], f["line"]) for f in document["findings"]]


def test_json_output_follows_the_version_1_contract_key_by_key(
    legacy_tree: LegacyTree, run_cli: RunCli
) -> None:
    document = audit_json(run_cli)
    assert list(document) == ["version", "findings", "errors", "summary"]
    assert document["version"] == 1
    for finding in document["findings"]:
        assert list(finding) == list(FINDING_TYPES)
        for key, expected_type in FINDING_TYPES.items():
            assert isinstance(finding[key], expected_type), key
        assert finding["category"] in ("rewrite", "review", "keep")
        assert "\\" not in finding["path"] and not finding["path"].startswith("/")
        assert finding["line"] >= 1 and finding["column"] >= 1
    keys = [(f["path"], f["line"], f["column"]) for f in document["findings"]]
    assert keys == sorted(keys)
    assert document["errors"] == []
    assert list(document["summary"]) == ["files_scanned", "rewrite", "review", "keep"]
    assert document["summary"]["files_scanned"] == 3
    assert document["summary"]["rewrite"] == 2
    assert document["summary"]["review"] == 1
    assert sites(document) == [
        ("CTX001", "rewrite", "pkg/handler.py", FIRST_REWRITE_LINE),
        ("CTX001", "rewrite", "pkg/handler.py", SECOND_REWRITE_LINE),
        ("CTX001", "review", "pkg/handler.py", REVIEW_LINE),
    ]
    first = document["findings"][0]
    assert first["function"] == "handle_message"
    assert first["fix"] is not None and "get_or_create_user_session" in first["fix"]


def test_paths_in_the_report_are_relative_to_the_current_directory(
    legacy_tree: LegacyTree, run_cli: RunCli, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(legacy_tree.root / "pkg")
    document = audit_json(run_cli, ".")
    assert {f["path"] for f in document["findings"]} == {"handler.py"}


def test_table_is_plain_without_a_terminal_and_ends_with_the_summary(
    legacy_tree: LegacyTree, run_cli: RunCli
) -> None:
    result = run_cli("audit")
    assert result.exit_code == 1
    assert "\x1b[" not in result.output
    assert "pkg/handler.py" in result.stdout
    assert f"{FIRST_REWRITE_LINE}:" in result.stdout
    assert "CTX001 reuse-session" in result.stdout
    assert result.stdout.rstrip().splitlines()[-1] == (
        "3 files scanned: 2 rewrite, 1 review, 0 keep, 0 errors"
    )


def test_table_is_colored_when_forced_and_no_color_wins(
    legacy_tree: LegacyTree, run_cli: RunCli
) -> None:
    colored = run_cli("audit", env={"FORCE_COLOR": "1"})
    assert "\x1b[1;32mrewrite" in colored.stdout
    plain = run_cli("audit", env={"FORCE_COLOR": "1", "NO_COLOR": "1"})
    assert "\x1b[1;32m" not in plain.stdout and "\x1b[32m" not in plain.stdout
    assert "rewrite" in plain.stdout


def test_sarif_output_is_valid_and_carries_fixes(legacy_tree: LegacyTree, run_cli: RunCli) -> None:
    result = run_cli("audit", "--format", "sarif")
    assert result.exit_code == 1
    log = json.loads(result.stdout)
    assert_valid_sarif(log)
    results = log["runs"][0]["results"]
    assert [(r["ruleId"], r["level"]) for r in results] == [
        ("CTX001", "warning"),
        ("CTX001", "warning"),
        ("CTX001", "warning"),
    ]
    assert ["fixes" in r for r in results] == [True, True, False]
    assert log["runs"][0]["tool"]["driver"]["version"] == __version__


def test_github_annotations(legacy_tree: LegacyTree, run_cli: RunCli) -> None:
    result = run_cli("audit", "--format", "github")
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    assert len(lines) == 3
    assert lines[0].startswith(
        f"::warning file=pkg/handler.py,line={FIRST_REWRITE_LINE},col=11,endLine="
    )
    assert ",title=CTX001 reuse-session::[rewrite] " in lines[0]


def test_output_file_gets_the_report_and_stdout_stays_empty(
    legacy_tree: LegacyTree, run_cli: RunCli
) -> None:
    result = run_cli("audit", "--format", "json", "--output", "report.json")
    assert result.exit_code == 1
    assert result.stdout == ""
    assert sites(json.loads((legacy_tree.root / "report.json").read_text()))[0][:2] == (
        "CTX001",
        "rewrite",
    )


def test_table_output_file_has_no_color(legacy_tree: LegacyTree, run_cli: RunCli) -> None:
    result = run_cli("audit", "-o", "report.txt", env={"FORCE_COLOR": "1"})
    assert result.exit_code == 1
    text = (legacy_tree.root / "report.txt").read_text()
    assert "\x1b[" not in text
    assert "2 rewrite" in text


def test_output_into_a_missing_directory_is_a_usage_error(
    legacy_tree: LegacyTree, run_cli: RunCli
) -> None:
    result = run_cli("audit", "--output", "missing/report.json")
    assert result.exit_code == 2
    assert "missing/report.json" in result.stderr


@pytest.mark.parametrize(("fail_on", "exit_code"), [("rewrite", 1), ("review", 1), ("never", 0)])
def test_fail_on_with_rewrite_findings(
    legacy_tree: LegacyTree, run_cli: RunCli, fail_on: str, exit_code: int
) -> None:
    assert run_cli("audit", "--fail-on", fail_on).exit_code == exit_code


@pytest.mark.parametrize(("fail_on", "exit_code"), [("rewrite", 0), ("review", 1), ("never", 0)])
def test_fail_on_with_review_findings_only(
    legacy_tree: LegacyTree, run_cli: RunCli, fail_on: str, exit_code: int
) -> None:
    # Only the sync site: legacy but not rewritable.
    legacy_tree.handler.write_bytes(
        b"from pkg.deps import create_user_execution_context\n\n\n"
        b"def handle_sync(user_id, thread_id):\n"
        b"    return create_user_execution_context(user_id=user_id, thread_id=thread_id)\n"
    )
    assert run_cli("audit", "--fail-on", fail_on).exit_code == exit_code


def test_default_threshold_is_review(legacy_tree: LegacyTree, run_cli: RunCli) -> None:
    legacy_tree.handler.write_bytes(
        b"from pkg.deps import create_user_execution_context\n\n\n"
        b"def handle_sync(user_id, thread_id):\n"
        b"    return create_user_execution_context(user_id=user_id, thread_id=thread_id)\n"
    )
    assert run_cli("audit").exit_code == 1


def test_a_clean_tree_exits_0(
    tmp_path: Path, run_cli: RunCli, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "clean.py").write_bytes(CLEAN)
    monkeypatch.chdir(tmp_path)
    result = run_cli("audit")
    assert result.exit_code == 0
    assert "No legacy sites found." in result.stdout


def test_a_file_that_cannot_be_parsed_is_reported_and_the_rest_audited(
    legacy_tree: LegacyTree, run_cli: RunCli
) -> None:
    # Only files that mention a legacy name are parsed (the engine's pre-filter).
    (legacy_tree.root / "pkg" / "broken.py").write_bytes(BROKEN)
    document = audit_json(run_cli)
    assert [error["path"] for error in document["errors"]] == ["pkg/broken.py"]
    assert document["summary"]["rewrite"] == 2
    table = run_cli("audit", "--fail-on", "never")
    assert table.exit_code == 0
    assert "errors" in table.stdout and "pkg/broken.py" in table.stdout
    github = run_cli("audit", "--format", "github")
    # The syntax error's position becomes the annotation's line and col.
    expected = "::error file=pkg/broken.py,line=1,col=12,title=ctxmigrate::syntax error: line 1"
    assert expected in github.stdout
    sarif = json.loads(run_cli("audit", "--format", "sarif").stdout)
    notifications = sarif["runs"][0]["invocations"][0]["toolExecutionNotifications"]
    assert len(notifications) == 1


def test_file_errors_fail_the_run_unless_never(legacy_tree: LegacyTree, run_cli: RunCli) -> None:
    legacy_tree.handler.unlink()
    (legacy_tree.root / "pkg" / "broken.py").write_bytes(BROKEN)
    assert run_cli("audit", "--fail-on", "rewrite").exit_code == 1
    assert run_cli("audit", "--fail-on", "never").exit_code == 0


def test_a_nonexistent_path_is_a_usage_error_naming_it(
    legacy_tree: LegacyTree, run_cli: RunCli
) -> None:
    result = run_cli("audit", "no/such/dir")
    assert result.exit_code == 2
    assert "no/such/dir" in result.stderr


def test_a_bad_config_is_exit_2_naming_the_key(legacy_tree: LegacyTree, run_cli: RunCli) -> None:
    (legacy_tree.root / "pyproject.toml").write_text('[tool.ctxmigrate]\nfactorys = ["a.b"]\n')
    result = run_cli("audit")
    assert result.exit_code == 2
    assert "factorys" in result.stderr
    assert "Traceback" not in result.output


def test_an_explicit_config_file_is_used(legacy_tree: LegacyTree, run_cli: RunCli) -> None:
    config = legacy_tree.root / "ctxmigrate.yaml"
    config.write_text("ignore: [reuse-session]\n")
    document = audit_json(run_cli, "--config", str(config))
    assert [f for f in document["findings"] if f["rule"] == "CTX001"] == []


def test_select_and_ignore_by_id_or_name(legacy_tree: LegacyTree, run_cli: RunCli) -> None:
    assert audit_json(run_cli, "--select", "adapt-websocket-context")["findings"] == []
    assert audit_json(run_cli, "--ignore", "CTX001")["findings"] == []
    assert len(audit_json(run_cli, "--select", "CTX002,reuse-session")["findings"]) == 3


def test_an_unknown_rule_is_a_usage_error(legacy_tree: LegacyTree, run_cli: RunCli) -> None:
    result = run_cli("audit", "--select", "CTX999")
    assert result.exit_code == 2
    assert "unknown rule 'CTX999'" in result.stderr


def test_jobs_and_no_cache_give_the_same_report(legacy_tree: LegacyTree, run_cli: RunCli) -> None:
    assert audit_json(run_cli, "--jobs", "2", "--no-cache") == audit_json(run_cli)
    assert run_cli("audit", "--jobs", "0").exit_code == 2


def test_list_shows_every_rule(run_cli: RunCli) -> None:
    result = run_cli("list")
    assert result.exit_code == 0
    rows = {line.split()[0]: line.split() for line in result.stdout.splitlines() if line.strip()}
    assert rows["CTX001"][1:3] == ["reuse-session", "yes"]
    assert rows["CTX002"][1:3] == ["adapt-websocket-context", "yes"]
    assert rows["CTX003"][1:3] == ["reuse-websocket-manager", "yes"]
    assert rows["CTX101"][1:3] == ["fresh-ids-per-message", "no"]
    assert {"CTX102", "CTX103", "CTX104"} <= set(rows)
    # Piped: plain text without padding at the line ends.
    assert all(line == line.rstrip() for line in result.stdout.splitlines())


def test_python_dash_m_prints_the_version() -> None:
    completed = subprocess.run(
        [sys.executable, "-m", "ctxmigrate", "--version"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert completed.returncode == 0
    assert completed.stdout.strip() == f"ctxmigrate, version {__version__}"


def test_python_dash_m_maps_usage_errors_to_exit_2(tmp_path: Path) -> None:
    completed = subprocess.run(
        [sys.executable, "-m", "ctxmigrate", "audit", str(tmp_path / "missing")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert completed.returncode == 2
    assert "missing" in completed.stderr


def test_the_entry_point_flushes_its_report_and_keeps_the_exit_status(tmp_path: Path) -> None:
    # main() ends with os._exit: the buffered report must be written first.
    (tmp_path / "deps.py").write_text("def create_user_execution_context(**kw):\n    pass\n")
    (tmp_path / "handler.py").write_text(
        "from deps import create_user_execution_context\n\n"
        "async def handle():\n    return create_user_execution_context(user_id='u')\n"
    )
    buffered = {name: value for name, value in os.environ.items() if name != "PYTHONUNBUFFERED"}
    completed = subprocess.run(
        [sys.executable, "-m", "ctxmigrate", "audit", "--format", "json", "--no-cache"],
        cwd=tmp_path,
        env=buffered,
        capture_output=True,
        text=True,
        check=False,
    )
    assert completed.returncode == 1  # a rewrite finding fails the run by default
    assert [finding["rule"] for finding in json.loads(completed.stdout)["findings"]] == ["CTX001"]
    assert completed.stderr == ""


def test_progress_bar_only_when_stderr_is_a_terminal(
    legacy_tree: LegacyTree, run_cli: RunCli
) -> None:
    quiet = run_cli("audit", "--format", "json")
    assert quiet.stderr == ""
    shown = run_cli("audit", "--format", "json", env={"FORCE_COLOR": "1"})
    assert "auditing" in shown.stderr
    # The report on stdout is untouched by the bar.
    assert json.loads(shown.stdout) == json.loads(quiet.stdout)


def test_output_dash_is_stdout(legacy_tree: LegacyTree, run_cli: RunCli) -> None:
    for output_format in ("json", "table"):
        result = run_cli("audit", "--format", output_format, "-o", "-")
        assert result.exit_code == 1
        assert result.stdout == run_cli("audit", "--format", output_format).stdout
        assert not (legacy_tree.root / "-").exists()
    assert json.loads(run_cli("audit", "--format", "json", "--output", "-").stdout)["version"] == 1


def test_output_to_a_fifo_writes_into_the_pipe_and_keeps_it(
    legacy_tree: LegacyTree, run_cli: RunCli, tmp_path: Path
) -> None:
    fifo = tmp_path / "report.fifo"
    received = read_fifo_in_background(fifo)
    result = run_cli("audit", "--format", "json", "-o", str(fifo))
    assert result.exit_code == 1, result.output
    assert json.loads(received.result(timeout=10))["summary"]["rewrite"] == 2
    assert stat.S_ISFIFO(fifo.stat().st_mode)


def test_plain_tables_have_no_trailing_spaces(
    legacy_tree: LegacyTree, run_cli: RunCli, tmp_path: Path
) -> None:
    report = tmp_path / "report.txt"
    assert run_cli("audit", "-o", str(report)).exit_code == 1
    to_file = report.read_text()
    to_pipe = run_cli("audit", env={"COLUMNS": "160"}).stdout
    for text in (to_file, to_pipe):
        assert "CTX001 reuse-session" in text
        assert [line for line in text.splitlines() if line != line.rstrip()] == []
        assert text.endswith("0 errors\n")
    assert to_file == to_pipe
