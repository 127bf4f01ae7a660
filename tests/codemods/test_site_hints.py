"""Only candidates that can hold a site are parsed by LibCST; the findings stay the same.

Every test compares ``run`` (which skips the files the ``ast`` hints rule out)
with ``analyze_sources`` (which analyses every file of the same tree).
"""

from __future__ import annotations

import ast
import sys
import textwrap
from pathlib import Path

import pytest

from ctxmigrate.codemods import engine
from ctxmigrate.codemods import site_hints as site_hints_module
from ctxmigrate.codemods.analysis.file_analysis import FileAnalysis
from ctxmigrate.codemods.analysis.guided_walk import nodes_within
from ctxmigrate.codemods.analysis.memory import analyze_sources
from ctxmigrate.codemods.config import Config
from ctxmigrate.codemods.engine import run
from ctxmigrate.codemods.site_hints import HintNames, SiteHints, site_hints

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


# -- the walk guided by the lines that spell a needle ---------------------------------

NAMES = HintNames(
    functions=frozenset({"create_user_execution_context"}),
    methods=frozenset({"create_for_user"}),
    known=frozenset({"create_user_execution_context", "WebSocketContext"}),
)


def hints_of(source: str | bytes) -> SiteHints:
    data = textwrap.dedent(source).encode() if isinstance(source, str) else source
    return site_hints(ast.parse(data), data, "app.module", False, NAMES)


@pytest.mark.parametrize(
    "source",
    [
        # Only the decorator's line spells it (``ast`` places the def after it).
        """\
        import app

        @app.register(
            app.create_user_execution_context,
        )
        def handler():
            pass
        """,
        # Deep in blocks: a class, a method, a try, a handler, a branch.
        """\
        class Handler:
            def on_message(self, user_id):
                try:
                    pass
                except KeyError:
                    if user_id:
                        return deps.create_user_execution_context(user_id, "t")
        """,
        """\
        match event:
            case {"kind": kind}:
                ws.WebSocketContext.create_for_user(None, kind, "t")
        """,
    ],
)
def test_a_site_is_found_on_the_lines_that_spell_it(
    source: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(node: ast.AST) -> None:
        raise AssertionError("the whole tree was walked")

    monkeypatch.setattr(ast, "walk", refuse)
    assert hints_of(source) == SiteHints(True, ())


@pytest.mark.parametrize("line_break", ["\n", "\r\n", "\r"])
def test_lines_are_counted_as_ast_counts_them(
    line_break: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    lines = ["# create_user_execution_context once did this", "x = 1", "", "def f():", "    pass"]
    site = ["def g():", "    return create_user_execution_context()", ""]
    data = line_break.join([*lines, *site]).encode()
    assert site_hints_module._needle_lines(data, NAMES.site_needles) == [1, 7]
    visited: list[int] = []

    def holds(statement: ast.stmt) -> bool:
        visited.append(statement.lineno)
        return statement.lineno in (6, 7)  # not 4: f's body is not looked into

    names = [
        node.id for node in nodes_within(ast.parse(data).body, holds) if isinstance(node, ast.Name)
    ]
    assert (visited, names) == ([2, 4, 6, 7], ["create_user_execution_context"])
    monkeypatch.setattr(ast, "walk", lambda node: iter(()))  # only the guided walk
    assert hints_of(data) == SiteHints(True, ())


def test_a_string_that_spells_a_name_only_once_evaluated_is_found_by_the_whole_walk() -> None:
    # The comment lets the text through; the string spells the name only with
    # its escape evaluated, or its two halves joined: not on a needle's line.
    escaped = (
        '# create_user_execution_context\nPATCH = "app.deps.create_\\x75ser_execution_context"\n'
    )
    joined = (
        '# create_user_execution_context\nPATCH = ("app.deps.create_user_"\n'
        '    "execution_context")\n'
    )
    assert hints_of(escaped) == SiteHints(True, ())
    assert hints_of(joined) == SiteHints(True, ())


def test_a_needle_only_in_comments_and_longer_words_gives_the_imports() -> None:
    source = """\
        # create_user_execution_context is gone
        from app.ws import WebSocketContext

        def create_user_execution_context_v2():
            return WebSocketContext
        """
    assert hints_of(source) == SiteHints(False, (("app.ws", "WebSocketContext"),))
