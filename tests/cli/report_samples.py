"""Real reports for the renderer tests (the engine's contract types, no engine run)."""

from __future__ import annotations

from ctxmigrate.codemods.model import AuditReport, FileError, Finding, Rule

RULES = (
    Rule("CTX001", "reuse-session", "Reuse the conversation's session.", fixable=True),
    Rule("CTX002", "adapt-websocket-context", "Derive the websocket view.", fixable=True),
    Rule("CTX101", "fresh-ids-per-message", "Fresh ids generated per message.", fixable=False),
)
RULES_BY_ID = {rule.id: rule for rule in RULES}

REWRITE = Finding(
    rule="CTX001",
    category="rewrite",
    path="pkg/handler.py",
    line=102,
    column=23,
    end_line=106,
    end_column=14,
    symbol="pkg.dependencies.create_user_execution_context",
    function="AgentHandler.handle_message",
    message="builds a fresh context for every message",
    fix="await get_or_create_user_session(user_id=user_id, thread_id=thread_id)",
)
REVIEW = Finding(
    rule="CTX001",
    category="review",
    path="pkg/handler.py",
    line=40,
    column=5,
    end_line=40,
    end_column=60,
    symbol="pkg.dependencies.create_user_execution_context",
    function=None,
    message="module level: await is impossible [see docs]",
)
KEEP = Finding(
    rule="CTX101",
    category="keep",
    path="tests/test handler.py",
    line=3,
    column=1,
    end_line=3,
    end_column=10,
    symbol="uuid.uuid4",
    function="test_fresh",
    message="test code builds a fresh isolated context on purpose",
)
BROKEN = FileError(path="pkg/broken.py", message="syntax error at line 3, column 7")


def sample_report() -> AuditReport:
    return AuditReport(findings=[REWRITE, KEEP, REVIEW], errors=[BROKEN], files_scanned=5)
