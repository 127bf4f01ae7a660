"""The analysis server (``codemods/analysis_server.py``): a forked process that
imports LibCST during discovery and analyses the files, leaving no process behind."""

from __future__ import annotations

import functools
import multiprocessing
import multiprocessing.queues
import os
import signal
import threading
import time
from pathlib import Path

import pytest

from ctxmigrate.codemods import engine
from ctxmigrate.codemods.analysis_server import AnalysisServer
from ctxmigrate.codemods.config import Config
from ctxmigrate.codemods.engine import default_codemods, run

from .support import git
from .test_engine import audit, tree  # noqa: F401 (the fixture)

pytestmark = pytest.mark.skipif(
    "fork" not in multiprocessing.get_all_start_methods() or not Path("/proc/self/stat").exists(),
    reason="the server is forked; its children are found in /proc",
)


def children(pid: int) -> set[int]:
    """The live processes whose parent is ``pid`` (Linux ``/proc``)."""
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rpartition(")")[2].split()
            except OSError:
                continue  # ended meanwhile
            if int(fields[1]) == pid and fields[0] != "Z":
                found.add(int(entry.name))
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except OSError:
        return False
    return state != "Z"


def items_and_state(root: Path) -> tuple[list[tuple[str, bytes, None]], tuple[object, ...]]:
    """The analysis job ``engine.run`` would send for ``root``, captured from a serial run."""
    captured: dict[str, tuple[object, ...]] = {}
    original = engine._analyze_all

    def capture(*arguments: object, **options: object) -> object:
        captured["arguments"] = arguments
        return original(*arguments, **options)  # type: ignore[arg-type]

    engine._analyze_all = capture  # type: ignore[assignment]
    try:
        run([root], Config(root=root), default_codemods(), jobs=1, use_cache=False)
    finally:
        engine._analyze_all = original
    parsed, config, index, codemods, fix, accept = captured["arguments"][:6]
    items = [(str(source.file.path), source.data, None) for source in parsed]  # type: ignore[attr-defined]
    return items, (config, index, codemods, fix, accept)


def test_an_unused_server_stops_at_once() -> None:
    server = AnalysisServer(fix=False)
    pid = server._process.pid
    assert pid is not None and alive(pid)
    server.close()
    assert not alive(pid)
    # Killed, not waited for: it is still importing LibCST.
    assert server._process.exitcode == -signal.SIGTERM


def slow_in_the_server(item: int) -> int:
    """The server's analyses take long, a helper's none: the helper is done first."""
    if multiprocessing.current_process().name == "ctxmigrate-analysis":
        time.sleep(0.05)
    return item


def test_a_helper_done_before_the_server_is_no_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(engine, "_analyze_in_worker", slow_in_the_server)
    server = AnalysisServer(fix=False)
    try:
        outcomes = dict(server.analyze((None, None, None, False, None), list(range(40)), 2))
    finally:
        server.close()
    assert outcomes == {item: item for item in range(40)}


@pytest.mark.parametrize("workers", [1, 2])
def test_the_server_gives_each_outcome_in_order_and_leaves_no_worker(
    tree: Path,  # noqa: F811
    workers: int,
) -> None:
    items, state = items_and_state(tree)
    expected = [engine._analyze_file(Path(path), data, *state) for path, data, _ in items]  # type: ignore[arg-type]
    server = AnalysisServer(fix=False)
    pid = server._process.pid
    assert pid is not None
    seen_workers: set[int] = set()
    outcomes = {}
    for position, outcome in server.analyze(state, items, workers):
        assert position not in outcomes
        outcomes[position] = outcome
        seen_workers |= children(pid)
    server.close()

    assert sorted(outcomes) == list(range(len(items)))
    assert [(outcomes[p].display, outcomes[p].findings) for p in range(len(items))] == [
        (o.display, o.findings) for o in expected
    ]
    assert len(seen_workers) == workers - 1
    assert not alive(pid)
    assert not any(alive(worker) for worker in seen_workers)


def test_a_consumer_that_stops_early_leaves_no_process_behind(tree: Path) -> None:  # noqa: F811
    items, state = items_and_state(tree)
    server = AnalysisServer(fix=False)
    pid = server._process.pid
    assert pid is not None
    outcomes = server.analyze(state, items, 2)
    next(outcomes)
    workers = children(pid)
    server.close()

    assert workers
    assert not alive(pid)
    assert not any(alive(worker) for worker in workers)


def test_a_failing_job_is_raised_in_the_main_process(tree: Path) -> None:  # noqa: F811
    items, (config, _, codemods, fix, accept) = items_and_state(tree)
    server = AnalysisServer(fix=False)
    try:
        with pytest.raises(RuntimeError, match="the analysis process failed: AttributeError"):
            list(server.analyze((config, None, codemods, fix, accept), items, 2))
    finally:
        server.close()


def die_in_a_helper(item: tuple[str, bytes, None]) -> object:
    """The analysis of one item: the server's takes a while, a helper's ends its process."""
    if multiprocessing.current_process().name == "ctxmigrate-analysis":
        time.sleep(0.05)
        return None
    os._exit(3)


def test_a_helper_that_dies_is_an_error_not_a_hang(
    tree: Path,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    items, state = items_and_state(tree)
    monkeypatch.setattr(engine, "_analyze_in_worker", die_in_a_helper)
    server = AnalysisServer(fix=False)
    pid = server._process.pid
    try:
        with pytest.raises(RuntimeError, match="a worker process ended unexpectedly"):
            list(server.analyze(state, items, 2))
    finally:
        server.close()
    assert pid is not None and not alive(pid)


def fail_in_a_helper(item: object) -> object:
    """The server's analyses take a while; a helper's raise."""
    if multiprocessing.current_process().name == "ctxmigrate-analysis":
        time.sleep(0.05)
        return None
    raise ValueError(f"cannot analyse {item}")


def test_a_helpers_error_reaches_the_main_process_with_its_message(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(engine, "_analyze_in_worker", fail_in_a_helper)
    server = AnalysisServer(fix=False)
    try:
        with pytest.raises(RuntimeError, match=r"failed: ValueError: cannot analyse \d+"):
            list(server.analyze((None, None, None, False, None), list(range(20)), 2))
    finally:
        server.close()


def position_and_process(item: int) -> tuple[int, int]:
    time.sleep(0.01)  # long enough for both processes to take some
    return item, os.getpid()


def test_share_computes_every_item_once_in_this_process_and_the_server() -> None:
    server = AnalysisServer(fix=False)
    try:
        # Answered once the server has imported LibCST: ready to take its share.
        assert server.share(position_and_process, []) == []
        first = server.share(position_and_process, list(range(40)))
        second = server.share(position_and_process, list(range(10)))
    finally:
        server.close()

    assert [item for item, _ in first] == list(range(40))
    assert [item for item, _ in second] == list(range(10))
    assert {pid for _, pid in first} == {os.getpid(), server._process.pid}


def test_a_cold_run_with_two_jobs_analyses_in_the_server_and_reports_progress(
    tree: Path,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    served: list[int] = []
    original = AnalysisServer.analyze

    def analyze(self: AnalysisServer, *arguments: object) -> object:
        served.append(os.getpid())
        return original(self, *arguments)  # type: ignore[arg-type]

    monkeypatch.setattr(AnalysisServer, "analyze", analyze)
    calls: list[tuple[int, int]] = []
    serial = audit(tree, use_cache=False, jobs=1)
    assert served == []
    served_run = audit(
        tree, use_cache=False, jobs=2, progress=lambda done, total: calls.append((done, total))
    )

    assert served == [os.getpid()]
    assert served_run.report.to_json() == serial.report.to_json()
    assert calls[0] == (0, 30) and calls[-1] == (30, 30)
    assert children(os.getpid()) == set()


def test_a_run_whose_cache_holds_findings_forks_no_server_and_pools_the_same(
    tree: Path,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    audit(tree, jobs=1)  # stores every outcome
    # Every outcome's key holds the index: changing a definition invalidates them all.
    deps = tree / "pkg" / "deps.py"
    deps.write_text(deps.read_text() + "\n\ndef unrelated():\n    return 1\n")
    started: list[bool] = []
    monkeypatch.setattr(AnalysisServer, "__init__", lambda *_: started.append(True))
    serial = audit(tree, use_cache=False, jobs=1)

    pooled = audit(tree, jobs=2)

    assert started == []
    assert pooled.report.to_json() == serial.report.to_json()


def test_a_warm_run_forks_the_server_when_a_file_changed_since_the_last_run_may_hold_a_site(
    tree: Path,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With findings cached the server is forked only when ``git status`` names
    a file, not in the last run's status as it is now, that names a legacy
    function: its analysis is then likely (and LibCST's import overlaps discovery)."""
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tree.parent))
    for arguments in (["init", "-q"], ["add", "-A"], ["commit", "-qm", "start"]):
        git(tree, *arguments)
    # The run waits for git's answer however long it takes: the test must not
    # depend on the machine's load.
    monkeypatch.setattr(engine, "REUSE_PATIENCE_SECONDS", 60.0)
    started: list[bool] = []
    original = AnalysisServer.__init__

    def start(server: AnalysisServer, fix: bool) -> None:
        started.append(True)
        original(server, fix)

    monkeypatch.setattr(AnalysisServer, "__init__", start)

    def warm_run_after(edited: str) -> bool:
        """Whether a run after appending a comment to ``edited`` forked the server."""
        path = tree / "pkg" / edited
        path.write_text(path.read_text() + f"# edited, run {len(runs)}\n")
        started.clear()
        runs.append(run([tree], Config(root=tree), jobs=2).report.to_json())
        assert runs[-1] == audit(tree, use_cache=False, jobs=1).report.to_json()
        return bool(started)

    runs: list[dict[str, object]] = []
    run([tree], Config(root=tree), jobs=2)  # cold: every outcome stored

    assert warm_run_after("handler_00.py")  # names create_user_execution_context
    assert not warm_run_after("plain_00.py")  # names nothing
    # handler_00.py is still modified, as the last run saw it: its findings are cached.
    assert not warm_run_after("plain_01.py")
    assert warm_run_after("handler_00.py")
    assert children(os.getpid()) == set()


def test_a_server_that_dies_is_an_error_not_a_hang() -> None:
    for when in ("before the job", "during the job"):
        server = AnalysisServer(fix=False)
        assert server.share(position_and_process, []) == []  # ready
        if when == "before the job":
            server._process.kill()
            server._process.join()
        else:  # killed while the main process waits for its share
            threading.Timer(0.1, server._process.kill).start()
        try:
            with pytest.raises(RuntimeError, match="the analysis process ended unexpectedly"):
                server.share(position_and_process, list(range(60)))
        finally:
            server.close()


def audit_in_a_daemon(root: Path, results: multiprocessing.queues.Queue[object]) -> None:
    results.put(audit(root, use_cache=False, jobs=2).report.to_json())


def test_a_daemonic_process_audits_without_starting_a_server(tmp_path: Path) -> None:
    # A daemonic process may start no process (multiprocessing refuses it).
    (tmp_path / "deps.py").write_text("def create_user_execution_context(**kw):\n    pass\n")
    (tmp_path / "handler.py").write_text(
        "from deps import create_user_execution_context\n\n"
        "def handle():\n    return create_user_execution_context(user_id='u')\n"
    )
    context = multiprocessing.get_context("fork")
    results: multiprocessing.queues.Queue[object] = context.Queue()
    process = context.Process(target=audit_in_a_daemon, args=(tmp_path, results), daemon=True)
    process.start()
    report = results.get(timeout=60)
    process.join()

    assert process.exitcode == 0
    assert [finding["rule"] for finding in report["findings"]] == ["CTX001"]  # type: ignore[index]


def recorded_analysis(record: Path, size: int, item: object) -> bytes:
    """Notes each item's analysis in ``record`` (one line), takes a while, and
    gives an outcome of ``size`` bytes."""
    with record.open("a") as notes:
        notes.write("analysed\n")
    time.sleep(0.005)
    return bytes(size)


# Small outcomes fit in the pipes; large ones fill them, and a process still
# holding a copy of the other end would wait forever instead of stopping.
@pytest.mark.parametrize("size", [0, 200_000])
def test_a_server_stops_handing_out_files_once_the_main_process_closes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, size: int
) -> None:
    record = tmp_path / "record"
    analysis = functools.partial(recorded_analysis, record, size)
    monkeypatch.setattr(engine, "_analyze_in_worker", analysis)
    items = list(range(400))
    server = AnalysisServer(fix=False)
    pid = server._process.pid
    assert pid is not None
    next(server.analyze((None, None, None, False, None), items, 2))
    helpers = children(pid)
    server.close()

    # Closing is not waiting for the other 399: the files in hand are finished.
    assert len(record.read_text().splitlines()) < len(items) / 2
    assert helpers and not any(alive(helper) for helper in helpers)
    assert server._process.exitcode == 0  # it stopped by itself, not killed


def test_the_server_imports_what_the_analysis_needs_before_it_serves(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    marker = tmp_path / "preloaded"
    preload = engine.preload_analysis

    def preload_and_mark(fix: bool) -> None:
        preload(fix)
        marker.write_text(str(fix))

    monkeypatch.setattr(engine, "preload_analysis", preload_and_mark)
    server = AnalysisServer(fix=True)
    try:
        assert server.share(position_and_process, []) == []  # answered once it serves
        assert marker.read_text() == "True"
    finally:
        server.close()
