"""The benchmark scripts run (``--quick``) so they cannot rot; the generator keeps its word."""

from __future__ import annotations

import ast
import hashlib
import json
import subprocess
import sys
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parents[1]
BENCHMARKS = REPOSITORY / "benchmarks"
LEGACY_NAMES = ("create_user_execution_context", "WebSocketContext", "create_websocket_manager")


def size(files: int, seed: int) -> list[str]:
    return ["--files", str(files), "--seed", str(seed)]


def run_script(script: str, *arguments: str) -> str:
    """Run ``benchmarks/<script>`` in a new interpreter; its stdout, after a clean exit."""
    completed = subprocess.run(
        [sys.executable, str(BENCHMARKS / script), *arguments],
        capture_output=True,
        text=True,
        check=False,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    return completed.stdout


def generate(out: Path, files: int, seed: int, *extra: str) -> dict[str, object]:
    run_script("gen_monorepo.py", "--out", str(out), *size(files, seed), *extra)
    manifest: dict[str, object] = json.loads((out / "bench-manifest.json").read_text())
    return manifest


def tree_digest(tree: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(tree.rglob("*.py")):
        digest.update(path.relative_to(tree).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def test_generator_is_deterministic_and_shaped_like_a_monorepo(tmp_path: Path) -> None:
    first = generate(tmp_path / "first", files=300, seed=3)
    again = generate(tmp_path / "again", files=300, seed=3)
    generate(tmp_path / "other", files=300, seed=4)

    assert tree_digest(tmp_path / "first") == tree_digest(tmp_path / "again")
    assert tree_digest(tmp_path / "first") != tree_digest(tmp_path / "other")
    assert first == again
    python_files = sorted((tmp_path / "first").rglob("*.py"))
    assert len(python_files) == first["python_files"] == 300
    for path in python_files:
        ast.parse(path.read_bytes(), filename=str(path))
    depths = {len(path.relative_to(tmp_path / "first").parts) for path in python_files}
    assert {3, 4, 5} <= depths, "packages of varying depth"
    mentioning = [p for p in python_files if any(n in p.read_text() for n in LEGACY_NAMES)]
    assert 12 <= len(mentioning) <= 40, "a few dozen candidate files at most"
    planted = first["planted"]
    assert isinstance(planted, dict)
    assert {"CTX001/rewrite", "CTX001/review", "CTX001/keep", "CTX102/review"} <= set(planted)


def test_generated_tree_is_a_committed_git_checkout(tmp_path: Path) -> None:
    generate(tmp_path / "tree", files=200, seed=1)

    status = subprocess.run(
        ["git", "status", "--porcelain"],
        cwd=tmp_path / "tree",
        capture_output=True,
        text=True,
        check=True,
    )
    tracked = subprocess.run(
        ["git", "ls-files", "*.py"],
        cwd=tmp_path / "tree",
        capture_output=True,
        text=True,
        check=True,
    )
    assert status.stdout == ""
    assert len(tracked.stdout.split()) == 200


def test_bench_audit_quick_reports_the_ratios_and_a_correct_audit(tmp_path: Path) -> None:
    stdout = run_script("bench_audit.py", "--quick", "--out", str(tmp_path / "t"))

    for label in (
        "ratio audit (cold) / git grep:",
        "ratio audit (warm, one file edited) / git grep:",
        "ratio LibCST visitor / audit (cold):",
        "extrapolated linearly by bytes",
        "findings match the planted sites: yes",
    ):
        assert label in stdout, stdout
    # The file edited for the warm-after-an-edit runs is back as it was.
    status = subprocess.run(
        ["git", "status", "--porcelain", "--", "*.py"],
        cwd=tmp_path / "t",
        capture_output=True,
        text=True,
        check=True,
    )
    assert status.stdout == ""


def test_mentions_name_the_context_types_in_filler_modules_and_plant_nothing(
    tmp_path: Path,
) -> None:
    plain = generate(tmp_path / "plain", files=300, seed=3)
    manifest = generate(tmp_path / "m", 300, 3, "--mentions", "60")

    assert manifest["planted"] == plain["planted"]
    assert manifest["mentions"] == 60
    naming = [
        path
        for path in (tmp_path / "m").rglob("*.py")
        if "isinstance(value, WebSocketContext)" in path.read_text()
    ]
    assert len(naming) == manifest["mention_files"]
    assert 40 <= len(naming) <= 60
    for path in naming:
        ast.parse(path.read_bytes(), filename=str(path))


def test_bench_audit_on_a_tree_of_mentions_finds_the_planted_sites(tmp_path: Path) -> None:
    stdout = run_script(
        "bench_audit.py",
        *("--files", "400", "--mentions", "150", "--no-visitor", "--repeats", "1", "--apply"),
        *("--out", str(tmp_path / "t")),
    )

    assert "files only name the context types" in stdout
    assert "(goal: <= 30x)" in stdout
    assert "ratio apply (dry run) / audit (cold):" in stdout
    assert "findings match the planted sites: yes" in stdout
    assert "LibCST QualifiedNameProvider" not in stdout


def test_bench_progress_quick_reports_the_ratios_and_a_consistent_burndown(
    tmp_path: Path,
) -> None:
    stdout = run_script("bench_progress.py", "--quick", "--out", str(tmp_path / "t"))
    for label in (
        "ratio with / without baseline, warm:",
        "ratio baseline step / audit, warm:",
        "progress --history 5, cold caches:",
        "progress --history 5, history cached",
        "burndown consistent with the migrated commits and the work tree: yes",
    ):
        assert label in stdout, stdout
