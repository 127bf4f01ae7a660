"""SessionCollector: the exposition, checked by the real promtool, and its values."""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from ctxmigrate.shim import (
    InMemorySessionStore,
    SessionKey,
    UserSessionManager,
    configure,
    create_user_execution_context,
    get_manager_for_context,
    legacy_observer,
    observe_legacy,
)
from ctxmigrate.shim.errors import StateConflictError
from ctxmigrate.shim.prometheus import SessionCollector
from ctxmigrate.shim.store_metrics import MeasuredStore, MeasuredSyncStore, measured_store
from ctxmigrate.shim.testing import ManualClock

USER_ID = "user-id-5517"
THREAD_ID = "thread-id-8826"


@pytest.fixture(autouse=True)
def fresh_observer() -> Iterator[None]:
    legacy_observer().reset()
    yield
    legacy_observer().reset()


@pytest.fixture(scope="module")
def promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        reason = "promtool is not on PATH (scripts/setup-dev installs Debian's prometheus)"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    return found


class Ctx:
    def __init__(self, user_id: str, thread_id: str, run_id: str | None = None) -> None:
        self.user_id = user_id
        self.thread_id = thread_id
        self.run_id = run_id


@observe_legacy(api="app.create_user_execution_context")
def legacy_factory(user_id: str, thread_id: str, run_id: str | None = None) -> Ctx:
    return Ctx(user_id, thread_id, run_id)


class FailingDelete(InMemorySessionStore):
    async def delete(self, key: Any) -> bool:
        raise ConnectionError("store unreachable")


def busy_manager() -> tuple[UserSessionManager[Any], list[Ctx]]:
    """A manager after a bit of everything the metrics count."""
    clock = ManualClock()
    manager = UserSessionManager(
        factory=legacy_factory,
        store=measured_store(FailingDelete()),
        idle_timeout=60,
        max_sessions=2,
        max_sessions_per_user=5,
        clock=clock,
    )
    configure(manager, manager_factory=lambda context: object())
    kept = [legacy_factory(USER_ID, THREAD_ID) for _ in range(3)]  # legacy calls, 2 rebuilt

    async def scenario() -> None:
        first = await manager.get_or_create_user_session(USER_ID, THREAD_ID)
        await manager.get_or_create_user_session(USER_ID, THREAD_ID)  # reused
        get_manager_for_context(first)  # bound to the session
        get_manager_for_context(kept[0])  # unbound: a legacy context
        await manager.get_or_create_user_session("other-user", "t2")
        await manager.get_or_create_user_session("third-user", "t3")  # evicts (cap 2)
        with pytest.raises(ConnectionError):
            await manager.end_session("other-user", "t2")
        context = await manager.get_or_create_user_session("third-user", "t3")
        store = manager.store
        assert isinstance(store, MeasuredStore)
        record = await store.touch(
            SessionKey("third-user", "t3"), now=clock(), policy=manager.policy
        )
        assert record is not None
        with pytest.raises(StateConflictError):
            await store.save_state(
                record.key,
                {},
                expected_version=record.version + 5,
                now=clock(),
                policy=manager.policy,
            )
        del context

    asyncio.run(scenario())
    return manager, kept


def exposition(manager: UserSessionManager[Any], **options: Any) -> str:
    registry = CollectorRegistry()
    registry.register(SessionCollector(manager, **options))
    return generate_latest(registry).decode()


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_promtool_accepts_the_exposition(promtool: str) -> None:
    manager, _kept = busy_manager()
    text = exposition(manager)
    checked = subprocess.run(
        [promtool, "check", "metrics"], input=text, capture_output=True, text=True, check=False
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_promtool_would_reject_a_bad_exposition(promtool: str) -> None:
    # The check above can fail: a counter without _total and help is refused.
    checked = subprocess.run(
        [promtool, "check", "metrics"],
        input="# TYPE requests counter\nrequests 1\n",
        capture_output=True,
        text=True,
        check=False,
    )
    assert checked.returncode != 0


def test_the_values_follow_the_manager_observer_and_store() -> None:
    manager, _kept = busy_manager()
    values = samples(exposition(manager))
    stats = manager.stats()
    assert values[("ctxmigrate_sessions_active", ())] == stats.active == 2
    assert values[("ctxmigrate_sessions_created_total", ())] == 3
    assert values[("ctxmigrate_sessions_reused_total", ())] == stats.reused == 2
    assert values[("ctxmigrate_sessions_removed_total", (("reason", "capacity"),))] == 1
    assert values[("ctxmigrate_sessions_removed_total", (("reason", "ended"),))] == 0
    assert values[("ctxmigrate_session_creations_failed_total", ())] == 0
    assert values[("ctxmigrate_websocket_managers_unbound_total", ())] == 1
    api = (("api", "app.create_user_execution_context"),)
    # Only the three calls from this test module: the manager's own builds are not legacy.
    assert values[("ctxmigrate_legacy_calls_total", api)] == 3
    assert values[("ctxmigrate_legacy_rebuilt_total", api)] == 2
    assert values[("ctxmigrate_legacy_live_objects", api)] == 3
    assert values[("ctxmigrate_contexts_live", ())] == 5
    assert values[("ctxmigrate_contexts_outside_sessions", ())] == 3
    delete = (("operation", "delete"),)
    assert values[("ctxmigrate_store_operation_errors_total", delete)] == 1
    assert values[("ctxmigrate_store_operation_duration_seconds_count", delete)] == 1
    save = (("operation", "save_state"),)
    assert values[("ctxmigrate_store_operation_conflicts_total", save)] == 1
    assert values[("ctxmigrate_store_operation_errors_total", save)] == 0
    assert (
        values[("ctxmigrate_store_operation_duration_seconds_count", (("operation", "touch"),))]
        >= 2
    )


def test_no_label_carries_a_user_or_thread_id() -> None:
    manager, _kept = busy_manager()
    text = exposition(manager)
    for identifier in (USER_ID, THREAD_ID, "other-user", "third-user", "t2", "t3"):
        assert f'"{identifier}"' not in text
    labels = {
        name
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        for name in sample.labels
    }
    assert labels == {"reason", "api", "operation", "le"}


def test_the_drop_in_counts_as_a_legacy_api() -> None:
    import warnings

    configure(UserSessionManager(factory=Ctx))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        built = [create_user_execution_context("u", "t") for _ in range(2)]
    values = samples(exposition(UserSessionManager()))
    api = (("api", "ctxmigrate.shim.create_user_execution_context"),)
    assert values[("ctxmigrate_legacy_calls_total", api)] == 2
    assert values[("ctxmigrate_legacy_rebuilt_total", api)] == 1
    assert values[("ctxmigrate_legacy_live_objects", api)] == 2
    del built


def test_leak_gauge_and_log_event_when_live_contexts_outgrow_sessions(
    caplog: pytest.LogCaptureFixture,
) -> None:
    manager = UserSessionManager(factory=legacy_factory)
    asyncio.run(manager.get_or_create_user_session("u", "session-thread"))
    held = [legacy_factory("u", f"t{index}") for index in range(3)]
    caplog.set_level(logging.INFO, logger="ctxmigrate.shim.leaks")
    assert samples(exposition(manager, leak_threshold=3))[("ctxmigrate_context_leak", ())] == 0
    assert caplog.records == []
    held.append(legacy_factory("u", "one-more"))  # 4 outside sessions > threshold 3
    collector = SessionCollector(manager, leak_threshold=3)
    registry = CollectorRegistry()
    registry.register(collector)
    values = samples(generate_latest(registry).decode())
    assert values[("ctxmigrate_context_leak", ())] == 1
    assert values[("ctxmigrate_contexts_outside_sessions", ())] == 4
    assert values[("ctxmigrate_context_leak_threshold", ())] == 3
    [record] = caplog.records
    assert record.levelno == logging.WARNING
    assert record.event == "ctxmigrate.context_leak"  # type: ignore[attr-defined]
    assert (record.live_contexts, record.live_sessions) == (5, 1)  # type: ignore[attr-defined]
    # Logged once per episode, not on every scrape.
    generate_latest(registry)
    assert len(caplog.records) == 1
    held.clear()
    values = samples(generate_latest(registry).decode())
    assert values[("ctxmigrate_context_leak", ())] == 0
    assert caplog.records[-1].event == "ctxmigrate.context_leak_over"  # type: ignore[attr-defined]
    # Leaving an API out of leak_apis ignores its live results.
    held.extend(legacy_factory("u", f"again{index}") for index in range(5))
    ignoring = exposition(manager, leak_threshold=3, leak_apis=["something.else"])
    assert samples(ignoring)[("ctxmigrate_context_leak", ())] == 0


def test_measured_in_memory_store_keeps_the_synchronous_paths() -> None:
    from ctxmigrate.shim import SyncSessionStore

    store = measured_store(InMemorySessionStore())
    assert isinstance(store, SyncSessionStore)
    manager = UserSessionManager(store=store)
    context = manager.get_or_create_user_session_sync("u", "t")
    assert manager.get_or_create_user_session_sync("u", "t") is context
    plain = MeasuredStore(InMemorySessionStore())
    assert not hasattr(plain, "touch_now")  # never an unmeasured shortcut


def test_importing_the_collector_imports_prometheus_client() -> None:
    # tests/shim/test_configuration.py checks that `import ctxmigrate.shim` does not.
    script = "import sys, ctxmigrate.shim.prometheus; print('prometheus_client' in sys.modules)"
    completed = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )
    assert completed.stdout.strip() == "True"


def test_an_idle_manager_exposition_passes_promtool_too(promtool: str) -> None:
    text = exposition(UserSessionManager())
    checked = subprocess.run(
        [promtool, "check", "metrics"], input=text, capture_output=True, text=True, check=False
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "ctxmigrate_store_operation" not in text  # no measured store, no store metrics


def test_a_store_that_raises_on_a_synchronous_call_counts_an_error() -> None:
    class Broken(InMemorySessionStore):
        def touch_now(self, *args: Any, **kwargs: Any) -> Any:
            raise OSError("disk on fire")

    store = measured_store(Broken())
    manager = UserSessionManager(store=store)
    manager.get_or_create_user_session_sync("u", "t")
    with pytest.raises(OSError):
        manager.get_or_create_user_session_sync("u", "t")
    values = samples(exposition(manager))
    assert values[("ctxmigrate_store_operation_errors_total", (("operation", "touch"),))] == 1
    with pytest.raises(TypeError, match="no synchronous methods"):
        MeasuredSyncStore(object())  # type: ignore[arg-type]
