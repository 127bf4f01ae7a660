"""benchmarks/bench_deployment.py runs (--quick) against a test server, so it cannot rot."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.redis.conftest import RedisServer

REPOSITORY = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.redis, pytest.mark.slow]


def test_quick_benchmark_prints_every_figure_and_the_round_trips(
    redis_server: RedisServer,
) -> None:
    completed = subprocess.run(
        [
            sys.executable,
            str(REPOSITORY / "benchmarks" / "bench_deployment.py"),
            "--quick",
            "--url",
            redis_server.url,
        ],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    rows = re.findall(
        r"^  (.+?)\s+([\d,]+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)$",
        completed.stdout,
        flags=re.MULTILINE,
    )
    assert [label for label, *_ in rows] == [
        "legacy, persistent connection",
        "conversation(), persistent connection",
        "legacy, new connection per message",
        "conversation(), new connection per message",
    ] * 2, completed.stdout  # agent delays 0 and 50 ms
    for label, rate, p50, p99, ratio in rows:
        assert float(rate.replace(",", "")) > 0 and 0 < float(p50) <= float(p99), label
        assert float(ratio) > 0
    assert [ratio for label, *_, ratio in rows if label.startswith("legacy")] == ["1.000"] * 4
    # The legacy handler never talks to Redis; conversation() makes at most two
    # round trips per message (acquire+load, save+release), counted by the server.
    top_level = dict(
        re.findall(r"^  (\S+)\s+top-level \(MONITOR\): ([\d.]+)", completed.stdout, re.MULTILINE)
    )
    assert top_level["legacy"] == "0.00", completed.stdout
    assert 0 < float(top_level["conversation()"]) <= 2.0, completed.stdout
