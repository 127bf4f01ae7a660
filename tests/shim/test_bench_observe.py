"""The observer benchmark script still runs (a smoke run, no timing assertions)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_observe.py"


def test_benchmark_quick_run_reports_every_figure() -> None:
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick"],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    for figure in ("undecorated factory:", "overhead per call:", "ratio observed / plain:"):
        assert figure in result.stdout
    # Every call of the observed loops was recorded: 2 repeats x 2 rounds x 1,000.
    assert "recorded calls / rebuilt:  4,000 / 3,000" in result.stdout
