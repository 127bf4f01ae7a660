"""A whole run's report is reused only while git says nothing the run reads has changed."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from ctxmigrate.codemods import engine
from ctxmigrate.codemods.analysis.prefilter import TextPrefilter
from ctxmigrate.codemods.cache import AnalysisCache
from ctxmigrate.codemods.config import Config
from ctxmigrate.codemods.engine import run
from ctxmigrate.codemods.git import GitGrep
from ctxmigrate.codemods.model import AuditReport, FileError, Finding
from ctxmigrate.codemods.tree_state import TreeState

from .support import git

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="needs the git binary")

DEPS = "def create_user_execution_context(user_id, thread_id):\n    return 1\n"
CALLER = (
    "from pkg.deps import create_user_execution_context\n\n"
    "async def handle(user_id, thread_id):\n"
    "    return create_user_execution_context(user_id=user_id, thread_id=thread_id)\n"
)
SECOND_CALL = (
    "\n\nasync def again(user_id, thread_id):\n"
    "    return create_user_execution_context(user_id=user_id, thread_id=thread_id)\n"
)


@pytest.fixture(autouse=True)
def no_enclosing_checkout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A tree under tmp_path is a checkout only when a test runs ``git init``.
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    (root / "pkg").mkdir(parents=True)
    (root / "pkg" / "__init__.py").write_text("")
    (root / "pkg" / "deps.py").write_text(DEPS)
    (root / "pkg" / "handler.py").write_text(CALLER)
    (root / "README.md").write_text("docs\n")
    (root / ".gitignore").write_text("generated/\n")
    git(root, "init", "-q")
    git(root, "add", ".")
    git(root, "commit", "-qm", "start")
    return root


def key(*paths: Path) -> list[bytes] | None:
    return TreeState(list(paths)).key()


# --- the key -------------------------------------------------------------


def test_the_key_is_stable_while_nothing_changes(repo: Path) -> None:
    first = key(repo)
    os.utime(repo / "pkg" / "handler.py")  # touched, same bytes

    assert first is not None
    assert key(repo) == first


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(
            lambda root: (root / "pkg" / "handler.py").write_text(CALLER + "# x\n"), id="edit"
        ),
        pytest.param(lambda root: (root / "pkg" / "new.py").write_text("x = 1\n"), id="untracked"),
        pytest.param(lambda root: (root / "pkg" / "deps.py").unlink(), id="deleted"),
        pytest.param(lambda root: git(root, "rm", "-q", "--cached", "pkg/deps.py"), id="unstaged"),
        pytest.param(
            lambda root: git(root, "commit", "-q", "--allow-empty", "-m", "next"), id="new-commit"
        ),
    ],
)
def test_every_change_git_sees_in_a_py_file_changes_the_key(repo: Path, change: object) -> None:
    before = key(repo)

    change(repo)  # type: ignore[operator]

    after = key(repo)
    assert before is not None and after is not None
    assert after != before


def test_the_branch_name_and_its_upstream_are_not_part_of_the_key(
    repo: Path, tmp_path: Path
) -> None:
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(repo), str(clone)], check=True, capture_output=True)
    before = key(clone)
    git(repo, "commit", "-q", "--allow-empty", "-m", "upstream moves")
    git(clone, "fetch", "-q")
    git(clone, "checkout", "-qb", "other")

    assert before is not None
    assert key(clone) == before


def test_a_second_edit_to_a_modified_file_changes_the_key(repo: Path) -> None:
    """Its status line stays ``.M``: the bytes are what tell the edits apart."""
    (repo / "pkg" / "handler.py").write_text(CALLER + "# one\n")
    once = key(repo)

    (repo / "pkg" / "handler.py").write_text(CALLER + "# two\n")

    assert once is not None and key(repo) not in (None, once)


def test_a_file_name_with_spaces_is_read_whole(repo: Path) -> None:
    (repo / "pkg" / "my module.py").write_text("x = 1\n")
    once = key(repo)

    (repo / "pkg" / "my module.py").write_text("x = 2\n")

    assert once is not None and key(repo) not in (None, once)


def test_an_unmerged_file_means_no_key(repo: Path) -> None:
    git(repo, "checkout", "-qb", "other")
    (repo / "pkg" / "deps.py").write_text(DEPS + "# other\n")
    git(repo, "commit", "-qam", "other")
    git(repo, "checkout", "-q", "-")
    (repo / "pkg" / "deps.py").write_text(DEPS + "# main\n")
    git(repo, "commit", "-qam", "main")
    subprocess.run(["git", "-C", str(repo), "merge", "-q", "other"], capture_output=True)

    assert key(repo) is None


def test_changes_the_audit_does_not_read_leave_the_key_alone(repo: Path) -> None:
    before = key(repo)
    (repo / "README.md").write_text("other docs\n")
    (repo / "generated").mkdir()
    (repo / "generated" / "out.py").write_text("x = 1\n")  # ignored

    assert key(repo) == before


@pytest.mark.parametrize("flag", ["--assume-unchanged", "--skip-worktree"])
def test_a_file_git_stops_looking_at_means_no_key(repo: Path, flag: str) -> None:
    git(repo, "update-index", flag, "pkg/deps.py")

    assert key(repo) is None


def test_a_symlinked_file_git_reports_means_no_key(repo: Path, tmp_path: Path) -> None:
    """git sees the link, not its target: the target can change unseen."""
    target = tmp_path / "elsewhere.py"
    target.write_text(CALLER)
    os.symlink(target, repo / "pkg" / "linked.py")

    assert key(repo) is None


def test_no_key_outside_a_checkout_or_for_a_file(repo: Path, tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()

    assert key(plain) is None
    assert key(repo / "pkg" / "handler.py") is None
    assert key() is None


def test_no_key_without_git(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "")

    assert key(repo) is None


def test_no_key_when_git_fails_in_the_checkout(repo: Path) -> None:
    """A corrupt index: ``git status`` and ``git ls-files`` exit non-zero."""
    assert key(repo) is not None
    (repo / ".git" / "index").write_bytes(b"not an index")

    assert key(repo) is None


def test_two_directories_of_one_checkout_ask_git_once(repo: Path) -> None:
    state = TreeState([repo, repo / "pkg"])
    parts = state.key()

    assert parts is not None
    assert parts[0] == os.fsencode(os.path.realpath(repo))
    assert parts[1].startswith(b"# branch.oid ")
    assert parts[2:] == [b""]  # a clean checkout: no file to digest


# --- the engine ----------------------------------------------------------


def audit(root: Path, monkeypatch: pytest.MonkeyPatch, **options: object) -> AuditReport:
    monkeypatch.chdir(root)
    config = Config(root=root, **options)  # type: ignore[arg-type]
    return run([root], config, jobs=1).report


def forbid_discovery(monkeypatch: pytest.MonkeyPatch) -> None:
    """A reused run reads no file (it may list them, when git answers late)."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("the run was not reused")

    monkeypatch.setattr(TextPrefilter, "initial_sources", refuse)


def test_an_unchanged_checkout_gets_the_last_report_without_looking_at_a_file(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = audit(repo, monkeypatch)
    forbid_discovery(monkeypatch)

    again = audit(repo, monkeypatch)

    assert [f.path for f in first.findings] == ["pkg/handler.py"]
    assert again.to_json() == first.to_json()


def test_when_git_answers_after_discovery_the_report_is_still_reused(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Asked again after discovery, before any file is read."""
    first = audit(repo, monkeypatch)
    monkeypatch.setattr(engine, "REUSE_PATIENCE_SECONDS", 0.0)
    monkeypatch.setattr(TreeState, "ready", lambda self, timeout: False)
    forbid_discovery(monkeypatch)

    assert audit(repo, monkeypatch).to_json() == first.to_json()


def test_the_first_run_does_not_wait_for_git_before_discovery(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No report is stored yet: git's answer is needed only to store this one."""

    def impatient(self: TreeState, timeout: float) -> bool:
        raise AssertionError("waited for git before discovery")

    monkeypatch.setattr(TreeState, "ready", impatient)
    audit(repo, monkeypatch)
    monkeypatch.undo()
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(repo.parent))
    forbid_discovery(monkeypatch)

    assert [f.path for f in audit(repo, monkeypatch).findings] == ["pkg/handler.py"]


def test_a_failed_discovery_stops_the_git_processes(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    stopped: list[TreeState] = []
    cancel = TreeState.cancel

    def recorded(self: TreeState) -> None:
        stopped.append(self)
        cancel(self)

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("discovery failed")

    monkeypatch.setattr(TreeState, "cancel", recorded)
    monkeypatch.setattr(TreeState, "ready", lambda self, timeout: False)
    monkeypatch.setattr(engine, "discover", broken)

    with pytest.raises(RuntimeError, match="discovery failed"):
        audit(repo, monkeypatch)
    assert len(stopped) == 1


def test_a_long_answer_from_git_does_not_stall_the_wait(repo: Path) -> None:
    """git's status output is read while waiting: more than a pipe holds."""
    untracked = repo / "generated_but_not_ignored"
    untracked.mkdir()
    for number in range(1500):
        (untracked / f"module_with_a_long_name_{number:05}.py").write_text("")
    state = TreeState([repo])

    assert state.ready(timeout=30)
    parts = state.key()
    assert parts is not None
    assert sum(1 for part in parts if part.startswith(b"? ")) == 1500


def test_an_edit_is_audited_and_then_reused(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    audit(repo, monkeypatch)
    (repo / "pkg" / "handler.py").write_text(CALLER + SECOND_CALL)

    edited = audit(repo, monkeypatch)
    forbid_discovery(monkeypatch)
    reused = audit(repo, monkeypatch)

    assert [f.line for f in edited.findings] == [4, 8]
    assert reused.to_json() == edited.to_json()


def test_another_configuration_or_directory_is_another_run(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    audit(repo, monkeypatch)
    ignoring = audit(repo, monkeypatch, ignore=("CTX001",))
    monkeypatch.chdir(repo / "pkg")
    from_pkg = run([repo], Config(root=repo), jobs=1).report

    assert not [f for f in ignoring.findings if f.rule == "CTX001"]
    assert [f.path for f in from_pkg.findings] == ["handler.py"]


def test_a_tree_with_a_symlinked_file_is_never_reused(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Committed, the link shows in no status line while its target changes."""
    target = tmp_path / "elsewhere.py"
    target.write_text(CALLER)
    os.symlink(target, repo / "pkg" / "linked.py")
    git(repo, "add", "pkg/linked.py")
    git(repo, "commit", "-qm", "link")
    first = audit(repo, monkeypatch)
    target.write_text(CALLER + SECOND_CALL)

    second = audit(repo, monkeypatch)

    assert [(f.path, f.line) for f in first.findings if f.path == "pkg/linked.py"] == [
        ("pkg/linked.py", 4)
    ]
    assert [(f.path, f.line) for f in second.findings if f.path == "pkg/linked.py"] == [
        ("pkg/linked.py", 4),
        ("pkg/linked.py", 8),
    ]


def test_without_the_cache_nothing_is_reused_or_stored(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(repo)
    run([repo], Config(root=repo), jobs=1, use_cache=False)

    assert not (repo / ".ctxmigrate_cache" / "run").exists()
    forbid_discovery(monkeypatch)
    with pytest.raises(AssertionError, match="not reused"):
        run([repo], Config(root=repo), jobs=1)


def test_a_summary_that_may_not_be_cached_keeps_the_run_from_being_stored(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def internal_error(item: tuple[bytes, object, object, object]) -> tuple[FileError, bool]:
        return FileError("pkg/handler.py", "internal error"), False

    monkeypatch.setattr(engine, "_summarize_job", internal_error)
    audit(repo, monkeypatch)

    assert not (repo / ".ctxmigrate_cache" / "run").exists()


def test_a_corrupt_run_entry_is_a_miss(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    expected = audit(repo, monkeypatch).to_json()
    (entry,) = (repo / ".ctxmigrate_cache" / "run").rglob("*.json")
    entry.write_text('{"findings": [], "errors": [], "files_scanned": true}')

    assert audit(repo, monkeypatch).to_json() == expected


@pytest.mark.parametrize("corrupt", [{"a": "b"}, [1], "ab", None])
def test_the_changes_seen_survive_the_cache_round_trip_and_any_other_shape_is_empty(
    tmp_path: Path, corrupt: object
) -> None:
    cache = AnalysisCache(tmp_path)
    cache.store_changes_seen("k" * 64, ["ab", "cd"])
    assert cache.changes_seen("k" * 64) == {"ab", "cd"}

    (entry,) = (cache.directory / "changes").rglob("*.json")
    entry.write_text(json.dumps(corrupt))

    assert cache.changes_seen("k" * 64) == frozenset()


def test_a_run_report_survives_the_cache_round_trip(tmp_path: Path) -> None:
    cache = AnalysisCache(tmp_path)
    finding = Finding("CTX001", "rewrite", "a.py", 1, 2, 1, 9, "s", None, "m", "f")
    report = AuditReport([finding], [FileError("b.py", "broken")], 7)

    cache.store_run_report("k" * 64, report)

    assert cache.run_report("k" * 64) == report
    assert cache.run_report("j" * 64) is None


@pytest.mark.parametrize(
    "value",
    [
        [],
        {"findings": [], "errors": []},
        {"findings": [], "errors": [], "files_scanned": "7"},
        {"findings": [{"rule": "CTX001"}], "errors": [], "files_scanned": 7},
        {"findings": [], "errors": [{"path": 1, "message": "m"}], "files_scanned": 7},
    ],
)
def test_a_run_entry_of_another_shape_is_a_miss(tmp_path: Path, value: object) -> None:
    import json

    path = tmp_path / ".ctxmigrate_cache" / "run" / "kk" / f"{'k' * 64}.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(value))
    cache = AnalysisCache(tmp_path)

    assert cache.run_report("k" * 64) is None
    assert (cache.hits, cache.misses) == (0, 1)


def test_a_cancelled_search_leaves_no_process(repo: Path) -> None:
    grep = GitGrep(repo, ["create_user_execution_context"])
    process = grep._process
    assert process is not None

    grep.cancel()

    assert process.returncode is not None
    assert grep.result() is None
