"""``ctxmigrate audit`` on the bundled legacy app: the README's main command.

Two layers: the whole JSON report against a reviewed golden file
(``fixtures/legacy_app.audit.json``; regenerate with
``CTXMIGRATE_REGENERATE_GOLDENS=1`` and review the diff), and the findings a
careful human expects, located by source text so they read as the reasons.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from functools import cache
from typing import Any

import pytest

from tests.test_legacy_app import LEGACY_APP, REPOSITORY

GOLDEN = REPOSITORY / "fixtures" / "legacy_app.audit.json"
APP_PATH = "fixtures/legacy_app"
HANDLER = f"{APP_PATH}/agent_service/websocket_core/agent_handler.py"
HISTORY = f"{APP_PATH}/agent_service/websocket_core/history.py"
STATUS = f"{APP_PATH}/agent_service/websocket_core/status.py"
DEPENDENCIES = f"{APP_PATH}/agent_service/dependencies.py"
AGENTS = f"{APP_PATH}/agent_service/agents.py"
APP_TESTS = f"{APP_PATH}/tests"
AUDIT_COMMAND = [sys.executable, "-m", "ctxmigrate", "audit", "--format", "json"]
AUDIT_COMMAND += ["--no-cache", "--fail-on", "never"]


@cache
def audit_report() -> dict[str, Any]:
    completed = subprocess.run(
        [*AUDIT_COMMAND, APP_PATH],
        cwd=REPOSITORY,
        env={**os.environ, "NO_COLOR": "1", "PYTHONDONTWRITEBYTECODE": "1"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    report: dict[str, Any] = json.loads(completed.stdout)
    return report


def line_of(path: str, snippet: str, *, after: str | None = None) -> int:
    """The 1-based line of the one line of ``path`` that contains ``snippet``.

    With ``after``, the first such line below the one line containing ``after``.
    """
    lines = (REPOSITORY / path).read_text(encoding="utf-8").splitlines()
    start = 0 if after is None else line_of(path, after)
    matches = [
        number for number, line in enumerate(lines, start=1) if number > start and snippet in line
    ]
    assert matches and (after or len(matches) == 1), f"{snippet!r} on lines {matches} of {path}"
    return matches[0]


def findings_at(path: str, line: int) -> list[tuple[str, str]]:
    """(rule, category) of every finding that starts on ``path:line``."""
    return [
        (finding["rule"], finding["category"])
        for finding in audit_report()["findings"]
        if finding["path"] == path and finding["line"] == line
    ]


def finding_at(path: str, line: int, rule: str) -> dict[str, Any]:
    matches: list[dict[str, Any]] = [
        f
        for f in audit_report()["findings"]
        if f["path"] == path and f["line"] == line and f["rule"] == rule
    ]
    assert len(matches) == 1, f"{rule} findings on {path}:{line}: {matches}"
    return matches[0]


def test_report_matches_the_reviewed_golden_file() -> None:
    rendered = json.dumps(audit_report(), indent=2, sort_keys=True) + "\n"
    if os.environ.get("CTXMIGRATE_REGENERATE_GOLDENS") == "1":
        GOLDEN.write_text(rendered, encoding="utf-8")
    assert rendered == GOLDEN.read_text(encoding="utf-8")


def test_every_category_and_every_rule_shows() -> None:
    findings = audit_report()["findings"]

    assert {f["category"] for f in findings} == {"rewrite", "review", "keep"}
    assert {f["rule"] for f in findings} == {
        "CTX001",
        "CTX002",
        "CTX003",
        "CTX101",
        "CTX102",
        "CTX103",
        "CTX104",
    }
    assert audit_report()["errors"] == []
    python_files = [p for p in LEGACY_APP.rglob("*.py") if "__pycache__" not in p.parts]
    assert audit_report()["summary"]["files_scanned"] == len(python_files)


@pytest.mark.parametrize(
    ("path", "snippet", "rule", "function"),
    [
        pytest.param(
            HANDLER,
            "context = create_user_execution_context(",
            "CTX001",
            "AgentMessageHandler.handle_message",
            id="keyword-arguments",
        ),
        pytest.param(
            HANDLER,
            "create_user_execution_context(user_id, thread_id, run_id)",
            "CTX001",
            "AgentMessageHandler.handle_start_agent",
            id="positional-arguments",
        ),
        pytest.param(
            HANDLER,
            "websocket_context = WebSocketContext.create_for_user(",
            "CTX002",
            "AgentMessageHandler.handle_start_agent",
            id="websocket-context",
        ),
        pytest.param(
            HANDLER,
            "        ws_manager = create_websocket_manager(context)",
            "CTX003",
            "AgentMessageHandler.handle_message",
            id="websocket-manager",
        ),
        pytest.param(
            HISTORY,
            "context = make_ctx(",
            "CTX001",
            "load_history",
            id="re-export-under-another-name",
        ),
    ],
)
def test_async_handler_sites_are_rewritten(
    path: str, snippet: str, rule: str, function: str
) -> None:
    definition = f"def {function.rpartition('.')[2]}("
    finding = finding_at(path, line_of(path, snippet, after=definition), rule)

    assert finding["category"] == "rewrite"
    assert finding["function"] == function
    assert finding["fix"]


@pytest.mark.parametrize(
    ("path", "snippet", "reason"),
    [
        pytest.param(
            HANDLER,
            "user_id=user_id, thread_id=message.thread_id, db_session=db_session",
            "db_session",
            id="per-request-db-session",
        ),
        pytest.param(
            HANDLER,
            "functools.partial(create_user_execution_context, user_id)",
            "partial",
            id="functools-partial",
        ),
        pytest.param(
            STATUS,
            "context = dependencies.create_user_execution_context(",
            "sync",
            id="sync-function-module-attribute",
        ),
    ],
)
def test_sites_a_human_must_decide_are_review_with_the_reason(
    path: str, snippet: str, reason: str
) -> None:
    line = line_of(path, snippet)
    # A multi-line call is reported where it starts: at most one line above the snippet.
    [finding] = [
        f
        for f in audit_report()["findings"]
        if f["path"] == path and f["rule"] == "CTX001" and line - 1 <= f["line"] <= line
    ]

    assert finding["category"] == "review"
    assert reason in finding["message"]


def test_the_only_websocket_context_class_is_counted_and_kept() -> None:
    path = f"{APP_PATH}/agent_service/websocket_core/context.py"

    assert findings_at(path, line_of(path, "class WebSocketContext:")) == [("CTX104", "keep")]


def test_suppressed_site_is_kept() -> None:
    line = line_of(HANDLER, "# ctxmigrate: ignore[CTX001]")

    assert findings_at(HANDLER, line) == [("CTX001", "keep")]


def test_app_tests_build_fresh_contexts_on_purpose_and_are_kept() -> None:
    in_tests = [f for f in audit_report()["findings"] if f["path"].startswith(APP_TESTS)]
    fixable = {f["rule"] for f in in_tests if f["rule"] in {"CTX001", "CTX002", "CTX003"}}

    assert fixable == {"CTX001", "CTX002", "CTX003"}
    assert all(
        f["category"] == "keep" for f in in_tests if f["rule"] in {"CTX001", "CTX002", "CTX003"}
    )


@pytest.mark.parametrize(
    ("path", "snippet", "rule"),
    [
        pytest.param(HANDLER, 'run_id = f"run_{uuid.uuid4().hex}"', "CTX101", id="fresh-run-id"),
        pytest.param(
            f"{APP_TESTS}/test_handlers.py",
            '"agent_service.websocket_core.agent_handler.create_user_execution_context",',
            "CTX102",
            id="mock-patch-of-the-importing-module",
        ),
        pytest.param(
            f"{APP_TESTS}/test_handlers.py",
            '"agent_service.dependencies.create_user_execution_context",',
            "CTX102",
            id="mock-patch-of-the-defining-module",
        ),
        pytest.param(HISTORY, "from .compat import make_ctx", "CTX103", id="import-via-compat"),
        pytest.param(DEPENDENCIES, "class UserExecutionContext:", "CTX104", id="census-websocket"),
        pytest.param(AGENTS, "class UserExecutionContext:", "CTX104", id="census-agents"),
    ],
)
def test_audit_only_findings(path: str, snippet: str, rule: str) -> None:
    assert rule in {rule for rule, _ in findings_at(path, line_of(path, snippet))}


@pytest.mark.parametrize(
    ("path", "snippet"),
    [
        pytest.param(
            HANDLER,
            "# context = create_user_execution_context(user_id=user_id, thread_id=thread_id)",
            id="commented-out-call",
        ),
        pytest.param(HANDLER, "# ws_manager = create_websocket_manager(context)", id="comment-2"),
        pytest.param(HANDLER, "status requested; create_user_execution_context", id="log-text"),
        pytest.param(
            AGENTS, "async def create_user_execution_context(", id="same-name-method-definition"
        ),
        pytest.param(
            AGENTS, "execution = await self.create_user_execution_context(", id="same-name-method"
        ),
        pytest.param(
            f"{APP_PATH}/agent_service/websocket_core/compat.py",
            "import create_user_execution_context as make_ctx",
            id="re-export-from-the-defining-module",
        ),
    ],
)
def test_look_alikes_produce_nothing(path: str, snippet: str) -> None:
    assert findings_at(path, line_of(path, snippet)) == []
