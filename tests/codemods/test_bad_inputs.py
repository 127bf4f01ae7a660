"""Inputs that must not break the audit: each problem file is an error, the rest is audited."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ctxmigrate.codemods import discovery, engine
from ctxmigrate.codemods.analysis.file_analysis import FileAnalysis
from ctxmigrate.codemods.config import Config
from ctxmigrate.codemods.engine import default_codemods, run
from ctxmigrate.codemods.model import AuditReport, CtxmigrateError

DEPS = b"def create_user_execution_context(user_id, thread_id, run_id=None):\n    return 1\n"
LEGACY_CALL = "create_user_execution_context(user_id=user_id, thread_id=thread_id)"
HANDLER = (
    "from pkg.deps import create_user_execution_context\n\n"
    "async def handle(user_id, thread_id):\n"
    f"    return {LEGACY_CALL}\n"
)


@pytest.fixture
def tree(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A small package with one legacy rewrite site, audited from its root."""
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "__init__.py").write_bytes(b"")
    (tmp_path / "pkg" / "deps.py").write_bytes(DEPS)
    (tmp_path / "pkg" / "handler.py").write_text(HANDLER)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def audit(root: Path, *paths: Path) -> AuditReport:
    config = Config(root=root)
    return run(list(paths) or [root], config, default_codemods(), use_cache=False).report


def errors(report: AuditReport) -> dict[str, str]:
    return {error.path: error.message for error in report.errors}


def rewrites(report: AuditReport) -> list[tuple[str, int, int]]:
    return [(f.path, f.line, f.column) for f in report.findings if f.category == "rewrite"]


def test_baseline_tree_has_one_rewrite(tree: Path) -> None:
    report = audit(tree)
    assert rewrites(report) == [("pkg/handler.py", 4, 12)]
    assert report.errors == []
    assert report.files_scanned == 3


def test_bom_file_is_parsed_and_columns_ignore_the_bom(tree: Path) -> None:
    (tree / "pkg" / "bom.py").write_bytes(b"\xef\xbb\xbf" + HANDLER.encode())
    report = audit(tree)
    assert ("pkg/bom.py", 4, 12) in rewrites(report)
    assert report.errors == []


def test_crlf_file_keeps_line_numbers(tree: Path) -> None:
    (tree / "pkg" / "crlf.py").write_bytes(HANDLER.replace("\n", "\r\n").encode())
    assert ("pkg/crlf.py", 4, 12) in rewrites(audit(tree))


def test_cp1252_file_with_cookie_counts_characters_not_bytes(tree: Path) -> None:
    source = (
        "# -*- coding: cp1252 -*-\n"
        "from pkg.deps import create_user_execution_context\n\n"
        "async def handle(user_id, thread_id):\n"
        f"    café = {LEGACY_CALL}\n"
    )
    (tree / "pkg" / "latin.py").write_bytes(source.encode("cp1252"))
    report = audit(tree)
    # "    café = " is 11 characters (12 bytes in UTF-8): the call starts at column 12.
    assert ("pkg/latin.py", 5, 12) in rewrites(report)
    assert report.errors == []


def test_python2_file_is_an_error_saying_so(tree: Path) -> None:
    (tree / "pkg" / "old.py").write_text(
        "from pkg.deps import create_user_execution_context\nprint 'hello'\n"
    )
    report = audit(tree)
    message = errors(report)["pkg/old.py"]
    assert "syntax error" in message and "line 2" in message
    assert "Python 2" in message
    assert rewrites(report) == [("pkg/handler.py", 4, 12)]


def test_syntax_error_reports_its_line(tree: Path) -> None:
    (tree / "pkg" / "broken.py").write_text(
        "from pkg.deps import create_user_execution_context\n\ndef broken(:\n    pass\n"
    )
    report = audit(tree)
    assert "line 3" in errors(report)["pkg/broken.py"]
    assert "Python 2" not in errors(report)["pkg/broken.py"]
    assert rewrites(report) == [("pkg/handler.py", 4, 12)]


def test_syntax_newer_than_the_interpreter_is_parsed_not_reported(tree: Path) -> None:
    # PEP 701 (3.12): the same quotes inside an f-string replacement field.
    source = HANDLER + '\nasync def other(user_id, x):\n    return f"{x["a"]}"\n'
    (tree / "pkg" / "modern.py").write_text(source)
    report = audit(tree)
    assert report.errors == []
    assert ("pkg/modern.py", 4, 12) in rewrites(report)


def test_empty_file_and_no_final_newline(tree: Path) -> None:
    (tree / "pkg" / "empty.py").write_bytes(b"")
    (tree / "pkg" / "tail.py").write_text(HANDLER.rstrip("\n"))
    report = audit(tree)
    assert report.errors == []
    assert ("pkg/tail.py", 4, 12) in rewrites(report)
    assert report.files_scanned == 5


def test_undecodable_bytes_without_cookie(tree: Path) -> None:
    (tree / "pkg" / "latin.py").write_bytes(b"name = 'caf\xe9'\n")
    report = audit(tree)
    message = errors(report)["pkg/latin.py"]
    assert "cannot decode as utf-8" in message and "line 1" in message


def test_wrong_cookie_is_an_error(tree: Path) -> None:
    (tree / "pkg" / "cookie.py").write_bytes(b"# -*- coding: klingon -*-\nx = 1\n")
    assert "unknown encoding 'klingon'" in errors(audit(tree))["pkg/cookie.py"]


def test_binary_junk_named_py(tree: Path) -> None:
    (tree / "pkg" / "junk.py").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    report = audit(tree)
    assert "binary content" in errors(report)["pkg/junk.py"]
    assert rewrites(report) == [("pkg/handler.py", 4, 12)]


def test_huge_file_is_skipped_with_an_error(tree: Path) -> None:
    (tree / "pkg" / "generated.py").write_text("x = 1\n" * 50)
    config = Config(root=tree, max_file_bytes=200)
    report = run([tree], config, default_codemods(), use_cache=False).report
    assert "over the 200-byte limit" in errors(report)["pkg/generated.py"]
    assert rewrites(report) == [("pkg/handler.py", 4, 12)]


def test_unreadable_file(tree: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    secret = tree / "pkg" / "secret.py"
    secret.write_text(HANDLER)
    secret.chmod(0)
    try:
        if os.access(secret, os.R_OK):
            # Running as root: mode 000 does not stop reads, so the kernel's
            # answer is simulated for this one file.
            real_read = discovery._read_at_most

            def read_at_most(path: str, size: int) -> bytes:
                if os.path.basename(path) == "secret.py":
                    raise PermissionError(13, "Permission denied", str(path))
                return real_read(path, size)

            monkeypatch.setattr(discovery, "_read_at_most", read_at_most)
        report = audit(tree)
        assert errors(report)["pkg/secret.py"] == "unreadable: permission denied"
        assert rewrites(report) == [("pkg/handler.py", 4, 12)]
    finally:
        secret.chmod(0o644)


def test_symlink_loops_of_files_and_directories(tree: Path) -> None:
    (tree / "pkg" / "loop.py").symlink_to("loop.py")
    (tree / "pkg" / "again").symlink_to(tree / "pkg")
    report = audit(tree)
    found = errors(report)
    assert "symlink loop" in found["pkg/loop.py"]
    assert "symlink loop" in found["pkg/again"]
    assert rewrites(report) == [("pkg/handler.py", 4, 12)]


def test_nonexistent_path_is_a_usage_error(tree: Path) -> None:
    with pytest.raises(CtxmigrateError, match=r"missing\.py: no such file or directory"):
        audit(tree, tree / "missing.py")


def test_excluded_and_virtualenv_files_are_not_scanned(tree: Path) -> None:
    (tree / ".venv" / "lib").mkdir(parents=True)
    (tree / ".venv" / "lib" / "x.py").write_text(HANDLER)
    (tree / "generated").mkdir()
    (tree / "generated" / "x.py").write_text(HANDLER)
    config = Config(root=tree, exclude=("generated/",))
    report = run([tree], config, default_codemods(), use_cache=False).report
    assert rewrites(report) == [("pkg/handler.py", 4, 12)]
    assert report.files_scanned == 3


def test_files_the_prefilter_rules_out_are_counted_but_never_parsed(tree: Path) -> None:
    (tree / "pkg" / "unrelated_broken.py").write_text("def broken(:\n")
    report = audit(tree)
    assert report.errors == []
    assert report.files_scanned == 4


def test_an_internal_error_in_one_file_is_reported_and_the_rest_audited(
    tree: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tree / "pkg" / "odd.py").write_text(HANDLER)
    real_analyze = engine.analyze_source

    def analyze(path: Path, *args: object, **kwargs: object) -> FileAnalysis:
        if path.name == "odd.py":
            raise KeyError("boom")
        return real_analyze(path, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(engine, "analyze_source", analyze)
    report = audit(tree)
    assert errors(report)["pkg/odd.py"].startswith("internal error while analysing this file")
    assert rewrites(report) == [("pkg/handler.py", 4, 12)]


def test_long_generated_expression_is_audited_and_fixed(tree: Path) -> None:
    # 600 terms: CPython compiles it, Python's default recursion limit does not
    # let LibCST's code generation through it.
    chain = " + ".join(["'a'"] * 600)
    (tree / "pkg" / "generated.py").write_text(f"BIG = {chain}\n\n{HANDLER}")
    result = run([tree], Config(root=tree), default_codemods(), fix=True, use_cache=False)
    assert result.report.errors == []
    assert ("pkg/generated.py", 6, 12) in rewrites(result.report)
    (fixed,) = [fix for fix in result.fixes if fix.path == "pkg/generated.py"]
    assert fixed.error is None
    assert fixed.fixed is not None and b"await get_or_create_user_session(" in fixed.fixed


@pytest.mark.parametrize("cookie", ["hex", "rot13", "undefined", "base64"])
def test_a_cookie_naming_a_non_text_codec_is_an_error_for_that_file(
    tree: Path, cookie: str
) -> None:
    (tree / "pkg" / "odd.py").write_bytes(
        f"# coding: {cookie}\nfrom pkg.deps import create_user_execution_context\n".encode()
    )
    report = audit(tree)
    assert errors(report) == {
        "pkg/odd.py": f"unknown or non-text encoding '{cookie}' in the coding cookie"
    }
    assert rewrites(report) == [("pkg/handler.py", 4, 12)]


# Run in a child process with a time and memory limit: without the regular-file
# check a FIFO blocks open() forever and /dev/zero is read until MemoryError.
SPECIAL_FILES_AUDIT = """\
import json, resource, sys
from pathlib import Path
resource.setrlimit(resource.RLIMIT_AS, (2 * 1024**3, 2 * 1024**3))
from ctxmigrate.codemods.config import Config
from ctxmigrate.codemods.engine import run
root = Path(sys.argv[1])
paths = [Path(p) for p in sys.argv[2:]] or [root]
report = run(paths, Config(root=root), use_cache=False, jobs=1).report
print(json.dumps(report.to_json()))
"""


def audit_in_child(tree: Path, *paths: str) -> dict[str, object]:
    import json
    import subprocess
    import sys

    completed = subprocess.run(
        [sys.executable, "-c", SPECIAL_FILES_AUDIT, str(tree), *paths],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tree,
    )
    assert completed.returncode == 0, completed.stderr
    document: dict[str, object] = json.loads(completed.stdout)
    return document


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
@pytest.mark.parametrize("git", [False, True])
def test_fifos_and_devices_named_py_are_errors_and_never_opened(tree: Path, git: bool) -> None:
    import shutil
    import subprocess

    if git and shutil.which("git") is None:
        pytest.skip("needs the git binary")
    os.mkfifo(tree / "pkg" / "pipe.py")
    (tree / "fifos").mkdir()
    os.mkfifo(tree / "fifos" / "named")
    (tree / "pkg" / "linked_pipe.py").symlink_to(tree / "fifos" / "named")
    (tree / "pkg" / "zero.py").symlink_to("/dev/zero")
    if git:
        subprocess.run(["git", "init", "-q"], cwd=tree, check=True)
        subprocess.run(["git", "add", "pkg/linked_pipe.py", "pkg/zero.py"], cwd=tree, check=True)

    document = audit_in_child(tree)
    explicit = audit_in_child(tree, "pkg/pipe.py", "pkg/handler.py", "pkg/deps.py")

    fifo = "not a regular file: a FIFO (named pipe); not read"
    device = "not a regular file: a character device; not read"
    expected = {"pkg/linked_pipe.py": fifo, "pkg/zero.py": device}
    if not git:  # git ls-files lists no FIFO (it is neither a file nor a link)
        expected["pkg/pipe.py"] = fifo
    assert {e["path"]: e["message"] for e in document["errors"]} == expected  # type: ignore[attr-defined]
    assert [f["path"] for f in document["findings"]] == ["pkg/handler.py"]  # type: ignore[attr-defined]
    assert explicit["errors"] == [{"path": "pkg/pipe.py", "message": fifo}]
    assert [f["path"] for f in explicit["findings"]] == ["pkg/handler.py"]  # type: ignore[attr-defined]


def test_a_file_is_read_with_a_bound(tree: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A file that grows past max-file-size after its stat is still rejected."""
    (tree / "pkg" / "growing.py").write_text("x = 1\n")
    real_read = discovery._read_at_most
    asked: list[int] = []

    def read_at_most(path: str, size: int) -> bytes:
        asked.append(size)
        if os.path.basename(path) == "growing.py":
            return b"#" * size
        return real_read(path, size)

    monkeypatch.setattr(discovery, "_read_at_most", read_at_most)
    config = Config(root=tree, max_file_bytes=300)
    report = run([tree], config, default_codemods(), use_cache=False).report
    assert set(asked) == {301}
    assert errors(report) == {
        "pkg/growing.py": "skipped: at least 301 bytes is over the 300-byte limit "
        "(max-file-size); large files are usually generated"
    }
