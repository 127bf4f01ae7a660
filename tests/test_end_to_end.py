"""The migration fixes the bug: the legacy app's continuity test fails, apply, it passes.

Everything runs as a user runs it, in subprocesses on a copy of the bundled
app: the app's own pytest, ``python -m ctxmigrate apply`` and ``audit``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from tests.test_legacy_app import CONTINUITY_TEST, LEGACY_APP, continuity_tests, run_app_tests

HANDLER = Path("agent_service/websocket_core/agent_handler.py")


def ctxmigrate(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "NO_COLOR": "1", "PYTHONDONTWRITEBYTECODE": "1"}
    return subprocess.run(
        [sys.executable, "-m", "ctxmigrate", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )


def snapshot(tree: Path) -> dict[str, bytes]:
    """The app's source files (a tool's cache directory is not the app)."""
    return {path.relative_to(tree).as_posix(): path.read_bytes() for path in tree.rglob("*.py")}


def test_apply_makes_the_conversation_continuity_test_pass(tmp_path: Path) -> None:
    app = tmp_path / "legacy_app"
    shutil.copytree(LEGACY_APP, app, ignore=shutil.ignore_patterns("__pycache__", ".*cache"))
    reports = tmp_path / "reports"
    reports.mkdir()

    legacy_run = run_app_tests(app, reports)
    assert legacy_run.failing() == {CONTINUITY_TEST}, legacy_run.output

    legacy_files = snapshot(app)
    dry_run = ctxmigrate(app, "apply", ".")
    assert dry_run.returncode == 1, dry_run.stdout + dry_run.stderr
    assert HANDLER.as_posix() in dry_run.stdout
    assert "+        context = await get_or_create_user_session(" in dry_run.stdout
    assert snapshot(app) == legacy_files, "a dry run must not write"

    written = ctxmigrate(app, "apply", "--write", ".")
    assert written.returncode == 0, written.stdout + written.stderr

    handler = (app / HANDLER).read_text(encoding="utf-8")
    assert "context = await get_or_create_user_session(" in handler
    assert "websocket_context = await session_websocket_context(" in handler
    assert "get_manager_for_context(context, factory=create_websocket_manager)" in handler
    # Sites the audit calls review or keep are exactly as they were.
    assert "scratch = create_user_execution_context(  # ctxmigrate: ignore[CTX001]" in handler
    assert "functools.partial(create_user_execution_context, user_id)" in handler
    assert "thread_id=message.thread_id, db_session=db_session" in handler
    for test_file in (app / "tests").glob("*.py"):
        assert test_file.read_bytes() == legacy_files[f"tests/{test_file.name}"], test_file.name

    migrated_run = run_app_tests(app, reports)
    assert migrated_run.returncode == 0, migrated_run.output
    assert migrated_run.failing() == set(), migrated_run.output
    assert migrated_run.outcomes.keys() == legacy_run.outcomes.keys()
    assert continuity_tests(app) == {CONTINUITY_TEST}

    audit = ctxmigrate(app, "audit", "--format", "json", "--no-cache", "--fail-on", "never", ".")
    assert audit.returncode == 0, audit.stderr
    report = json.loads(audit.stdout)
    assert report["summary"]["rewrite"] == 0
    assert [f for f in report["findings"] if f["category"] == "rewrite"] == []
    assert report["errors"] == []

    migrated_files = snapshot(app)
    second_apply = ctxmigrate(app, "apply", ".")
    assert second_apply.returncode == 0, second_apply.stdout + second_apply.stderr
    second_write = ctxmigrate(app, "apply", "--write", ".")
    assert second_write.returncode == 0, second_write.stdout + second_write.stderr
    assert snapshot(app) == migrated_files, "a second apply changed files"
