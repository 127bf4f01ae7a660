"""scripts/ensure-debian-packages: installs only what is missing, says what it cannot do."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "ensure-debian-packages"


def run_script(path: Path, *pairs: str) -> subprocess.CompletedProcess[str]:
    bash = shutil.which("bash")
    assert bash is not None
    return subprocess.run(
        [bash, str(SCRIPT), *pairs],
        env={**os.environ, "PATH": str(path)},
        capture_output=True,
        text=True,
        timeout=60,
    )


def stand_in(directory: Path, name: str) -> None:
    binary = directory / name
    binary.write_text("#!/bin/sh\nexit 0\n")
    binary.chmod(0o755)


def test_nothing_to_do_when_every_command_is_there(tmp_path: Path) -> None:
    stand_in(tmp_path, "redis-server")
    stand_in(tmp_path, "promtool")
    # apt-get is not on this PATH: success proves nothing was installed.
    completed = run_script(tmp_path, "redis-server=redis-server", "promtool=prometheus")
    assert (completed.returncode, completed.stderr) == (0, "")


def test_names_only_the_missing_commands_and_their_packages(tmp_path: Path) -> None:
    stand_in(tmp_path, "redis-server")
    completed = run_script(
        tmp_path, "redis-server=redis-server", "chromium=chromium,fonts-dejavu-core"
    )
    assert completed.returncode == 1
    assert completed.stderr == (
        "ensure-debian-packages: chromium not on PATH and apt-get is unavailable; "
        "install chromium fonts-dejavu-core with your package manager\n"
    )
