"""A small mutation tester: how many deliberate bugs in a module do the tests catch?

    python scripts/mutation_check.py shim/manager.py -- tests/shim tests/redis/test_old_api_state.py

For every mutation point of the module (a comparison flipped, an ``if``/``while``
condition negated, ``and``/``or`` swapped, ``True``/``False`` flipped, one
statement deleted), the module is rewritten in a scratch copy of the repository
and the given tests run against it (``pytest -x``). A mutant is *killed* when the
tests fail, *survives* when they pass. Docstrings and ``logger`` calls are not
mutated. Prints each survivor (line and mutation) and the score.

Runs in a copy (``--workdir``, default a temporary directory), so the checkout is
never modified.
"""

from __future__ import annotations

import argparse
import ast
import copy
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

_FLIPPED: dict[type[ast.cmpop], type[ast.cmpop]] = {
    ast.Eq: ast.NotEq,
    ast.NotEq: ast.Eq,
    ast.Lt: ast.GtE,
    ast.GtE: ast.Lt,
    ast.Gt: ast.LtE,
    ast.LtE: ast.Gt,
    ast.Is: ast.IsNot,
    ast.IsNot: ast.Is,
    ast.In: ast.NotIn,
    ast.NotIn: ast.In,
}


@dataclass(frozen=True)
class Mutation:
    index: int  # the n-th node in ast.walk order
    kind: str
    line: int


def _is_docstring(node: ast.stmt) -> bool:
    return (
        isinstance(node, ast.Expr)
        and isinstance(node.value, ast.Constant)
        and isinstance(node.value.value, str)
    )


def _is_log_call(node: ast.stmt) -> bool:
    if not isinstance(node, ast.Expr) or not isinstance(node.value, ast.Call):
        return False
    func = node.value.func
    return isinstance(func, ast.Attribute) and ast.unparse(func.value) == "logger"


def mutations(tree: ast.Module) -> Iterator[Mutation]:
    for index, node in enumerate(ast.walk(tree)):
        line = getattr(node, "lineno", 0)
        if isinstance(node, ast.Compare):
            for position, op in enumerate(node.ops):
                if type(op) in _FLIPPED:
                    yield Mutation(index, f"flip-compare-{position}", line)
        elif isinstance(node, ast.If | ast.While | ast.IfExp):
            yield Mutation(index, "negate-condition", line)
        elif isinstance(node, ast.BoolOp):
            yield Mutation(index, "swap-and-or", line)
        elif isinstance(node, ast.Constant) and isinstance(node.value, bool):
            yield Mutation(index, "flip-bool", line)
        if isinstance(node, ast.stmt) and not isinstance(
            node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef | ast.Pass
        ):
            if _is_docstring(node) or _is_log_call(node):
                continue
            if isinstance(node, ast.Import | ast.ImportFrom | ast.AnnAssign):
                continue
            if isinstance(node, ast.Assign) and ast.unparse(node.targets[0]) == "__slots__":
                continue  # an equivalent mutant: behaviour without __slots__ is the same
            yield Mutation(index, "delete-statement", line)


def apply(tree: ast.Module, mutation: Mutation) -> str:
    mutant = copy.deepcopy(tree)
    target = next(node for i, node in enumerate(ast.walk(mutant)) if i == mutation.index)
    if mutation.kind.startswith("flip-compare-"):
        assert isinstance(target, ast.Compare)
        position = int(mutation.kind.rsplit("-", 1)[1])
        target.ops[position] = _FLIPPED[type(target.ops[position])]()
    elif mutation.kind == "negate-condition":
        assert isinstance(target, ast.If | ast.While | ast.IfExp)
        target.test = ast.UnaryOp(ast.Not(), target.test)
    elif mutation.kind == "swap-and-or":
        assert isinstance(target, ast.BoolOp)
        target.op = ast.Or() if isinstance(target.op, ast.And) else ast.And()
    elif mutation.kind == "flip-bool":
        assert isinstance(target, ast.Constant)
        target.value = not target.value
    else:
        _delete(mutant, target)
    return ast.unparse(ast.fix_missing_locations(mutant))


def _delete(tree: ast.Module, target: ast.AST) -> None:
    for node in ast.walk(tree):
        for field in ("body", "orelse", "finalbody", "handlers"):
            body = getattr(node, field, None)
            if isinstance(body, list) and any(item is target for item in body):
                body[:] = [ast.Pass() if item is target else item for item in body]
                return
    raise AssertionError("statement not found")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("module", help="path of the module, relative to the repository")
    parser.add_argument("tests", nargs="+", help="pytest arguments selecting the tests")
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds per mutant")
    parser.add_argument("--limit", type=int, default=None, help="only the first N mutants")
    parser.add_argument(
        "--every", type=int, default=1, help="a systematic sample: every K-th mutant only"
    )
    parser.add_argument("--offset", type=int, default=0, help="where the sample starts")
    args = parser.parse_args()

    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="ctxmut-"))
    scratch = workdir / "repo"
    if scratch.exists():
        shutil.rmtree(scratch)
    shutil.copytree(
        REPO,
        scratch,
        symlinks=True,
        ignore=shutil.ignore_patterns(".venv", ".git", "__pycache__", "*.egg-info", "build"),
    )
    source_path = scratch / args.module
    original = source_path.read_text(encoding="utf-8")
    tree = ast.parse(original)
    points = list(mutations(tree))[args.offset :: args.every][: args.limit]
    env = {**os.environ, "PYTHONPATH": str(scratch), "PYTHONDONTWRITEBYTECODE": "1"}
    command = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider"]
    command += ["-o", f"timeout={int(args.timeout)}", *args.tests]
    baseline = subprocess.run(command, cwd=scratch, env=env, capture_output=True, text=True)
    if baseline.returncode != 0:
        print(baseline.stdout[-3000:], baseline.stderr[-3000:])
        print("the tests fail without any mutation: nothing to measure")
        return 2
    killed = 0
    survivors: list[Mutation] = []
    try:
        for number, mutation in enumerate(points, 1):
            source_path.write_text(apply(tree, mutation), encoding="utf-8")
            try:
                result = subprocess.run(
                    command,
                    cwd=scratch,
                    env=env,
                    capture_output=True,
                    text=True,
                    timeout=args.timeout * 2,
                )
                survived = result.returncode == 0
            except subprocess.TimeoutExpired:
                survived = False  # a hang is caught (pytest-timeout fails it)
            if survived:
                survivors.append(mutation)
                print(f"[{number}/{len(points)}] SURVIVED line {mutation.line}: {mutation.kind}")
            else:
                killed += 1
            sys.stdout.flush()
    finally:
        source_path.write_text(original, encoding="utf-8")
    total = len(points)
    print(f"{args.module}: {killed}/{total} mutants killed ({100 * killed / max(total, 1):.1f}%)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
