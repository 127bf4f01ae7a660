"""A cold ``ctxmigrate audit`` imports only what its output and its files need.

Imports are a third of a cold run on a large tree (rich, libcst and libcst's
codemod framework cost ~0.3 s together), so which ones happen is behaviour.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

# Runs the CLI in a fresh interpreter and prints the modules it loaded.
PROBE = """
import json, sys
from ctxmigrate.cli.main import cli
try:
    cli(sys.argv[1:], standalone_mode=False)
finally:
    print(json.dumps(sorted(sys.modules)), file=sys.stderr)
"""
HEAVY = ("rich", "libcst", "libcst.codemod")
# Modules a warm JSON audit to stdout, without a baseline or evidence, never needs.
UNNEEDED_WHEN_WARM = (
    "ctxmigrate.codemods.baseline",
    "ctxmigrate.codemods.evidence",
    "ctxmigrate.codemods.rewrite.writing",
    "concurrent.futures.process",
    "multiprocessing",
    "pathspec",
    "tempfile",
)

LEGACY_CALLER = (
    "from pkg.deps import create_user_execution_context\n\n"
    "async def handle(user_id, thread_id):\n"
    "    return create_user_execution_context(user_id=user_id, thread_id=thread_id)\n"
)


def loaded_packages(root: Path, *args: str, watched: tuple[str, ...] = HEAVY) -> list[str]:
    completed = subprocess.run(
        [sys.executable, "-c", PROBE, *args],
        cwd=root,
        capture_output=True,
        text=True,
        check=True,
        env={"PATH": "/usr/bin:/bin", "GIT_CEILING_DIRECTORIES": str(root.parent)},
    )
    loaded: list[str] = json.loads(completed.stderr.strip().splitlines()[-1])
    return [module for module in loaded if module in watched]


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    (root / "pkg").mkdir(parents=True)
    (root / "pkg" / "__init__.py").write_text("")
    (root / "pkg" / "util.py").write_text("def helper():\n    return 1\n")
    return root


def test_json_audit_without_candidates_imports_neither_rich_nor_libcst(tree: Path) -> None:
    assert loaded_packages(tree, "audit", "--format", "json", "--no-cache") == []


def test_json_audit_with_candidates_loads_libcst_but_not_its_codemods_nor_rich(
    tree: Path,
) -> None:
    (tree / "pkg" / "deps.py").write_text("def create_user_execution_context(**kw):\n    pass\n")
    (tree / "pkg" / "handler.py").write_text(LEGACY_CALLER)

    # One job: the analysis runs in this process (see the next test for more).
    loaded = loaded_packages(tree, "audit", "--format", "json", "--fail-on", "never", "--jobs", "1")

    assert loaded == ["libcst"]


def test_with_two_jobs_libcst_is_imported_by_the_analysis_process_not_this_one(
    tree: Path,
) -> None:
    (tree / "pkg" / "deps.py").write_text("def create_user_execution_context(**kw):\n    pass\n")
    (tree / "pkg" / "handler.py").write_text(LEGACY_CALLER)
    audit = ("audit", "--format", "json", "--fail-on", "never", "--no-cache", "--jobs", "2")

    assert loaded_packages(tree, *audit) == []
    completed = subprocess.run(
        [sys.executable, "-m", "ctxmigrate", *audit], cwd=tree, capture_output=True, check=True
    )
    assert [f["rule"] for f in json.loads(completed.stdout)["findings"]] == ["CTX001"]


def test_the_table_output_loads_rich(tree: Path) -> None:
    assert "rich" in loaded_packages(tree, "audit", "--no-cache")


def test_help_lists_every_command_without_loading_libcst(tree: Path) -> None:
    # Listing loads each subcommand's module: apply's must not pull in LibCST
    # (0.4 s of a 0.5 s --help before).
    assert loaded_packages(tree, "--help", watched=("libcst",)) == []


def test_a_warm_cache_audit_parses_nothing_and_loads_no_libcst(tree: Path) -> None:
    (tree / "pkg" / "deps.py").write_text("def create_user_execution_context(**kw):\n    pass\n")
    (tree / "pkg" / "handler.py").write_text(LEGACY_CALLER)
    audit = ("audit", "--format", "json", "--fail-on", "never", "--jobs", "1")

    assert loaded_packages(tree, *audit) == ["libcst"]
    # Summaries, site hints and findings all come from the cache.
    assert loaded_packages(tree, *audit) == []


def test_a_warm_json_audit_loads_no_pool_baseline_evidence_writing_or_pathspec(
    tree: Path,
) -> None:
    (tree / "pkg" / "deps.py").write_text("def create_user_execution_context(**kw):\n    pass\n")
    (tree / "pkg" / "handler.py").write_text(LEGACY_CALLER)
    audit = ("audit", "--format", "json", "--fail-on", "never")
    loaded_packages(tree, *audit)

    assert loaded_packages(tree, *audit, watched=UNNEEDED_WHEN_WARM) == []


def test_the_baseline_and_writing_modules_load_when_their_options_are_used(tree: Path) -> None:
    audit = ("audit", "--format", "json", "--fail-on", "never", "--no-cache")
    watched = ("ctxmigrate.codemods.baseline", "ctxmigrate.codemods.rewrite.writing")

    loaded = loaded_packages(
        tree, *audit, "--write-baseline", "baseline.json", "--output", "out.json", watched=watched
    )

    assert loaded == sorted(watched)
    assert (tree / "baseline.json").exists() and (tree / "out.json").exists()


def test_the_entry_point_collects_young_objects_less_often(tree: Path) -> None:
    # The collector's runs were 5-7% of a warm audit with the default thresholds.
    probe = (
        "import gc, os, sys\n"
        "from ctxmigrate.cli.main import main\n"
        "default = gc.get_threshold()\n"
        "raised = lambda: gc.get_threshold()[0] > 100 * default[0]\n"
        "exit_now = os._exit\n"
        "def exiting(status):\n"
        "    print(raised(), file=sys.stderr, flush=True)\n"
        "    exit_now(status)\n"
        "os._exit = exiting\n"
        "sys.argv = ['ctxmigrate', 'list']\n"
        "main()\n"
    )
    listed = subprocess.run(
        [sys.executable, "-c", probe], cwd=tree, capture_output=True, text=True, check=True
    )
    assert listed.stderr.strip().splitlines()[-1] == "True"
