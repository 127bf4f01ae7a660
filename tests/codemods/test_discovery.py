"""Discovery, module names and the text pre-filter."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from ctxmigrate.codemods.config import Config
from ctxmigrate.codemods.discovery import (
    Discovery,
    SourceFile,
    SourceText,
    _read_at_most,
    discover,
    display_path,
    learned_aliases,
    module_names,
    select_candidates,
    text_problem,
)
from ctxmigrate.codemods.engine import run

LEGACY = frozenset({"create_user_execution_context", "WebSocketContext"})


def write(root: Path, relative: str, text: str = "") -> Path:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def displays(root: Path, config: Config | None = None) -> list[str]:
    found = discover([root], config or Config(root=root), cwd=root)
    return [source.display for source in found.files]


def test_walk_skips_virtualenvs_and_build_folders(tmp_path: Path) -> None:
    for relative in (
        "app/main.py",
        ".venv/lib/x.py",
        "venv/x.py",
        "build/x.py",
        "node_modules/x.py",
        "app/__pycache__/x.py",
        ".tox/x.py",
        "app/README.md",
    ):
        write(tmp_path, relative)
    assert displays(tmp_path) == ["app/main.py"]


@pytest.mark.skipif(shutil.which("git") is None, reason="needs the git binary")
def test_git_checkout_respects_gitignore_and_lists_untracked(tmp_path: Path) -> None:
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    write(tmp_path, ".gitignore", "generated/\n")
    write(tmp_path, "app/tracked.py")
    write(tmp_path, "app/untracked.py")
    write(tmp_path, "generated/out.py")
    subprocess.run(["git", "-C", str(tmp_path), "add", "app/tracked.py"], check=True)
    assert displays(tmp_path) == ["app/tracked.py", "app/untracked.py"]


def test_exclude_and_test_patterns_are_gitignore_style(tmp_path: Path) -> None:
    for relative in (
        "app/a.py",
        "app/migrations/m.py",
        "tests/t.py",
        "app/test_x.py",
        "conftest.py",
    ):
        write(tmp_path, relative)
    config = Config(root=tmp_path, exclude=("migrations/",))
    found = discover([tmp_path], config, cwd=tmp_path)
    assert {source.display: source.in_test for source in found.files} == {
        "app/a.py": False,
        "app/test_x.py": True,
        "conftest.py": True,
        "tests/t.py": True,
    }


def test_explicit_files_and_duplicates(tmp_path: Path) -> None:
    script = write(tmp_path, "tools/run.py")
    found = discover([script, tmp_path, script], Config(root=tmp_path), cwd=tmp_path)
    assert [source.display for source in found.files] == ["tools/run.py"]


def test_display_path_is_relative_to_the_current_directory(tmp_path: Path) -> None:
    write(tmp_path, "app/a.py")
    found = discover([tmp_path / "app"], Config(root=tmp_path), cwd=tmp_path / "app")
    assert [source.display for source in found.files] == ["a.py"]


def test_module_names_follow_packages_src_layout_and_namespace_folders(tmp_path: Path) -> None:
    write(tmp_path, "src/pkg/__init__.py")
    write(tmp_path, "src/pkg/sub/__init__.py")
    mod = write(tmp_path, "src/pkg/sub/mod.py")
    init = tmp_path / "src/pkg/sub/__init__.py"
    loose = write(tmp_path, "services/chat/handler.py")
    root = str(tmp_path)
    assert module_names(str(mod), root) == ("pkg.sub.mod", ())
    assert module_names(str(init), root) == ("pkg.sub", ())
    assert module_names(str(loose), root) == ("services.chat.handler", ("handler",))


def source(name: str, text: str) -> SourceText:
    path = Path("/p") / name
    return SourceText(SourceFile(path, name, name, name[:-3], (), False), text.encode())


def test_prefilter_follows_aliases_to_a_fixpoint() -> None:
    sources = [
        source("a.py", "from deps import create_user_execution_context as make_ctx\n"),
        source("b.py", "from a import make_ctx\nbuild = make_ctx\n"),
        source("c.py", "from b import build\nbuild(user_id=1)\n"),
        source("d.py", "import os\nprint(os.name)\n"),
        source("e.py", "# mentions create_user_execution_contextual only\n"),
        source("f.py", "class UserExecutionContext:\n    pass\n"),
    ]
    candidates, known = select_candidates(sources, LEGACY)
    assert [c.file.display for c in candidates] == ["a.py", "b.py", "c.py", "f.py"]
    assert known == LEGACY | {"make_ctx", "build"}


def test_a_file_chosen_early_is_searched_again_for_names_learned_later() -> None:
    sources = [
        # Chosen first; binds an alias of a name only b.py teaches.
        source(
            "a.py", "from deps import create_user_execution_context as make_ctx\nlate = built\n"
        ),
        source("b.py", "from a import make_ctx\nbuilt = make_ctx\n"),
        source("c.py", "from a import late\nlate(user_id=1)\n"),
    ]
    candidates, known = select_candidates(sources, LEGACY)
    assert known == LEGACY | {"make_ctx", "built", "late"}
    assert [c.file.display for c in candidates] == ["a.py", "b.py", "c.py"]


def test_learned_aliases_from_imports_and_assignments() -> None:
    text = b"""\
from x import (
    create_user_execution_context as make,
)
factory = deps.create_user_execution_context
typed: Callable = create_user_execution_context
context = create_user_execution_context(user_id=1)
"""
    assert learned_aliases(text, LEGACY) == {"make", "factory", "typed"}


def _aliases_by_whole_file_regex(data: bytes, names: frozenset[str]) -> set[str]:
    """The definition learned_aliases must agree with: both regexes over the whole text."""
    alternatives = "|".join(re.escape(name) for name in sorted(names)).encode()
    imported = re.compile(rb"\b(?:" + alternatives + rb")\s+as\s+(\w+)")
    assigned = re.compile(
        rb"^[ \t]*(\w+)[ \t]*(?::[^=\n]*)?=[ \t]*(?:[\w.]+\.)?(?:" + alternatives + rb")[ \t]*$",
        re.MULTILINE,
    )
    found = {match.group(1).decode() for match in imported.finditer(data)}
    return found | {match.group(1).decode() for match in assigned.finditer(data)}


@pytest.mark.parametrize(
    "text",
    [
        b"from a import make as make_ctx, create_user_execution_context as build\n",
        b"x = make\ny = a.b.make  \nz=make # no\nw = make\r\nv = premake\n",
        b"import make as m; q = make\nmake as\tother\nnot_make as nope\nmake_ctx as mc\n",
        b"one: T = make\ntwo: T=pkg.make_ctx\nthree = make.attr\nfour = (make)\n",
        b"make = make\n\tindented = make\nlast = make",
        b"",
    ],
)
def test_learned_aliases_agree_with_the_whole_file_regexes(text: bytes) -> None:
    names = frozenset({"make", "make_ctx", "create_user_execution_context"})
    assert learned_aliases(text, names) == _aliases_by_whole_file_regex(text, names)


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        (b"x = 1\n", None),
        (b"\xef\xbb\xbfx = 1\n", None),
        ("# coding: latin-1\nx = 'é'\n".encode("latin-1"), None),
        (b"#!/usr/bin/env python\n# -*- coding: cp1252 -*-\nx = '\x80'\n", None),
        (b"x = '\xe9'\n", "cannot decode as utf-8 (line 1, byte 0xe9)"),
        (b"\x00\x01", "not Python source: binary content (NUL byte at offset 0)"),
        (b"# coding: nope\n", "unknown encoding 'nope' in the coding cookie"),
        # ASCII text skips decoding only without a cookie, however long the first line.
        (b"#" + b"-" * 5000 + b"\n# coding: hex\nx = 1\n", "unknown or non-text encoding 'hex'"),
        (b"# a\n# coding: utf-16\nx = 1\n", "cannot decode as utf-16"),
        (b"x = 1\n# coding: nope\n", None),
        (b"# coding: ascii", None),
    ],
)
def test_text_problem(data: bytes, problem: str | None) -> None:
    found = text_problem(data)
    if problem is None:
        assert found is None
    else:
        assert found is not None and found.startswith(problem)


# --- symlinks: one file, one identity; only real loops are loops ---------------------

DEPS = "def create_user_execution_context(user_id, thread_id):\n    return 1\n"
HANDLER = (
    "from app.deps import create_user_execution_context\n\n"
    "async def handle(user_id, thread_id):\n"
    "    return create_user_execution_context(user_id=user_id, thread_id=thread_id)\n"
)


def package(root: Path) -> None:
    write(root, "app/__init__.py")
    write(root, "app/deps.py", DEPS)
    write(root, "app/handler.py", HANDLER)


def identities(found: Discovery) -> list[tuple[str, str]]:
    return [(source.display, source.module) for source in found.files]


def test_a_symlink_sorting_before_its_target_does_not_hide_the_real_package(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    package(tmp_path)
    (tmp_path / "aaa").symlink_to("app")  # listed before app/
    found = discover([tmp_path], Config(root=tmp_path), cwd=tmp_path)
    assert identities(found) == [
        ("app/__init__.py", "app"),
        ("app/deps.py", "app.deps"),
        ("app/handler.py", "app.handler"),
    ]
    assert found.errors == []
    monkeypatch.chdir(tmp_path)
    report = run([tmp_path], Config(root=tmp_path), use_cache=False).report
    assert [(f.path, f.category) for f in report.findings] == [("app/handler.py", "rewrite")]


def test_a_file_reached_through_a_symlinked_folder_is_listed_once_whatever_the_order(
    tmp_path: Path,
) -> None:
    package(tmp_path)
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "appl").symlink_to("../app")
    config = Config(root=tmp_path)
    orders = (
        [tmp_path / "app", tmp_path / "lib" / "appl"],
        [tmp_path / "lib" / "appl", tmp_path / "app"],
        [tmp_path / "lib" / "appl" / "handler.py", tmp_path / "app"],
        [tmp_path],
    )
    for paths in orders:
        found = discover(paths, config, cwd=tmp_path)
        assert identities(found) == [
            ("app/__init__.py", "app"),
            ("app/deps.py", "app.deps"),
            ("app/handler.py", "app.handler"),
        ], paths
        assert found.errors == []


def test_a_symlinked_file_and_its_target_are_one_file_named_by_the_target(
    tmp_path: Path,
) -> None:
    package(tmp_path)
    (tmp_path / "app" / "alias.py").symlink_to("handler.py")
    found = discover([tmp_path / "app"], Config(root=tmp_path), cwd=tmp_path)
    assert [source.display for source in found.files] == [
        "app/__init__.py",
        "app/deps.py",
        "app/handler.py",
    ]


@pytest.mark.skipif(shutil.which("git") is None, reason="needs the git binary")
def test_in_a_checkout_a_committed_file_symlink_is_listed_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    tmp_path = tmp_path / "repo"  # below the ceiling: git finds it from app/
    package(tmp_path)
    (tmp_path / "app" / "handler.py").rename(tmp_path / "app" / "real_handler.py")
    (tmp_path / "app" / "handler.py").symlink_to("real_handler.py")
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    subprocess.run(["git", "-C", str(tmp_path), "add", "-A"], check=True)
    found = discover([tmp_path, tmp_path / "app"], Config(root=tmp_path), cwd=tmp_path)
    assert [(s.display, s.git_searchable) for s in found.files] == [
        ("app/__init__.py", True),
        ("app/deps.py", True),
        ("app/real_handler.py", True),
    ]


@pytest.mark.skipif(shutil.which("git") is None, reason="needs the git binary")
def test_git_grep_searches_only_the_tracked_files_git_reads_from_the_work_tree(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """git grep (without ``--untracked``) skips untracked files and searches the
    index's copy of assume-unchanged and skip-worktree files: the pre-filter
    reads those itself. Every regular file git lists is one ``git status`` sees."""
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    for name in ("tracked", "untracked", "assumed", "skipped"):
        write(tmp_path, f"app/{name}.py")
    (tmp_path / "app" / "linked.py").symlink_to("tracked.py")
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    for arguments in (
        ["add", "app/tracked.py", "app/assumed.py", "app/skipped.py", "app/linked.py"],
        ["update-index", "--assume-unchanged", "app/assumed.py"],
        ["update-index", "--skip-worktree", "app/skipped.py"],
    ):
        subprocess.run(["git", "-C", str(tmp_path), *arguments], check=True)

    found = discover([tmp_path], Config(root=tmp_path), cwd=tmp_path)

    assert [(s.display, s.git_searchable, s.git_listed) for s in found.files] == [
        ("app/assumed.py", False, True),
        ("app/skipped.py", False, True),
        ("app/tracked.py", True, True),
        ("app/untracked.py", False, True),
    ]


def test_a_symlink_to_a_folder_walked_elsewhere_is_not_a_loop(tmp_path: Path) -> None:
    package(tmp_path)
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "applink").symlink_to("../app")
    (tmp_path / "zzz").symlink_to("other")  # an alias of an alias
    found = discover([tmp_path], Config(root=tmp_path), cwd=tmp_path)
    assert found.errors == []
    assert [source.display for source in found.files] == [
        "app/__init__.py",
        "app/deps.py",
        "app/handler.py",
    ]


def test_only_a_link_to_a_folder_on_its_own_walk_path_is_a_loop(tmp_path: Path) -> None:
    package(tmp_path)
    (tmp_path / "app" / "sub").mkdir()
    (tmp_path / "app" / "sub" / "up").symlink_to("../..")  # an ancestor of itself
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    (tmp_path / "a" / "to_b").symlink_to("../b")
    (tmp_path / "b" / "to_a").symlink_to("../a")  # a -> b -> a
    found = discover([tmp_path], Config(root=tmp_path), cwd=tmp_path)
    assert {(error.path, error.message.split(":")[0]) for error in found.errors} == {
        ("app/sub/up", "symlink loop"),
        ("a/to_b/to_a", "symlink loop"),
    }
    assert len(found.files) == 3


# --- a directory git lists nothing in, named on the command line -----------------------


@pytest.mark.skipif(shutil.which("git") is None, reason="needs the git binary")
def test_an_ignored_folder_or_a_nested_repository_is_an_error_not_an_empty_pass(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    tmp_path = tmp_path / "repo"  # below the ceiling: git finds it from ignored/
    package(tmp_path)
    write(tmp_path, ".gitignore", "ignored/\n")
    write(tmp_path, "ignored/h3.py", HANDLER)
    write(tmp_path, "vendor/lib/h2.py", HANDLER)
    write(tmp_path, "empty/README.md", "no python here\n")
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    subprocess.run(["git", "init", "-q", str(tmp_path / "vendor" / "lib")], check=True)
    config = Config(root=tmp_path)

    ignored = discover([tmp_path / "ignored"], config, cwd=tmp_path)
    vendor = discover([tmp_path / "vendor"], config, cwd=tmp_path)
    empty = discover([tmp_path / "empty"], config, cwd=tmp_path)
    explicit = discover([tmp_path / "ignored" / "h3.py"], config, cwd=tmp_path)

    assert ignored.files == []
    assert [(e.path, e.message) for e in ignored.errors] == [
        (
            "ignored",
            "ignored by .gitignore: nothing audited (1 .py file ignored; "
            "name the files to audit them)",
        )
    ]
    assert vendor.files == []
    assert [(e.path, e.message) for e in vendor.errors] == [
        ("vendor/lib", "a separate git repository: audit it on its own")
    ]
    assert (empty.files, empty.errors) == ([], [])
    assert [source.display for source in explicit.files] == ["ignored/h3.py"]
    assert explicit.errors == []
    # The whole checkout: git's listing, no error about what it leaves out.
    assert discover([tmp_path], config, cwd=tmp_path).errors == []


def test_a_link_to_the_filesystem_root_is_a_loop_not_a_walk_of_everything(
    tmp_path: Path,
) -> None:
    package(tmp_path)
    (tmp_path / "app" / "slash").symlink_to("/")
    found = discover([tmp_path], Config(root=tmp_path), cwd=tmp_path)
    assert [(e.path, e.message) for e in found.errors] == [
        ("app/slash", f"symlink loop: points back to {display_path(Path('/'), tmp_path)}")
    ]
    assert len(found.files) == 3


@pytest.mark.parametrize(
    ("length", "limit"),
    [(0, 10), (5, 10), (10, 10), (11, 10), (300_000, 400_000), (300_000, 70_000)],
)
def test_read_at_most_reads_the_file_up_to_the_limit(
    tmp_path: Path, length: int, limit: int
) -> None:
    data = bytes(range(256)) * (length // 256) + bytes(range(length % 256))
    (tmp_path / "f.py").write_bytes(data)

    assert _read_at_most(str(tmp_path / "f.py"), limit) == data[:limit]
