"""Discovery, module names and the text pre-filter."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from ctxmigrate.codemods.config import Config
from ctxmigrate.codemods.discovery import (
    SourceFile,
    SourceText,
    discover,
    learned_aliases,
    module_names,
    select_candidates,
    text_problem,
)

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
    ],
)
def test_text_problem(data: bytes, problem: str | None) -> None:
    found = text_problem(data)
    if problem is None:
        assert found is None
    else:
        assert found is not None and found.startswith(problem)
