"""The engine's run: the JSON v1 contract, the cache, the process pool, lazy imports."""

from __future__ import annotations

import json
import multiprocessing
import sys
from pathlib import Path

import pytest

from ctxmigrate.codemods import cache, engine
from ctxmigrate.codemods.analysis import file_analysis
from ctxmigrate.codemods.cache import CACHE_DIRECTORY, environment_digest
from ctxmigrate.codemods.config import Config
from ctxmigrate.codemods.engine import RunResult, default_codemods, run

from .support import loads_libcst

DEPS = """\
def create_user_execution_context(user_id, thread_id, run_id=None, db_session=None):
    return object()


def create_websocket_manager(context):
    return object()
"""


def handler(number: int) -> str:
    return f"""\
import uuid
from pkg.deps import create_user_execution_context, create_websocket_manager


class Handler{number}:
    async def on_message(self, user_id, message):
        thread_id = str(uuid.uuid4())
        context = create_user_execution_context(user_id=user_id, thread_id=thread_id)
        return create_websocket_manager(context)

    def sync_path(self, user_id):
        return create_user_execution_context(user_id, "t", db_session=None)
"""


@pytest.fixture
def tree(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "deps.py").write_text(DEPS)
    for number in range(30):
        (package / f"handler_{number:02}.py").write_text(handler(number))
    for number in range(20):
        (package / f"plain_{number:02}.py").write_text(f"VALUE = {number}\n")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def audit(root: Path, **options: object) -> RunResult:
    return run([root], Config(root=root), default_codemods(), **options)  # type: ignore[arg-type]


FINDING_KEYS = {
    "rule": str,
    "category": str,
    "path": str,
    "line": int,
    "column": int,
    "end_line": int,
    "end_column": int,
    "symbol": str,
    "function": (str, type(None)),
    "message": str,
    "fix": (str, type(None)),
}


def test_json_v1_shape_is_exact(tree: Path) -> None:
    (tree / "pkg" / "broken.py").write_text(
        "from pkg.deps import create_user_execution_context\n(\n"
    )
    document = json.loads(json.dumps(audit(tree, use_cache=False).report.to_json()))
    assert list(document) == ["version", "findings", "errors", "summary"]
    assert document["version"] == 1
    assert list(document["summary"]) == ["files_scanned", "rewrite", "review", "keep"]
    assert all(isinstance(value, int) for value in document["summary"].values())
    assert document["summary"]["files_scanned"] == 53
    for finding in document["findings"]:
        assert list(finding) == list(FINDING_KEYS)
        for key, expected in FINDING_KEYS.items():
            assert isinstance(finding[key], expected), key
        assert finding["category"] in ("rewrite", "review", "keep")
        assert finding["line"] >= 1 and finding["column"] >= 1
        assert (finding["end_line"], finding["end_column"]) > (finding["line"], finding["column"])
        assert "\\" not in finding["path"]
    assert document["errors"] == [
        {"path": "pkg/broken.py", "message": document["errors"][0]["message"]}
    ]
    assert [list(error) for error in document["errors"]] == [["path", "message"]]
    order = [(f["path"], f["line"], f["column"]) for f in document["findings"]]
    assert order == sorted(order)


def test_findings_of_one_handler(tree: Path) -> None:
    report = audit(tree, use_cache=False).report
    mine = [(f.rule, f.category, f.line) for f in report.findings if f.path == "pkg/handler_00.py"]
    assert mine == [
        ("CTX101", "review", 7),
        ("CTX001", "rewrite", 8),
        ("CTX003", "rewrite", 9),
        ("CTX001", "review", 12),
    ]
    assert report.summary() == {"files_scanned": 52, "rewrite": 60, "review": 60, "keep": 0}


def test_process_pool_gives_the_serial_result(tree: Path) -> None:
    serial = audit(tree, use_cache=False, jobs=1)
    pooled = audit(tree, use_cache=False, jobs=2)
    assert engine._worker_count(30, 2) == 2, "the tree must be big enough to use the pool"
    assert pooled.report.to_json() == serial.report.to_json()


def test_without_the_cache_no_finding_key_is_computed(
    tree: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The index digest in every finding's key is only for the cache.
    def refuse(*_: object) -> str:
        raise AssertionError("index digest computed without a cache")

    expected = audit(tree, use_cache=False, jobs=1).report.to_json()
    monkeypatch.setattr(engine, "index_digest", refuse)

    assert audit(tree, use_cache=False, jobs=1).report.to_json() == expected
    with pytest.raises(AssertionError, match="without a cache"):
        audit(tree, jobs=1)


def test_progress_reports_every_file_that_is_analysed(tree: Path) -> None:
    # The 30 handlers call the factories; deps.py only defines them: summarised, not analysed.
    calls: list[tuple[int, int]] = []
    audit(tree, use_cache=False, jobs=1, progress=lambda done, total: calls.append((done, total)))
    assert calls[0] == (0, 30)
    assert calls[-1] == (30, 30)


def test_cache_hit_gives_the_same_report_without_parsing(
    tree: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = audit(tree, jobs=1)
    assert (tree / CACHE_DIRECTORY / ".gitignore").read_text().endswith("*\n")

    def no_parse(*args: object, **kwargs: object) -> object:
        raise AssertionError("a cached file was parsed again")

    monkeypatch.setattr(file_analysis, "parse_module", no_parse)
    monkeypatch.setattr(engine, "summarize_source", no_parse)
    second = audit(tree, jobs=1)
    assert second.report.to_json() == first.report.to_json()


def test_cache_misses_after_an_edit_and_elsewhere_when_an_export_changes(tree: Path) -> None:
    audit(tree, jobs=1)
    # Renaming the definition changes every importer's findings, not only deps.py's.
    (tree / "pkg" / "deps.py").write_text(DEPS.replace("create_websocket_manager", "build_manager"))
    report = audit(tree, jobs=1).report
    assert not [f for f in report.findings if f.rule == "CTX003"]


def test_nothing_cached_under_another_interpreter_or_libcst_release_is_reused(
    tree: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = audit(tree, jobs=1).report.to_json()
    parsed: list[object] = []
    real_parse = file_analysis.parse_module

    def counting_parse(*args: object, **kwargs: object) -> object:
        parsed.append(args)
        return real_parse(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(file_analysis, "parse_module", counting_parse)
    audit(tree, jobs=1)
    assert not parsed  # the same environment: every result reused
    monkeypatch.setattr(cache, "_environment", lambda: environment_digest("3.99.0", None))
    assert audit(tree, jobs=1).report.to_json() == first
    assert len(parsed) == 30  # every handler analysed again


def test_the_environment_digest_follows_the_interpreter_and_the_libcst_release(
    tmp_path: Path,
) -> None:
    origin = tmp_path / "libcst" / "__init__.py"
    origin.parent.mkdir()
    origin.write_text("")
    (origin.parent / "_version.py").write_text('__version__ = "1.9.0"\n')
    before = environment_digest("3.11.7 (main)", str(origin))
    assert environment_digest("3.11.7 (main)", str(origin)) == before
    assert environment_digest("3.12.1 (main)", str(origin)) != before
    (origin.parent / "_version.py").write_text('__version__ = "1.9.1"\n')
    upgraded = environment_digest("3.11.7 (main)", str(origin))
    assert upgraded != before
    # Without _version.py: the size and modification time of __init__.py.
    (origin.parent / "_version.py").unlink()
    bare = environment_digest("3.11.7 (main)", str(origin))
    assert bare not in (before, upgraded)
    origin.write_text("# rebuilt\n")
    assert environment_digest("3.11.7 (main)", str(origin)) != bare
    missing = environment_digest("3.11.7 (main)", str(tmp_path / "gone" / "__init__.py"))
    assert missing not in (bare, environment_digest("3.11.7 (main)", None))
    # What the engine uses: this interpreter and the LibCST it would import.
    import libcst

    assert cache._environment() == environment_digest(sys.version, libcst.__file__)


def test_corrupt_cache_entries_are_ignored(tree: Path) -> None:
    first = audit(tree, jobs=1).report.to_json()
    for entry in (tree / CACHE_DIRECTORY).rglob("*.json"):
        entry.write_text("{not json")
    assert audit(tree, jobs=1).report.to_json() == first
    for entry in (tree / CACHE_DIRECTORY).rglob("*.json"):
        entry.write_text('{"findings": 3}')
    assert audit(tree, jobs=1).report.to_json() == first


def test_use_cache_false_writes_nothing(tree: Path) -> None:
    audit(tree, use_cache=False)
    assert not (tree / CACHE_DIRECTORY).exists()


def test_select_and_ignore_filter_rules(tree: Path) -> None:
    config = Config(root=tree, select=("CTX001", "reuse-websocket-manager"), ignore=("CTX003",))
    report = run([tree], config, default_codemods(), use_cache=False).report
    assert {f.rule for f in report.findings} == {"CTX001"}


def test_fix_returns_fixed_sources_for_rewrite_files_only(tree: Path) -> None:
    result = audit(tree, fix=True, jobs=1)
    assert [fix.path for fix in result.fixes] == [f"pkg/handler_{n:02}.py" for n in range(30)]
    fixed = result.fixes[0]
    assert fixed.fixed is not None
    assert b"await get_or_create_user_session(" in fixed.fixed
    assert (tree / "pkg" / "handler_00.py").read_text() == handler(0), "run never writes"


def test_fix_with_accept_limits_the_applied_sites(tree: Path) -> None:
    accept = frozenset({("pkg/handler_00.py", 8, 19, "CTX001")})
    result = audit(tree, fix=True, jobs=1, accept=accept)
    by_path = {fix.path: fix for fix in result.fixes}
    assert [(f.line, f.rule) for f in by_path["pkg/handler_00.py"].applied] == [(8, "CTX001")]
    assert by_path["pkg/handler_01.py"].fixed is None


def test_no_candidate_run_does_not_import_libcst(tmp_path: Path) -> None:
    (tmp_path / "plain.py").write_text("VALUE = 1\n")
    script = (
        "from pathlib import Path\n"
        "from ctxmigrate.codemods.config import Config\n"
        "from ctxmigrate.codemods.engine import run\n"
        f"report = run([Path({str(tmp_path)!r})], Config(root=Path({str(tmp_path)!r})), ())"
        ".report\n"
        "assert report.files_scanned == 1, report\n"
    )
    assert not loads_libcst(script)


def test_summarising_with_ast_does_not_import_libcst(tmp_path: Path) -> None:
    # A census candidate: summarised (eagerly, it defines a context type), never analysed.
    (tmp_path / "views.py").write_text("class WebSocketContext:\n    pass\n")
    script = (
        "from pathlib import Path\n"
        "from ctxmigrate.codemods.config import Config\n"
        "from ctxmigrate.codemods.engine import run\n"
        # The registered codemods: the summary phase asks what their rewrites import.
        f"report = run([Path({str(tmp_path)!r})], Config(root=Path({str(tmp_path)!r})),"
        " use_cache=False, jobs=1).report\n"
        "assert report.files_scanned == 1 and not report.errors, report\n"
    )
    assert not loads_libcst(script)


def test_worker_count_needs_enough_files_per_worker() -> None:
    per_worker = (
        engine.POOL_MIN_FILES_PER_WORKER_FORK
        if multiprocessing.get_start_method() == "fork"
        else engine.POOL_MIN_FILES_PER_WORKER_SPAWN
    )
    assert engine._worker_count(per_worker * 4, 1) == 1
    assert engine._worker_count(per_worker * 2 - 1, 4) == 1
    assert engine._worker_count(per_worker * 2, 4) == 2
    assert engine._worker_count(per_worker * 100, 4) == 4


@pytest.mark.parametrize(
    ("summary", "outcome"),
    [
        ({"error": None}, {"findings": [], "error": {"path": None, "message": None}}),
        ({"error": 3}, {"findings": [], "error": {"path": "pkg/x.py", "message": 3}}),
        ({"summary": []}, {"findings": [{"rule": None}], "error": None}),
        ({"summary": {}, "error": "x"}, {"findings": None, "error": None}),
        ([], {"findings": [{"line": "1"}], "error": None}),
    ],
)
def test_cache_entries_of_the_wrong_shape_are_misses(
    tree: Path, summary: object, outcome: object
) -> None:
    first = audit(tree, jobs=1).report.to_json()
    assert first["errors"] == []
    for kind, value in (("summary", summary), ("outcome", outcome)):
        for entry in (tree / CACHE_DIRECTORY / kind).rglob("*.json"):
            entry.write_text(json.dumps(value))
    assert audit(tree, jobs=1).report.to_json() == first
    # Only the summaries were corrupt: the outcomes written again are used.
    for entry in (tree / CACHE_DIRECTORY / "summary").rglob("*.json"):
        entry.write_text(json.dumps(summary))
    assert audit(tree, jobs=1).report.to_json() == first


def test_a_finding_of_the_wrong_shape_in_the_cache_is_a_miss(tree: Path) -> None:
    from ctxmigrate.codemods.cache import AnalysisCache

    cache = AnalysisCache(tree)
    good = {
        "rule": "CTX001",
        "category": "rewrite",
        "path": "pkg/a.py",
        "line": 1,
        "column": 1,
        "end_line": 1,
        "end_column": 2,
        "symbol": "pkg.deps.f",
        "function": None,
        "message": "m",
        "fix": None,
    }
    entry = {"findings": [good], "error": None, "depends_on": {"pkg.ws": "d" * 64}}
    cache._store("outcome", "ab" * 32, entry)
    assert cache.outcome("ab" * 32) is not None
    for broken in ({**good, "line": True}, {**good, "category": "other"}, {**good, "x": 1}):
        cache._store("outcome", "ab" * 32, {**entry, "findings": [broken]})
        assert cache.outcome("ab" * 32) is None, broken
    for depends in (None, ["pkg.ws"], {"pkg.ws": 1}):
        cache._store("outcome", "ab" * 32, {**entry, "depends_on": depends})
        assert cache.outcome("ab" * 32) is None, depends
    assert (cache.hits, cache.misses) == (1, 6)


def test_cached_bindings_of_the_wrong_shape_are_misses(tree: Path) -> None:
    first = audit(tree, jobs=1).report.to_json()
    for entry in (tree / CACHE_DIRECTORY / "summary").rglob("*.json"):
        value = json.loads(entry.read_text())
        if "summary" in value:
            value["summary"]["bindings"] = {"create_user_execution_context": [["def"]]}
            entry.write_text(json.dumps(value))
    assert audit(tree, jobs=1).report.to_json() == first
