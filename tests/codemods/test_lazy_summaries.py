"""Candidates that only name the context types are summarised only when asked about.

Their imports come from the text (``site_hints.text_hints``), which must
never miss one that ``ast`` sees; the findings must equal those of analysing
every file; and a cached outcome must notice a change in a lazy module it
consulted.
"""

from __future__ import annotations

import ast
import textwrap
from pathlib import Path

import pytest

from ctxmigrate.codemods import engine
from ctxmigrate.codemods.analysis.parsing import ModuleFile
from ctxmigrate.codemods.config import Config
from ctxmigrate.codemods.engine import run
from ctxmigrate.codemods.site_hints import HintNames, site_hints, text_hints

from .test_site_hints import LEGACY, every_file_analysed

NAMES = HintNames(
    functions=frozenset({"create_user_execution_context", "make_context"}),
    methods=frozenset({"create_for_user"}),
    known=frozenset(
        {"create_user_execution_context", "make_context", "WebSocketContext", "WSView"}
    ),
)

# Sources whose imports of known names the text must find exactly as ast does.
EXACT = {
    "plain": "from app.ws import WebSocketContext\n",
    "aliased": "from app.ws import WebSocketContext as View, WSView\n",
    "relative": "from .ws import WebSocketContext\nfrom .. import WSView\n",
    "parenthesised with comments": (
        "from app.ws import (  # the views (see app.ws)\n"
        "    Other,  # don't\n"
        "    WebSocketContext,\n"
        ")\n"
    ),
    "continued": "from app.ws \\\n    import \\\n    WebSocketContext\n",
    "after a semicolon": "import os; from app.ws import WebSocketContext\n",
    "after a colon": "if TYPE_CHECKING: from app.ws import WebSocketContext\n",
    "nested": (
        "def f():\n"
        "    try:\n"
        "        from app.ws import WebSocketContext\n"
        "    except ImportError:\n"
        "        from app.fallback import WebSocketContext\n"
    ),
    "from inside a module path": "from app.fromage.from_x import WebSocketContext\n",
    "in a match case": (
        "match mode:\n    case 1:\n        from app.ws import WebSocketContext\n"
        "    case _:\n        from app.ws import WSView\n"
    ),
    "import in a longer word of the path": "from app.important import WebSocketContext\n",
    "crlf": "from app.ws import (\r\n    WebSocketContext,\r\n)\r\n",
    "not an import": (
        "x = WebSocketContext\n"
        "value = (yield from WebSocketContext.views())\n"
        "raise Error from WebSocketContext\n"
    ),
    "an unclosed parenthesis in a comment": "# from x import (WebSocketContext\ny = 1\n",
    "commented out": "# from app.legacy import WebSocketContext\nfrom app.ws import WSView\n",
    "a known name inside a longer one": "from app.ws import WebSocketContextual\n",
    "cp1252 with a cookie": (
        "# -*- coding: cp1252 -*-\n# café\nfrom app.ws import WebSocketContext\n"
    ),
}
# Sources where the text may find more (prose that reads like an import), never less.
SUPERSET = {
    "docstring prose": (
        '"""Usage:\n\nfrom app.legacy import WebSocketContext\n"""\n'
        "from app.ws import WebSocketContext\n"
    ),
}


def ast_imports(source: bytes) -> set[tuple[str, str]]:
    hints = site_hints(ast.parse(source), source, "app.mod", False, NAMES)
    assert not hints.may_have_sites
    return set(hints.imports)


def text_imports(source: bytes) -> set[tuple[str, str]]:
    hints = text_hints(source, "app.mod", False, NAMES)
    assert hints is not None and not hints.may_have_sites
    return set(hints.imports)


@pytest.mark.parametrize("source", EXACT.values(), ids=list(EXACT))
def test_text_imports_equal_the_ast_ones(source: str) -> None:
    data = source.encode("cp1252" if "coding: cp1252" in source else "utf-8")
    assert text_imports(data) == ast_imports(data)


@pytest.mark.parametrize("source", SUPERSET.values(), ids=list(SUPERSET))
def test_text_imports_may_add_prose_but_never_miss_one(source: str) -> None:
    found = text_imports(source.encode())
    assert found > ast_imports(source.encode())


def test_the_docstring_import_is_found_by_the_text_only() -> None:
    assert ("app.legacy", "WebSocketContext") in text_imports(SUPERSET["docstring prose"].encode())


@pytest.mark.parametrize(
    "source",
    [
        "from app.deps import make_context\n",  # a function name: may be a site
        "VIEW = 'app.ws.WebSocketContext'\n",  # a dotted path to a class in a string
        "WebSocketContext.create_for_user(ws)\n",  # a factory method
    ],
)
def test_text_that_may_name_a_site_is_left_to_ast(source: str) -> None:
    assert text_hints(source.encode(), "app.mod", False, NAMES) is None


@pytest.mark.parametrize(
    "source",
    [
        "from app.ws import WebSocketContext \\ \n",  # a backslash that continues nothing
        'from app.ws import WebSocketContext, "x"\n',  # a quote: no import statement
    ],
)
def test_text_that_is_no_import_statement_yields_none(source: str) -> None:
    # Text only: a lazy file is never parsed, whatever it holds.
    assert text_imports(source.encode()) == set()


def test_an_unclosed_parenthesis_with_many_comments_is_quick() -> None:
    # Atomic groups: a backtracking pattern would take exponential time here.
    source = "from app.ws import (WebSocketContext,\n" + "    # a (comment) x\n" * 200
    assert text_imports(source.encode()) == set()


LAZY_TREE = {
    **LEGACY,
    # Re-exports through a package whose __init__ only names the class.
    "app/views/__init__.py": "from app.ws import WebSocketContext\n",
    "app/views/star.py": "from app.ws import *\nfrom app.ws import WebSocketContext\n",
    "app/connect.py": """\
        from app import views
        from app.views import star


        async def connect(websocket, user_id, thread_id):
            first = views.WebSocketContext.create_for_user(websocket, user_id, thread_id)
            return first, star.WebSocketContext.create_for_user(websocket, user_id, thread_id)
        """,
    # Resolves through the same export as connect.py (the index's memo).
    "app/connect_again.py": """\
        import app.views as v


        async def again(websocket, user_id, thread_id):
            return v.WebSocketContext.create_for_user(websocket, user_id, thread_id)
        """,
    # Only names the class, imported from where it is defined: never parsed.
    "app/annotations.py": """\
        from app.ws import WebSocketContext


        def describe(view: WebSocketContext) -> str:
            return repr(view)
        """,
    # Imports it from a module that does not define it: CTX103.
    "app/wrong.py": "from app.annotations import WebSocketContext\n",
    "app/unused_broken.py": "from app.ws import WebSocketContext\ndef broken(:\n",
}


@pytest.fixture
def lazy_tree(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for path, text in LAZY_TREE.items():
        target = tmp_path / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(textwrap.dedent(text))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def recorded_summaries(monkeypatch: pytest.MonkeyPatch) -> set[str]:
    """The display paths of the files the engine summarises from now on."""
    seen: set[str] = set()
    summarize = engine.summarize_source

    def recording(source: bytes, module_file: ModuleFile, *args: object) -> object:
        seen.add(module_file.display)
        return summarize(source, module_file, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(engine, "summarize_source", recording)
    return seen


def summarised_paths(
    tree: Path, monkeypatch: pytest.MonkeyPatch, **options: object
) -> tuple[set[str], list[dict[str, object]]]:
    seen = recorded_summaries(monkeypatch)
    report = run([tree], Config(root=tree), jobs=1, **options).report  # type: ignore[arg-type]
    return seen, report.to_json()["findings"]


def test_only_the_modules_the_index_asks_about_are_summarised(
    lazy_tree: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen, findings = summarised_paths(lazy_tree, monkeypatch, use_cache=False)

    # Definitions and possible sites: summarised up front.
    assert {"app/deps.py", "app/ws.py", "app/context.py", "app/connect.py"} <= seen
    # Asked about: re-exporting packages, and the module a wrong import names.
    assert {"app/views/__init__.py", "app/views/star.py", "app/annotations.py"} <= seen
    # Never asked about: not even parsed, so its syntax error is not reported.
    assert "app/unused_broken.py" not in seen
    assert "app/wrong.py" not in seen  # its import is read from the text
    assert ("app/wrong.py", "CTX103") in {(f["path"], f["rule"]) for f in findings}


def test_findings_equal_those_of_analysing_every_file(
    lazy_tree: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (lazy_tree / "app/unused_broken.py").unlink()  # every_file_analysed needs parseable files
    _, findings = summarised_paths(lazy_tree, monkeypatch, use_cache=False)
    assert findings == every_file_analysed(lazy_tree, Config(root=lazy_tree))
    rules = {(f["path"], f["rule"]) for f in findings}
    assert {
        ("app/connect.py", "CTX002"),
        ("app/connect_again.py", "CTX002"),
        ("app/wrong.py", "CTX103"),
    } <= rules
    assert sum(1 for f in findings if f["path"] == "app/connect.py") == 2


@pytest.mark.parametrize("jobs", [1, 2])
def test_a_cached_outcome_notices_a_change_in_a_lazy_module_it_consulted(
    lazy_tree: Path, jobs: int
) -> None:
    def findings() -> list[tuple[object, ...]]:
        report = run([lazy_tree], Config(root=lazy_tree), jobs=jobs).report
        return [(f.path, f.rule, f.line) for f in report.findings]

    before = findings()
    assert ("app/connect_again.py", "CTX002", 5) in before
    # The package stops re-exporting the class: both callers lose their site
    # (the second one resolves through the index's memo of the first).
    (lazy_tree / "app/views/__init__.py").write_text("WebSocketContext = None\n")
    after = findings()
    fresh = run([lazy_tree], Config(root=lazy_tree), jobs=jobs, use_cache=False).report
    assert after == [(f.path, f.rule, f.line) for f in fresh.findings]
    assert ("app/connect_again.py", "CTX002", 5) not in after
    assert not [f for f in after if f[0] == "app/connect.py" and f[2] == 6]


def test_apply_summarises_a_lazy_candidate_only_when_it_imports_from_a_summarised_module(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = {
        "app/__init__.py": "",
        "app/deps.py": "def create_user_execution_context(user_id, thread_id):\n    pass\n",
        "app/ws.py": "class WebSocketContext:\n    pass\n",
        "app/handler.py": "from app import deps\n\n\nasync def handle(m):\n"
        "    return deps.create_user_execution_context(m.user_id, m.thread_id)\n",
        # Lazy (they only name the context type); this one takes ``deps`` from
        # the handler, whose import of it the rewrite leaves unused.
        "app/through.py": "from app.handler import deps\n\n\n"
        'def f(ctx: "WebSocketContext") -> None:\n    pass\n',
        # Lazy, and no import statement names a summarised module.
        "app/annotated.py": 'import os\n\n\ndef f(ctx: "WebSocketContext") -> None:\n    pass\n',
    }
    for path, text in files.items():
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text(text)
    monkeypatch.chdir(tmp_path)
    seen = recorded_summaries(monkeypatch)
    result = run([tmp_path], Config(root=tmp_path), jobs=1, fix=True, use_cache=False)
    assert "app/through.py" in seen and "app/annotated.py" not in seen
    (fixed,) = result.fixes
    assert fixed.fixed is not None and fixed.fixed.startswith(b"from app import deps\n")
    assert fixed.notes == [
        "kept the import of deps: app.through imports deps from app.handler, "
        "which would break without it"
    ]


def test_a_warm_run_reads_the_lazy_decisions_from_the_cache(
    lazy_tree: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    searched: list[str] = []
    real_text_hints = engine.text_hints

    def recording(source: bytes, module: str, *args: object) -> object:
        searched.append(module)
        return real_text_hints(source, module, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(engine, "text_hints", recording)

    def findings() -> list[dict[str, object]]:
        return run([lazy_tree], Config(root=lazy_tree), jobs=1).report.to_json()["findings"]

    cold = findings()
    assert "app.annotations" in searched
    searched.clear()
    assert findings() == cold
    assert searched == []
    # An edit is decided again, for that file only, and the findings follow it.
    (lazy_tree / "app/annotations.py").write_text("from app.context import WebSocketContext\n")
    edited = findings()
    assert searched == ["app.annotations"]
    fresh = run([lazy_tree], Config(root=lazy_tree), jobs=1, use_cache=False).report
    assert edited == fresh.to_json()["findings"]
