"""``ctxmigrate apply`` end to end: dry run, --write, --patch, --interactive, git safety."""

from __future__ import annotations

import io
import json
import os
import shutil
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from ctxmigrate.cli.render_apply import ApplySummary, render_summary
from ctxmigrate.codemods import engine
from ctxmigrate.codemods.model import FileError, Finding
from ctxmigrate.codemods.rewrite.planning import FixResult
from ctxmigrate.codemods.rewrite.writing import WriteOutcome
from tests.cli.conftest import (
    FIRST_REWRITE_LINE,
    HANDLER,
    REVIEW_LINE,
    LegacyTree,
    RunCli,
    read_fifo_in_background,
)

needs_git = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")

REWRITTEN_CALL = b"await get_or_create_user_session(user_id=user_id, thread_id=thread_id)"
LEGACY_CALL = b"create_user_execution_context(user_id=user_id, thread_id=thread_id)"


def written_result(tree: LegacyTree, run_cli: RunCli) -> bytes:
    """The handler after ``apply --write``, restored afterwards."""
    result = run_cli("apply", "--write")
    assert result.exit_code == 0, result.output
    fixed = tree.handler.read_bytes()
    tree.handler.write_bytes(HANDLER)
    return fixed


def test_dry_run_shows_a_diff_changes_nothing_and_exits_1(
    legacy_tree: LegacyTree, run_cli: RunCli
) -> None:
    result = run_cli("apply")
    assert result.exit_code == 1
    assert legacy_tree.handler.read_bytes() == HANDLER
    assert result.stdout.startswith("diff --git a/pkg/handler.py b/pkg/handler.py\n")
    assert "+    ctx = " + REWRITTEN_CALL.decode() in result.stdout
    assert "\x1b[" not in result.output
    assert "Would change 2 sites in 1 file." in result.stderr
    assert f"pkg/handler.py:{REVIEW_LINE}:" in result.stderr
    assert "review" in result.stderr


@needs_git
def test_dry_run_output_is_a_patch_git_applies(
    legacy_tree: LegacyTree, run_cli: RunCli, tmp_path: Path
) -> None:
    expected = written_result(legacy_tree, run_cli)
    legacy_tree.commit_all()
    patch = tmp_path / "stdout.patch"
    patch.write_bytes(run_cli("apply").stdout_bytes)
    legacy_tree.git("apply", "--check", str(patch))
    legacy_tree.git("apply", str(patch))
    assert legacy_tree.handler.read_bytes() == expected


def test_dry_run_diff_is_colored_only_on_a_terminal_without_no_color(
    legacy_tree: LegacyTree, run_cli: RunCli
) -> None:
    colored = run_cli("apply", env={"FORCE_COLOR": "1"})
    assert "\x1b[32m+    ctx = await" in colored.stdout
    plain = run_cli("apply", env={"FORCE_COLOR": "1", "NO_COLOR": "1"})
    assert "\x1b[" not in plain.stdout
    assert plain.stdout == run_cli("apply").stdout


def test_write_rewrites_the_safe_sites_only_and_second_run_changes_nothing(
    legacy_tree: LegacyTree, run_cli: RunCli
) -> None:
    result = run_cli("apply", "--write")
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    assert "Changed 2 sites in 1 file." in result.stderr
    fixed = legacy_tree.handler.read_bytes()
    assert fixed.count(REWRITTEN_CALL) == 2
    # The sync site stays legacy, so the old import stays too.
    assert fixed.count(LEGACY_CALL) == 1
    assert b"from pkg.deps import create_user_execution_context\n" in fixed
    again = run_cli("apply")
    assert again.exit_code == 0
    assert again.stdout == ""
    assert "Nothing to change." in again.stderr
    assert legacy_tree.handler.read_bytes() == fixed


def test_write_keeps_the_file_mode(legacy_tree: LegacyTree, run_cli: RunCli) -> None:
    legacy_tree.handler.chmod(0o640)
    assert run_cli("apply", "--write").exit_code == 0
    assert legacy_tree.handler.stat().st_mode & 0o777 == 0o640


def test_nothing_to_change_exits_0(legacy_tree: LegacyTree, run_cli: RunCli) -> None:
    result = run_cli("apply", "--select", "CTX002")
    assert result.exit_code == 0
    assert result.stdout == ""
    assert "Nothing to change." in result.stderr


def test_ignore_a_rule_by_name(legacy_tree: LegacyTree, run_cli: RunCli) -> None:
    assert run_cli("apply", "--ignore", "reuse-session", "--write").exit_code == 0
    assert legacy_tree.handler.read_bytes() == HANDLER


@needs_git
@pytest.mark.parametrize(
    "variant",
    [
        pytest.param(lambda source: source, id="lf"),
        pytest.param(lambda source: source.replace(b"\n", b"\r\n"), id="crlf"),
        pytest.param(lambda source: source.rstrip(b"\n"), id="no-final-newline"),
        pytest.param(
            lambda source: "# -*- coding: latin-1 -*-\n# café\n".encode("latin-1") + source,
            id="latin-1",
        ),
    ],
)
def test_patch_file_applies_with_git_and_equals_write(
    legacy_tree: LegacyTree,
    run_cli: RunCli,
    tmp_path: Path,
    variant: Callable[[bytes], bytes],
) -> None:
    source = variant(HANDLER)
    legacy_tree.handler.write_bytes(source)
    expected = run_cli("apply", "--write")
    assert expected.exit_code == 0, expected.output
    fixed = legacy_tree.handler.read_bytes()
    assert fixed != source
    legacy_tree.handler.write_bytes(source)
    legacy_tree.commit_all()

    patch = tmp_path / "migration.patch"
    result = run_cli("apply", "--patch", str(patch))
    assert result.exit_code == 1
    assert result.stdout == ""
    assert f"Patch written to {patch}" in result.stderr
    assert legacy_tree.handler.read_bytes() == source
    legacy_tree.git("apply", "--check", str(patch))
    legacy_tree.git("apply", str(patch))
    assert legacy_tree.handler.read_bytes() == fixed


def test_patch_to_stdout(legacy_tree: LegacyTree, run_cli: RunCli) -> None:
    result = run_cli("apply", "--patch", "-")
    assert result.exit_code == 1
    assert result.stdout_bytes.startswith(b"diff --git a/pkg/handler.py b/pkg/handler.py\n")
    assert result.stdout_bytes == run_cli("apply").stdout_bytes


@needs_git
def test_write_refuses_uncommitted_files_unless_allow_dirty(
    legacy_tree: LegacyTree, run_cli: RunCli
) -> None:
    legacy_tree.commit_all()
    dirty_source = HANDLER + b"# local edit\n"
    legacy_tree.handler.write_bytes(dirty_source)
    refused = run_cli("apply", "--write")
    assert refused.exit_code == 2
    assert "uncommitted changes" in refused.stderr
    assert "--allow-dirty" in refused.stderr
    assert "  pkg/handler.py" in refused.stderr
    assert legacy_tree.handler.read_bytes() == dirty_source
    allowed = run_cli("apply", "--write", "--allow-dirty")
    assert allowed.exit_code == 0
    assert REWRITTEN_CALL in legacy_tree.handler.read_bytes()


@needs_git
def test_write_in_a_clean_checkout_needs_no_flag(legacy_tree: LegacyTree, run_cli: RunCli) -> None:
    legacy_tree.commit_all()
    assert run_cli("apply", "--write").exit_code == 0
    assert REWRITTEN_CALL in legacy_tree.handler.read_bytes()


@needs_git
def test_dirty_files_that_apply_does_not_touch_do_not_block(
    legacy_tree: LegacyTree, run_cli: RunCli
) -> None:
    legacy_tree.commit_all()
    (legacy_tree.root / "notes.txt").write_text("untracked\n")
    assert run_cli("apply", "--write").exit_code == 0


def test_a_file_changed_on_disk_after_reading_is_not_overwritten(
    legacy_tree: LegacyTree, run_cli: RunCli, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_run = engine.run
    edited = HANDLER + b"# edited by someone else meanwhile\n"

    def run_then_edit(*args: Any, **kwargs: Any) -> engine.RunResult:
        result = real_run(*args, **kwargs)
        legacy_tree.handler.write_bytes(edited)
        return result

    monkeypatch.setattr(engine, "run", run_then_edit)
    result = run_cli("apply", "--write")
    assert result.exit_code == 1
    assert "not written: pkg/handler.py: changed on disk" in result.stderr
    assert legacy_tree.handler.read_bytes() == edited


def decisions(tree: LegacyTree) -> list[dict[str, Any]]:
    document = json.loads((tree.root / ".ctxmigrate-decisions.json").read_text())
    entries: list[dict[str, Any]] = document["decisions"]
    return entries


def test_interactive_applies_only_approved_sites_and_remembers(
    legacy_tree: LegacyTree, run_cli: RunCli
) -> None:
    first = run_cli("apply", "--interactive", input="n\ny\n")
    assert first.exit_code == 1
    assert first.stdout.count("Apply? [y]es, [n]o, [a]ll remaining, [q]uit") == 2
    assert f"pkg/handler.py:{FIRST_REWRITE_LINE}:" in first.stdout
    assert "+ await get_or_create_user_session(" in first.stdout
    assert "+    return " + REWRITTEN_CALL.decode() in first.stdout
    assert "+    ctx = await" not in first.stdout
    assert "1 rewrite site not approved" in first.stderr
    assert sorted(entry["decision"] for entry in decisions(legacy_tree)) == ["no", "yes"]

    # Resumed: nothing is asked again, the same site is applied.
    second = run_cli("apply", "--interactive", input="")
    assert "Apply?" not in second.stdout
    assert second.stdout == first.stdout.split("Apply?")[-1].split("\n", 1)[1]


def test_interactive_write_keeps_declined_sites_declined(
    legacy_tree: LegacyTree, run_cli: RunCli
) -> None:
    written = run_cli("apply", "--interactive", "--write", input="y\nn\n")
    assert written.exit_code == 0, written.output
    source = legacy_tree.handler.read_bytes()
    assert source.count(REWRITTEN_CALL) == 1
    # The applied site is gone from the code, so its answer is dropped.
    assert [entry["decision"] for entry in decisions(legacy_tree)] == ["no"]
    # The declined site moved (an import was added) but is still declined.
    again = run_cli("apply", "--interactive", "--write", input="")
    assert again.exit_code == 0
    assert "Apply?" not in again.stdout
    assert legacy_tree.handler.read_bytes() == source


def test_interactive_all_approves_the_rest(legacy_tree: LegacyTree, run_cli: RunCli) -> None:
    result = run_cli("apply", "--interactive", "--write", input="a\n")
    assert result.exit_code == 0
    assert result.stdout.count("Apply?") == 1
    assert legacy_tree.handler.read_bytes().count(REWRITTEN_CALL) == 2


def test_interactive_quit_applies_nothing_and_records_nothing(
    legacy_tree: LegacyTree, run_cli: RunCli
) -> None:
    result = run_cli("apply", "--interactive", input="q\n")
    assert result.exit_code == 0
    assert "Nothing to change." in result.stderr
    assert not (legacy_tree.root / ".ctxmigrate-decisions.json").exists()


def test_interactive_decisions_file_option(
    legacy_tree: LegacyTree, run_cli: RunCli, tmp_path: Path
) -> None:
    store = tmp_path / "review.json"
    run_cli("apply", "-i", "--decisions", str(store), input="y\ny\n")
    assert len(json.loads(store.read_text())["decisions"]) == 2
    assert not (legacy_tree.root / ".ctxmigrate-decisions.json").exists()


def test_interactive_with_a_corrupt_decisions_file_is_exit_2(
    legacy_tree: LegacyTree, run_cli: RunCli
) -> None:
    (legacy_tree.root / ".ctxmigrate-decisions.json").write_text("{")
    result = run_cli("apply", "--interactive")
    assert result.exit_code == 2
    assert ".ctxmigrate-decisions.json" in result.stderr


def test_apply_nonexistent_path_is_exit_2(legacy_tree: LegacyTree, run_cli: RunCli) -> None:
    result = run_cli("apply", "nope.py")
    assert result.exit_code == 2
    assert "nope.py" in result.stderr


def test_skipped_sites_and_notes_are_summarized(legacy_tree: LegacyTree, run_cli: RunCli) -> None:
    (legacy_tree.root / "tests").mkdir()
    (legacy_tree.root / "tests" / "test_handler.py").write_bytes(
        b"from pkg.deps import create_user_execution_context\n\n\n"
        b"def test_fresh():\n"
        b"    assert create_user_execution_context(user_id='u', thread_id='t')\n"
    )
    result = run_cli("apply")
    assert "Kept 1 site on purpose:" in result.stderr
    assert "Skipped 1 site:" in result.stderr


def test_notes_from_the_rewrite_are_in_the_summary(
    legacy_tree: LegacyTree, run_cli: RunCli
) -> None:
    # Every call is rewritten, yet the old import stays because a string names it.
    legacy_tree.handler.write_bytes(
        HANDLER.split(b"\n\n\ndef handle_sync")[0]
        + b'\n\n\nPATCH_TARGET = "pkg.handler.create_user_execution_context"\n'
    )
    result = run_cli("apply", "--select", "reuse-session")
    assert result.exit_code == 1
    (note,) = [line for line in result.stderr.splitlines() if line.startswith("note: ")]
    assert note.startswith("note: pkg/handler.py: ")
    assert "pkg.handler.create_user_execution_context" in note


def test_a_rewrite_that_failed_is_reported_and_the_file_left_untouched(
    legacy_tree: LegacyTree, run_cli: RunCli, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_run = engine.run

    def run_with_failed_output(*args: Any, **kwargs: Any) -> engine.RunResult:
        result = real_run(*args, **kwargs)
        for fix in result.fixes:
            fix.fixed = None
            fix.applied = []
            fix.error = "the rewritten module does not parse"
        return result

    monkeypatch.setattr(engine, "run", run_with_failed_output)
    for args in (["apply"], ["apply", "--write"]):
        result = run_cli(*args)
        assert result.exit_code == 1
        assert (
            "left untouched: pkg/handler.py: the rewritten module does not parse" in result.stderr
        )
        assert legacy_tree.handler.read_bytes() == HANDLER


# --- the review is the contract: an edited file is not written from old answers ---

TWO_SITES = b"""from pkg.deps import create_user_execution_context


async def declined(user_id, thread_id):
    return create_user_execution_context(user_id=user_id, thread_id=thread_id)


async def approved(user_id, thread_id):
    return create_user_execution_context(user_id=user_id, thread_id=thread_id)
"""
# Four lines added at the top move the declined site to where the approved one was.
EDIT_DURING_REVIEW = b"# edited while the review was running\nimport os\nimport sys\n\n"


def decision_by_function(tree: LegacyTree) -> dict[str, str]:
    return {entry["function"]: entry["decision"] for entry in decisions(tree)}


@pytest.mark.parametrize("mode", [["--write"], [], ["--patch", "-"]], ids=["write", "dry", "patch"])
def test_interactive_leaves_out_a_file_edited_after_the_review(
    legacy_tree: LegacyTree, run_cli: RunCli, monkeypatch: pytest.MonkeyPatch, mode: list[str]
) -> None:
    legacy_tree.handler.write_bytes(TWO_SITES)
    edited = EDIT_DURING_REVIEW + TWO_SITES
    real_run = engine.run

    def edit_before_the_fix_run(*args: Any, **kwargs: Any) -> engine.RunResult:
        # The review's audit has run and both answers are in; the user now edits the file.
        if kwargs.get("fix"):
            legacy_tree.handler.write_bytes(edited)
        return real_run(*args, **kwargs)

    monkeypatch.setattr(engine, "run", edit_before_the_fix_run)
    result = run_cli("apply", "-i", "--allow-dirty", *mode, input="n\ny\n")
    assert result.stdout.count("Apply?") == 2
    assert result.exit_code == 1, result.output
    assert "pkg/handler.py: changed since you reviewed it" in result.stderr
    # Nothing of the file is written, shown or patched: not the declined site above all.
    assert legacy_tree.handler.read_bytes() == edited
    assert "get_or_create_user_session" not in result.stdout.split("Apply?")[-1]
    assert decision_by_function(legacy_tree) == {"declined": "no", "approved": "yes"}

    # Asked nothing again: the answers are keyed by content and still apply.
    monkeypatch.setattr(engine, "run", real_run)
    again = run_cli("apply", "-i", "--write", input="")
    assert again.exit_code == 0, again.output
    assert "Apply?" not in again.stdout
    source = legacy_tree.handler.read_bytes()
    assert source.count(REWRITTEN_CALL) == 1
    assert source.index(LEGACY_CALL) < source.index(b"async def approved")
    assert decision_by_function(legacy_tree) == {"declined": "no"}


def test_interactive_answers_are_case_insensitive_words(
    legacy_tree: LegacyTree, run_cli: RunCli
) -> None:
    result = run_cli("apply", "-i", input="maybe\nYES\n N \n")
    assert result.exit_code == 1, result.output
    assert result.stdout.count("Apply?") == 3
    assert "'maybe' is not one of y, yes, n, no, a, all, q, quit" in result.stderr
    assert [entry["decision"] for entry in decisions(legacy_tree)] == ["yes", "no"]
    for answer in ("Y", "No", "A", "ALL", "Q", "quit"):
        (legacy_tree.root / ".ctxmigrate-decisions.json").unlink(missing_ok=True)
        assert "is not one of" not in run_cli("apply", "-i", input=answer + "\n").stderr


@pytest.mark.parametrize(
    ("answers", "args", "exit_code", "recorded"),
    [
        pytest.param("", [], 0, None, id="eof-first"),
        pytest.param("n\n", [], 0, ["no"], id="no-then-eof"),
        pytest.param("y\n", [], 1, ["yes"], id="dry-run-with-an-approval"),
        pytest.param("y\n", ["--write"], 0, [], id="write-with-an-approval"),
    ],
)
def test_interactive_end_of_input_means_quit(
    legacy_tree: LegacyTree,
    run_cli: RunCli,
    answers: str,
    args: list[str],
    exit_code: int,
    recorded: list[str] | None,
) -> None:
    result = run_cli("apply", "-i", *args, input=answers)
    assert "Aborted!" not in result.output
    assert "End of input: stopped asking" in result.stderr
    # Quitting is not an error: the exit code is the usual one for what was done.
    assert result.exit_code == exit_code, result.output
    store = legacy_tree.root / ".ctxmigrate-decisions.json"
    if recorded is None:
        assert not store.exists()
    else:
        assert [entry["decision"] for entry in decisions(legacy_tree)] == recorded
    written = legacy_tree.handler.read_bytes().count(REWRITTEN_CALL)
    assert written == (1 if "--write" in args else 0)


def test_write_refuses_a_read_only_file(legacy_tree: LegacyTree, run_cli: RunCli) -> None:
    legacy_tree.handler.chmod(0o444)
    result = run_cli("apply", "--write")
    assert result.exit_code == 1
    assert "not written: pkg/handler.py: read-only file" in result.stderr
    assert "Nothing to change." not in result.stderr
    assert legacy_tree.handler.read_bytes() == HANDLER
    assert legacy_tree.handler.stat().st_mode & 0o777 == 0o444


def test_write_does_not_follow_a_symlink_out_of_the_project(
    legacy_tree: LegacyTree, run_cli: RunCli, tmp_path: Path
) -> None:
    outside = tmp_path / "outside" / "real.py"
    outside.parent.mkdir()
    outside.write_bytes(HANDLER)
    legacy_tree.handler.unlink()
    legacy_tree.handler.symlink_to(outside)
    (legacy_tree.root / "pyproject.toml").write_text("[tool.ctxmigrate]\n")
    result = run_cli(
        "apply", "--write", "--config", "pyproject.toml", "pkg/handler.py", "pkg/deps.py"
    )
    assert result.exit_code == 1, result.output
    assert "not written: pkg/handler.py: a symlink to " in result.stderr
    assert "outside the project root" in result.stderr
    assert outside.read_bytes() == HANDLER
    assert legacy_tree.handler.is_symlink()


def test_patch_to_a_fifo_writes_into_the_pipe(
    legacy_tree: LegacyTree, run_cli: RunCli, tmp_path: Path
) -> None:
    fifo = tmp_path / "patch.fifo"
    received = read_fifo_in_background(fifo)
    result = run_cli("apply", "--patch", str(fifo))
    assert result.exit_code == 1, result.output
    assert received.result(timeout=10).startswith(b"diff --git a/pkg/handler.py ")
    assert stat.S_ISFIFO(fifo.stat().st_mode)


def test_summary_quotes_a_path_with_a_newline() -> None:
    odd = "pkg/we\nird.py"
    finding = Finding("CTX001", "review", odd, 3, 5, 3, 9, "s", "f", "sync function")
    fix = FixResult(path=odd, abspath=Path(odd), original=b"", error="boom")
    console = Console(file=io.StringIO(), width=80, color_system=None)
    render_summary(
        ApplySummary(
            fixes=[fix],
            skipped=[finding],
            file_errors=[FileError(odd, "syntax error")],
            written=[WriteOutcome(odd, written=False, reason="read-only file")],
            stale=[odd],
        ),
        console,
    )
    text = console.file.getvalue()  # type: ignore[attr-defined]
    assert "'pkg/we\\nird.py'" in text
    assert all("ird.py" not in line or "'pkg/we\\nird.py" in line for line in text.splitlines())
    assert len([line for line in text.splitlines() if "ird.py" in line]) == 5


def test_write_refuses_when_git_refused_the_checkout_unless_allow_dirty(
    legacy_tree: LegacyTree, run_cli: RunCli, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_run = engine.run

    def refused_by_git(*args: Any, **kwargs: Any) -> engine.RunResult:
        result = real_run(*args, **kwargs)
        refusal = FileError(".", "git refused this checkout (dubious ...)")
        result.git_refusals.append(refusal)
        result.report.errors.append(refusal)
        return result

    monkeypatch.setattr(engine, "run", refused_by_git)
    refused = run_cli("apply", "--write")
    assert refused.exit_code == 2
    assert "refusing to write: git refused to read the checkout" in refused.stderr
    assert "--allow-dirty" in refused.stderr
    assert "  .: git refused this checkout (dubious ...)" in refused.stderr
    assert legacy_tree.handler.read_bytes() == HANDLER
    # A dry run only shows what would change.
    assert run_cli("apply").exit_code == 1
    allowed = run_cli("apply", "--write", "--allow-dirty")
    assert REWRITTEN_CALL in legacy_tree.handler.read_bytes()
    assert "Changed 2 sites in 1 file." in allowed.stderr


@needs_git
@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="chown needs root")
def test_write_refuses_a_checkout_owned_by_another_user(
    legacy_tree: LegacyTree, run_cli: RunCli
) -> None:
    legacy_tree.commit_all()
    legacy_tree.handler.write_bytes(HANDLER + b"# uncommitted\n")
    for path in [legacy_tree.root, *legacy_tree.root.rglob("*")]:
        os.chown(path, 65534, 65534, follow_symlinks=False)
    # git now says "detected dubious ownership": the dirty check is impossible.
    result = run_cli("apply", "--write")
    assert result.exit_code == 2, result.output
    assert "git refused" in result.stderr
    assert legacy_tree.handler.read_bytes() == HANDLER + b"# uncommitted\n"


def test_a_file_that_cannot_be_analysed_fails_the_run_and_says_so(
    legacy_tree: LegacyTree, run_cli: RunCli
) -> None:
    legacy_tree.handler.unlink()
    broken = legacy_tree.root / "pkg" / "broken.py"
    broken.write_bytes(b"from pkg.deps import create_user_execution_context\ndef (:\n")
    for mode in ([], ["--write"], ["--patch", "-"]):
        result = run_cli("apply", *mode)
        assert result.exit_code == 1, (mode, result.output)
        assert "Nothing to change.\n" not in result.stderr
        assert "Nothing to change in the files that could be analysed." in result.stderr
        assert (
            "1 file could not be analysed: legacy sites in it are neither found nor changed"
            in result.stderr
        )
        assert "error: pkg/broken.py: syntax error: line 2" in result.stderr


def test_a_file_that_cannot_be_analysed_fails_a_write_that_changed_the_others(
    legacy_tree: LegacyTree, run_cli: RunCli
) -> None:
    (legacy_tree.root / "pkg" / "broken.py").write_bytes(
        b"from pkg.deps import create_user_execution_context\ndef (:\n"
    )
    result = run_cli("apply", "--write")
    assert result.exit_code == 1
    assert REWRITTEN_CALL in legacy_tree.handler.read_bytes()
    assert "Changed 2 sites in 1 file." in result.stderr
    assert "1 file could not be analysed" in result.stderr


@needs_git
@pytest.mark.parametrize("mode", [["--patch", "PATCH"], []], ids=["patch-file", "dry-run"])
def test_patch_paths_are_relative_to_the_git_top_level_for_a_project_in_a_subfolder(
    legacy_tree: LegacyTree,
    run_cli: RunCli,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    mode: list[str],
) -> None:
    expected = written_result(legacy_tree, run_cli)
    top = legacy_tree.root.parent / "monorepo"
    project = top / "services" / "chat"
    project.parent.mkdir(parents=True)
    legacy_tree.root.rename(project)
    monkeypatch.chdir(project)
    checkout = LegacyTree(top)
    checkout.commit_all()
    patch = tmp_path / "migration.patch"
    result = run_cli("apply", *[str(patch) if arg == "PATCH" else arg for arg in mode])
    assert result.exit_code == 1, result.output
    if not mode:
        patch.write_bytes(result.stdout_bytes)
    assert patch.read_bytes().startswith(
        b"diff --git a/services/chat/pkg/handler.py b/services/chat/pkg/handler.py\n"
    )
    # From the repository top, as git apply is usually run, and from the project.
    checkout.git("apply", "--check", str(patch))
    checkout.git("-C", "services/chat", "apply", "--check", str(patch))
    checkout.git("apply", str(patch))
    assert (project / "pkg" / "handler.py").read_bytes() == expected
