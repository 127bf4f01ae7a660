"""scripts/ensure-redis: a no-op when the server is there, a clear failure when it cannot help."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "ensure-redis"


def run_script(path_entries: list[Path]) -> subprocess.CompletedProcess[str]:
    bash = shutil.which("bash")
    assert bash is not None
    environment = {**os.environ, "PATH": os.pathsep.join(map(str, path_entries))}
    return subprocess.run(
        [bash, str(SCRIPT)], env=environment, capture_output=True, text=True, timeout=60
    )


def test_does_nothing_when_redis_server_is_on_path(tmp_path: Path) -> None:
    # A stand-in binary on an otherwise empty PATH: apt-get is unreachable, so
    # success proves the script installed nothing.
    fake = tmp_path / "redis-server"
    fake.write_text("#!/bin/sh\nexit 0\n")
    fake.chmod(0o755)
    completed = run_script([tmp_path])
    assert completed.returncode == 0, completed.stderr
    assert completed.stderr == ""


def test_fails_clearly_without_redis_server_and_without_apt_get(tmp_path: Path) -> None:
    id_binary = shutil.which("id")
    assert id_binary is not None
    (tmp_path / "id").symlink_to(id_binary)
    completed = run_script([tmp_path])
    assert completed.returncode == 1
    assert "redis-server not on PATH and apt-get is unavailable" in completed.stderr
