"""The bundled legacy app's own test suite, run as a user runs it: real pytest, real files.

On the legacy code exactly one test fails, the conversation-continuity test:
that failure is the bug ctxmigrate exists to fix. ``test_end_to_end.py`` reuses
these helpers to show the migration makes it pass.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parents[1]
LEGACY_APP = REPOSITORY / "fixtures" / "legacy_app"
CONTINUITY_MARKER = "continuity"
CONTINUITY_TEST = (
    "tests/test_conversation.py::test_second_message_on_a_thread_continues_the_conversation"
)

# JUnit child element of a <testcase> -> outcome; a testcase without one passed.
JUNIT_OUTCOMES = {"failure": "failed", "error": "error", "skipped": "skipped"}


@dataclass(frozen=True)
class AppTestRun:
    returncode: int
    # pytest node id ("tests/test_x.py::test_y") -> "passed" | "failed" | "error" | "skipped"
    outcomes: dict[str, str]
    output: str

    def failing(self) -> set[str]:
        return {node for node, outcome in self.outcomes.items() if outcome != "passed"}


def _app_pytest(app_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    # No bytecode and no cache provider: running the suite must not write into the app.
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    env.pop("PYTEST_ADDOPTS", None)
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args],
        cwd=app_dir,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )


def _node_id(testcase: ElementTree.Element) -> str:
    # JUnit's classname is the dotted module path ("tests.test_conversation").
    module = testcase.attrib["classname"].replace(".", "/")
    return f"{module}.py::{testcase.attrib['name']}"


def run_app_tests(app_dir: Path, report_dir: Path) -> AppTestRun:
    """Run the app's whole suite in a subprocess and read each test's outcome."""
    junit = report_dir / "app-junit.xml"
    completed = _app_pytest(app_dir, f"--junitxml={junit}")
    outcomes: dict[str, str] = {}
    if junit.exists():
        for testcase in ElementTree.parse(junit).getroot().iter("testcase"):
            children = {child.tag for child in testcase}
            outcome = next(
                (outcome for tag, outcome in JUNIT_OUTCOMES.items() if tag in children), "passed"
            )
            outcomes[_node_id(testcase)] = outcome
    return AppTestRun(completed.returncode, outcomes, completed.stdout + completed.stderr)


def continuity_tests(app_dir: Path) -> set[str]:
    """The node ids the app marks as conversation-continuity tests."""
    completed = _app_pytest(app_dir, "--collect-only", "-q", "-m", CONTINUITY_MARKER)
    return {line for line in completed.stdout.splitlines() if "::" in line}


def test_continuity_test_fails_on_the_legacy_code_and_every_other_test_passes(
    tmp_path: Path,
) -> None:
    run = run_app_tests(LEGACY_APP, tmp_path)

    assert run.returncode == 1, run.output
    assert len(run.outcomes) >= 20, run.output
    assert run.failing() == {CONTINUITY_TEST}, run.output
    assert run.outcomes[CONTINUITY_TEST] == "failed"
    assert "each message of the thread got a new context" in run.output


def test_continuity_marker_selects_exactly_the_continuity_test() -> None:
    assert continuity_tests(LEGACY_APP) == {CONTINUITY_TEST}


def test_repository_tooling_leaves_the_app_alone() -> None:
    # The app is audited, not linted or collected: its tests fail on purpose.
    config = tomllib.loads((REPOSITORY / "pyproject.toml").read_text(encoding="utf-8"))["tool"]

    assert config["pytest"]["ini_options"]["testpaths"] == ["tests"]
    assert "fixtures" in config["ruff"]["extend-exclude"]
    assert not any(path.startswith("fixtures") for path in config["mypy"]["files"])
    app_config = tomllib.loads((LEGACY_APP / "pyproject.toml").read_text(encoding="utf-8"))
    assert app_config["tool"]["pytest"]["ini_options"]["testpaths"] == ["tests"]
