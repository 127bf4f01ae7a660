"""Only candidates that can hold a site are parsed by LibCST; the findings stay the same.

Every test compares ``run`` (which skips the files the ``ast`` hints rule out)
with ``analyze_sources`` (which analyses every file of the same tree).
"""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest

from ctxmigrate.codemods import engine
from ctxmigrate.codemods.analysis.file_analysis import FileAnalysis
from ctxmigrate.codemods.analysis.memory import analyze_sources
from ctxmigrate.codemods.config import Config
from ctxmigrate.codemods.engine import run

LEGACY = {
    "app/__init__.py": "",
    "app/deps.py": """\
        def create_user_execution_context(user_id, thread_id):
            return object()


        def create_websocket_manager(user_context):
            return object()
        """,
    "app/ws.py": """\
        class WebSocketContext:
            @classmethod
            def create_for_user(cls, websocket, user_id, thread_id):
                return cls()
        """,
    "app/context.py": "class UserExecutionContext:\n    pass\n",
}
# Files that only name the context types: no finding, never parsed by LibCST.
MENTIONS = {
    "app/annotations.py": """\
        from app.context import UserExecutionContext
        from app.ws import WebSocketContext


        def describe(context: UserExecutionContext, view: WebSocketContext | None) -> str:
            return context.user_id
        """,
    "app/checks.py": """\
        from app import ws


        def is_view(value: object) -> bool:
            return isinstance(value, ws.WebSocketContext)
        """,
    "app/typing_only.py": """\
        from typing import TYPE_CHECKING

        if TYPE_CHECKING:
            from app.ws import WebSocketContext

        VIEWS: list["WebSocketContext"] = []
        """,
    "app/documented.py": '''\
        """Views are WebSocketContext objects; see app.ws."""

        from app.ws import WebSocketContext


        def check(value: object) -> bool:
            return isinstance(value, (WebSocketContext, str))
        ''',
    # Its text names a factory (in a comment), so ``ast`` decides: no name,
    # attribute or string of it is a site (a bare class name in a string is not).
    "app/commented.py": """\
        # create_user_execution_context is gone; create_for_user too.
        from app import ws


        def view_of(value: "WebSocketContext") -> ws.WebSocketContext:
            return value
        """,
}
# Files that hold a site of some rule, each found by a different hint.
SITES = {
    "app/handler.py": """\
        from app.deps import create_user_execution_context


        async def handle(user_id, thread_id):
            return create_user_execution_context(user_id, thread_id)
        """,
    "app/view.py": """\
        from app import ws


        async def connect(websocket, user_id, thread_id):
            return ws.WebSocketContext.create_for_user(websocket, user_id, thread_id)
        """,
    "app/by_name.py": """\
        from app.ws import WebSocketContext

        FACTORY = getattr(WebSocketContext, "create_for_user")
        """,
    "app/test_patches.py": """\
        from unittest import mock

        PATCH = mock.patch("app.deps.create_user_execution_context")
        """,
    "app/reexport.py": "from app.deps import create_websocket_manager\n",
    "app/wrong_import.py": "from app.reexport import create_websocket_manager\n",
    "app/relative_wrong_import.py": "from .annotations import WebSocketContext\n",
    "app/passed_on.py": """\
        from app.deps import create_websocket_manager

        FACTORIES = {"manager": create_websocket_manager}
        """,
    "app/docstring.py": '''\
        """Calls create_user_execution_context(...) somewhere else."""
        ''',
    "app/class_path.py": 'TARGET = "app.ws.WebSocketContext"\n',
}


@pytest.fixture
def tree(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for path, text in {**LEGACY, **MENTIONS, **SITES}.items():
        target = tmp_path / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(textwrap.dedent(text))
    monkeypatch.chdir(tmp_path)  # report paths are relative to the current directory
    return tmp_path


def analysed_paths(
    tree: Path, monkeypatch: pytest.MonkeyPatch, config: Config
) -> tuple[set[str], list[dict[str, object]]]:
    seen: set[str] = set()
    analyse = engine.analyze_source

    def recording(path: Path, *args: object, **kwargs: object) -> FileAnalysis:
        seen.add(path.relative_to(tree).as_posix())
        return analyse(path, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(engine, "analyze_source", recording)
    report = run([tree], config, use_cache=False, jobs=1).report
    return seen, report.to_json()["findings"]


def every_file_analysed(tree: Path, config: Config) -> list[dict[str, object]]:
    sources = {path.relative_to(tree).as_posix(): path.read_bytes() for path in tree.rglob("*.py")}
    findings = [
        finding.to_json()
        for analysis in analyze_sources(sources, config).values()
        for finding in analysis.findings
    ]
    return sorted(findings, key=lambda f: (f["path"], f["line"], f["column"], f["rule"]))


def test_mentions_are_not_analysed_and_the_findings_are_the_same(
    tree: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = Config(root=tree)
    seen, findings = analysed_paths(tree, monkeypatch, config)

    assert seen.isdisjoint(MENTIONS), seen & set(MENTIONS)
    assert set(SITES) - {"app/reexport.py"} <= seen
    assert findings == every_file_analysed(tree, config)
    rules_by_path = {(f["path"], f["rule"]) for f in findings}
    assert {
        ("app/handler.py", "CTX001"),
        ("app/view.py", "CTX002"),
        ("app/by_name.py", "CTX002"),
        ("app/test_patches.py", "CTX102"),
        ("app/wrong_import.py", "CTX103"),
        ("app/relative_wrong_import.py", "CTX103"),
        ("app/passed_on.py", "CTX003"),
        ("app/class_path.py", "CTX102"),
    } <= rules_by_path


def test_without_the_import_rule_an_import_alone_is_not_analysed(
    tree: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = Config(root=tree, ignore=("CTX103",))
    seen, findings = analysed_paths(tree, monkeypatch, config)

    assert "app/wrong_import.py" not in seen
    assert "app/handler.py" in seen
    assert findings == every_file_analysed(tree, Config(root=tree, ignore=("CTX103",)))


NEWER_SYNTAX = 'NAMES = {"a": 1}\nLABEL = f"{NAMES["a"]}"\n'


@pytest.mark.skipif(sys.version_info >= (3, 12), reason="PEP 701 f-strings parse with ast")
def test_syntax_ast_cannot_read_is_analysed_when_it_may_name_a_site(
    tree: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Quotes reused inside an f-string (PEP 701): ast on 3.11 fails, LibCST reads it.
    (tree / "app" / "newer.py").write_text(
        "from app.deps import create_user_execution_context\n" + NEWER_SYNTAX
    )
    seen, findings = analysed_paths(tree, monkeypatch, Config(root=tree))
    assert "app/newer.py" in seen
    assert findings == every_file_analysed(tree, Config(root=tree))


@pytest.mark.skipif(sys.version_info >= (3, 12), reason="PEP 701 f-strings parse with ast")
def test_syntax_ast_cannot_read_that_only_names_a_class_is_decided_from_its_text(
    tree: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Its imports are read from the text: a right one needs no analysis, a wrong one does.
    (tree / "app" / "newer.py").write_text("from app.ws import WebSocketContext\n" + NEWER_SYNTAX)
    (tree / "app" / "newer_wrong.py").write_text(
        "from app.annotations import WebSocketContext\n" + NEWER_SYNTAX
    )
    seen, findings = analysed_paths(tree, monkeypatch, Config(root=tree))
    assert "app/newer.py" not in seen
    assert "app/newer_wrong.py" in seen
    assert ("app/newer_wrong.py", "CTX103") in {(f["path"], f["rule"]) for f in findings}
    assert findings == every_file_analysed(tree, Config(root=tree))
