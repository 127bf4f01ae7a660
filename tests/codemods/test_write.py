"""Safe writing: patches git accepts byte for byte, atomic writes, git dirtiness."""

from __future__ import annotations

import errno
import os
import shutil
import stat
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from ctxmigrate.codemods.rewrite import writing as write
from ctxmigrate.codemods.rewrite.writing import (
    GitCheckError,
    atomic_write_bytes,
    build_patch,
    symlink_outside_root,
    uncommitted_files,
    unified_diff,
    unified_diff_bytes,
    write_fixed_file,
    write_fixed_files,
    writes_in_place,
)
from tests.cli.conftest import read_fifo_in_background

from .support import git

needs_git = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")


@dataclass(frozen=True)
class Fixed:
    path: str
    abspath: Path
    original: bytes
    fixed: bytes | None


def make_repo(tmp_path: Path, files: dict[str, bytes]) -> Path:
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q")
    git(repo, "config", "core.autocrlf", "false")
    for name, data in files.items():
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        (repo / name).write_bytes(data)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "initial")
    return repo


OLD = (
    b"import deps\n\nasync def handle():\n"
    b"    ctx = deps.create_user_execution_context(user_id=u)\n    return ctx\n"
)
NEW = (
    b"import deps\n\nasync def handle():\n"
    b"    ctx = await get_or_create_user_session(user_id=u)\n    return ctx\n"
)


def test_diff_of_identical_bytes_is_empty() -> None:
    assert unified_diff_bytes("m.py", OLD, OLD) == b""
    assert unified_diff("m.py", OLD, OLD) == ""


def test_diff_has_git_headers_and_one_hunk() -> None:
    text = unified_diff("pkg/m.py", OLD, NEW)
    lines = text.splitlines()
    assert lines[:3] == ["diff --git a/pkg/m.py b/pkg/m.py", "--- a/pkg/m.py", "+++ b/pkg/m.py"]
    assert lines[3].startswith("@@ -1,5 +1,5 @@")
    assert "-    ctx = deps.create_user_execution_context(user_id=u)" in lines
    assert "+    ctx = await get_or_create_user_session(user_id=u)" in lines


def test_missing_final_newline_gets_git_marker() -> None:
    patch = unified_diff_bytes("m.py", b"a = 1\nb = 2", b"a = 1\nb = 3")
    assert patch.endswith(
        b"-b = 2\n\\ No newline at end of file\n+b = 3\n\\ No newline at end of file\n"
    )


def test_lone_carriage_return_is_not_a_line_break() -> None:
    # git only splits on \n; splitting on \r would produce hunks that do not apply.
    patch = unified_diff_bytes("m.py", b"a = 1\rb = 2\n", b"a = 1\rb = 3\n")
    assert b"-a = 1\rb = 2\n+a = 1\rb = 3\n" in patch


def test_display_diff_decodes_with_the_files_encoding_cookie() -> None:
    old = "# -*- coding: latin-1 -*-\nname = 'é'\nx = 1\n".encode("latin-1")
    new = "# -*- coding: latin-1 -*-\nname = 'é'\nx = 2\n".encode("latin-1")
    text = unified_diff("m.py", old, new)
    assert " name = 'é'" in text


def test_quoted_path_for_special_characters() -> None:
    patch = unified_diff_bytes('we"ird.py', b"a\n", b"b\n")
    assert patch.startswith(b'diff --git "a/we\\"ird.py" "b/we\\"ird.py"\n')


@needs_git
@pytest.mark.parametrize(
    ("name", "old", "new"),
    [
        pytest.param("pkg/handler.py", OLD, NEW, id="lf"),
        pytest.param(
            "crlf.py", OLD.replace(b"\n", b"\r\n"), NEW.replace(b"\n", b"\r\n"), id="crlf"
        ),
        pytest.param("tail.py", OLD.rstrip(b"\n"), NEW.rstrip(b"\n"), id="no-final-newline"),
        pytest.param("gain_newline.py", b"x = 1", b"x = 1\n", id="newline-added"),
        pytest.param(
            "latin.py",
            "# -*- coding: latin-1 -*-\nname = 'café'\nctx = old()\n".encode("latin-1"),
            "# -*- coding: latin-1 -*-\nname = 'café'\nctx = await new()\n".encode("latin-1"),
            id="latin-1",
        ),
        pytest.param(
            "bom.py",
            b"\xef\xbb\xbfimport deps\r\nx = 1\r\n",
            b"\xef\xbb\xbfimport deps\r\nx = 2\r\n",
            id="bom-crlf",
        ),
        pytest.param("dir with space/m.py", OLD, NEW, id="space-in-path"),
        pytest.param('q"uote.py', OLD, NEW, id="quote-in-path"),
    ],
)
def test_git_apply_reproduces_the_new_bytes_exactly(
    tmp_path: Path, name: str, old: bytes, new: bytes
) -> None:
    repo = make_repo(tmp_path, {name: old, "other.py": b"untouched\n"})
    patch_file = tmp_path / "fix.patch"
    patch_file.write_bytes(
        build_patch([Fixed(name, repo / name, old, new), Fixed("other.py", repo, b"", None)])
    )
    git(repo, "apply", "--check", str(patch_file))
    git(repo, "apply", str(patch_file))
    assert (repo / name).read_bytes() == new
    assert (repo / "other.py").read_bytes() == b"untouched\n"


def test_atomic_write_keeps_the_mode_bits(tmp_path: Path) -> None:
    target = tmp_path / "script.py"
    target.write_bytes(b"old\n")
    target.chmod(0o751)
    atomic_write_bytes(target, b"new\n")
    assert target.read_bytes() == b"new\n"
    assert stat.S_IMODE(target.stat().st_mode) == 0o751
    assert [p.name for p in tmp_path.iterdir()] == ["script.py"]


def test_atomic_write_of_a_new_file_uses_the_umask(tmp_path: Path) -> None:
    old_umask = os.umask(0o027)
    try:
        atomic_write_bytes(tmp_path / "report.json", b"{}")
    finally:
        os.umask(old_umask)
    assert stat.S_IMODE((tmp_path / "report.json").stat().st_mode) == 0o640


def test_atomic_write_through_a_symlink_replaces_the_target_and_keeps_the_link(
    tmp_path: Path,
) -> None:
    real = tmp_path / "real.py"
    real.write_bytes(b"old\n")
    link = tmp_path / "link.py"
    link.symlink_to(real)
    atomic_write_bytes(link, b"new\n")
    assert link.is_symlink()
    assert real.read_bytes() == b"new\n"


def test_failed_write_leaves_no_temporary_file(tmp_path: Path) -> None:
    directory = tmp_path / "missing"
    with pytest.raises(FileNotFoundError):
        atomic_write_bytes(directory / "x.py", b"data")
    assert list(tmp_path.iterdir()) == []


def test_write_fixed_file_writes_when_disk_matches_the_original(tmp_path: Path) -> None:
    target = tmp_path / "m.py"
    target.write_bytes(OLD)
    outcome = write_fixed_file(Fixed("m.py", target, OLD, NEW))
    assert outcome.written
    assert target.read_bytes() == NEW


def test_write_refuses_a_file_changed_on_disk_since_it_was_read(tmp_path: Path) -> None:
    target = tmp_path / "m.py"
    target.write_bytes(OLD + b"# edited meanwhile\n")
    outcome = write_fixed_file(Fixed("m.py", target, OLD, NEW))
    assert not outcome.written
    assert outcome.reason is not None and "changed on disk" in outcome.reason
    assert target.read_bytes() == OLD + b"# edited meanwhile\n"


def test_write_reports_a_deleted_file(tmp_path: Path) -> None:
    outcome = write_fixed_file(Fixed("gone.py", tmp_path / "gone.py", OLD, NEW))
    assert not outcome.written
    assert outcome.reason is not None and "cannot read" in outcome.reason


def test_write_fixed_files_skips_files_without_a_fix(tmp_path: Path) -> None:
    (tmp_path / "a.py").write_bytes(OLD)
    (tmp_path / "b.py").write_bytes(OLD)
    outcomes = write_fixed_files(
        [Fixed("a.py", tmp_path / "a.py", OLD, NEW), Fixed("b.py", tmp_path / "b.py", OLD, None)]
    )
    assert [(o.path, o.written) for o in outcomes] == [("a.py", True)]
    assert (tmp_path / "b.py").read_bytes() == OLD


@needs_git
def test_uncommitted_files_lists_modified_and_untracked_files_only(tmp_path: Path) -> None:
    repo = make_repo(tmp_path, {"clean.py": b"a\n", "pkg/dirty.py": b"b\n", "ab.py": b"c\n"})
    (repo / "pkg" / "dirty.py").write_bytes(b"changed\n")
    (repo / "new dir").mkdir()
    (repo / "new dir" / "new.py").write_bytes(b"untracked\n")
    (repo / "a*.py").write_bytes(b"glob-looking name\n")
    git(repo, "add", "a*.py")
    git(repo, "commit", "-q", "-m", "glob")
    given = [
        repo / "clean.py",
        repo / "pkg" / "dirty.py",
        repo / "new dir" / "new.py",
        repo / "a*.py",
        repo / "ab.py",
    ]
    (repo / "ab.py").write_bytes(b"dirty too\n")
    assert uncommitted_files(given) == [
        repo / "pkg" / "dirty.py",
        repo / "new dir" / "new.py",
        repo / "ab.py",
    ]


def test_uncommitted_files_outside_a_checkout_is_empty(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "m.py").write_bytes(b"x\n")
    # Stop git from finding a checkout that happens to contain the temp directory.
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    assert uncommitted_files([tmp_path / "m.py"]) == []


def test_a_name_with_a_space_ends_with_a_tab_as_git_writes_it() -> None:
    lines = unified_diff_bytes("my dir/h a.py", OLD, NEW).split(b"\n")
    assert lines[:3] == [
        b"diff --git a/my dir/h a.py b/my dir/h a.py",
        b"--- a/my dir/h a.py\t",
        b"+++ b/my dir/h a.py\t",
    ]
    # Without a space, no tab (git's rule is the space, not any whitespace).
    assert unified_diff_bytes("pkg/m.py", OLD, NEW).split(b"\n")[1] == b"--- a/pkg/m.py"


@pytest.mark.skipif(shutil.which("patch") is None, reason="patch is not installed")
@pytest.mark.parametrize(
    "name", ["my dir/h a.py", "my dir/ünï/h a.py", "plain/m.py", "two  spaces .py"]
)
def test_patch_p1_applies_paths_with_spaces(tmp_path: Path, name: str) -> None:
    tree = tmp_path / "tree"
    (tree / name).parent.mkdir(parents=True, exist_ok=True)
    (tree / name).write_bytes(OLD)
    patch_file = tmp_path / "fix.patch"
    patch_file.write_bytes(build_patch([Fixed(name, tree / name, OLD, NEW)]))
    with patch_file.open("rb") as stdin:
        subprocess.run(["patch", "-p1", "--batch"], cwd=tree, stdin=stdin, check=True)
    assert (tree / name).read_bytes() == NEW


@needs_git
@pytest.mark.parametrize("name", ["my dir/h a.py", "my dir/ünï/h a.py", "two  spaces .py"])
def test_git_apply_accepts_the_tab_after_a_name_with_spaces(tmp_path: Path, name: str) -> None:
    repo = make_repo(tmp_path, {name: OLD})
    patch_file = tmp_path / "fix.patch"
    patch_file.write_bytes(build_patch([Fixed(name, repo / name, OLD, NEW)]))
    git(repo, "apply", "--check", str(patch_file))
    git(repo, "apply", str(patch_file))
    assert (repo / name).read_bytes() == NEW
    # The ---/+++ lines are the ones git itself writes (unicode left unquoted, as ours).
    git(repo, "commit", "-q", "-am", "fixed")
    made = git(repo, "-c", "core.quotePath=false", "diff", "--no-color", "HEAD~1", "HEAD")
    ours = [line for line in patch_file.read_bytes().split(b"\n") if line[:3] in (b"---", b"+++")]
    assert ours == [line for line in made.stdout.split(b"\n") if line[:3] in (b"---", b"+++")]


def test_writes_in_place_only_for_existing_nodes_that_are_not_regular_files(
    tmp_path: Path,
) -> None:
    regular = tmp_path / "report.json"
    regular.write_bytes(b"{}")
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    link_to_fifo = tmp_path / "link"
    link_to_fifo.symlink_to(fifo)
    assert not writes_in_place(regular)
    assert not writes_in_place(tmp_path / "missing.json")
    assert not writes_in_place(tmp_path)  # a directory: the atomic path reports the error
    assert writes_in_place(fifo)
    assert writes_in_place(link_to_fifo)
    # A character device: only stat()ed here, never written.
    assert writes_in_place(Path(os.devnull))


def test_atomic_write_to_a_fifo_writes_into_it_and_keeps_the_fifo(tmp_path: Path) -> None:
    fifo = tmp_path / "out.fifo"
    received = read_fifo_in_background(fifo)
    atomic_write_bytes(fifo, b"report\n")
    assert received.result(timeout=10) == b"report\n"
    assert stat.S_ISFIFO(fifo.stat().st_mode)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.fifo"]


def test_write_refuses_a_read_only_file_and_keeps_it(tmp_path: Path) -> None:
    target = tmp_path / "m.py"
    target.write_bytes(OLD)
    target.chmod(0o444)
    outcome = write_fixed_file(Fixed("m.py", target, OLD, NEW))
    assert not outcome.written
    assert outcome.reason is not None and outcome.reason.startswith("read-only file")
    assert target.read_bytes() == OLD
    assert stat.S_IMODE(target.stat().st_mode) == 0o444


def test_write_refuses_a_symlink_out_of_the_root_and_follows_one_inside(tmp_path: Path) -> None:
    root = tmp_path / "project"
    root.mkdir()
    outside = tmp_path / "elsewhere.py"
    outside.write_bytes(OLD)
    (root / "out.py").symlink_to(outside)
    (root / "real.py").write_bytes(OLD)
    (root / "in.py").symlink_to("real.py")
    refused = write_fixed_file(Fixed("out.py", root / "out.py", OLD, NEW), root)
    assert not refused.written
    assert refused.reason == (
        f"a symlink to {outside}, outside the project root; not written through"
    )
    assert outside.read_bytes() == OLD
    assert write_fixed_file(Fixed("in.py", root / "in.py", OLD, NEW), root).written
    assert (root / "real.py").read_bytes() == NEW
    assert (root / "in.py").is_symlink()
    assert symlink_outside_root(root / "real.py", root) is None
    # The root itself reached through a symlink is still the project.
    alias = tmp_path / "alias"
    alias.symlink_to(root)
    assert symlink_outside_root(alias / "real.py", root) is None


@needs_git
@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="chown needs root")
def test_uncommitted_files_raises_when_git_refuses_the_checkout(tmp_path: Path) -> None:
    repo = make_repo(tmp_path, {"m.py": b"x\n"})
    for path in [repo, *repo.rglob("*")]:
        os.chown(path, 65534, 65534, follow_symlinks=False)
    with pytest.raises(GitCheckError, match=r"dubious ownership.*--allow-dirty"):
        uncommitted_files([repo / "m.py"])


# -- what mutation testing found unpinned -------------------------------------------


@needs_git
@pytest.mark.parametrize(
    "name", ["bell\x07.py", "ctl\x01x.py", "del\x7f.py", "tab\tname.py", "back\\slash.py"]
)
def test_control_characters_in_paths_are_quoted_as_git_quotes_them(
    tmp_path: Path, name: str
) -> None:
    repo = make_repo(tmp_path, {name: OLD})
    patch_file = tmp_path / "fix.patch"
    patch_file.write_bytes(build_patch([Fixed(name, repo / name, OLD, NEW)]))
    git(repo, "apply", "--check", str(patch_file))
    git(repo, "apply", str(patch_file))
    assert (repo / name).read_bytes() == NEW
    ours = patch_file.read_bytes().split(b"\n")[0]
    assert ours.startswith(b'diff --git "a/')
    # git writes \a for BEL where we write the octal \007; git reads both.
    made = git(repo, "diff", "--no-color").stdout.split(b"\n")[0]
    assert ours == made.replace(b"\\a", b"\\007")


def test_control_character_escapes_are_octal_except_the_named_ones() -> None:
    patch = unified_diff_bytes("a\x01\x1f\x7f\t\n\r.py", b"a\n", b"b\n")
    assert patch.split(b"\n")[0] == (
        b'diff --git "a/a\\001\\037\\177\\t\\n\\r.py" "b/a\\001\\037\\177\\t\\n\\r.py"'
    )


def test_a_write_failing_after_the_temporary_file_exists_removes_it(tmp_path: Path) -> None:
    # Replacing a directory by a file fails in os.replace, after mkstemp and the write.
    directory = tmp_path / "pkg"
    directory.mkdir()
    with pytest.raises(OSError):
        atomic_write_bytes(directory, b"data")
    assert [p.name for p in tmp_path.iterdir()] == ["pkg"]


def test_cannot_write_is_reported_as_not_written_and_leaves_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "m.py"
    target.write_bytes(OLD)

    def disk_full(source: object, destination: object) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(write.os, "replace", disk_full)
    outcome = write_fixed_file(Fixed("m.py", target, OLD, NEW))
    assert outcome == write.WriteOutcome(
        "m.py", written=False, reason=f"cannot write: {os.strerror(errno.ENOSPC)}"
    )
    assert target.read_bytes() == OLD
    assert [p.name for p in tmp_path.iterdir()] == ["m.py"]


def test_a_new_file_write_leaves_the_umask_as_it_was(tmp_path: Path) -> None:
    old_umask = os.umask(0o077)
    try:
        atomic_write_bytes(tmp_path / "new.py", b"x\n")
        current = os.umask(0o077)
    finally:
        os.umask(old_umask)
    assert current == 0o077
    assert stat.S_IMODE((tmp_path / "new.py").stat().st_mode) == 0o600


def test_a_stat_error_other_than_not_found_is_left_to_the_atomic_write(tmp_path: Path) -> None:
    loop = tmp_path / "loop.py"
    loop.symlink_to(tmp_path / "other.py")
    (tmp_path / "other.py").symlink_to(loop)
    assert not writes_in_place(loop)
    with pytest.raises(OSError) as raised:
        atomic_write_bytes(loop, b"x\n")
    assert raised.value.errno == errno.ELOOP
    assert sorted(p.name for p in tmp_path.iterdir()) == ["loop.py", "other.py"]


@needs_git
def test_uncommitted_files_sees_both_names_of_a_rename_and_one_character_names(
    tmp_path: Path,
) -> None:
    repo = make_repo(tmp_path, {"old_name.py": b"a\n", "b": b"b\n", "clean.py": b"c\n"})
    git(repo, "mv", "old_name.py", "new_name.py")
    (repo / "b").write_bytes(b"changed\n")
    (repo / "c").write_bytes(b"untracked\n")
    given = [repo / "new_name.py", repo / "old_name.py", repo / "b", repo / "c", repo / "clean.py"]
    assert uncommitted_files(given) == given[:4]


def test_porcelain_entries_of_renames_and_copies_carry_their_source() -> None:
    output = b"R  new.py\0old.py\0C  copy.py\0orig.py\0 M a\0?? b.py\0"
    assert write._porcelain_paths(output) == {
        "new.py",
        "old.py",
        "copy.py",
        "orig.py",
        "a",
        "b.py",
    }


@needs_git
def test_a_failing_git_status_raises_with_the_detail_git_gave(tmp_path: Path) -> None:
    repo = make_repo(tmp_path, {"m.py": b"x\n"})
    (repo / ".git" / "index").write_bytes(b"garbage\n")
    with pytest.raises(GitCheckError) as raised:
        uncommitted_files([repo / "m.py"])
    message = str(raised.value)
    assert message.startswith(
        f"cannot check {repo.resolve()} for uncommitted changes: git failed ("
    )
    assert "index file smaller than expected" in message
    assert message.endswith("or pass --allow-dirty")
