"""docs/example.md, "Production evidence": observe the bundled app, run it, audit with the evidence.

As a user does it, in subprocesses on copies of the bundled app: the legacy
factories get ``@observe_legacy`` (the edit docs/example.md shows), the app runs
in a "deployment" directory (its own test suite drives the real handlers) and
writes its observations at exit, and ``ctxmigrate audit --evidence`` on the
repository copy shows which sites fired. The ``/metrics`` endpoint of the same
walkthrough is served by the real ASGI app and checked by ``promtool``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.test_legacy_app import LEGACY_APP, run_app_tests

DEPENDENCIES = Path("agent_service/dependencies.py")
CONTEXT = Path("agent_service/websocket_core/context.py")
HANDLER = "agent_service/websocket_core/agent_handler.py"

# The edit docs/example.md shows (kept in sync by this test).
OBSERVE_IMPORT = """\
import atexit
import os

from ctxmigrate.shim import observe_legacy, write_observations

if os.environ.get("CTXMIGRATE_OBSERVATIONS"):
    atexit.register(write_observations, os.environ["CTXMIGRATE_OBSERVATIONS"])
"""

METRICS_APP = '''
"""The app behind /metrics (docs/example.md): the agent app plus a Prometheus endpoint."""

from prometheus_client import CollectorRegistry, make_asgi_app

from agent_service.app import AgentServiceApp
from ctxmigrate.shim import UserSessionManager, configure
from ctxmigrate.shim.prometheus import SessionCollector

manager = UserSessionManager()
configure(manager)
registry = CollectorRegistry()
registry.register(SessionCollector(manager))
metrics_endpoint = make_asgi_app(registry)
agent_app = AgentServiceApp()


async def app(scope, receive, send):
    if scope["type"] == "http" and scope["path"] == "/metrics":
        return await metrics_endpoint(scope, receive, send)
    return await agent_app(scope, receive, send)
'''

SCRAPE = """
import asyncio

from agent_service.dependencies import create_user_execution_context
from metrics_app import app

kept = [create_user_execution_context("user", f"thread-{index}") for index in range(3)]


async def scrape():
    sent = []

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message):
        sent.append(message)

    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",
        "scheme": "http", "path": "/metrics", "raw_path": b"/metrics", "query_string": b"",
        "root_path": "", "headers": [], "server": ("test", 80), "client": ("test", 1),
    }
    await app(scope, receive, send)
    assert sent[0]["status"] == 200, sent[0]
    return b"".join(message.get("body", b"") for message in sent[1:]).decode()


print(asyncio.run(scrape()), end="")
"""


def add_observe_decorators(app: Path) -> None:
    dependencies = app / DEPENDENCIES
    text = dependencies.read_text(encoding="utf-8")
    text = text.replace(
        "from uuid import uuid4\n", "from uuid import uuid4\n\n" + OBSERVE_IMPORT, 1
    )
    for name in ("create_user_execution_context", "create_websocket_manager"):
        text = text.replace(f"\ndef {name}(", f"\n@observe_legacy\ndef {name}(", 1)
    dependencies.write_text(text, encoding="utf-8")
    context = app / CONTEXT
    text = context.read_text(encoding="utf-8")
    text = text.replace(
        "    @classmethod\n    def create_for_user(",
        "    @classmethod\n    @observe_legacy\n    def create_for_user(",
        1,
    )
    text = text.replace(
        "from uuid import uuid4\n",
        "from uuid import uuid4\n\nfrom ctxmigrate.shim import observe_legacy\n",
        1,
    )
    context.write_text(text, encoding="utf-8")


def ctxmigrate(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "NO_COLOR": "1", "COLUMNS": "200", "PYTHONDONTWRITEBYTECODE": "1"}
    return subprocess.run(
        [sys.executable, "-m", "ctxmigrate", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )


@pytest.mark.slow
def test_evidence_flows_from_a_run_into_the_audit_table(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repository = tmp_path / "repo" / "legacy_app"
    shutil.copytree(LEGACY_APP, repository, ignore=shutil.ignore_patterns("__pycache__"))
    add_observe_decorators(repository)
    deployed = tmp_path / "srv" / "app"
    shutil.copytree(repository, deployed)
    observations = tmp_path / "observations"
    observations.mkdir()
    reports = tmp_path / "reports"
    reports.mkdir()

    monkeypatch.setenv("CTXMIGRATE_OBSERVATIONS", str(observations / "obs-{pid}.json"))
    run = run_app_tests(deployed, reports)
    monkeypatch.delenv("CTXMIGRATE_OBSERVATIONS")
    # Observing changes nothing: the legacy app still has exactly its one failure.
    assert len(run.failing()) == 1, run.output
    [written] = observations.glob("obs-*.json")
    recorded = json.loads(written.read_text())
    outside = {site["path"] for site in recorded["call_sites"]} - {
        site["path"] for site in recorded["call_sites"] if site["path"].startswith(str(deployed))
    }
    # One test calls the factory through a mock's side_effect: a site inside unittest.mock.
    assert {Path(path).name for path in outside} == {"mock.py"}

    audit = ctxmigrate(
        repository, "audit", "--no-cache", "--fail-on", "never",
        "--evidence", str(observations / "*.json"), ".",
    )  # fmt: skip
    assert audit.returncode == 0, audit.stderr
    table = audit.stdout
    assert "evidence" in table
    assert "CTX105 runtime-only-site" in table
    assert " rebuilt, " in table

    document = json.loads(
        ctxmigrate(
            repository, "audit", "--no-cache", "--fail-on", "never", "--format", "json",
            "--sort", "evidence", "--evidence", str(observations / "*.json"), ".",
        ).stdout
    )  # fmt: skip
    handler = [f for f in document["findings"] if f["path"] == HANDLER]
    chat = [
        f for f in handler if f["rule"] == "CTX001" and f["function"].endswith("handle_message")
    ]
    assert chat and chat[0]["evidence"]["calls"] >= 1
    assert chat[0]["evidence"]["rebuilt"] >= 1  # the continuity test: a conversation rebuilt
    # functools.partial(create_user_execution_context, user_id)(thread_id): only run time sees it.
    runtime_only = [f for f in handler if f["rule"] == "CTX105"]
    assert [f["function"] for f in runtime_only] == ["AgentMessageHandler.handle_compare_threads"]
    assert document["findings"][0]["evidence"] is not None  # sorted: busiest first
    assert document["evidence"]["unmatched_call_sites"] == 1  # the mock.py site

    # The /metrics endpoint of the walkthrough, served by the ASGI app itself.
    (deployed / "metrics_app.py").write_text(METRICS_APP)
    scrape = subprocess.run(
        [sys.executable, "-c", SCRAPE], cwd=deployed, capture_output=True, text=True, check=False
    )
    assert scrape.returncode == 0, scrape.stderr
    exposition = scrape.stdout
    assert (
        'ctxmigrate_legacy_calls_total{api="agent_service.dependencies.'
        'create_user_execution_context"} 3.0'
    ) in exposition
    assert "ctxmigrate_contexts_outside_sessions 3.0" in exposition
    promtool = shutil.which("promtool")
    if promtool is None:
        if os.environ.get("CI") == "true":
            pytest.fail("promtool is not on PATH (scripts/setup-dev installs it)")
        pytest.skip("promtool is not on PATH")
    checked = subprocess.run(
        [promtool, "check", "metrics"], input=exposition, capture_output=True, text=True
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
