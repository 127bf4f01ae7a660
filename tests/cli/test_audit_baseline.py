"""``audit --baseline``: known sites hidden, new ones reported, the ratchet, bad baselines."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.cli.conftest import (
    FIRST_REWRITE_LINE,
    REVIEW_LINE,
    LegacyTree,
    RunCli,
)
from tests.cli.sarif_checks import assert_valid_sarif

SYNC_CALL = "    return create_user_execution_context(user_id=user_id, thread_id=thread_id)\n"


def audit_json(run_cli: RunCli, *args: str) -> tuple[int, dict[str, Any]]:
    result = run_cli("audit", "--format", "json", *args)
    assert result.exit_code in (0, 1), result.output
    document: dict[str, Any] = json.loads(result.stdout)
    return result.exit_code, document


def write_baseline(run_cli: RunCli, name: str = "baseline.json") -> Path:
    result = run_cli("audit", "--write-baseline", name)
    assert result.exit_code == 0, result.output
    assert f"wrote baseline {name}: 3 known findings" in result.stdout
    return Path(name)


def edit_handler(tree: LegacyTree, old: str, new: str) -> None:
    """Replace the LAST occurrence (handle_reply and handle_sync share a line)."""
    text = tree.handler.read_text()
    assert old in text
    before, _, after = text.rpartition(old)
    tree.handler.write_text(before + new + after)


def new_sites(document: dict[str, Any]) -> list[tuple[str, str, int]]:
    return [(f["category"], f["function"], f["line"]) for f in document["findings"]]


def test_written_baseline_is_sorted_json_without_lines_timestamps_or_absolute_paths(
    legacy_tree: LegacyTree, run_cli: RunCli
) -> None:
    baseline = write_baseline(run_cli)
    text = baseline.read_text()
    document = json.loads(text)
    assert list(document) == ["version", "entries"]
    assert document["version"] == 1
    entries = document["entries"]
    assert [(e["path"], e["function"], e["category"], e["count"]) for e in entries] == [
        ("pkg/handler.py", "handle_message", "rewrite", 1),
        ("pkg/handler.py", "handle_reply", "rewrite", 1),
        ("pkg/handler.py", "handle_sync", "review", 1),
    ]
    assert all(
        set(e) == {"path", "rule", "category", "function", "fingerprint", "count"} for e in entries
    )
    assert str(legacy_tree.root) not in text
    # Writing again from an unchanged tree gives the same bytes (diffs well).
    write_baseline(run_cli, "again.json")
    assert Path("again.json").read_text() == text


def test_known_findings_are_hidden_and_do_not_fail(
    legacy_tree: LegacyTree, run_cli: RunCli
) -> None:
    baseline = write_baseline(run_cli)
    code, document = audit_json(run_cli, "--baseline", str(baseline), "--fail-on", "review")
    assert code == 0
    assert document["findings"] == []
    assert document["summary"]["baseline"] == {
        "file": "baseline.json",
        "known": 3,
        "new": 0,
        "fixed": 0,
    }
    assert (document["summary"]["rewrite"], document["summary"]["review"]) == (0, 0)
    # Without the baseline the same tree fails: the baseline is what hides it.
    assert run_cli("audit", "--fail-on", "review").exit_code == 1


def test_table_says_how_many_were_hidden(legacy_tree: LegacyTree, run_cli: RunCli) -> None:
    baseline = write_baseline(run_cli)
    edit_handler(
        legacy_tree,
        "async def handle_reply",
        "async def other(u, t):\n"
        "    return create_user_execution_context(user_id=u, thread_id=t)\n\n\n"
        "async def handle_reply",
    )
    result = run_cli("audit", "--baseline", str(baseline))
    assert result.exit_code == 1
    assert "3 known findings hidden by baseline baseline.json; 1 new" in result.stdout
    assert "other" in result.stdout
    assert "handle_sync" not in result.stdout


@pytest.mark.parametrize(
    ("old", "new"),
    [
        pytest.param(
            "from pkg", "import os\nimport sys\n\n# moved\nfrom pkg", id="lines-above-move"
        ),
        pytest.param(
            "    return ctx\n", "    ctx.extra = 1\n    return ctx\n", id="edit-elsewhere"
        ),
        pytest.param(
            SYNC_CALL,
            "    return create_user_execution_context(\n"
            "        user_id=user_id,  # the caller\n"
            "        thread_id = thread_id,\n"
            "    )\n",
            id="whitespace-and-comments-inside-call",
        ),
    ],
)
def test_known_site_survives_real_edits(
    legacy_tree: LegacyTree, run_cli: RunCli, old: str, new: str
) -> None:
    baseline = write_baseline(run_cli)
    edit_handler(legacy_tree, old, new)
    code, document = audit_json(run_cli, "--baseline", str(baseline), "--fail-on", "review")
    assert document["findings"] == []
    assert document["summary"]["baseline"]["known"] == 3
    assert code == 0


def test_changed_arguments_make_a_site_new(legacy_tree: LegacyTree, run_cli: RunCli) -> None:
    baseline = write_baseline(run_cli)
    edit_handler(legacy_tree, SYNC_CALL, SYNC_CALL.replace("thread_id=thread_id", "thread_id=None"))
    _, document = audit_json(run_cli, "--baseline", str(baseline))
    assert new_sites(document) == [("review", "handle_sync", REVIEW_LINE)]
    assert document["summary"]["baseline"] == {
        "file": "baseline.json",
        "known": 2,
        "new": 1,
        "fixed": 1,
    }


def test_identical_sites_in_one_function_are_matched_by_count(
    legacy_tree: LegacyTree, run_cli: RunCli
) -> None:
    baseline = write_baseline(run_cli)
    edit_handler(legacy_tree, SYNC_CALL, SYNC_CALL.replace("return", "first =") + SYNC_CALL)
    _, document = audit_json(run_cli, "--baseline", str(baseline))
    # The same call text twice in handle_sync: the baseline knew one.
    assert [(c, f) for c, f, _ in new_sites(document)] == [("review", "handle_sync")]
    assert document["summary"]["baseline"]["known"] == 3


def test_identical_copies_are_counted_per_site(legacy_tree: LegacyTree, run_cli: RunCli) -> None:
    edit_handler(legacy_tree, SYNC_CALL, SYNC_CALL + SYNC_CALL)
    result = run_cli("audit", "--write-baseline", "baseline.json")
    assert result.exit_code == 0
    entries = json.loads(Path("baseline.json").read_text())["entries"]
    assert [(e["function"], e["count"]) for e in entries][-1] == ("handle_sync", 2)
    # Three copies against two known: exactly one is new.
    edit_handler(legacy_tree, SYNC_CALL, SYNC_CALL + SYNC_CALL)
    _, document = audit_json(run_cli, "--baseline", "baseline.json")
    assert document["summary"]["baseline"]["known"] == 4
    assert [(c, f) for c, f, _ in new_sites(document)] == [("review", "handle_sync")]


def test_copy_of_a_known_site_in_another_function_is_new(
    legacy_tree: LegacyTree, run_cli: RunCli
) -> None:
    baseline = write_baseline(run_cli)
    legacy_tree.handler.write_text(
        legacy_tree.handler.read_text() + "\n\ndef handle_other(user_id, thread_id):\n" + SYNC_CALL
    )
    code, document = audit_json(run_cli, "--baseline", str(baseline), "--fail-on", "review")
    assert code == 1
    assert [(c, f) for c, f, _ in new_sites(document)] == [("review", "handle_other")]


def test_new_findings_fail_only_at_their_category(legacy_tree: LegacyTree, run_cli: RunCli) -> None:
    baseline = write_baseline(run_cli)
    legacy_tree.handler.write_text(
        legacy_tree.handler.read_text() + "\n\ndef handle_other(user_id, thread_id):\n" + SYNC_CALL
    )
    # The only new site is a review site: --fail-on rewrite passes, review fails.
    assert run_cli("audit", "--baseline", str(baseline), "--fail-on", "rewrite").exit_code == 0
    assert run_cli("audit", "--baseline", str(baseline), "--fail-on", "review").exit_code == 1


def test_sarif_and_github_report_only_new_findings(
    legacy_tree: LegacyTree, run_cli: RunCli
) -> None:
    baseline = write_baseline(run_cli)
    legacy_tree.handler.write_text(
        legacy_tree.handler.read_text() + "\n\ndef handle_other(user_id, thread_id):\n" + SYNC_CALL
    )
    sarif = run_cli("audit", "--baseline", str(baseline), "--format", "sarif")
    log = json.loads(sarif.stdout)
    assert_valid_sarif(log)
    results = log["runs"][0]["results"]
    assert [r["locations"][0]["logicalLocations"][0]["fullyQualifiedName"] for r in results] == [
        "handle_other"
    ]
    github = run_cli("audit", "--baseline", str(baseline), "--format", "github")
    lines = github.stdout.splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("::warning file=pkg/handler.py,line=18,")


def test_fixed_sites_are_reported_as_stale_and_update_drops_them(
    legacy_tree: LegacyTree, run_cli: RunCli
) -> None:
    baseline = write_baseline(run_cli)
    before = json.loads(baseline.read_text())["entries"]
    # Fix handle_sync and add a new site in one go.
    edit_handler(legacy_tree, SYNC_CALL, "    return None\n")
    legacy_tree.handler.write_text(
        legacy_tree.handler.read_text() + "\n\ndef handle_other(user_id, thread_id):\n" + SYNC_CALL
    )
    table = run_cli("audit", "--baseline", str(baseline))
    assert "1 baseline site no longer found (stale): run with --update-baseline" in table.stdout
    assert json.loads(baseline.read_text())["entries"] == before  # reading never writes

    result = run_cli("audit", "--baseline", str(baseline), "--update-baseline")
    assert result.exit_code == 1  # the new site still fails
    assert "1 fixed site dropped from baseline.json" in result.stdout
    after = json.loads(baseline.read_text())["entries"]
    # The ratchet: the fixed entry is gone and the new site was NOT added.
    assert after == [entry for entry in before if entry["function"] != "handle_sync"]
    _, document = audit_json(run_cli, "--baseline", str(baseline))
    assert document["summary"]["baseline"] == {
        "file": "baseline.json",
        "known": 2,
        "new": 1,
        "fixed": 0,
    }


def test_update_lowers_a_count_when_one_of_identical_sites_is_fixed(
    legacy_tree: LegacyTree, run_cli: RunCli
) -> None:
    edit_handler(legacy_tree, SYNC_CALL, SYNC_CALL + SYNC_CALL)
    run_cli("audit", "--write-baseline", "baseline.json")
    edit_handler(legacy_tree, SYNC_CALL + SYNC_CALL, SYNC_CALL)
    result = run_cli("audit", "--baseline", "baseline.json", "--update-baseline")
    assert "1 fixed site dropped" in result.stdout
    entries = json.loads(Path("baseline.json").read_text())["entries"]
    assert [(e["function"], e["count"]) for e in entries][-1] == ("handle_sync", 1)


def test_partial_run_neither_fixes_nor_drops_entries_of_files_it_did_not_scan(
    legacy_tree: LegacyTree, run_cli: RunCli
) -> None:
    baseline = write_baseline(run_cli)
    text = baseline.read_text()
    # pre-commit passes only the staged files.
    _, document = audit_json(run_cli, "--baseline", str(baseline), "pkg/deps.py")
    assert document["summary"]["baseline"]["fixed"] == 0
    assert baseline.read_text() == text


@pytest.mark.parametrize("option", [("--update-baseline",), ("--write-baseline", "b.json")])
def test_ratchet_and_write_refuse_a_partial_run(
    legacy_tree: LegacyTree, run_cli: RunCli, option: tuple[str, ...]
) -> None:
    # Scanning pkg/handler.py alone, the legacy definition in pkg/deps.py is
    # unknown: every site would look fixed and the ratchet would drop them.
    baseline = write_baseline(run_cli)
    text = baseline.read_text()
    args = ("--baseline", str(baseline)) if option[0] == "--update-baseline" else ()
    result = run_cli("audit", *args, *option, "pkg/handler.py")
    assert result.exit_code == 2
    assert f"{option[0]} needs a run over the whole project" in result.stderr
    assert baseline.read_text() == text
    assert not Path("b.json").exists()
    # The root itself, given explicitly, is the whole project.
    assert run_cli("audit", *args, *option, ".").exit_code == 0


def test_a_deleted_file_counts_as_fixed(legacy_tree: LegacyTree, run_cli: RunCli) -> None:
    baseline = write_baseline(run_cli)
    legacy_tree.handler.unlink()
    _, document = audit_json(run_cli, "--baseline", str(baseline))
    assert document["summary"]["baseline"]["fixed"] == 3


def test_baseline_from_the_configuration_relative_to_the_project_root(
    legacy_tree: LegacyTree, run_cli: RunCli, monkeypatch: pytest.MonkeyPatch
) -> None:
    Path("ci").mkdir()
    write_baseline(run_cli, "ci/ctx-baseline.json")
    Path("pyproject.toml").write_text('[tool.ctxmigrate]\nbaseline = "ci/ctx-baseline.json"\n')
    monkeypatch.chdir(legacy_tree.root / "pkg")
    code, document = audit_json(run_cli, "--fail-on", "review")
    assert code == 0
    assert document["summary"]["baseline"] == {
        "file": "../ci/ctx-baseline.json",
        "known": 3,
        "new": 0,
        "fixed": 0,
    }
    # --no-baseline shows everything again.
    code, document = audit_json(run_cli, "--no-baseline")
    assert code == 1
    assert len(document["findings"]) == 3
    assert "baseline" not in document["summary"]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        pytest.param(None, "baseline.json: baseline file not found", id="missing"),
        pytest.param(
            b'{"version": 1, "entries": [', "corrupt baseline, not valid JSON", id="truncated"
        ),
        pytest.param(b"[]", "the top level must be an object", id="not-an-object"),
        pytest.param(b'{"entries": []}', "'version' must be an integer", id="no-version"),
        pytest.param(
            b'{"version": 2, "entries": []}',
            "baseline version 2 is newer than this ctxmigrate supports (1)",
            id="future-version",
        ),
        pytest.param(b'{"version": 1}', "'entries' must be a list", id="no-entries"),
        pytest.param(
            b'{"version": 1, "entries": [{"path": "a.py", "rule": "CTX001", "category": "review",'
            b' "function": null, "fingerprint": "ab", "count": 0}]}',
            "entry 1 must have",
            id="zero-count",
        ),
    ],
)
def test_bad_baseline_is_a_clear_error_never_an_empty_baseline(
    legacy_tree: LegacyTree, run_cli: RunCli, content: bytes | None, message: str
) -> None:
    if content is not None:
        Path("baseline.json").write_bytes(content)
    for extra in ((), ("--update-baseline",)):
        result = run_cli("audit", "--baseline", "baseline.json", *extra)
        assert result.exit_code == 2, result.output
        assert message in result.stderr
        assert result.stdout == ""
    if content is not None:
        assert Path("baseline.json").read_bytes() == content


@pytest.mark.parametrize(
    "args",
    [
        ("--write-baseline", "a.json", "--baseline", "b.json"),
        ("--write-baseline", "a.json", "--update-baseline"),
        ("--no-baseline", "--update-baseline"),
        ("--update-baseline",),
    ],
)
def test_contradictory_baseline_options_are_usage_errors(
    legacy_tree: LegacyTree, run_cli: RunCli, args: tuple[str, ...]
) -> None:
    result = run_cli("audit", *args)
    assert result.exit_code == 2
    assert "baseline" in result.stderr
    assert not Path("a.json").exists()


def test_first_rewrite_line_is_reported_when_baseline_is_empty(
    legacy_tree: LegacyTree, run_cli: RunCli
) -> None:
    Path("empty.json").write_text('{"version": 1, "entries": []}\n')
    _, document = audit_json(run_cli, "--baseline", "empty.json")
    assert new_sites(document)[0] == ("rewrite", "handle_message", FIRST_REWRITE_LINE)
    assert document["summary"]["baseline"]["new"] == 3
