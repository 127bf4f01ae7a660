"""``ctxmigrate audit --evidence``: observations from a real run, merged into the audit."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from tests.cli.conftest import FIRST_REWRITE_LINE, REVIEW_LINE, LegacyTree, RunCli
from tests.cli.sarif_checks import assert_valid_sarif

REPO = Path(__file__).resolve().parents[2]

PLUGIN = b'''"""A plugin reaching the legacy factory by a computed name: invisible statically."""

import importlib


def run(user_id, thread_id):
    factory = getattr(importlib.import_module("pkg.deps"), "create_" + "user_execution_context")
    return factory(user_id=user_id, thread_id=thread_id)
'''
PLUGIN_CALL_LINE = 8

DRIVER = """
import asyncio
import sys

sys.path.insert(0, sys.argv[1])
import pkg.deps
from ctxmigrate.shim import observe_legacy, write_observations

pkg.deps.create_user_execution_context = observe_legacy(
    pkg.deps.create_user_execution_context, api="pkg.deps.create_user_execution_context"
)
import pkg.handler
import pkg.plugin

for thread in ("t1", "t1", "t1", "t2"):
    asyncio.run(pkg.handler.handle_message("u", thread))
pkg.handler.handle_sync("u", "t1")
for _ in range(int(sys.argv[3])):
    pkg.plugin.run("u", "t9")
write_observations(sys.argv[2])
"""


def run_in_production(tree: LegacyTree, deploy: Path, out: Path, plugin_calls: int = 2) -> Path:
    """Copy the tree elsewhere (as a deployment would) and run it there, observed."""
    shutil.copytree(tree.root, deploy)
    driver = deploy.parent / "driver.py"
    driver.write_text(textwrap.dedent(DRIVER))
    subprocess.run(
        [sys.executable, str(driver), str(deploy), str(out), str(plugin_calls)],
        check=True,
        cwd=REPO,
    )
    return out


@pytest.fixture
def observed(legacy_tree: LegacyTree, tmp_path: Path) -> Path:
    (legacy_tree.root / "pkg" / "plugin.py").write_bytes(PLUGIN)
    return run_in_production(legacy_tree, tmp_path / "srv" / "app", tmp_path / "obs-1.json")


def audit_json(run_cli: RunCli, *args: str) -> dict[str, Any]:
    result = run_cli("audit", "--format", "json", "--no-cache", *args)
    assert result.exit_code in (0, 1), result.output
    document: dict[str, Any] = json.loads(result.stdout)
    return document


def by_line(document: dict[str, Any], path: str) -> dict[tuple[str, int], dict[str, Any]]:
    return {(f["rule"], f["line"]): f for f in document["findings"] if f["path"] == path}


def test_findings_get_the_calls_seen_at_run_time(observed: Path, run_cli: RunCli) -> None:
    document = audit_json(run_cli, "--evidence", str(observed))
    handler = by_line(document, "pkg/handler.py")
    assert handler[("CTX001", FIRST_REWRITE_LINE)]["evidence"] == {
        "calls": 4,
        "rebuilt": 2,
        "conversations": 2,
    }
    # Static, but never called in this run: null, not zero.
    assert handler[("CTX001", 10)]["evidence"] is None
    # handle_sync rebuilt t1's context once more.
    assert handler[("CTX001", REVIEW_LINE)]["evidence"] == {
        "calls": 1,
        "rebuilt": 1,
        "conversations": 1,
    }
    assert document["evidence"] == {
        "files": 1,
        "processes": 1,
        "call_sites": 3,
        "unmatched_call_sites": 0,
    }
    # The key order of each finding stays the version 1 contract, evidence last.
    assert list(document["findings"][0])[-1] == "evidence"


def test_without_evidence_the_json_is_unchanged(observed: Path, run_cli: RunCli) -> None:
    plain = audit_json(run_cli)
    assert "evidence" not in plain
    assert all("evidence" not in finding for finding in plain["findings"])
    assert not any(finding["rule"] == "CTX105" for finding in plain["findings"])


def test_a_call_site_seen_only_at_run_time_becomes_a_ctx105_review_finding(
    observed: Path, run_cli: RunCli
) -> None:
    document = audit_json(run_cli, "--evidence", str(observed))
    [plugin] = [f for f in document["findings"] if f["path"] == "pkg/plugin.py"]
    assert plugin["rule"] == "CTX105"
    assert plugin["category"] == "review"
    assert (plugin["line"], plugin["column"]) == (PLUGIN_CALL_LINE, 5)
    call_line = "    return factory(user_id=user_id, thread_id=thread_id)"
    assert plugin["end_column"] == len(call_line) + 1
    assert plugin["function"] == "run"
    assert plugin["symbol"] == "pkg.deps.create_user_execution_context"
    assert "called here at run time" in plugin["message"]
    assert plugin["evidence"] == {"calls": 2, "rebuilt": 1, "conversations": 1}
    assert document["summary"]["review"] == 2  # handle_sync and the plugin
    # Ignoring the rule drops it, like any other rule.
    ignored = audit_json(run_cli, "--evidence", str(observed), "--ignore", "runtime-only-site")
    assert not any(f["rule"] == "CTX105" for f in ignored["findings"])


def test_sort_by_evidence_puts_the_busiest_sites_first(observed: Path, run_cli: RunCli) -> None:
    document = audit_json(run_cli, "--evidence", str(observed), "--sort", "evidence")
    order = [(f["path"], f["line"]) for f in document["findings"]]
    assert order == [
        ("pkg/handler.py", FIRST_REWRITE_LINE),
        ("pkg/plugin.py", PLUGIN_CALL_LINE),
        ("pkg/handler.py", REVIEW_LINE),
        ("pkg/handler.py", 10),
    ]


def test_reports_of_several_processes_merge_through_a_glob(
    legacy_tree: LegacyTree, tmp_path: Path, run_cli: RunCli
) -> None:
    (legacy_tree.root / "pkg" / "plugin.py").write_bytes(PLUGIN)
    (tmp_path / "obs").mkdir()
    run_in_production(legacy_tree, tmp_path / "host-a" / "app", tmp_path / "obs" / "a.json", 1)
    run_in_production(legacy_tree, tmp_path / "host-b" / "app", tmp_path / "obs" / "b.json", 3)
    document = audit_json(run_cli, "--evidence", str(tmp_path / "obs" / "*.json"))
    [plugin] = [f for f in document["findings"] if f["rule"] == "CTX105"]
    assert plugin["evidence"] == {"calls": 4, "rebuilt": 2, "conversations": 2}
    assert document["evidence"]["processes"] == 2
    assert document["evidence"]["files"] == 2


def test_table_and_sarif_show_the_evidence(observed: Path, run_cli: RunCli) -> None:
    table = run_cli("audit", "--no-cache", "--evidence", str(observed))
    assert table.exit_code == 1
    assert "4 calls, 2 rebuilt, 2 conversations" in table.stdout
    assert "CTX105 runtime-only-site" in table.stdout
    assert "evidence: 1 file, 1 process, 3 call sites; 3 findings seen at run time" in table.stdout
    flat = run_cli("audit", "--no-cache", "--evidence", str(observed), "--sort", "evidence")
    assert f"pkg/handler.py:{FIRST_REWRITE_LINE}:" in flat.stdout
    assert flat.stdout.index("4 calls") < flat.stdout.index("2 calls")
    sarif = run_cli("audit", "--no-cache", "--format", "sarif", "--evidence", str(observed))
    log = json.loads(sarif.stdout)
    assert_valid_sarif(log)
    results = log["runs"][0]["results"]
    assert [r["properties"]["evidence"] for r in results if r["ruleId"] == "CTX105"] == [
        {"calls": 2, "rebuilt": 1, "conversations": 1}
    ]
    assert "CTX105" in [rule["id"] for rule in log["runs"][0]["tool"]["driver"]["rules"]]


def test_a_path_map_overrides_suffix_matching(
    legacy_tree: LegacyTree, tmp_path: Path, run_cli: RunCli
) -> None:
    (legacy_tree.root / "pkg" / "plugin.py").write_bytes(PLUGIN)
    # Deployed under another package directory name: suffixes match only file names.
    deploy = tmp_path / "srv" / "code"
    observed = run_in_production(legacy_tree, deploy, tmp_path / "obs.json")
    report = json.loads(observed.read_text())
    for site in report["call_sites"]:
        site["path"] = site["path"].replace(f"{deploy}/pkg/", "/opt/release-7/lib/")
    observed.write_text(json.dumps(report))
    unmapped = run_cli("audit", "--format", "json", "--no-cache", "--evidence", str(observed))
    # handler.py / plugin.py: only the file name matches, and only one file has each name.
    assert json.loads(unmapped.stdout)["evidence"]["unmatched_call_sites"] == 0
    (legacy_tree.root / "other").mkdir()
    (legacy_tree.root / "other" / "handler.py").write_text("x = 1\n")
    ambiguous = run_cli("audit", "--format", "json", "--no-cache", "--evidence", str(observed))
    assert json.loads(ambiguous.stdout)["evidence"]["unmatched_call_sites"] == 2
    assert "not among the audited files" in ambiguous.stderr
    mapped = audit_json(
        run_cli, "--evidence", str(observed), "--evidence-path-map", "/opt/release-7/lib=pkg"
    )
    assert mapped["evidence"]["unmatched_call_sites"] == 0
    handler = by_line(mapped, "pkg/handler.py")
    assert handler[("CTX001", FIRST_REWRITE_LINE)]["evidence"]["calls"] == 4


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--evidence", "missing.json"], "--evidence missing.json: no such file"),
        (["--evidence", "nothing-*.json"], "--evidence nothing-*.json: no file matches"),
        (["--sort", "evidence"], "--sort evidence needs --evidence FILE"),
        (["--evidence-path-map", "/app=."], "--evidence-path-map needs --evidence FILE"),
    ],
)
def test_bad_evidence_options_exit_2_naming_the_problem(
    legacy_tree: LegacyTree, run_cli: RunCli, args: list[str], message: str
) -> None:
    result = run_cli("audit", *args)
    assert result.exit_code == 2
    assert message in result.output


def test_a_bad_evidence_file_exits_2_naming_it(legacy_tree: LegacyTree, run_cli: RunCli) -> None:
    (legacy_tree.root / "obs.json").write_text('{"format": "something else"}')
    result = run_cli("audit", "--evidence", "obs.json")
    assert result.exit_code == 2
    assert "obs.json: not a ctxmigrate observations report" in result.output


def test_a_bad_path_map_exits_2(observed: Path, run_cli: RunCli) -> None:
    result = run_cli("audit", "--evidence", str(observed), "--evidence-path-map", "no-equals")
    assert result.exit_code == 2
    assert "expected FROM=TO" in result.output


def test_a_suppression_comment_keeps_a_runtime_only_site(
    legacy_tree: LegacyTree, tmp_path: Path, run_cli: RunCli
) -> None:
    suppressed = PLUGIN.replace(
        b"    return factory(user_id=user_id, thread_id=thread_id)\n",
        b"    return factory(user_id=user_id, thread_id=thread_id)  # ctxmigrate: ignore[CTX105]\n",
    )
    (legacy_tree.root / "pkg" / "plugin.py").write_bytes(suppressed)
    observed = run_in_production(legacy_tree, tmp_path / "srv" / "app", tmp_path / "obs.json")
    document = audit_json(run_cli, "--evidence", str(observed))
    [plugin] = [f for f in document["findings"] if f["rule"] == "CTX105"]
    assert plugin["category"] == "keep"
    assert "suppressed" in plugin["message"]
