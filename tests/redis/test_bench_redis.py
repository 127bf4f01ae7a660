"""benchmarks/bench_redis.py runs (--quick) against the test server, so it cannot rot."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import RedisServer

REPOSITORY = Path(__file__).resolve().parents[2]


@pytest.mark.redis
def test_quick_benchmark_prints_every_figure_as_a_ratio(redis_server: RedisServer) -> None:
    completed = subprocess.run(
        [
            sys.executable,
            str(REPOSITORY / "benchmarks" / "bench_redis.py"),
            "--quick",
            "--url",
            redis_server.url,
            "--processes",
            "2",
            "--concurrency",
            "4",
        ],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    figures = re.findall(
        r"^  (.+?)\s+([\d,]+) calls/s\s+ratio to in-memory\s+([\d.]+)$",
        completed.stdout,
        flags=re.MULTILINE,
    )
    labels = [label for label, _, _ in figures]
    assert (
        labels
        == [
            "in-memory store, 1 process",
            "Redis store, 1 process, 1 caller",
            "Redis store, 1 process, 4 callers",
            "Redis store, 2 processes x 4 callers",
        ]
        * 2
    ), completed.stdout
    assert all(float(ratio) > 0 for _, _, ratio in figures)
    assert "hit (live conversation)" in completed.stdout
    assert "miss (new conversation)" in completed.stdout
