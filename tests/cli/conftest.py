"""A small legacy source tree in tmp_path, and a CliRunner that runs inside it."""

from __future__ import annotations

import os
import subprocess
import threading
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from ctxmigrate.cli.main import cli

DEPS = b'''"""The legacy factory."""


def create_user_execution_context(
    user_id, thread_id, run_id=None, db_session=None, websocket_connection_id=None
):
    return {"user_id": user_id, "thread_id": thread_id, "run_id": run_id}
'''

HANDLER = b"""from pkg.deps import create_user_execution_context


async def handle_message(user_id, thread_id):
    ctx = create_user_execution_context(user_id=user_id, thread_id=thread_id)
    return ctx


async def handle_reply(user_id, thread_id):
    return create_user_execution_context(user_id=user_id, thread_id=thread_id)


def handle_sync(user_id, thread_id):
    return create_user_execution_context(user_id=user_id, thread_id=thread_id)
"""

# Lines of the sites in HANDLER (1-based).
FIRST_REWRITE_LINE = 5
SECOND_REWRITE_LINE = 10
REVIEW_LINE = 14

CLEAN = b"def create_user_session():\n    return None\n"

GIT_ENV = {
    "GIT_AUTHOR_NAME": "t",
    "GIT_AUTHOR_EMAIL": "t@example.com",
    "GIT_COMMITTER_NAME": "t",
    "GIT_COMMITTER_EMAIL": "t@example.com",
}


@dataclass
class LegacyTree:
    root: Path

    @property
    def handler(self) -> Path:
        return self.root / "pkg" / "handler.py"

    def git(self, *args: str) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(
            ["git", "-C", str(self.root), *args],
            capture_output=True,
            check=True,
            env={**os.environ, **GIT_ENV},
        )

    def commit_all(self) -> None:
        if not (self.root / ".git").exists():
            self.git("init", "-q")
            self.git("config", "core.autocrlf", "false")
        self.git("add", "-A")
        self.git("commit", "-q", "-m", "snapshot")


@pytest.fixture
def legacy_tree(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> LegacyTree:
    root = tmp_path / "app"
    (root / "pkg").mkdir(parents=True)
    (root / "pkg" / "__init__.py").write_bytes(b"")
    (root / "pkg" / "deps.py").write_bytes(DEPS)
    (root / "pkg" / "handler.py").write_bytes(HANDLER)
    monkeypatch.chdir(root)
    # Keep git from finding a checkout that contains the temp directory.
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    for name in ("NO_COLOR", "FORCE_COLOR", "TTY_COMPATIBLE", "COLUMNS"):
        monkeypatch.delenv(name, raising=False)
    return LegacyTree(root)


RunCli = Callable[..., Result]


@pytest.fixture
def run_cli() -> RunCli:
    def invoke(*args: str, input: str | None = None, env: dict[str, str] | None = None) -> Result:
        # Wide enough that rich never wraps a path or a message in the assertions.
        runner = CliRunner(env={"COLUMNS": "250", **(env or {})})
        return runner.invoke(cli, list(args), input=input, catch_exceptions=False)

    return invoke


def read_fifo_in_background(fifo: Path) -> Future[bytes]:
    """Make a FIFO and read it to its end in a thread (a daemon one: if the FIFO
    were replaced by a file, the reader would block forever in ``open``)."""
    os.mkfifo(fifo)
    received: Future[bytes] = Future()

    def read() -> None:
        received.set_result(fifo.read_bytes())

    threading.Thread(target=read, daemon=True).start()
    return received
