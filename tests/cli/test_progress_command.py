"""``ctxmigrate progress``: remaining work, percent done, history from git objects."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from ctxmigrate.codemods.progress import top_level_directory
from tests.cli.conftest import LegacyTree, RunCli

SYNC_CALL = "    return create_user_execution_context(user_id=user_id, thread_id=thread_id)\n"
REPLY_CALL = SYNC_CALL  # handle_reply's line is the same text, earlier in the file


def progress_json(run_cli: RunCli, *args: str) -> dict[str, Any]:
    result = run_cli("progress", "--format", "json", *args)
    assert result.exit_code == 0, result.output
    document: dict[str, Any] = json.loads(result.stdout)
    return document


def fix_last(tree: LegacyTree, old: str, new: str = "    return None\n") -> None:
    text = tree.handler.read_text()
    before, found, after = text.rpartition(old)
    assert found
    tree.handler.write_text(before + new + after)


def add_service_site(tree: LegacyTree) -> None:
    (tree.root / "svc").mkdir(exist_ok=True)
    (tree.root / "svc" / "__init__.py").write_text("")
    (tree.root / "svc" / "worker.py").write_text(
        "from pkg.deps import create_user_execution_context\n\n\n"
        "def work(user_id):\n"
        "    return create_user_execution_context(user_id=user_id, thread_id=None)\n"
    )


@pytest.mark.parametrize(
    ("path", "directory"),
    [
        ("pkg/sub/a.py", "pkg"),
        ("a.py", "."),
        ("../lib/a.py", "../lib"),
        ("../a.py", ".."),
    ],
)
def test_top_level_directory(path: str, directory: str) -> None:
    assert top_level_directory(path) == directory


def test_table_shows_what_is_left_by_rule_and_directory(
    legacy_tree: LegacyTree, run_cli: RunCli
) -> None:
    add_service_site(legacy_tree)
    result = run_cli("progress")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == "4 sites left to migrate (2 rewrite, 2 review); 0 keep"
    assert any(line.split() == ["CTX001", "reuse-session", "2", "2", "4"] for line in lines)
    assert any(line.split() == ["pkg", "2", "1", "3"] for line in lines)
    assert any(line.split() == ["svc", "0", "1", "1"] for line in lines)


def test_json_without_a_baseline_has_no_reference(legacy_tree: LegacyTree, run_cli: RunCli) -> None:
    document = progress_json(run_cli)
    assert document["version"] == 1
    assert (document["percent_done"], document["remaining"], document["fixed"]) == (None, 3, None)
    assert document["baseline"] is None
    assert document["by_category"] == {"rewrite": 2, "review": 1}
    assert document["by_rule"] == {"CTX001": {"rewrite": 2, "review": 1}}
    assert document["by_directory"] == {"pkg": {"rewrite": 2, "review": 1}}
    assert [(s["path"], s["line"], s["new"]) for s in document["sites"]] == [
        ("pkg/handler.py", 5, None),
        ("pkg/handler.py", 10, None),
        ("pkg/handler.py", 14, None),
    ]
    assert document["history"] == []


def test_percent_done_against_the_baseline(legacy_tree: LegacyTree, run_cli: RunCli) -> None:
    assert run_cli("audit", "--write-baseline", "baseline.json").exit_code == 0
    fix_last(legacy_tree, SYNC_CALL)  # handle_sync migrated
    add_service_site(legacy_tree)  # and a new site elsewhere
    document = progress_json(run_cli, "--baseline", "baseline.json")
    assert document["percent_done"] == 33.3
    assert (document["remaining"], document["fixed"]) == (3, 1)
    assert document["baseline"] == {"file": "baseline.json", "known": 3, "new": 1}
    assert [(s["path"], s["new"]) for s in document["sites"]] == [
        ("pkg/handler.py", False),
        ("pkg/handler.py", False),
        ("svc/worker.py", True),
    ]
    table = run_cli("progress", "--baseline", "baseline.json")
    assert "33.3% done against baseline baseline.json: 1 of 3 fixed, 1 new" in table.stdout


def test_everything_migrated_is_100_percent(legacy_tree: LegacyTree, run_cli: RunCli) -> None:
    assert run_cli("audit", "--write-baseline", "baseline.json").exit_code == 0
    legacy_tree.handler.write_text("def handler():\n    return None\n")
    document = progress_json(run_cli, "--baseline", "baseline.json")
    assert (document["percent_done"], document["remaining"], document["fixed"]) == (100.0, 0, 3)


def test_configured_baseline_is_used_and_a_bad_one_is_exit_2(
    legacy_tree: LegacyTree, run_cli: RunCli
) -> None:
    Path("pyproject.toml").write_text('[tool.ctxmigrate]\nbaseline = "baseline.json"\n')
    result = run_cli("progress")
    assert result.exit_code == 2
    assert "baseline.json: baseline file not found" in result.stderr
    assert run_cli("audit", "--write-baseline", "baseline.json").exit_code == 0
    assert progress_json(run_cli)["percent_done"] == 0.0
    assert progress_json(run_cli, "--no-baseline")["percent_done"] is None
    Path("baseline.json").write_text('{"version": 7, "entries": []}')
    result = run_cli("progress", "--format", "json")
    assert result.exit_code == 2
    assert "baseline version 7 is newer" in result.stderr


def test_html_needs_an_output_file(legacy_tree: LegacyTree, run_cli: RunCli) -> None:
    result = run_cli("progress", "--format", "html")
    assert result.exit_code == 2
    assert "--format html needs --output FILE" in result.stderr


def commit_three_stages(tree: LegacyTree) -> list[str]:
    """Commits with 3, 2 and 1 remaining sites; returns their ids, oldest first."""
    tree.commit_all()
    fix_last(tree, SYNC_CALL)
    tree.commit_all()
    fix_last(tree, REPLY_CALL)
    tree.commit_all()
    log = tree.git("log", "--format=%H").stdout.decode().split()
    return list(reversed(log))


def test_history_audits_commits_from_git_objects_without_touching_the_work_tree(
    legacy_tree: LegacyTree, run_cli: RunCli
) -> None:
    commits = commit_three_stages(legacy_tree)
    # An uncommitted edit that removes the last site: history must not see it,
    # and it must still be there afterwards.
    legacy_tree.handler.write_text("def handler():\n    return None\n")
    untracked = legacy_tree.root / "pkg" / "scratch.py"
    untracked.write_text("x = 1\n")
    status_before = legacy_tree.git("status", "--porcelain").stdout
    document = progress_json(run_cli, "--history", "3")
    history = document["history"]
    assert [point["commit"] for point in history] == commits
    assert [point["remaining"] for point in history] == [3, 2, 1]
    assert [(point["rewrite"], point["review"]) for point in history] == [(2, 1), (2, 0), (1, 0)]
    assert all(point["subject"] == "snapshot" for point in history)
    assert [point["cached"] for point in history] == [False, False, False]
    # Without a baseline the oldest audited commit is the reference.
    assert (document["remaining"], document["percent_done"]) == (0, 100.0)
    assert legacy_tree.git("status", "--porcelain").stdout == status_before
    assert legacy_tree.handler.read_text() == "def handler():\n    return None\n"
    assert untracked.read_text() == "x = 1\n"


def test_history_is_cached_per_commit_and_keyed_by_configuration(
    legacy_tree: LegacyTree, run_cli: RunCli
) -> None:
    commit_three_stages(legacy_tree)
    first = progress_json(run_cli, "--history", "2")["history"]
    cached = progress_json(run_cli, "--history", "3")["history"]
    # The two newest commits come from the cache; the older one is audited now.
    assert [point["cached"] for point in cached] == [False, True, True]
    assert [p["remaining"] for p in cached[1:]] == [p["remaining"] for p in first]
    cache_files = list((legacy_tree.root / ".ctxmigrate_cache" / "history").glob("*.json"))
    assert len(cache_files) == 3
    # Another rule selection is another result: not served from the cache.
    other = progress_json(run_cli, "--history", "3", "--select", "CTX002")["history"]
    assert [point["cached"] for point in other] == [False, False, False]
    assert [point["remaining"] for point in other] == [0, 0, 0]
    # --no-cache neither reads nor writes the history cache.
    assert [
        p["cached"] for p in progress_json(run_cli, "--history", "3", "--no-cache")["history"]
    ] == [
        False,
        False,
        False,
    ]


def test_history_of_a_path_that_did_not_exist_yet_counts_zero(
    legacy_tree: LegacyTree, run_cli: RunCli
) -> None:
    # Only svc/ is audited, so the legacy factory (in pkg/) is configured.
    Path("pyproject.toml").write_text(
        '[tool.ctxmigrate]\nfactories = ["pkg.deps.create_user_execution_context"]\n'
    )
    legacy_tree.commit_all()
    add_service_site(legacy_tree)
    legacy_tree.commit_all()
    document = progress_json(run_cli, "--history", "5", "svc")
    assert document["remaining"] == 1
    assert [point["remaining"] for point in document["history"]] == [0, 1]


def test_history_outside_a_git_checkout_is_a_clear_error(
    legacy_tree: LegacyTree, run_cli: RunCli
) -> None:
    result = run_cli("progress", "--history", "3")
    assert result.exit_code == 2
    assert "--history needs a git checkout" in result.stderr


def test_history_follows_deleted_added_and_renamed_files(
    legacy_tree: LegacyTree, run_cli: RunCli
) -> None:
    # After the first commit, the tree moves commit to commit by writing only
    # the changed files: every kind of change must land.
    legacy_tree.commit_all()  # 3 sites
    handler_text = legacy_tree.handler.read_text()
    legacy_tree.handler.unlink()
    add_service_site(legacy_tree)
    legacy_tree.commit_all()  # handler deleted, svc/worker.py added: 1 site
    legacy_tree.git("mv", "svc", "services")
    (legacy_tree.root / "pkg" / "again.py").write_text(handler_text)
    legacy_tree.commit_all()  # svc renamed to services, handler back under a new name: 4
    legacy_tree.git("rm", "-q", "pkg/deps.py")
    legacy_tree.commit_all()  # the legacy definition gone: nothing is legacy any more
    history = progress_json(run_cli, "--history", "4", "--no-cache")["history"]
    assert [point["remaining"] for point in history] == [3, 1, 4, 0]


def test_table_lists_the_history_oldest_first(legacy_tree: LegacyTree, run_cli: RunCli) -> None:
    commits = commit_three_stages(legacy_tree)
    result = run_cli("progress", "--history", "3")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[0].endswith(f"66.7% done since {commits[0][:12]}")
    rows = [line.split() for line in result.stdout.splitlines() if line.split()[:1]]
    history = [row for row in rows if row[0] in {c[:12] for c in commits}]
    assert [(row[0], row[2]) for row in history] == [
        (commits[0][:12], "3"),
        (commits[1][:12], "2"),
        (commits[2][:12], "1"),
    ]


def test_history_of_a_project_in_a_subdirectory_of_the_checkout(
    legacy_tree: LegacyTree, run_cli: RunCli, monkeypatch: pytest.MonkeyPatch
) -> None:
    backend = legacy_tree.root / "backend"
    backend.mkdir()
    (legacy_tree.root / "pkg").rename(backend / "pkg")
    # The project root (its configuration) is backend/, the git top level is above.
    (backend / "pyproject.toml").write_text('[tool.ctxmigrate]\ntests = ["tests/"]\n')
    (legacy_tree.root / "README").write_text("monorepo\n")
    legacy_tree.commit_all()
    handler = backend / "pkg" / "handler.py"
    before, _, after = handler.read_text().rpartition(SYNC_CALL)
    handler.write_text(before + "    return None\n" + after)
    legacy_tree.commit_all()
    monkeypatch.chdir(backend)
    document = progress_json(run_cli, "--history", "2")
    assert [point["remaining"] for point in document["history"]] == [3, 2]
    assert document["by_directory"] == {"pkg": {"rewrite": 2, "review": 0}}


def test_progress_after_an_audit_of_the_same_checkout_reuses_its_report(
    legacy_tree: LegacyTree, run_cli: RunCli, monkeypatch: pytest.MonkeyPatch
) -> None:
    """docs/ci.md: the workflow's progress step costs a git status, not an audit."""
    from ctxmigrate.codemods.analysis.prefilter import TextPrefilter

    legacy_tree.commit_all()
    audited = run_cli("audit", "--format", "json", "--fail-on", "never")
    assert audited.exit_code == 0, audited.output

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("progress read the files again")

    monkeypatch.setattr(TextPrefilter, "initial_sources", refuse)
    document = progress_json(run_cli)

    summary = json.loads(audited.stdout)["summary"]
    assert document["remaining"] == summary["rewrite"] + summary["review"] == 3
