"""Apply planning in the library: stale files, typed write refusals, the exit policy."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from ctxmigrate.codemods.config import Config
from ctxmigrate.codemods.engine import RunResult, run
from ctxmigrate.codemods.model import FileError
from ctxmigrate.codemods.rewrite.apply_plan import (
    DirtyFilesError,
    GitUnavailableError,
    ReviewedState,
    WriteRefused,
    check_write_allowed,
    finding_key,
    plan_apply,
)
from ctxmigrate.codemods.rewrite.writing import write_fixed_files

from .support import git

needs_git = pytest.mark.skipif(shutil.which("git") is None, reason="needs the git binary")

DEPS = "def create_user_execution_context(user_id, thread_id):\n    return object()\n"
HANDLER = (
    "from app.deps import create_user_execution_context\n\n\n"
    "async def handle(user_id, thread_id):\n"
    "    return create_user_execution_context(user_id, thread_id)\n"
)


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "__init__.py").write_text("")
    (tmp_path / "app" / "deps.py").write_text(DEPS)
    (tmp_path / "app" / "handler.py").write_text(HANDLER)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def fix_run(root: Path) -> RunResult:
    return run([root], Config(root=root), fix=True, use_cache=False, jobs=1)


def test_a_dry_run_with_changes_fails_and_a_clean_write_succeeds(project: Path) -> None:
    plan = plan_apply(fix_run(project))
    assert [fix.path for fix in plan.changed] == ["app/handler.py"]
    assert plan.stale == set()
    assert plan.failed(None)
    outcomes = write_fixed_files(plan.changed, project)
    assert not plan.failed(outcomes)
    assert not plan_apply(fix_run(project)).failed(None)


def test_a_file_edited_since_the_review_is_stale_and_fails_the_run(project: Path) -> None:
    result = fix_run(project)
    rewrite = [f for f in result.report.findings if f.category == "rewrite"]
    sites = {"app/handler.py": frozenset(finding_key(f) for f in rewrite)}
    reviewed = ReviewedState({"app/handler.py": HANDLER.encode()}, sites)
    assert plan_apply(result, reviewed).stale == set()

    edited = ReviewedState({"app/handler.py": b"# another version\n" + HANDLER.encode()}, sites)
    plan = plan_apply(result, edited)
    assert plan.stale == {"app/handler.py"}
    assert plan.fixes == []
    assert plan.failed(None)
    assert plan.not_applied() == [f for f in result.report.findings if f.path != "app/handler.py"]


def test_sites_that_moved_since_the_review_make_the_file_stale(project: Path) -> None:
    result = fix_run(project)
    moved = ReviewedState(
        {"app/handler.py": HANDLER.encode()},
        {"app/handler.py": frozenset({("app/handler.py", 1, 1, "CTX001")})},
    )
    assert plan_apply(result, moved).stale == {"app/handler.py"}


@needs_git
def test_uncommitted_changes_refuse_the_write_with_a_typed_error(project: Path) -> None:
    git(project, "init", "-q")
    git(project, "add", "-A")
    git(project, "commit", "-q", "-m", "base")
    (project / "app" / "handler.py").write_text(HANDLER + "\n# local edit\n")
    plan = plan_apply(fix_run(project))

    with pytest.raises(DirtyFilesError) as refused:
        check_write_allowed(plan, allow_dirty=False)
    assert refused.value.paths == ["app/handler.py"]
    assert "uncommitted changes" in str(refused.value)
    check_write_allowed(plan, allow_dirty=True)


def test_a_checkout_git_refused_refuses_the_write_with_a_typed_error(project: Path) -> None:
    result = fix_run(project)
    refusal = FileError(".", "git refused this checkout (dubious ownership)")
    result.git_refusals.append(refusal)
    plan = plan_apply(result)

    with pytest.raises(GitUnavailableError) as refused:
        check_write_allowed(plan, allow_dirty=False)
    assert isinstance(refused.value, WriteRefused)
    assert refused.value.refusals == [refusal]
    assert str(refused.value).endswith("\n  .: git refused this checkout (dubious ownership)")
    check_write_allowed(plan, allow_dirty=True)


def test_nothing_to_write_is_never_refused(project: Path) -> None:
    (project / "app" / "handler.py").write_text("VALUE = 1\n")
    result = fix_run(project)
    result.git_refusals.append(FileError(".", "git refused this checkout"))
    check_write_allowed(plan_apply(result), allow_dirty=False)
