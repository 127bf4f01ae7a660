"""How fast is ``ctxmigrate audit`` on a large monorepo, against its two baselines?

In one run, on the same synthetic tree (``gen_monorepo.py``; generated once,
reused while its manifest matches the parameters):

- ``git grep -l`` for the three legacy names: the floor (a text search that
  answers nothing about what the names refer to); best of 5;
- ``ctxmigrate audit --format json --no-cache`` in a new process: what a user
  or a CI job pays on a cold start; best of 3;
- the same with the cache warm, on the unchanged tree (the last report is
  reused: ``codemods/tree_state.py``); best of 3;
- the same after one file naming a legacy name was edited (a new comment
  each time): the per-file cache answers for every other file; best of 3;
- a plain LibCST visitor with ``QualifiedNameProvider`` over every file, the
  obvious way to write such a tool. It takes minutes on the whole tree, so it
  runs on a fixed seeded sample of files and is extrapolated linearly by
  bytes; the output says so.

It prints the two ratios the performance goal is stated in (audit / git grep,
visitor / audit) and checks the audit's findings against what the generator
planted: a fast wrong answer is not a result. Exit status 1 if they differ.

    python benchmarks/bench_audit.py                # 5,200 files, 1.6M lines
    python benchmarks/bench_audit.py --quick        # a small tree, seconds

A tree like a real one half-way through a migration, where thousands of files
name the context types and few call the factories (the visitor baseline is
skipped there: it would take many minutes and answers nothing new):

    python benchmarks/bench_audit.py --files 25000 --mentions 5000 --no-visitor

With ``--apply`` it also times ``ctxmigrate apply`` (a dry run: the diffs of
every rewrite, nothing written; no cache, and the files it rewrites parsed
whole), best of the same number of runs, as a ratio to the cold audit.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import libcst as cst

# A sibling script: ``python benchmarks/bench_audit.py`` puts benchmarks/ on sys.path.
from gen_monorepo import (
    DEFAULT_FILES,
    DEFAULT_MEAN_LINES,
    FACTORY,
    GENERATOR_VERSION,
    MANAGER_FACTORY,
    WEBSOCKET_CONTEXT,
    generate_monorepo,
    read_manifest,
)
from libcst.metadata import MetadataWrapper, QualifiedNameProvider

LEGACY_NAMES = (FACTORY, WEBSOCKET_CONTEXT, MANAGER_FACTORY)
# Call targets the visitor baseline looks for, by the end of their qualified name.
LEGACY_CALL_SUFFIXES = (
    f".{FACTORY}",
    f".{WEBSOCKET_CONTEXT}.create_for_user",
    f".{MANAGER_FACTORY}",
)


@dataclass(frozen=True)
class Settings:
    out: Path
    files: int
    seed: int
    mean_lines: int
    sample: int
    grep_repeats: int = 5
    audit_repeats: int = 3
    mentions: int = 0
    visitor: bool = True
    apply: bool = False


def best_wall_time(run: Callable[[], object], repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - started)
    return best


def ensure_tree(settings: Settings) -> dict[str, object]:
    wanted = {
        "generator_version": GENERATOR_VERSION,
        "seed": settings.seed,
        "files": settings.files,
        "mean_lines": settings.mean_lines,
        "mentions": settings.mentions,
    }
    manifest = read_manifest(settings.out)
    if manifest is not None and all(manifest.get(key) == value for key, value in wanted.items()):
        return manifest
    print(f"generating {settings.out} ...", flush=True)
    return generate_monorepo(
        settings.out, settings.files, settings.seed, settings.mean_lines, settings.mentions
    )


def git_grep(tree: Path) -> list[str]:
    command = ["git", "grep", "-l"]
    for name in LEGACY_NAMES:
        command += ["-e", name]
    completed = subprocess.run(command, cwd=tree, capture_output=True, text=True, check=True)
    return completed.stdout.split()


def warm_after_an_edit(
    tree: Path, grep_hits: Sequence[str], repeats: int
) -> tuple[float, dict[str, object]]:
    """Best wall time of a warm audit after one file naming a legacy name was
    edited (a comment appended, a new one each time, so that the report of the
    unchanged tree is never reused), and the last report. The file is restored."""
    edited = tree / sorted(name for name in grep_hits if name.endswith(".py"))[0]
    original = edited.read_bytes()
    best = float("inf")
    report: dict[str, object] = {}
    try:
        for attempt in range(repeats):
            edited.write_bytes(original + f"# edited {time.time_ns()} {attempt}\n".encode())
            started = time.perf_counter()
            report = run_audit(tree)
            best = min(best, time.perf_counter() - started)
    finally:
        edited.write_bytes(original)
    return best, report


def compile_bytecode() -> None:
    """Compile ctxmigrate's modules to bytecode, as ``pip install`` does.

    Where ``PYTHONDONTWRITEBYTECODE`` is set (this project's dev machines set
    it) an editable install would otherwise compile every module it imports
    on every run: about 30 ms of a warm audit that no installed copy pays.
    """
    import compileall

    import ctxmigrate

    package = Path(ctxmigrate.__file__).parent
    # compile_dir does not descend into symlinked directories (a checkout's
    # ctxmigrate/cli, codemods and shim are links), so each is named.
    directories = [package, *(path for path in package.iterdir() if path.is_dir())]
    if not all(compileall.compile_dir(directory, quiet=1) for directory in directories):
        raise SystemExit(f"cannot compile {package} to bytecode")


def run_audit(tree: Path, *extra: str) -> dict[str, object]:
    command = [sys.executable, "-m", "ctxmigrate", "audit", "--format", "json"]
    command += ["--fail-on", "never", *extra, "."]
    env = {**os.environ, "NO_COLOR": "1"}
    completed = subprocess.run(
        command, cwd=tree, capture_output=True, text=True, env=env, check=False
    )
    if completed.returncode != 0:
        raise SystemExit(f"audit failed ({completed.returncode}):\n{completed.stderr}")
    report: dict[str, object] = json.loads(completed.stdout)
    return report


def run_apply(tree: Path) -> None:
    """``ctxmigrate apply`` as a dry run (exit 1: there is something to rewrite)."""
    command = [sys.executable, "-m", "ctxmigrate", "apply", "."]
    env = {**os.environ, "NO_COLOR": "1"}
    completed = subprocess.run(
        command, cwd=tree, capture_output=True, text=True, env=env, check=False
    )
    if completed.returncode != 1 or "Nothing to change" in completed.stdout:
        raise SystemExit(f"apply failed ({completed.returncode}):\n{completed.stderr}")


class LegacyCallVisitor(cst.CSTVisitor):
    """The straightforward implementation: qualified names of every call in the module."""

    METADATA_DEPENDENCIES = (QualifiedNameProvider,)

    def __init__(self) -> None:
        self.legacy_calls = 0

    def visit_Call(self, node: cst.Call) -> None:
        for qualified in self.get_metadata(QualifiedNameProvider, node.func, set()):
            if qualified.name.endswith(LEGACY_CALL_SUFFIXES) or qualified.name in LEGACY_NAMES:
                self.legacy_calls += 1
                return


def visitor_baseline(paths: Sequence[Path]) -> tuple[float, int]:
    """Seconds to parse and visit ``paths`` with QualifiedNameProvider; legacy calls seen."""
    started = time.perf_counter()
    legacy_calls = 0
    for path in paths:
        wrapper = MetadataWrapper(cst.parse_module(path.read_bytes()))
        visitor = LegacyCallVisitor()
        wrapper.visit(visitor)
        legacy_calls += visitor.legacy_calls
    return time.perf_counter() - started, legacy_calls


def compare_with_planted(report: dict[str, object], planted: dict[str, int]) -> list[str]:
    """Lines describing every (rule, category) whose count differs from the planted one."""
    findings = report["findings"]
    assert isinstance(findings, list)
    found = Counter(f"{finding['rule']}/{finding['category']}" for finding in findings)
    return [
        f"  {key}: planted {planted.get(key, 0)}, audit found {found.get(key, 0)}"
        for key in sorted(set(found) | set(planted))
        if found.get(key, 0) != planted.get(key, 0)
    ]


def benchmark(settings: Settings) -> int:
    manifest = ensure_tree(settings)
    tree = settings.out
    python_files = sorted(tree.rglob("*.py"))
    total_bytes = sum(path.stat().st_size for path in python_files)

    compile_bytecode()
    grep_hits = git_grep(tree)
    grep_seconds = best_wall_time(lambda: git_grep(tree), settings.grep_repeats)
    cold_seconds = best_wall_time(lambda: run_audit(tree, "--no-cache"), settings.audit_repeats)
    report = run_audit(tree)  # fills the cache for the warm runs
    warm_seconds = best_wall_time(lambda: run_audit(tree), settings.audit_repeats)
    edited_seconds, edited_report = warm_after_an_edit(tree, grep_hits, settings.audit_repeats)
    apply_seconds = (
        best_wall_time(lambda: run_apply(tree), settings.audit_repeats) if settings.apply else 0.0
    )

    sample = sorted(random.Random(settings.seed).sample(python_files, settings.sample))
    sample_bytes = sum(path.stat().st_size for path in sample)
    sample_seconds, _ = visitor_baseline(sample) if settings.visitor else (0.0, 0)
    visitor_seconds = sample_seconds * total_bytes / sample_bytes

    planted = manifest["planted"]
    assert isinstance(planted, dict)
    mismatches = compare_with_planted(report, planted) + [
        f"  after the edit: {line.strip()}" for line in compare_with_planted(edited_report, planted)
    ]
    summary = report["summary"]

    print(
        f"tree: {tree} ({manifest['python_files']} Python files, {manifest['lines']:,} lines, "
        f"{total_bytes / 1e6:.1f} MB; git grep matches {len(grep_hits)} files; "
        f"{manifest.get('mention_files', 0)} files only name the context types)"
    )
    cold_goal = "<= 30x" if settings.mentions else "<= 10x"
    rows = [
        (f"git grep -l (best of {settings.grep_repeats})", f"{grep_seconds:.3f} s"),
        (
            f"ctxmigrate audit, cold, --no-cache (best of {settings.audit_repeats})",
            f"{cold_seconds:.3f} s",
        ),
        (
            f"ctxmigrate audit, warm cache (best of {settings.audit_repeats})",
            f"{warm_seconds:.3f} s",
        ),
        (
            f"ctxmigrate audit, warm, one file edited (best of {settings.audit_repeats})",
            f"{edited_seconds:.3f} s",
        ),
        (
            "ratio audit (cold) / git grep",
            f"{cold_seconds / grep_seconds:.1f}x (goal: {cold_goal})",
        ),
        ("ratio audit (warm) / git grep", f"{warm_seconds / grep_seconds:.1f}x (goal: <= 5x)"),
        ("ratio audit (warm, one file edited) / git grep", f"{edited_seconds / grep_seconds:.1f}x"),
    ]
    if settings.apply:
        rows += [
            (
                f"ctxmigrate apply, dry run (best of {settings.audit_repeats})",
                f"{apply_seconds:.3f} s",
            ),
            ("ratio apply (dry run) / audit (cold)", f"{apply_seconds / cold_seconds:.1f}x"),
        ]
    if settings.visitor:
        rows[4:4] = [
            ("LibCST QualifiedNameProvider visitor, extrapolated", f"{visitor_seconds:.1f} s")
        ]
        rows.append(
            (
                "ratio LibCST visitor / audit (cold)",
                f"{visitor_seconds / cold_seconds:.1f}x (goal: >= 20x)",
            )
        )
    width = max(len(label) for label, _ in rows) + 2
    for label, value in rows:
        print(f"{label + ':':<{width}}{value}")
    if settings.visitor:
        print(
            f"(the visitor ran on {settings.sample} seeded sample files, "
            f"{sample_bytes / 1e6:.2f} MB, in {sample_seconds:.2f} s, extrapolated linearly "
            "by bytes to the whole tree)"
        )
    print(f"audit summary: {json.dumps(summary)}")
    if mismatches:
        print("findings differ from the planted sites:")
        print("\n".join(mismatches))
        return 1
    print("findings match the planted sites: yes")
    return 0


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, help="where the synthetic tree lives (reused)")
    parser.add_argument("--files", type=int, help=f"Python files (default {DEFAULT_FILES})")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--sample", type=int, help="files the LibCST visitor runs on (300)")
    parser.add_argument(
        "--quick", action="store_true", help="a 400-file tree, an 8-file sample: seconds"
    )
    parser.add_argument(
        "--mentions", type=int, default=0, help="modules that only name the context types"
    )
    parser.add_argument("--no-visitor", action="store_true", help="skip the LibCST baseline")
    parser.add_argument("--repeats", type=int, help="audits per measurement (best of; 3)")
    parser.add_argument("--apply", action="store_true", help="also time `ctxmigrate apply`")
    args = parser.parse_args(argv)
    files = args.files or (400 if args.quick else DEFAULT_FILES)
    suffix = f"-m{args.mentions}" if args.mentions else ""
    default_out = Path(tempfile.gettempdir(), f"ctxmigrate-monorepo-{files}-{args.seed}{suffix}")
    settings = Settings(
        out=args.out or default_out,
        files=files,
        seed=args.seed,
        mean_lines=DEFAULT_MEAN_LINES,
        sample=args.sample or (8 if args.quick else 300),
        audit_repeats=args.repeats or (2 if args.quick else 3),
        mentions=args.mentions,
        visitor=not args.no_visitor,
        apply=args.apply,
    )
    raise SystemExit(benchmark(settings))


if __name__ == "__main__":
    main()
