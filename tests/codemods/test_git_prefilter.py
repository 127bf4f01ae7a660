"""In a git checkout the text pre-filter asks ``git grep``; the answer must not change."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from ctxmigrate.codemods import engine
from ctxmigrate.codemods import git as git_module
from ctxmigrate.codemods.cache import AnalysisCache
from ctxmigrate.codemods.config import Config
from ctxmigrate.codemods.discovery import SourceFile, SourceText
from ctxmigrate.codemods.engine import run
from ctxmigrate.codemods.git import GitGrep, run_git, run_git_streaming
from ctxmigrate.codemods.model import AuditReport

from .support import git

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="needs the git binary")

DEPS = "def create_user_execution_context(user_id, thread_id):\n    return 1\n"
# A re-export chain: only the first link mentions the legacy name; ``mk`` and
# ``make_ctx`` are learned in later pre-filter rounds (a second git grep).
REEXPORT = "from pkg.deps import create_user_execution_context as make_ctx\n"
RENAMED = "from pkg.reexport import make_ctx as mk\n"
CALLS_ALIAS = (
    "from pkg.renamed import mk\n\n"
    "async def handle(user_id, thread_id):\n"
    "    return mk(user_id=user_id, thread_id=thread_id)\n"
)
STAR_SOURCE = "from pkg.deps import *\n"
STAR_USER = (
    "from pkg.star_source import *\n\n"
    "async def handle(user_id, thread_id):\n"
    "    return create_user_execution_context(user_id=user_id, thread_id=thread_id)\n"
)
UNRELATED = "def helper():\n    return 2\n"


def write(root: Path, relative: str, content: str | bytes) -> Path:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    return path


def project(root: Path) -> None:
    write(root, "pkg/__init__.py", "")
    write(root, "pkg/deps.py", DEPS)
    write(root, "pkg/reexport.py", REEXPORT)
    write(root, "pkg/renamed.py", RENAMED)
    write(root, "pkg/calls_alias.py", CALLS_ALIAS)
    write(root, "pkg/star_source.py", STAR_SOURCE)
    write(root, "pkg/star_user.py", STAR_USER)
    write(root, "pkg/unrelated.py", UNRELATED)


def checkout(root: Path, tracked: bool = True) -> None:
    """``git init``; with ``tracked``, every file added: git grep searches the
    tracked files, the pre-filter the untracked ones itself."""
    git(root, "init", "-q")
    if tracked:
        git(root, "add", "-A")


TRACKED_OR_NOT = pytest.mark.parametrize("tracked", [True, False], ids=["tracked", "untracked"])


def audit(root: Path, monkeypatch: pytest.MonkeyPatch, **config: int) -> AuditReport:
    monkeypatch.chdir(root)
    return run([root], Config(root=root, **config), use_cache=False, jobs=1).report


@pytest.fixture(autouse=True)
def no_enclosing_checkout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A tree under tmp_path is a checkout only when a test runs ``git init``.
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))


def test_a_checkout_is_audited_exactly_like_the_same_tree_outside_git(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    plain, checkout = tmp_path / "plain", tmp_path / "checkout"
    project(plain)
    project(checkout)
    git(checkout, "init", "-q")
    git(checkout, "add", "pkg/deps.py", "pkg/reexport.py")  # the rest stays untracked

    expected = audit(plain, monkeypatch)
    found = audit(checkout, monkeypatch)

    assert found.to_json() == expected.to_json()
    assert {(f.path, f.category) for f in found.findings if f.rule == "CTX001"} == {
        ("pkg/calls_alias.py", "rewrite"),
        ("pkg/star_user.py", "rewrite"),
    }
    assert found.files_scanned == 8


def test_a_gitignored_file_is_neither_searched_nor_counted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project(tmp_path)
    write(tmp_path, ".gitignore", "generated/\n")
    write(tmp_path, "generated/out.py", CALLS_ALIAS)
    checkout(tmp_path)

    report = audit(tmp_path, monkeypatch)

    assert not [f for f in report.findings if f.path.startswith("generated/")]
    assert report.files_scanned == 8


@TRACKED_OR_NOT
def test_in_a_checkout_binary_content_is_an_error_only_in_files_naming_a_legacy_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tracked: bool
) -> None:
    """Only the files git grep (or, for untracked files, the pre-filter's own
    search) selects count as read."""
    project(tmp_path)
    write(tmp_path, "pkg/junk.py", b"\x00\x01 no legacy name here")
    write(tmp_path, "pkg/junk_naming.py", b"\x00\x01 create_user_execution_context")
    write(tmp_path, "pkg/latin1.py", b"# caf\xe9 without a cookie\n")
    outside_git = audit(tmp_path, monkeypatch)
    checkout(tmp_path, tracked)

    in_checkout = audit(tmp_path, monkeypatch)

    assert {error.path for error in outside_git.errors} == {
        "pkg/junk.py",
        "pkg/junk_naming.py",
        "pkg/latin1.py",
    }
    assert [(e.path, e.message) for e in in_checkout.errors] == [
        ("pkg/junk_naming.py", "not Python source: binary content (NUL byte at offset 0)")
    ]
    assert in_checkout.files_scanned == outside_git.files_scanned == 11


@TRACKED_OR_NOT
def test_in_a_checkout_oversized_files_are_reported_whatever_they_contain(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tracked: bool
) -> None:
    project(tmp_path)
    write(tmp_path, "pkg/generated.py", "x = 1\n" * 100)
    checkout(tmp_path, tracked)

    report = audit(tmp_path, monkeypatch, max_file_bytes=200)

    assert [error.path for error in report.errors] == ["pkg/generated.py"]
    assert "over the 200-byte limit" in report.errors[0].message
    # So it is in a warm run whose first git grep also looks for the aliases
    # learned last time (a file naming none is then checked one by one).
    config = Config(root=tmp_path, max_file_bytes=200)
    monkeypatch.setattr(AnalysisCache, "store_run_report", lambda *args: None)
    for _ in range(2):
        warm = run([tmp_path], config, jobs=1).report
        assert [error.path for error in warm.errors] == ["pkg/generated.py"]


@pytest.mark.parametrize("flag", ["--assume-unchanged", "--skip-worktree"])
def test_a_file_git_grep_would_search_in_the_index_is_audited_by_its_work_tree_content(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, flag: str
) -> None:
    """git grep searches the index's copy of such a file; the pre-filter reads it."""
    project(tmp_path)
    write(tmp_path, "pkg/later.py", UNRELATED)
    checkout(tmp_path)
    git(tmp_path, "update-index", flag, "pkg/later.py")
    write(tmp_path, "pkg/later.py", STAR_USER)

    report = audit(tmp_path, monkeypatch)

    assert ("pkg/later.py", "rewrite") in {(f.path, f.category) for f in report.findings}


def test_a_symlinked_file_in_a_checkout_is_read_through_the_link(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """git grep does not follow symlinks; the pre-filter reads them itself."""
    root = tmp_path / "repo"
    project(root)
    target = write(tmp_path, "elsewhere/handler.py", STAR_USER)
    os.symlink(target, root / "pkg" / "linked.py")
    checkout(root)

    report = audit(root, monkeypatch)

    assert ("pkg/linked.py", "rewrite") in {(f.path, f.category) for f in report.findings}


def git_grep_answers(
    monkeypatch: pytest.MonkeyPatch,
    altered: Callable[[GitGrep, set[str] | None], set[str] | None],
) -> None:
    """Every ``git grep`` from now on answers ``altered(grep, its real answer)``
    (its process still ends as usual)."""
    answer = GitGrep.result
    monkeypatch.setattr(GitGrep, "result", lambda grep: altered(grep, answer(grep)))


@pytest.mark.parametrize("failing_from", [1, 2], ids=["the first", "the second"])
def test_when_git_grep_fails_every_unread_file_is_read_and_the_answer_is_the_same(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, failing_from: int
) -> None:
    project(tmp_path)
    checkout(tmp_path)
    expected = audit(tmp_path, monkeypatch).to_json()
    asked: list[set[str] | None] = []

    def failing(grep: GitGrep, found: set[str] | None) -> set[str] | None:
        asked.append(found)  # the legacy names, make_ctx, then mk
        return None if len(asked) >= failing_from else found

    git_grep_answers(monkeypatch, failing)

    assert audit(tmp_path, monkeypatch).to_json() == expected
    # Once git failed, every file left was read: no other search was started.
    assert len(asked) == failing_from


def test_git_grep_lists_tracked_matching_files_relative_to_the_directory(
    tmp_path: Path,
) -> None:
    """Untracked files are the pre-filter's to search (discovery marks them)."""
    root = tmp_path / "repo"  # below the ceiling: git finds it from pkg/
    project(root)
    git(root, "init", "-q")
    git(root, "add", "pkg/reexport.py")

    found = GitGrep(root / "pkg", ["make_ctx"]).result()

    assert found == {str(root / "pkg" / "reexport.py")}


def test_git_grep_outside_a_checkout_has_no_answer(tmp_path: Path) -> None:
    project(tmp_path)

    assert GitGrep(tmp_path, ["make_ctx"]).result() is None


def _checked_paths(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every path given to ``os.stat`` or ``os.access`` from now on."""
    checked: list[str] = []
    real_stat, real_access = os.stat, os.access

    def stat(path: Any, *args: Any, **kwargs: Any) -> Any:
        checked.append(os.fspath(path))
        return real_stat(path, *args, **kwargs)

    def access(path: Any, *args: Any, **kwargs: Any) -> Any:
        checked.append(os.fspath(path))
        return real_access(path, *args, **kwargs)

    monkeypatch.setattr(os, "stat", stat)
    monkeypatch.setattr(os, "access", access)
    return checked


def test_files_git_grep_read_and_ruled_out_are_not_checked_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project(tmp_path)
    checkout(tmp_path)
    expected = audit(tmp_path, monkeypatch).to_json()
    checked = _checked_paths(monkeypatch)

    assert audit(tmp_path, monkeypatch).to_json() == expected
    assert str(tmp_path / "pkg" / "unrelated.py") not in checked


def test_when_git_grep_could_not_read_a_file_read_permission_is_checked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project(tmp_path)
    checkout(tmp_path)
    expected = audit(tmp_path, monkeypatch).to_json()

    def incomplete(grep: GitGrep, found: set[str] | None) -> set[str] | None:
        grep.complete = False  # as if git had said "failed to stat 'x.py'"
        return found

    git_grep_answers(monkeypatch, incomplete)
    checked = _checked_paths(monkeypatch)

    assert audit(tmp_path, monkeypatch).to_json() == expected
    assert str(tmp_path / "pkg" / "unrelated.py") in checked


RUNNING_AS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0


def git_as_nobody(monkeypatch: pytest.MonkeyPatch, home: Path) -> None:
    """Every process started from now on runs as ``nobody`` (root reads a mode-000
    file; CI runs as root), with git told the root-owned checkout is safe."""
    real_popen = subprocess.Popen

    def popen(command: list[str], *args: Any, **kwargs: Any) -> Any:
        drop = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "env"]
        settings = [f"HOME={home}", "GIT_CONFIG_COUNT=1", "GIT_CONFIG_KEY_0=safe.directory"]
        return real_popen([*drop, *settings, "GIT_CONFIG_VALUE_0=*", *command], *args, **kwargs)

    monkeypatch.setattr(subprocess, "Popen", popen)


@pytest.mark.skipif(
    not hasattr(os, "geteuid") or (RUNNING_AS_ROOT and shutil.which("setpriv") is None),
    reason="needs a user a mode-000 file stops (root: setpriv to become nobody)",
)
def test_git_grep_is_incomplete_when_it_cannot_read_a_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # pytest's own temporary directories are closed to other users: nobody
    # must reach this one.
    repo = Path(tempfile.mkdtemp(prefix="ctxmigrate-grep-"))
    try:
        repo.chmod(0o755)
        project(repo)
        checkout(repo)
        if RUNNING_AS_ROOT:
            git_as_nobody(monkeypatch, repo)
        grep = GitGrep(repo, ["make_ctx"])
        assert grep.result() is not None
        assert grep.complete
        (repo / "pkg" / "unrelated.py").chmod(0)
        grep = GitGrep(repo, ["make_ctx"])
        assert grep.result() is not None
        assert not grep.complete
    finally:
        monkeypatch.undo()
        shutil.rmtree(repo)


def _counted_greps(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """The needles of every ``git grep`` started from now on."""
    started: list[list[str]] = []
    real_init = GitGrep.__init__

    def init(grep: GitGrep, directory: Path, needles: Any) -> None:
        started.append(sorted(needles))
        real_init(grep, directory, needles)

    monkeypatch.setattr(GitGrep, "__init__", init)
    return started


def cached_audit(root: Path, monkeypatch: pytest.MonkeyPatch) -> AuditReport:
    """An audit with the per-file cache on, and no report stored for the next
    run (``tree_state``): a second run over the same tree goes the warm path
    these tests are about, instead of returning the first run's report."""
    monkeypatch.chdir(root)
    monkeypatch.setattr(AnalysisCache, "store_run_report", lambda *args: None)
    return run([root], Config(root=root), jobs=1).report


def test_a_warm_run_looks_for_the_aliases_learned_last_time_in_its_first_git_grep(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project(tmp_path)
    checkout(tmp_path)
    expected = audit(tmp_path, monkeypatch).to_json()
    greps = _counted_greps(monkeypatch)

    assert cached_audit(tmp_path, monkeypatch).to_json() == expected
    assert len(greps) == 3  # the legacy names, then make_ctx, then mk
    greps.clear()
    assert cached_audit(tmp_path, monkeypatch).to_json() == expected
    assert len(greps) == 1
    assert {"make_ctx", "mk"} <= set(greps[0])


def test_remembered_aliases_that_are_gone_or_new_change_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project(tmp_path)
    # Names only a remembered alias: binary junk, reported only once the alias is learned.
    write(tmp_path, "pkg/junk_naming_mk.py", b"\0 mk")
    checkout(tmp_path)
    cached_audit(tmp_path, monkeypatch)
    # mk is no longer learned; mk2 is new.
    write(tmp_path, "pkg/renamed.py", "from pkg.reexport import make_ctx as mk2\n")
    write(tmp_path, "pkg/calls_alias.py", CALLS_ALIAS.replace("mk", "mk2"))
    expected = audit(tmp_path, monkeypatch).to_json()
    greps = _counted_greps(monkeypatch)

    assert cached_audit(tmp_path, monkeypatch).to_json() == expected
    assert "pkg/junk_naming_mk.py" not in {error["path"] for error in expected["errors"]}
    assert len(greps) == 2  # mk2 was not remembered
    assert cached_audit(tmp_path, monkeypatch).to_json() == expected


@TRACKED_OR_NOT
def test_a_file_naming_only_a_remembered_alias_is_reported_when_the_alias_is_learned(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tracked: bool
) -> None:
    project(tmp_path)
    write(tmp_path, "pkg/junk_naming_mk.py", b"\0 mk")
    checkout(tmp_path, tracked)
    expected = audit(tmp_path, monkeypatch).to_json()
    assert "pkg/junk_naming_mk.py" in {error["path"] for error in expected["errors"]}

    cached_audit(tmp_path, monkeypatch)
    assert cached_audit(tmp_path, monkeypatch).to_json() == expected


@pytest.mark.parametrize("streamed", [True, False], ids=["pipes waited on", "Windows"])
def test_streamed_git_output_is_every_record_across_reads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, streamed: bool
) -> None:
    # Where pipes cannot be waited on (Windows), the records come after git ends.
    monkeypatch.setattr(git_module, "PIPES_CAN_BE_WAITED_ON", streamed)
    # Over 64 KB of names: several reads, records split between them.
    for number in range(1000):
        write(tmp_path, f"pkg/{'deep/' * 10}module_with_a_long_name_{number:04}.py", "")
    git(tmp_path, "init", "-q")
    arguments = ["ls-files", "-co", "--exclude-standard", "-z"]
    records: list[bytes] = []

    finished = run_git_streaming(arguments, tmp_path, records.append)

    completed = run_git(arguments, tmp_path)
    assert completed is not None and len(completed.stdout) > 1 << 16
    assert finished == (0, b"")
    assert [r for r in records if r] == [r for r in completed.stdout.split(b"\0") if r]
    assert len([r for r in records if r]) == 1000


@pytest.mark.parametrize("streamed", [True, False], ids=["pipes waited on", "Windows"])
def test_streamed_git_without_a_git_binary_is_none(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, streamed: bool
) -> None:
    monkeypatch.setattr(git_module, "PIPES_CAN_BE_WAITED_ON", streamed)
    monkeypatch.setenv("PATH", "")
    records: list[bytes] = []

    assert run_git_streaming(["ls-files", "-z"], tmp_path, records.append) is None
    assert records == []


@pytest.mark.parametrize("streamed", [True, False], ids=["pipes waited on", "Windows"])
def test_streamed_git_reports_its_exit_code_and_stderr(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, streamed: bool
) -> None:
    monkeypatch.setattr(git_module, "PIPES_CAN_BE_WAITED_ON", streamed)
    records: list[bytes] = []

    finished = run_git_streaming(["ls-files", "-z"], tmp_path, records.append)

    assert finished is not None
    assert finished[0] != 0 and b"not a git repository" in finished[1]
    assert [r for r in records if r] == []


def test_a_warm_run_reads_each_files_aliases_from_the_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project(tmp_path)
    checkout(tmp_path)
    expected = audit(tmp_path, monkeypatch).to_json()
    searched: list[bytes] = []
    real_learned_aliases = engine.learned_aliases

    def recording(data: bytes, names: Any) -> set[str]:
        searched.append(data)
        return real_learned_aliases(data, names)

    monkeypatch.setattr(engine, "learned_aliases", recording)

    assert cached_audit(tmp_path, monkeypatch).to_json() == expected
    assert searched
    searched.clear()
    assert cached_audit(tmp_path, monkeypatch).to_json() == expected
    assert searched == []
    # An edited file is searched again, and what it now teaches counts.
    write(tmp_path, "pkg/renamed.py", "from pkg.reexport import make_ctx as mk2\n")
    write(tmp_path, "pkg/calls_alias.py", CALLS_ALIAS.replace("mk", "mk2"))
    fresh = audit(tmp_path, monkeypatch).to_json()
    assert cached_audit(tmp_path, monkeypatch).to_json() == fresh
    assert fresh != expected


def test_the_aliases_cached_for_a_file_are_those_of_the_names_asked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Same bytes, other names asked: a search of its own, never the other set's answer."""
    searched: list[frozenset[str]] = []
    real_learned_aliases = engine.learned_aliases

    def recording(data: bytes, names: frozenset[str]) -> set[str]:
        searched.append(names)
        return real_learned_aliases(data, names)

    monkeypatch.setattr(engine, "learned_aliases", recording)
    data = b"from deps import make_ctx as mk\nfrom deps import other as ot\n"
    source = SourceText(SourceFile(str(tmp_path / "a.py"), "a.py", "a.py", "a", (), False), data)
    first = engine._AliasMemo(AnalysisCache(tmp_path))
    assert first(source, frozenset({"make_ctx"})) == {"mk"}
    assert first(source, frozenset({"other"})) == {"ot"}
    first.store()
    searched.clear()
    warm = engine._AliasMemo(AnalysisCache(tmp_path))
    assert warm(source, frozenset({"other"})) == {"ot"}
    assert warm(source, frozenset({"make_ctx"})) == {"mk"}
    assert searched == []
    assert warm(source, frozenset({"make_ctx", "other"})) == {"mk", "ot"}
    assert searched == [frozenset({"make_ctx", "other"})]


# --- a checkout git refuses to read ------------------------------------------------------

DUBIOUS = (
    "fatal: detected dubious ownership in repository at '{top}'\n"
    "To add an exception for this directory, call:\n\n"
    "\tgit config --global --add safe.directory {top}\n"
)


def refused_checkout(root: Path) -> None:
    project(root)
    write(root, ".gitignore", "generated/\n")
    write(root, "generated/out.py", CALLS_ALIAS)
    git(root, "init", "-q")


def check_refused(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    refusal = (
        "git refused this checkout (dubious ownership: the repository belongs to another "
        "user): .gitignore not applied and uncommitted changes cannot be checked; run "
        f"`git config --global --add safe.directory {root}`"
    )
    monkeypatch.chdir(root)
    whole = run([root], Config(root=root), use_cache=False, jobs=1)
    explicit = run(
        [root / "pkg" / "calls_alias.py", root / "pkg" / "deps.py"],
        Config(root=root),
        use_cache=False,
        jobs=1,
    )

    assert whole.git_unavailable and explicit.git_unavailable
    assert [(e.path, e.message) for e in whole.report.errors] == [(".", refusal)]
    assert [(e.path, e.message) for e in explicit.report.errors] == [(".", refusal)]
    # The directory walk stands in for git: the ignored folder is audited too.
    assert "generated/out.py" in {f.path for f in whole.report.findings}


def test_a_checkout_git_refuses_is_an_error_and_marks_git_unavailable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A stand-in git that refuses every checkout, as git does for another user's."""
    root = tmp_path / "repo"
    refused_checkout(root)
    fake = tmp_path / "bin" / "git"
    fake.parent.mkdir()
    fake.write_text(f"#!/bin/sh\nprintf '{DUBIOUS.format(top=root)}' >&2\nexit 128\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake.parent}{os.pathsep}{os.environ['PATH']}")

    check_refused(root, monkeypatch)


@pytest.mark.skipif(
    not hasattr(os, "geteuid") or os.geteuid() != 0, reason="chown to another user needs root"
)
def test_a_checkout_owned_by_another_user_is_an_error_and_marks_git_unavailable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import pwd

    root = tmp_path / "repo"
    refused_checkout(root)
    nobody = pwd.getpwnam("nobody").pw_uid
    for path in [root, *root.rglob("*")]:
        os.chown(path, nobody, -1, follow_symlinks=False)
    status = subprocess.run(["git", "-C", str(root), "status"], capture_output=True, check=False)
    if b"dubious ownership" not in status.stderr:
        pytest.skip("this git is configured to trust every directory (safe.directory)")

    check_refused(root, monkeypatch)


def test_a_readable_checkout_is_not_marked_git_unavailable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "repo"
    refused_checkout(root)
    monkeypatch.chdir(root)
    result = run([root], Config(root=root), use_cache=False, jobs=1)
    explicit = run([root / "pkg" / "calls_alias.py"], Config(root=root), use_cache=False)
    assert not result.git_unavailable and not explicit.git_unavailable
    assert result.report.errors == explicit.report.errors == []
