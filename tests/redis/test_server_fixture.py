"""Without a redis-server, the Redis tests fail under CI=true and skip elsewhere, saying why."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPOSITORY = Path(__file__).resolve().parents[2]
A_TEST_NEEDING_THE_SERVER = "tests/redis/test_redis_store.py::test_touch_never_creates_a_record"


def run_pytest_without_redis_server(
    tmp_path: Path, ci: str | None
) -> subprocess.CompletedProcess[str]:
    environment = {key: value for key, value in os.environ.items() if key != "CI"}
    # An empty directory as PATH: redis-server cannot be found.
    environment["PATH"] = str(tmp_path)
    if ci is not None:
        environment["CI"] = ci
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "no:cacheprovider",
            "-rs",
            A_TEST_NEEDING_THE_SERVER,
        ],
        cwd=REPOSITORY,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_missing_server_fails_the_run_under_ci(tmp_path: Path) -> None:
    completed = run_pytest_without_redis_server(tmp_path, ci="true")
    assert completed.returncode == pytest.ExitCode.TESTS_FAILED, completed.stdout
    assert "1 error" in completed.stdout
    assert "redis-server is not on PATH (run scripts/ensure-redis)" in completed.stdout


def test_missing_server_skips_with_the_reason_outside_ci(tmp_path: Path) -> None:
    completed = run_pytest_without_redis_server(tmp_path, ci=None)
    assert completed.returncode == pytest.ExitCode.OK, completed.stdout
    assert "1 skipped" in completed.stdout
    assert "redis-server is not on PATH (run scripts/ensure-redis)" in completed.stdout
