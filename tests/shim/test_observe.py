"""observe_legacy: the app's own legacy factories, observed in place."""

from __future__ import annotations

import asyncio
import inspect
import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from ctxmigrate.shim import legacy_observer, observe_legacy, write_observations
from ctxmigrate.shim.observe import (
    LegacyObserver,
    ObservationsError,
    merge_observations,
    read_observations,
)

HERE = __file__
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def fresh_observer() -> Iterator[None]:
    legacy_observer().reset()
    yield
    legacy_observer().reset()


@dataclass
class Context:
    user_id: str
    thread_id: str | None
    run_id: str | None = None


@observe_legacy
def create_user_execution_context(
    user_id: str, thread_id: str | None, run_id: str | None = None
) -> Context:
    return Context(user_id, thread_id, run_id)


class WebSocketContext:
    def __init__(self, user_id: str, thread_id: str) -> None:
        self.user_id = user_id
        self.thread_id = thread_id

    @classmethod
    @observe_legacy
    def create_for_user(
        cls, websocket: object, user_id: str, thread_id: str, run_id: str
    ) -> WebSocketContext:
        return cls(user_id, thread_id)

    @observe_legacy  # type: ignore[arg-type, misc]  # the other order works too
    @classmethod
    def create_other_order(cls, websocket: object, user_id: str, thread_id: str) -> Any:
        return cls(user_id, thread_id)


@observe_legacy
def create_websocket_manager(context: Context) -> dict[str, Any]:
    return {"context": context}


def sites(report: dict[str, Any] | None = None) -> dict[tuple[str, int], dict[str, Any]]:
    report = report if report is not None else legacy_observer().report()
    return {(site["api"].rsplit(".", 1)[-1], site["line"]): site for site in report["call_sites"]}


def line_of(marker: str) -> int:
    for number, text in enumerate(Path(HERE).read_text().splitlines(), start=1):
        if text.rstrip().endswith(f"# {marker}"):
            return number
    raise AssertionError(marker)


def test_behaviour_is_unchanged() -> None:
    context = create_user_execution_context("u", "t", run_id="r")
    assert context == Context("u", "t", "r")
    assert create_user_execution_context.__name__ == "create_user_execution_context"
    assert inspect.signature(create_user_execution_context) == inspect.signature(
        create_user_execution_context.__wrapped__  # type: ignore[attr-defined]
    )

    @observe_legacy
    def failing(user_id: str, thread_id: str) -> None:
        raise LookupError("from the factory")

    with pytest.raises(LookupError, match="from the factory"):
        failing("u", "t")
    assert legacy_observer().report()["calls"] == 2


def test_calls_are_recorded_per_call_site_with_file_line_and_function() -> None:
    def handle_message() -> None:
        create_user_execution_context("user-7781", "thread-4423")  # first-site
        create_user_execution_context(user_id="user-7781", thread_id="thread-4423")  # second-site

    handle_message()
    handle_message()
    report = legacy_observer().report()
    first = sites(report)[("create_user_execution_context", line_of("first-site"))]
    assert first["path"] == HERE
    assert first["function"] == (
        "test_calls_are_recorded_per_call_site_with_file_line_and_function.<locals>.handle_message"
    )
    assert first["api"] == f"{__name__}.create_user_execution_context"
    # The very first call built the conversation's context; every later one rebuilt it.
    assert (first["calls"], first["rebuilt"], first["conversations"]) == (2, 1, 1)
    second = sites(report)[("create_user_execution_context", line_of("second-site"))]
    assert (second["calls"], second["rebuilt"], second["conversations"]) == (2, 2, 1)
    assert (report["calls"], report["rebuilt"]) == (4, 3)
    exported = json.dumps(report)
    assert "7781" not in exported  # no ids in the report
    assert "4423" not in exported


def test_conversations_counts_distinct_conversations_per_site() -> None:
    for thread in ("a", "b", "c", "a"):
        create_user_execution_context("u", thread)  # loop-site
    create_user_execution_context("other-user", "a")  # loop-site-2
    site = sites()[("create_user_execution_context", line_of("loop-site"))]
    assert (site["calls"], site["rebuilt"], site["conversations"]) == (4, 1, 3)
    other = sites()[("create_user_execution_context", line_of("loop-site-2"))]
    assert (other["calls"], other["rebuilt"], other["conversations"]) == (1, 0, 1)


def test_thread_id_none_starts_a_conversation_and_is_never_a_rebuild() -> None:
    create_user_execution_context("u", None)
    create_user_execution_context("u", None)
    report = legacy_observer().report()
    assert (report["calls"], report["rebuilt"]) == (2, 0)
    assert report["call_sites"][0]["conversations"] == 0


def test_classmethods_in_either_decorator_order() -> None:
    view = WebSocketContext.create_for_user(object(), "u", "t", "r")  # classmethod-site
    assert isinstance(view, WebSocketContext)
    WebSocketContext.create_for_user(websocket=None, user_id="u", thread_id="t", run_id="r2")
    other = WebSocketContext.create_other_order(object(), "u", "t")  # other-order-site
    assert isinstance(other, WebSocketContext)
    found = sites()
    first = found[("create_for_user", line_of("classmethod-site"))]
    assert first["api"] == f"{__name__}.WebSocketContext.create_for_user"
    assert (first["calls"], first["rebuilt"]) == (1, 0)
    assert sum(site["rebuilt"] for site in found.values() if "create_for_user" in site["api"]) == 1
    assert found[("create_other_order", line_of("other-order-site"))]["calls"] == 1


def test_rebuilt_is_counted_per_api() -> None:
    context = create_user_execution_context("u", "t")
    create_websocket_manager(context)  # manager-site
    create_websocket_manager(context)
    totals = legacy_observer().api_totals()
    assert totals[f"{__name__}.create_user_execution_context"] == {"calls": 1, "rebuilt": 0}
    # create_websocket_manager(context) follows the context's conversation.
    assert totals[f"{__name__}.create_websocket_manager"] == {"calls": 2, "rebuilt": 1}


def test_async_factories_stay_coroutine_functions_and_record_the_awaiting_line() -> None:
    @observe_legacy(api="app.make_async")
    async def make_async(user_id: str, thread_id: str) -> Context:
        await asyncio.sleep(0)
        return Context(user_id, thread_id)

    assert inspect.iscoroutinefunction(make_async)

    async def handler() -> Context:
        return await make_async("u", "t")  # await-site

    assert asyncio.run(handler()) == Context("u", "t")
    site = sites()[("make_async", line_of("await-site"))]
    assert site["function"].endswith("handler")
    assert site["calls"] == 1


def test_memory_is_bounded_by_max_conversations() -> None:
    observer = LegacyObserver(max_conversations=10)

    @observe_legacy(observer=observer)
    def factory(user_id: str, thread_id: str) -> None:
        return None

    for thread in range(1000):
        factory("u", str(thread))
    assert len(observer._conversations) == 10
    report = observer.report()
    assert report["conversations_forgotten"] == 990
    # The newest conversations are still remembered: calling one again is a rebuild.
    factory("u", "999")
    assert observer.report()["rebuilt"] == 1
    # A forgotten one counts as a first build again.
    factory("u", "0")
    assert observer.report()["rebuilt"] == 1
    with pytest.raises(ValueError, match="max_conversations"):
        LegacyObserver(max_conversations=0)


def test_unhashable_ids_are_counted_without_a_conversation() -> None:
    @observe_legacy
    def factory(user_id: Any, thread_id: Any) -> str:
        return "built"

    assert factory(["not", "hashable"], {"nor": "this"}) == "built"
    assert legacy_observer().report()["calls"] == 1


def test_write_observations_writes_a_versioned_report_atomically(tmp_path: Path) -> None:
    create_user_execution_context("u", "t")
    written = write_observations(tmp_path / "obs-{pid}.json")
    assert written == tmp_path / f"obs-{os.getpid()}.json"
    report = read_observations(written)
    assert report["format"] == "ctxmigrate-observations"
    assert report["version"] == 1
    assert report["processes"][0]["pid"] == os.getpid()
    assert report["calls"] == 1
    assert [path.name for path in tmp_path.iterdir()] == [written.name]  # no temporary left


def test_write_observations_into_a_missing_directory_fails_and_writes_nothing(
    tmp_path: Path,
) -> None:
    with pytest.raises(FileNotFoundError):
        write_observations(tmp_path / "missing" / "obs.json")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("not json", "not valid JSON"),
        ('{"format": "other"}', "not a ctxmigrate observations report"),
        ('{"format": "ctxmigrate-observations", "version": 99}', "version 99 is not supported"),
        (
            '{"format": "ctxmigrate-observations", "version": 1, "processes": [], '
            '"call_sites": [{"api": "a", "path": "p", "function": "f", "line": -1, '
            '"calls": 1, "rebuilt": 0, "conversations": 0}]}',
            r"call_sites\[0\]",
        ),
    ],
)
def test_bad_observation_files_name_the_problem(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(ObservationsError, match=message) as raised:
        read_observations(path)
    assert str(path) in str(raised.value)


def test_reports_merge_and_a_later_snapshot_of_the_same_process_replaces_the_earlier() -> None:
    one, two = LegacyObserver(), LegacyObserver()
    one.record("api", "/app/h.py", 3, "handle", "u", "t")
    early = one.report()
    one.record("api", "/app/h.py", 3, "handle", "u", "t")
    late = one.report()
    late["processes"][0]["written"] = "9999-01-01T00:00:00+00:00"
    two.record("api", "/app/h.py", 3, "handle", "u", "t")
    two.record("api", "/app/other.py", 9, "f", "u", "t")
    merged = merge_observations([early, two.report(), late])
    assert len(merged["processes"]) == 2
    assert sites(merged)[("api", 3)]["calls"] == 3  # 2 (late snapshot) + 1, early dropped
    assert merged["calls"] == 4
    # A merged report merges again with nothing counted twice.
    assert merge_observations([merged, merged])["calls"] == 4
    with pytest.raises(ObservationsError, match="overlap"):
        merge_observations([merged, two.report()])


def test_reports_written_by_several_real_processes_merge(tmp_path: Path) -> None:
    script = textwrap.dedent(
        """
        import sys
        from ctxmigrate.shim import observe_legacy, write_observations

        @observe_legacy(api="app.create_user_execution_context")
        def create_user_execution_context(user_id, thread_id):
            return (user_id, thread_id)

        def handle_message(thread_id):
            return create_user_execution_context("u", thread_id)

        for _ in range(int(sys.argv[2])):
            handle_message("t")
        write_observations(sys.argv[1] + "/obs-{pid}.json")
        """
    )
    worker = tmp_path / "worker.py"
    worker.write_text(script)
    for count in (3, 4):
        subprocess.run(
            [sys.executable, str(worker), str(tmp_path), str(count)], check=True, cwd=REPO
        )
    files = sorted(tmp_path.glob("obs-*.json"))
    assert len(files) == 2
    merged = merge_observations(read_observations(path) for path in files)
    [site] = merged["call_sites"]
    assert (site["function"], site["line"]) == ("handle_message", 10)
    assert site["path"] == str(worker)
    # Each process rebuilt the conversation after its first call.
    assert (site["calls"], site["rebuilt"], site["conversations"]) == (7, 5, 2)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_starts_with_empty_counts(tmp_path: Path) -> None:
    create_user_execution_context("u", "t")
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        code = 0 if legacy_observer().report()["calls"] == 0 else 1
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert legacy_observer().report()["calls"] == 1


def test_decorating_something_that_is_not_callable_is_a_clear_error() -> None:
    with pytest.raises(TypeError, match="observe_legacy decorates a function"):
        observe_legacy(42)  # type: ignore[call-overload]


def test_the_session_layer_building_a_context_is_not_a_legacy_call() -> None:
    from ctxmigrate.shim import UserSessionManager

    async def scenario() -> None:
        manager = UserSessionManager(factory=create_user_execution_context)
        first = await manager.get_or_create_user_session("u", "t")
        assert await manager.get_or_create_user_session("u", "t") is first
        await manager.aclose()

    asyncio.run(scenario())
    assert legacy_observer().report()["call_sites"] == []


def test_a_deprecated_wrapper_on_top_is_not_taken_for_the_caller() -> None:
    from ctxmigrate.shim import deprecated

    @deprecated("use sessions")
    @observe_legacy(api="app.old")
    def old(user_id: str, thread_id: str) -> Context:
        return Context(user_id, thread_id)

    with pytest.warns(DeprecationWarning):
        old("u", "t")  # deprecated-site
    [site] = legacy_observer().report()["call_sites"]
    assert (site["path"], site["line"]) == (HERE, line_of("deprecated-site"))


def test_live_results_are_counted_until_they_are_garbage() -> None:
    kept = [create_user_execution_context("u", str(index)) for index in range(3)]
    for index in range(5000):  # built and dropped, as legacy handlers do per message
        create_user_execution_context("u", f"dropped-{index}")
    api = f"{__name__}.create_user_execution_context"
    assert legacy_observer().live_objects()[api] == 3
    del kept
    assert legacy_observer().live_objects()[api] == 0
    # Results without weak references (a dict) are simply not counted.
    create_websocket_manager(Context("u", "t"))
    assert legacy_observer().live_objects().get(f"{__name__}.create_websocket_manager", 0) == 0
    # Memory follows the live objects, not the calls.
    assert len(legacy_observer()._live[api].refs) <= 1024 + 1


def test_every_parameter_kind_and_default_object_is_forwarded_unchanged() -> None:
    shared: list[str] = []

    def plain(user_id, /, thread_id, run_id=None, *, state=shared, flag=False):  # type: ignore[no-untyped-def]
        return (user_id, thread_id, run_id, state, flag)

    observed = observe_legacy(plain)
    assert inspect.signature(observed) == inspect.signature(plain)
    assert observed("u", "t") == ("u", "t", None, shared, False)
    assert observed("u", thread_id="t", run_id="r", flag=True) == ("u", "t", "r", shared, True)
    assert observed("u", "t")[3] is shared  # the very same default object
    with pytest.raises(TypeError):
        observed(user_id="u", thread_id="t")  # positional-only stays positional-only
    with pytest.raises(TypeError):
        observed("u", "t", None, shared)  # keyword-only stays keyword-only
    assert legacy_observer().report()["calls"] == 3


def test_star_args_factories_use_the_generic_wrapper() -> None:
    @observe_legacy
    def variadic(*args: Any, **kwargs: Any) -> tuple[Any, ...]:
        return (args, kwargs)

    @observe_legacy
    async def variadic_async(*args: Any, **kwargs: Any) -> tuple[Any, ...]:
        return (args, kwargs)

    assert variadic("u", thread_id="t") == (("u",), {"thread_id": "t"})  # generic-sync-site

    async def handler() -> tuple[Any, ...]:
        return await variadic_async("u", thread_id="t")  # generic-async-site

    assert asyncio.run(handler()) == (("u",), {"thread_id": "t"})
    report = legacy_observer().report()
    sites = sorted(report["call_sites"], key=lambda site: site["line"])
    assert [(site["path"], site["line"]) for site in sites] == [
        (HERE, line_of("generic-sync-site")),
        (HERE, line_of("generic-async-site")),
    ]
    assert [(site["calls"], site["conversations"]) for site in sites] == [(1, 1), (1, 1)]


def test_the_deprecated_drop_in_is_observed_too(tmp_path: Path) -> None:
    import warnings

    from ctxmigrate.shim import create_user_execution_context as drop_in

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        for _ in range(2):
            drop_in("u", "t")  # drop-in-site
    report = read_observations(write_observations(tmp_path / "obs.json"))
    [site] = report["call_sites"]
    assert site["api"] == "ctxmigrate.shim.create_user_execution_context"
    assert (site["path"], site["line"]) == (HERE, line_of("drop-in-site"))
    assert (site["calls"], site["rebuilt"], site["conversations"]) == (2, 1, 1)
