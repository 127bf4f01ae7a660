"""The CI recipes of docs/ci.md run for real: the pre-commit hook and the workflow's commands."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from tests.cli.conftest import LegacyTree

REPOSITORY = Path(__file__).resolve().parents[2]
NEW_SITE = (
    "\n\ndef handle_other(user_id, thread_id):\n"
    "    return create_user_execution_context(user_id=user_id, thread_id=thread_id)\n"
)


def workflow() -> dict[str, Any]:
    text = (REPOSITORY / "docs" / "ci.md").read_text()
    block = re.search(r"```yaml\n(# \.github/workflows/.*?)```", text, re.DOTALL)
    assert block is not None
    document: dict[str, Any] = yaml.safe_load(block[1])
    return document


def ctxmigrate(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ctxmigrate", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "NO_COLOR": "1"},
    )


def test_pre_commit_hook_with_a_configured_baseline_fails_only_on_new_sites(
    legacy_tree: LegacyTree,
) -> None:
    hooks = yaml.safe_load((REPOSITORY / ".pre-commit-hooks.yaml").read_text())
    entry = next(hook["entry"] for hook in hooks if hook["id"] == "ctxmigrate-audit-new")
    _, *args = shlex.split(entry)
    root = legacy_tree.root
    # Only staged files are scanned, so the legacy factory is configured by name.
    (root / "pyproject.toml").write_text(
        "[tool.ctxmigrate]\n"
        'baseline = "ctxmigrate-baseline.json"\n'
        'factories = ["pkg.deps.create_user_execution_context"]\n'
    )
    assert (
        ctxmigrate(["audit", "--write-baseline", "ctxmigrate-baseline.json"], root).returncode == 0
    )
    # pre-commit passes the staged files.
    staged = ["pkg/handler.py"]
    assert ctxmigrate([*args, *staged], root).returncode == 0
    with legacy_tree.handler.open("a") as handle:
        handle.write(NEW_SITE)
    failed = ctxmigrate([*args, *staged], root)
    assert failed.returncode == 1
    assert "handle_other" in failed.stdout
    assert "3 known findings hidden by baseline ctxmigrate-baseline.json; 1 new" in failed.stdout


def test_workflow_commands_gate_on_new_sites_and_write_the_report(legacy_tree: LegacyTree) -> None:
    steps = workflow()["jobs"]["migration"]["steps"]
    commands = [step["run"] for step in steps if step.get("run", "").startswith("ctxmigrate ")]
    assert len(commands) == 2
    root = legacy_tree.root
    assert (
        ctxmigrate(["audit", "--write-baseline", "ctxmigrate-baseline.json"], root).returncode == 0
    )
    legacy_tree.commit_all()
    with legacy_tree.handler.open("a") as handle:
        handle.write(NEW_SITE)
    legacy_tree.commit_all()
    github_vars = {
        "${{ github.server_url }}": "https://github.com",
        "${{ github.repository }}": "org/app",
        "${{ github.sha }}": "0123abc",
    }
    audit, progress = commands
    for name, value in github_vars.items():
        progress = progress.replace(name, value)
    gate = ctxmigrate(shlex.split(audit)[1:], root)
    assert gate.returncode == 1
    assert gate.stdout.count("::warning ") == 1
    assert ctxmigrate(shlex.split(progress)[1:], root).returncode == 0
    html = (root / "ctxmigrate-progress.html").read_text()
    assert 'href="https://github.com/org/app/blob/0123abc/pkg/handler.py#L18"' in html
    assert html.count('class="point"') == 3  # two commits and the work tree
    report = ctxmigrate(
        ["progress", "--baseline", "ctxmigrate-baseline.json", "--format", "json"], root
    )
    assert json.loads(report.stdout)["baseline"]["new"] == 1
