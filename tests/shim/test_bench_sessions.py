"""The session benchmark script still runs (a smoke run, no timing assertions)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_sessions.py"


@pytest.mark.slow
def test_benchmark_quick_run_reports_every_figure() -> None:
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick"],
        capture_output=True,
        text=True,
        check=False,
        timeout=240,
    )
    assert result.returncode == 0, result.stderr
    for figure in (
        "ratio legacy / session",
        "ratio bare / session",
        "B/active",
        "ratio end /",
        "overhead per idle session",
    ):
        assert figure in result.stdout
